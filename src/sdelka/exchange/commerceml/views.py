"""`/1c/exchange` (and `/bitrix/admin/1c_exchange.php`, `/1c_exchange.php`): the endpoint stock 1C calls.

Every answer is protocol text with HTTP 200 — `success`, `progress` or `failure` on the first line — never an
HTML error page: every exception inside becomes `failure` with a reason and a journal line.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from ..models import Connection, EventLevel, ExchangeSession
from ..services import log_event
from ..tasks import enqueue_import
from . import protocol
from .session import COOKIE_NAME, ProtocolError, find_session

logger = logging.getLogger(__name__)

CHARSET = "windows-1251"


def _answer(lines: list[str]) -> HttpResponse:
    body = "\n".join(line.replace("\r", " ").replace("\n", " ") if i else line for i, line in enumerate(lines)) + "\n"
    return HttpResponse(body.encode(CHARSET, errors="replace"), content_type=f"text/plain; charset={CHARSET}")


@csrf_exempt
def exchange(request: HttpRequest) -> HttpResponseBase:
    exchange_type = request.GET.get("type", "")
    mode = request.GET.get("mode", "")  # never request.POST: that would parse the raw file body
    session: ExchangeSession | None = None
    try:
        if exchange_type not in protocol.SUPPORTED_TYPES:
            raise ProtocolError(_("Unknown exchange type %(type)r.") % {"type": exchange_type[:50]})
        if mode == "checkauth":
            lines, session = protocol.checkauth(request, exchange_type)
            response = _answer(lines)
            response.set_cookie(COOKIE_NAME, session.token, httponly=True, samesite="Lax")
            return response
        session = find_session(request)
        if session.mode != exchange_type:
            raise ProtocolError(
                _(
                    "type=%(asked)s was asked in a session opened for type=%(opened)s. "
                    "Start the exchange again (checkauth with type=%(asked)s)."
                )
                % {"asked": exchange_type, "opened": session.mode}
            )
        if exchange_type == "sale":
            if mode == "query":
                return protocol.query(request, session)
            if mode == "success":
                return _answer(protocol.sale_success(request, session))
            if mode == "info":
                return protocol.info(request, session)
            if mode == "deactivate":
                raise ProtocolError(_("mode=deactivate belongs to the catalogue exchange (type=catalog)."))
        if mode == "init":
            return _answer(protocol.init(request, session))
        if mode == "file":
            return _answer(protocol.upload(request, session))
        if mode == "import":
            return _answer(protocol.import_(request, session, enqueue_import))
        if mode == "deactivate":
            return _answer(protocol.deactivate(request, session))
        if mode == "complete":
            return _answer(protocol.complete(request, session))
        raise ProtocolError(_("Unknown command."))
    except ProtocolError as exc:
        if not exc.logged:
            _journal(session, exc.connection, exc.message)
        return _answer(["failure", exc.message])
    except Exception:
        logger.exception("1C exchange request failed: type=%s mode=%s", exchange_type, mode)
        message = _(
            "Internal error in Sdelka while processing mode=%(mode)s; the administrator can see it in the log."
        ) % {"mode": mode[:30]}
        try:
            _journal(session, None, message)
        except Exception:
            logger.exception("Could not write the exchange journal")
        return _answer(["failure", message])


def _journal(session: ExchangeSession | None, connection: Connection | None, message: str) -> None:
    run = session.run if session is not None else None
    log_event(
        run=run,
        connection=session.connection if session is not None else connection,
        level=EventLevel.ERROR,
        message=message,
    )
