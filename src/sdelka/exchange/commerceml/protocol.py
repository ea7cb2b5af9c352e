"""The 1C "exchange with website" protocol, `type=catalog` and `type=sale`: one function per `mode`, each
returning the answer's lines (the XML answers of `query` and `info`: the response). The slow work (unzip,
parse, apply) runs in `process_import`, a background job; `mode=import` only starts it and reports
`progress` until it is done.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from django.core.files import File
from django.db import connection as db
from django.db import transaction
from django.db.models import F
from django.http import FileResponse, HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.sales.models import InvoiceStatus

from .. import apply, apply_orders
from ..models import (
    Direction,
    EventLevel,
    ExchangeFile,
    ExchangeRun,
    ExchangeSession,
    ImportStatus,
    Route,
    RunStatus,
)
from ..services import finish_run, log_event, printable
from ..storage import ArchiveRefused, RunFolder, UnsafeName, extension_of, is_zip_name, safe_relative_name, unpack_zip
from .precheck import precheck
from .session import (
    COOKIE_NAME,
    STUCK_IMPORT,
    ProtocolError,
    authenticate,
    basic_credentials,
    client_ip,
    close_session,
    ensure_run,
    open_session,
)
from .writer import info_xml, normalise_encoding
from .writer_orders import confirm_sent, export_orders

logger = logging.getLogger(__name__)

SUPPORTED_TYPES = ("catalog", "sale")
DEFAULT_VERSION = "2.10"
QUERY_VERSION = "2.05"  # the orders file's ВерсияСхемы when 1C did not name a version at init
NEW_FILE_MAGIC = (b"<?xml", b"\xef\xbb\xbf", b"PK\x03\x04")
PROGRESS_EVERY = 0.5  # seconds between progress writes of a running import
ANALYZE_AFTER = 1000  # objects created or changed by a catalogue file that make its tables' statistics stale

Answer = list[str]


def success(*lines: str) -> Answer:
    return ["success", *lines]


# --- checkauth / init -------------------------------------------------------------------------------


def checkauth(request: HttpRequest, exchange_type: str) -> tuple[Answer, ExchangeSession]:
    connection = authenticate(credentials=basic_credentials(request), ip=client_ip(request))
    session = open_session(connection=connection, mode=exchange_type, ip=client_ip(request))
    return (
        success(COOKIE_NAME, session.token, f"sessid={session.sessid}", f"timestamp={int(time.time())}"),
        session,
    )


def init(request: HttpRequest, session: ExchangeSession) -> Answer:
    """Start (or, on a repeated init in the same session, continue) the run; nothing uploaded is wiped."""
    ensure_run(session)
    version = request.GET.get("version", "")[:10]
    if version and version != session.version:
        ExchangeSession.objects.filter(pk=session.pk).update(version=version)
    lines = ["zip=yes", f"file_limit={session.connection.file_limit}"]
    if session.mode == "sale" and not version:
        # The old order protocol: 1C reads two lines and expects its files imported within mode=file.
        return lines
    return [*lines, f"sessid={session.sessid}", f"version={version or DEFAULT_VERSION}"]


# --- file -------------------------------------------------------------------------------------------


def _refuse(run: ExchangeRun, message: str, *, field: str = "", value: str = "") -> ProtocolError:
    log_event(run=run, level=EventLevel.ERROR, message=message, field=field, value=value)
    return ProtocolError(message, logged=True)


def upload(request: HttpRequest, session: ExchangeSession) -> Answer:
    """Append the raw body to the named file of the run (1C cuts big files into `file_limit` chunks)."""
    run = ensure_run(session)
    connection = session.connection
    raw_name = request.GET.get("filename", "")
    try:
        name = safe_relative_name(raw_name)
    except UnsafeName as exc:
        raise _refuse(
            run,
            _("The file name %(name)r is refused: %(reason)s.") % {"name": raw_name[:200], "reason": exc},
            field="filename",
            value=raw_name,
        ) from exc
    limit = connection.file_limit
    declared = request.META.get("CONTENT_LENGTH") or ""
    if declared.isdigit() and int(declared) > limit:
        raise _refuse(
            run,
            _("The request body (%(size)s bytes) is larger than file_limit=%(limit)d.")
            % {"size": declared, "limit": limit},
            field="filename",
            value=name,
        )
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _refuse(
            run,
            _("The request body is larger than file_limit=%(limit)d.") % {"limit": limit},
            field="filename",
            value=name,
        )
    folder = RunFolder(run.folder)
    record, _created = ExchangeFile.objects.get_or_create(run=run, name=name)
    start_over = record.consumed and body.startswith(NEW_FILE_MAGIC)
    already = 0 if start_over else record.size
    if already + len(body) > connection.max_upload_bytes:
        raise _refuse(
            run,
            _("The file %(name)s is larger than the allowed %(limit)d bytes.")
            % {"name": name, "limit": connection.max_upload_bytes},
            field="filename",
            value=name,
        )
    try:
        written = folder.append(name, io.BytesIO(body), max_bytes=limit, start_over=start_over)
    except UnsafeName as exc:
        raise _refuse(run, str(exc), field="filename", value=name) from exc
    # 1C sends the chunks of a file one after another, so the running CRC read with the row is the current one.
    first_chunk = start_over or record.size == 0
    crc = zlib.crc32(body) if first_chunk else (zlib.crc32(body, record.crc32) if record.crc32 is not None else None)
    ExchangeFile.objects.filter(pk=record.pk).update(
        size=written if start_over else F("size") + written,
        crc32=crc,
        chunks=1 if start_over else F("chunks") + 1,
        consumed=False if start_over else F("consumed"),
        from_zip="",
    )
    # New bytes arrived: imports already answered in this run are stale and will run again when asked.
    ExchangeFile.objects.filter(run=run, import_status__in=[ImportStatus.SUCCESS, ImportStatus.FAILED]).update(
        import_status="", import_message="", done=0, total=0
    )
    if session.mode == "sale" and not session.version and _is_whole(folder, name, last_chunk=len(body) < limit):
        return _import_within_upload(run, folder, name)
    return success()


# --- the old order protocol: import within mode=file --------------------------------------------------------

ROOT_CLOSE = ("КоммерческаяИнформация>".encode(), "КоммерческаяИнформация>".encode("windows-1251"))
ZIP_END = b"PK\x05\x06"  # the end-of-central-directory record closes every zip
TAIL = 1024


def _is_whole(folder: RunFolder, name: str, *, last_chunk: bool) -> bool:
    """Whether the bytes of `name` so far are the whole file: the old protocol has no import request, so an
    answer cut into `file_limit` chunks is imported when its last chunk has arrived — one shorter than
    file_limit, or one that closes the archive or the XML document (a file of an exact multiple of it)."""
    if extension_of(name) not in ("xml", "zip"):
        return False
    if last_chunk:
        return True
    tail = folder.ends_with(name, TAIL)
    if is_zip_name(name):
        return ZIP_END in tail
    return tail.rstrip(b" \t\r\n\x00").endswith(ROOT_CLOSE)


def _import_within_upload(run: ExchangeRun, folder: RunFolder, name: str) -> Answer:
    """1C without `version` at init (УТ 10.3, old modules) sends its orders file and never asks for
    `mode=import`: import it now (every XML of it, when it is a zip) and answer with the outcome."""
    if is_zip_name(name):
        try:
            _unpack_pending(run, folder)
        except (ArchiveRefused, UnsafeName) as exc:
            raise _refuse(run, _("%(name)s refused: %(reason)s") % {"name": name, "reason": exc}, value=name) from exc
        names = list(
            run.files.filter(from_zip=name, name__iendswith=".xml").order_by("id").values_list("name", flat=True)
        )
        if not names:
            raise _refuse(run, _("The archive %(name)s holds no XML file.") % {"name": name}, value=name)
    else:
        names = [name]
    notes = []
    for xml_name in names:
        record = ExchangeFile.objects.get(run=run, name=xml_name)
        ExchangeFile.objects.filter(pk=record.pk).update(
            import_status=ImportStatus.QUEUED, import_message="", done=0, total=0, updated_at=timezone.now()
        )
        process_import(file_id=record.pk)
        record.refresh_from_db()
        if record.import_status != ImportStatus.SUCCESS:
            raise ProtocolError(record.import_message, logged=True)
        notes.append(record.import_message)
    return success(*notes)


# --- import -----------------------------------------------------------------------------------------


def import_(request: HttpRequest, session: ExchangeSession, enqueue: Callable[[int], Any]) -> Answer:
    """Start the background import of `filename` on the first call; report progress on the next ones."""
    run = ensure_run(session)
    raw_name = request.GET.get("filename", "")
    try:
        name = safe_relative_name(raw_name)
    except UnsafeName as exc:
        raise _refuse(
            run,
            _("The file name %(name)r is refused: %(reason)s.") % {"name": raw_name[:200], "reason": exc},
            field="filename",
            value=raw_name,
        ) from exc
    if extension_of(name) != "xml":
        raise _refuse(run, _("Only XML files can be imported; got %(name)s.") % {"name": name}, value=name)
    record, _created = ExchangeFile.objects.get_or_create(run=run, name=name)
    if not record.import_status:
        started = ExchangeFile.objects.filter(pk=record.pk, import_status="").update(
            import_status=ImportStatus.QUEUED, import_message="", done=0, total=0, updated_at=timezone.now()
        )
        if started:
            enqueue(record.pk)
        record.refresh_from_db()
    elif record.import_status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        _fail_if_stuck(record)
    return _import_answer(record)


def _fail_if_stuck(record: ExchangeFile) -> None:
    """A job that has not reported for STUCK_IMPORT is dead (no worker, or the worker was killed)."""
    if record.updated_at >= timezone.now() - STUCK_IMPORT:
        return
    if record.import_status == ImportStatus.QUEUED:
        message = _("Nobody picked up the import of %(name)s: is the Sdelka background worker running?")
    else:
        message = _("The import of %(name)s stopped without finishing (the background worker was interrupted).")
    message = message % {"name": record.name}
    if ExchangeFile.objects.filter(
        pk=record.pk, import_status=record.import_status, updated_at=record.updated_at
    ).update(import_status=ImportStatus.FAILED, import_message=message, consumed=True):
        log_event(run=record.run, level=EventLevel.ERROR, message=message, object_repr=record.name)
    record.refresh_from_db()


def _import_answer(record: ExchangeFile) -> Answer:
    if record.import_status == ImportStatus.SUCCESS:
        return success(record.import_message)
    if record.import_status == ImportStatus.FAILED:
        return ["failure", record.import_message]
    if record.import_status == ImportStatus.QUEUED:
        return ["progress", _("The file %(name)s is queued for processing.") % {"name": record.name}]
    percent = min(99, record.done * 100 // record.total) if record.total else 0
    return [
        "progress",
        _("Processing %(name)s: %(percent)d%% (%(done)d of %(total)d).")
        % {"name": record.name, "percent": percent, "done": record.done, "total": record.total},
    ]


def _unpack_pending(run: ExchangeRun, folder: RunFolder) -> None:
    """Unpack the zips of the run that have not been unpacked yet (1C sends one archive with everything)."""
    connection = run.connection
    used = sum(f.size for f in run.files.exclude(from_zip=""))
    for archive in run.files.filter(consumed=False).order_by("id"):
        if not is_zip_name(archive.name):
            continue
        members = unpack_zip(
            folder,
            archive.name,
            max_total=connection.max_unpacked_bytes,
            max_ratio=connection.max_zip_ratio,
            already_used=used,
        )
        used += sum(size for _name, size, _crc in members)
        existing = {f.name: f for f in run.files.filter(name__in=[m for m, _s, _c in members])}
        create = []
        for member, size, crc in members:
            row = existing.get(member)
            if row is None:
                create.append(ExchangeFile(run=run, name=member, size=size, crc32=crc, from_zip=archive.name))
            else:
                row.size, row.crc32, row.from_zip, row.consumed = size, crc, archive.name, False
        ExchangeFile.objects.bulk_create(create)
        ExchangeFile.objects.bulk_update(list(existing.values()), ["size", "crc32", "from_zip", "consumed"])
        ExchangeFile.objects.filter(pk=archive.pk).update(consumed=True)
        log_event(
            run=run, message=_("Unpacked %(name)s: %(count)d files.") % {"name": archive.name, "count": len(members)}
        )


def read_records(source: Any) -> Iterator[Any]:
    """Records of one CommerceML file (the reader tells the kind by content); catalogue products and offers
    come raw, so that the apply engine skips unchanged ones before they are turned into records."""
    from .reader import read_package  # imported late: the reader pulls in lxml

    return read_package(source, raw=True)


class _Progress:
    """Progress of one file for 1C's polls: records done, and the total estimated from how far into the file
    the reader is. A file applied in one long transaction (PostgreSQL) reports through a connection of its
    own, so that the polls (and the stuck-job check) see it before the transaction commits."""

    def __init__(self, file_id: int, handle: IO[bytes], size: int, *, own_connection: bool) -> None:
        self.file_id = file_id
        self.handle = handle
        self.size = max(size, 1)
        self.last = time.monotonic()
        self._side: Any = None
        if own_connection:
            self._side = db.get_new_connection(db.get_connection_params())
            self._side.autocommit = True

    def __call__(self, counts: apply.Counts) -> None:
        if time.monotonic() - self.last < PROGRESS_EVERY:
            return
        self.last = time.monotonic()
        done = counts.done
        read = min(max(self.handle.tell(), 1), self.size)
        total = max(done * self.size // read, done)
        if self._side is None:
            ExchangeFile.objects.filter(pk=self.file_id).update(done=done, total=total, updated_at=timezone.now())
            return
        with self._side.cursor() as cursor:
            cursor.execute(
                f"UPDATE {db.ops.quote_name(ExchangeFile._meta.db_table)} "
                "SET done = %s, total = %s, updated_at = %s WHERE id = %s",
                [done, total, timezone.now(), self.file_id],
            )

    def close(self) -> None:
        if self._side is not None:
            self._side.close()


def _apply_catalogue(run: ExchangeRun, record: ExchangeFile, folder: RunFolder, path: str, reader: Any) -> Any:
    """Apply a catalogue file. On PostgreSQL the whole file is one transaction: a file that breaks half-way
    (truncated, hostile) rolls back whole, with no separate check pass. Elsewhere (SQLite holds one write lock
    for the whole database) the file is read through once by lxml first, then applied batch by batch."""
    single = db.vendor == "postgresql"
    if not single:
        total = precheck(path)
        ExchangeFile.objects.filter(pk=record.pk).update(total=total, updated_at=timezone.now())
    with open(path, "rb") as handle:
        progress = _Progress(record.pk, handle, os.path.getsize(path), own_connection=single and not db.in_atomic_block)
        try:
            with transaction.atomic() if single else contextlib.nullcontext():
                outcome = apply.apply_records(
                    connection=run.connection,
                    run=run,
                    records=reader(handle),
                    folder=folder,
                    progress=progress,
                    in_transaction=single,
                )
        finally:
            progress.close()
    if single:
        apply.add_to_run(run, outcome.counts, full_products=outcome.full_products)
    return outcome


def _apply_orders(run: ExchangeRun, record: ExchangeFile, folder: RunFolder, path: str, reader: Any) -> tuple[Any, int]:
    # Pass 1 reads the whole file (lxml alone), so a truncated or hostile file changes nothing; it also
    # estimates the number of records for the progress. Orders are then applied all or nothing.
    total = precheck(path)
    ExchangeFile.objects.filter(pk=record.pk).update(total=total, updated_at=timezone.now())
    last = [time.monotonic()]

    def progress(counts: apply.Counts) -> None:
        if time.monotonic() - last[0] >= PROGRESS_EVERY:
            last[0] = time.monotonic()
            ExchangeFile.objects.filter(pk=record.pk).update(done=counts.done, updated_at=timezone.now())

    outcome = apply_orders.apply_order_records(
        connection=run.connection, run=run, records=reader(path), folder=folder, progress=progress
    )
    return outcome, total


def process_import(*, file_id: int, reader: Callable[[Any], Iterable[Any]] | None = None) -> bool:
    """The background job of `mode=import`: unzip, then apply the file (see `_apply_catalogue`; orders are
    checked whole first, then applied all or nothing). True when the file changed so much of the catalogue
    that its tables' statistics should be refreshed (`apply.analyze_catalogue`): the caller does that after
    1C has been told the file is done."""
    reader = reader or read_records
    claimed = ExchangeFile.objects.filter(pk=file_id, import_status=ImportStatus.QUEUED).update(
        import_status=ImportStatus.RUNNING, updated_at=timezone.now()
    )
    if not claimed:
        return False
    record = ExchangeFile.objects.select_related("run__connection").get(pk=file_id)
    run = record.run
    folder = RunFolder(run.folder)
    try:
        _unpack_pending(run, folder)
        if not folder.exists(record.name):
            raise ProtocolError(
                _("The file %(name)s was not uploaded (neither alone nor in the archive).") % {"name": record.name}
            )
        with folder.local_copy(record.name) as path:
            if run.route == Route.SALE:
                outcome, total = _apply_orders(run, record, folder, path, reader)
            else:
                outcome = _apply_catalogue(run, record, folder, path, reader)
                total = outcome.counts.done
    except Exception as exc:
        reason = getattr(exc, "reason", None) or str(exc) or exc.__class__.__name__
        if isinstance(exc, (ArchiveRefused, UnsafeName, ProtocolError)) or hasattr(exc, "reason"):
            message = _("%(name)s refused: %(reason)s") % {"name": record.name, "reason": reason}
        else:
            logger.exception("Import of %s (run %s) failed", record.name, run.pk)
            message = _("%(name)s could not be imported: %(reason)s") % {"name": record.name, "reason": reason}
        line = getattr(exc, "line", None)
        if line:
            message += " " + _("(line %(line)d)") % {"line": line}
        log_event(run=run, level=EventLevel.ERROR, message=message, object_repr=record.name)
        ExchangeFile.objects.filter(pk=record.pk).update(
            import_status=ImportStatus.FAILED, import_message=printable(message, 2000), consumed=True
        )
        return False
    counts = outcome.counts
    summary = _(
        "%(name)s imported: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, "
        "%(skipped)d skipped, %(failed)d with errors."
    ) % {
        "name": record.name,
        "created": counts.created,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "skipped": counts.skipped,
        "failed": counts.failed,
    }
    log_event(run=run, message=summary, object_repr=record.name)
    ExchangeRun.objects.filter(pk=run.pk).update(done=F("done") + counts.done, total=F("total") + total)
    ExchangeFile.objects.filter(pk=record.pk).update(
        import_status=ImportStatus.SUCCESS, import_message=printable(summary, 2000), consumed=True, done=counts.done
    )
    return run.route == Route.CATALOG and counts.created + counts.updated >= ANALYZE_AFTER


# --- deactivate / complete --------------------------------------------------------------------------


def deactivate(request: HttpRequest, session: ExchangeSession) -> Answer:
    run = ensure_run(session)
    if not request.GET.get("timestamp", "").strip().isdigit():
        raise _refuse(run, _("mode=deactivate needs the timestamp from checkauth."), field="timestamp")
    run.refresh_from_db()
    if not session.connection.deactivate_missing_products:
        return success(_("Nothing deactivated: this connection does not deactivate products missing from 1C."))
    if not run.full_products:
        return success(_("Nothing deactivated: this exchange was not a full upload."))
    count = apply.deactivate_missing(connection=session.connection, run=run)
    if count:
        log_event(run=run, message=_("%(count)d products missing from the full upload deactivated.") % {"count": count})
    return success(_("Deactivated %(count)d products.") % {"count": count})


def complete(request: HttpRequest, session: ExchangeSession) -> Answer:
    run = session.run
    if run is not None and run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
        files = list(run.files.all())
        busy = [f.name for f in files if f.import_status in (ImportStatus.QUEUED, ImportStatus.RUNNING)]
        if busy:
            raise ProtocolError(_("The import of %(names)s is still running.") % {"names": ", ".join(busy)})
        failed = [f.name for f in files if f.import_status == ImportStatus.FAILED]
        with transaction.atomic():
            finish_run(
                run=run,
                status=RunStatus.FAILED if failed else RunStatus.SUCCESS,
                message=(_("Files refused: %(names)s") % {"names": ", ".join(failed)}) if failed else _("Complete."),
            )
    close_session(session)
    return success(_("Exchange complete."))


# --- type=sale: query / success / info --------------------------------------------------------------


def _xml_response(handle: IO[bytes], size: int, encoding: str) -> HttpResponseBase:
    charset = "utf-8" if normalise_encoding(encoding) == "utf-8" else "windows-1251"
    response = FileResponse(handle, content_type=f"application/xml; charset={charset}")
    response["Content-Length"] = str(size)
    return response


def query(request: HttpRequest, session: ExchangeSession) -> HttpResponseBase:
    """`mode=query`: the orders 1C has not confirmed yet, as one CommerceML file (kept in the run's folder)."""
    run = ensure_run(session)
    connection = session.connection
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - handed to FileResponse, which closes it
    try:
        count, started = export_orders(
            connection=connection, session=session, out=handle, version=session.version or QUERY_VERSION
        )
        size = handle.tell()
        name = f"query/orders-{timezone.localtime(started):%Y%m%d-%H%M%S-%f}.xml"
        handle.seek(0)
        RunFolder(run.folder).save(name, File(handle, name=name.rsplit("/", 1)[-1]))
        ExchangeFile.objects.create(run=run, name=name, size=size, chunks=1, consumed=True)
    except Exception:
        handle.close()
        raise
    log_event(
        run=run,
        message=_("%(count)d orders offered to 1C (%(size)d bytes, %(encoding)s); waiting for mode=success.")
        % {"count": count, "size": size, "encoding": connection.sale_encoding},
        object_repr=name,
    )
    ExchangeRun.objects.filter(pk=run.pk).update(total=F("total") + count, direction=Direction.BOTH)
    handle.seek(0)
    return _xml_response(handle, size, connection.sale_encoding)


def sale_success(request: HttpRequest, session: ExchangeSession) -> Answer:
    """`mode=success`: 1C stored the orders of this session's query; they are not offered again unless changed."""
    run = ensure_run(session)
    confirmed = confirm_sent(connection=session.connection, session=session)
    if confirmed:
        ExchangeRun.objects.filter(pk=run.pk).update(done=F("done") + confirmed)
    log_event(run=run, message=_("1C confirmed %(count)d orders.") % {"count": confirmed})
    return success()


def info(request: HttpRequest, session: ExchangeSession) -> HttpResponseBase:
    """`mode=info` (1C-Bitrix module): invoice statuses and payment methods for 1C's status mapping."""
    encoding = session.connection.sale_encoding
    body = info_xml(
        statuses=[(str(value), str(label)) for value, label in InvoiceStatus.choices],
        payment_systems=[("bank", _("Bank transfer"))],
        encoding=encoding,
    )
    handle = io.BytesIO(body)
    return _xml_response(handle, len(body), encoding)
