"""Who is talking: Basic auth with lockout, protocol sessions, and the one-run-per-connection lock."""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import (
    ACTIVE_RUN_STATUSES,
    Connection,
    ConnectionKind,
    Direction,
    ExchangeFile,
    ExchangeRun,
    ExchangeSession,
    ImportStatus,
    LoginFailure,
    RunStatus,
    Trigger,
)
from ..services import finish_run, log_event
from ..storage import run_folder_name

COOKIE_NAME = "sdelka_1c"
FAILURE_LIMIT = 5
LOCKOUT = timedelta(minutes=15)
SESSION_TTL = timedelta(hours=24)
# An exchange whose 1C has sent nothing for this long (and has no import working) no longer holds the lock.
IDLE_RELEASE = timedelta(minutes=3)
# An exchange resting where 1C may stop (nothing uploaded left to import) yields to another 1C after this
# much silence, and at once to a new exchange from the same address: that is the same 1C starting over.
RESTING_RELEASE = timedelta(seconds=30)
# A background import that has not reported for this long is considered dead.
STUCK_IMPORT = timedelta(minutes=30)


class ProtocolError(Exception):
    """Refuse the request with `failure` and this text; `logged` when it is already in the journal."""

    def __init__(self, message: str, *, logged: bool = False, connection: Connection | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.logged = logged
        self.connection = connection


@dataclass(frozen=True)
class Credentials:
    login: str
    password: str


def basic_credentials(request: HttpRequest) -> Credentials | None:
    header = request.META.get("HTTP_AUTHORIZATION") or request.META.get("REDIRECT_HTTP_AUTHORIZATION") or ""
    scheme, _sep, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("windows-1251", errors="replace")  # 1C on Windows may send Cyrillic logins in 1251
    login, sep, password = text.partition(":")
    return Credentials(login, password) if sep else None


def client_ip(request: HttpRequest) -> str:
    """The address of the 1C computer (for the lockout, and to tell one 1C from another): REMOTE_ADDR, or
    behind the trusted reverse proxy (SDELKA_BEHIND_PROXY) the address it appended to X-Forwarded-For."""
    address = str(request.META.get("REMOTE_ADDR") or "")
    if settings.USE_X_FORWARDED_HOST:
        forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "").rsplit(",", 1)[-1].strip()
        with contextlib.suppress(ValueError):
            address = str(ipaddress.ip_address(forwarded))
    return address[:45]


def _lock_message(until: datetime) -> str:
    minutes = max(1, int((until - timezone.now()).total_seconds() // 60) + 1)
    return _(
        "Too many wrong passwords for this exchange login. Check the login and password in the 1C exchange "
        "node and try again in %(minutes)d minutes."
    ) % {"minutes": minutes}


def authenticate(*, credentials: Credentials | None, ip: str) -> Connection:
    """The active site connection for these Basic credentials, or ProtocolError (counting failures)."""
    if credentials is None or not credentials.login:
        raise ProtocolError(
            _("No login and password were sent. Enter the exchange login and password in the 1C exchange node.")
        )
    login = credentials.login[:150]
    now = timezone.now()
    failure = LoginFailure.objects.filter(login=login, ip=ip).first()
    connection = Connection.objects.filter(login=login, kind=ConnectionKind.SITE).first()
    if failure is not None and failure.locked_until and failure.locked_until > now:
        raise ProtocolError(_lock_message(failure.locked_until), connection=connection)
    if connection is None or not connection.check_password(credentials.password):
        _record_failure(login, ip)
        raise ProtocolError(_("Wrong exchange login or password."), connection=connection)
    if not connection.is_active:
        raise ProtocolError(_("This exchange connection is switched off in Sdelka."), connection=connection)
    LoginFailure.objects.filter(login=login, ip=ip).delete()
    return connection


def _record_failure(login: str, ip: str) -> None:
    now = timezone.now()
    with transaction.atomic():
        row, _created = LoginFailure.objects.select_for_update().get_or_create(
            login=login, ip=ip, defaults={"last_failure_at": now}
        )
        if row.last_failure_at < now - LOCKOUT:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        if row.failures >= FAILURE_LIMIT:
            row.locked_until = now + LOCKOUT
        row.save()


def open_session(*, connection: Connection, mode: str, ip: str) -> ExchangeSession:
    return ExchangeSession.objects.create(
        connection=connection, mode=mode, token=secrets.token_hex(16), sessid=secrets.token_hex(16), ip=ip or None
    )


def find_session(request: HttpRequest) -> ExchangeSession:
    """The session named by `sessid` (newer 1C) or by the checkauth cookie (every 1C), else ProtocolError."""
    sessid = request.GET.get("sessid", "")
    cookie = request.COOKIES.get(COOKIE_NAME, "")
    query = Q()
    if sessid:
        query |= Q(sessid=sessid)
    if cookie:
        query |= Q(token=cookie)
    if not sessid and not cookie:
        raise ProtocolError(
            _("No exchange session: the request carries neither the cookie nor sessid. Start with checkauth.")
        )
    session = ExchangeSession.objects.select_related("connection", "run").filter(query).first()
    if session is None:
        raise ProtocolError(_("Unknown or expired exchange session. Start the exchange again (checkauth)."))
    if session.closed_at is not None:
        raise ProtocolError(
            _(
                "This exchange session is already complete (finished, or replaced by a newer exchange of the same "
                "1C base). Start the exchange again (checkauth)."
            )
        )
    if session.last_seen_at < timezone.now() - SESSION_TTL:
        raise ProtocolError(_("The exchange session has expired. Start the exchange again (checkauth)."))
    if not session.connection.is_active:
        raise ProtocolError(_("This exchange connection is switched off in Sdelka."))
    ExchangeSession.objects.filter(pk=session.pk).update(last_seen_at=timezone.now())
    return session


def _holder_blocks(run: ExchangeRun, newcomer: ExchangeSession) -> bool:
    """Whether the exchange holding `run` is alive, so that `newcomer` must wait.

    Alive: a background import of the run is working; or its 1C uploaded a file it has not imported yet (it
    is in the middle of the exchange); or it spoke within RESTING_RELEASE from another address. Left behind:
    silent for IDLE_RELEASE, or resting where 1C may stop (stock 1C sends no `mode=complete` after orders)
    while the same 1C, from the same address, starts a new exchange."""
    now = timezone.now()
    if ExchangeFile.objects.filter(
        run=run, import_status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING], updated_at__gte=now - STUCK_IMPORT
    ).exists():
        return True
    holders = list(ExchangeSession.objects.filter(run=run, closed_at=None).exclude(pk=newcomer.pk))
    last_seen = max((holder.last_seen_at for holder in holders), default=None)
    if last_seen is None or last_seen < now - IDLE_RELEASE:
        return False
    waiting = run.files.filter(consumed=False).filter(Q(name__iendswith=".xml") | Q(name__iendswith=".zip"))
    if waiting.exists():
        return True
    same_host = bool(newcomer.ip) and any(holder.ip == newcomer.ip for holder in holders)
    return not same_host and last_seen >= now - RESTING_RELEASE


def ensure_run(session: ExchangeSession) -> ExchangeRun:
    """The session's run, started now if needed. Only one run per connection and route: another exchange
    that is still alive makes this one wait (ProtocolError); one left behind is closed and replaced."""
    run = session.run
    if run is not None and run.status in ACTIVE_RUN_STATUSES:
        return run
    connection = session.connection
    with transaction.atomic():
        holder = (
            # NO KEY: a catalogue file applied in one long transaction (PostgreSQL) holds a key-share lock on
            # its run through the journal lines it writes; this check must not wait for that file to finish.
            ExchangeRun.objects.select_for_update(no_key=True)
            .filter(connection=connection, route=session.mode, status__in=ACTIVE_RUN_STATUSES)
            .first()
        )
        if holder is not None:
            if _holder_blocks(holder, session):
                raise ProtocolError(
                    _("Another exchange with this 1C base is in progress (run %(run)d). Repeat the exchange later.")
                    % {"run": holder.pk}
                )
            _close_left_behind(holder)
        try:
            with transaction.atomic():
                run = ExchangeRun.objects.create(
                    connection=connection,
                    route=session.mode,
                    direction=Direction.IN,
                    trigger=Trigger.ONEC,
                    status=RunStatus.RUNNING,
                )
        except IntegrityError as exc:  # a concurrent exchange took the lock between our check and insert
            raise ProtocolError(
                _("Another exchange with this 1C base is in progress. Repeat the exchange later.")
            ) from exc
        run.folder = run_folder_name(connection.pk, run.pk)
        run.save(update_fields=["folder"])
        ExchangeSession.objects.filter(pk=session.pk).update(run=run)
        session.run = run
    log_event(run=run, message=_("Exchange started by 1C (session %(id)d).") % {"id": session.pk})
    return run


def _close_left_behind(run: ExchangeRun) -> None:
    """Finish a run whose 1C started a new exchange without `mode=complete`; its sessions end with it.
    Orders it offered without 1C's `mode=success` stay unconfirmed and go out again in the new exchange."""
    failed = run.files.filter(import_status=ImportStatus.FAILED).exists()
    message = _("Closed: 1C started a new exchange without finishing this one (no mode=complete).")
    finish_run(run=run, status=RunStatus.FAILED if failed else RunStatus.SUCCESS, message=message)
    ExchangeSession.objects.filter(run=run, closed_at=None).update(closed_at=timezone.now())
    log_event(run=run, message=message)


def close_session(session: ExchangeSession) -> None:
    ExchangeSession.objects.filter(pk=session.pk).update(closed_at=timezone.now(), last_seen_at=F("last_seen_at"))
