"""Exchange with 1C, for administrators and integrators: connections, runs with a live progress bar, the
journal of a run with filters, the raw files of a run, and "run now" where the route allows it."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django.views.decorators.http import require_POST

from sdelka.exchange import selectors as exchange_selectors
from sdelka.exchange.clientbank.importer import ImportResult, import_statement
from sdelka.exchange.models import (
    ACTIVE_RUN_STATUSES,
    Conflict,
    ConflictStatus,
    Connection,
    ConnectionKind,
    EventLevel,
    ExchangeFile,
    ExchangeRun,
    Route,
    RunStatus,
    Trigger,
)
from sdelka.exchange.odata.metadata import BY_CODE, cached_metadata
from sdelka.exchange.odata.models import SyncTask
from sdelka.exchange.storage import UnsafeName, run_folder
from sdelka.exchange.tasks import check_odata_connection, enqueue_sync

from ..selectors import page_of
from .common import acting_user, int_param, page_param, query_without

MAX_STATEMENT_BYTES = 64 * 1024 * 1024
POLL_SECONDS = 2
LIVE_BATCH = 100  # journal lines one progress poll appends at most
LIVE_ROWS_LIMIT = 1000  # lines a live page grows to; past that it links to the next page instead


def exchange_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Logged in, and an administrator or an integrator: the exchange is nobody else's business (403)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not acting_user(request).manages_exchange:
            raise PermissionDenied(_("Only administrators and integrators see the exchange with 1C."))
        return view(request, *args, **kwargs)

    return wrapper


# --- connections ----------------------------------------------------------------------------------------


@exchange_view
def connection_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "web/exchange/connections.html",
        {
            "connections": exchange_selectors.connection_overview(),
            "open_conflicts": Conflict.objects.filter(status=ConflictStatus.OPEN).count(),
        },
    )


@exchange_view
def connection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    connection = get_object_or_404(Connection.objects.select_related("counterparty_owner"), pk=pk)
    runs = list(exchange_selectors.run_list(connection_id=connection.pk)[:10])
    metadata = cached_metadata(connection=connection) if connection.kind == ConnectionKind.ODATA else None
    tasks: list[SyncTask] = []
    if connection.kind == ConnectionKind.ODATA:
        tasks = list(SyncTask.objects.filter(connection=connection).select_related("last_run").order_by("name"))
    return render(
        request,
        "web/exchange/connection.html",
        {
            "connection": connection,
            "runs": runs,
            "tasks": tasks,
            "active": any(run.status in ACTIVE_RUN_STATUSES for run in runs),
            "events": exchange_selectors.connection_events(connection=connection),
            "metadata": metadata,
            "configuration": configuration_title(metadata.configuration) if metadata else "",
            "settings": connection_settings(connection),
            "can_upload": connection.kind == ConnectionKind.BANK and acting_user(request).sees_everything,
        },
    )


def configuration_title(code: str) -> str:
    """The 1C configuration recognised from the base's $metadata, by its name."""
    configuration = BY_CODE.get(code)
    return configuration.title if configuration else _("configuration not recognised")


def connection_settings(connection: Connection) -> list[tuple[str, Any]]:
    """What the connection is set to, as label/value rows; secrets are never shown."""
    rows: list[tuple[str, Any]] = [
        (_("Kind"), connection.get_kind_display()),
        (pgettext("switched on", "Active"), connection.is_active),
    ]
    if connection.kind == ConnectionKind.SITE:
        rows += [
            (_("Exchange login"), connection.login or "—"),
            (_("Password"), _("set") if connection.password else _("not set")),
            (_("Base prefix"), connection.prefix or "—"),
            (_("Match counterparties by ИНН and КПП"), connection.match_counterparties_by_inn_kpp),
            (_("Match products by article"), connection.match_products_by_article),
            (_("Deactivate products missing from a full upload"), connection.deactivate_missing_products),
            (_("Order file encoding"), connection.sale_encoding),
            (_("File size limit per request, bytes"), connection.file_limit),
        ]
    elif connection.kind == ConnectionKind.ODATA:
        options = connection.options or {}
        rows += [
            (_("1C address"), connection.url),
            (_("User in 1C"), connection.remote_user),
            (_("Password in 1C"), _("set") if connection.remote_secret else _("not set")),
            (_("Request timeout, s"), options.get("timeout", "—")),
            (_("$metadata timeout, s"), options.get("metadata_timeout", "—")),
            (_("Retries"), options.get("retries", "—")),
        ]
    if connection.kind != ConnectionKind.BANK:
        owner = connection.counterparty_owner
        rows.append(
            (
                _("New counterparties go to"),
                owner.get_full_name() or owner.username if owner else _("the exchange's own user"),
            )
        )
    rows.append((_("Raw files kept, days"), connection.keep_files_days))
    return rows


# --- runs -----------------------------------------------------------------------------------------------


@exchange_view
def run_list(request: HttpRequest) -> HttpResponse:
    def choice(name: str, values: list[str]) -> str:
        value = request.GET.get(name, "")
        return value if value in values else ""

    filters: dict[str, Any] = {
        "connection_id": int_param(request.GET.get("connection")),
        "route": choice("route", Route.values),
        "status": choice("status", RunStatus.values),
        "trigger": choice("trigger", Trigger.values),
        "has_errors": request.GET.get("errors") == "1",
    }
    page = page_of(exchange_selectors.run_list(**filters), page_param(request))
    return render(
        request,
        "web/exchange/runs.html",
        {
            "page": page,
            "filters": filters,
            "connections": Connection.objects.order_by("name"),
            "routes": Route.choices,
            "statuses": RunStatus.choices,
            "triggers": Trigger.choices,
            "query": query_without(request, "page"),
            "active": any(run.status in ACTIVE_RUN_STATUSES for run in page.items),
        },
    )


def _run(pk: int) -> ExchangeRun:
    return get_object_or_404(ExchangeRun.objects.select_related("connection"), pk=pk)


def _run_state(run: ExchangeRun) -> dict[str, Any]:
    end = run.finished_at or timezone.now()
    return {
        "run": run,
        "running": run.status in ACTIVE_RUN_STATUSES,
        "duration": timedelta(seconds=int((end - run.started_at).total_seconds())),  # whole seconds: 0:02:14
        "poll_seconds": POLL_SECONDS,
    }


def _event_filter(request: HttpRequest) -> exchange_selectors.EventFilter:
    return exchange_selectors.EventFilter(
        level=request.GET.get("level", ""),
        external_id=request.GET.get("external_id", "").strip(),
        text=request.GET.get("q", "").strip(),
        obj=request.GET.get("object", "").strip(),
    )


def _filter_params(filters: exchange_selectors.EventFilter) -> dict[str, str]:
    params = {"level": filters.level, "external_id": filters.external_id, "object": filters.obj, "q": filters.text}
    return {name: value for name, value in params.items() if value}


def _tail_query(filters: exchange_selectors.EventFilter, after: int, shown: int) -> str:
    """What the progress poll asks for: the journal lines after `after` matching the page's filters."""
    return urlencode({**_filter_params(filters), "after": after, "shown": shown})


def _finished_parts(run: ExchangeRun) -> dict[str, Any]:
    """What a run leaves when it ends: its files and its count of warnings and errors."""
    counts = exchange_selectors.problem_counts(run=run)
    return {
        "level_counts": [(value, label, counts[value]) for value, label in EventLevel.choices if value in counts],
        "files": list(ExchangeFile.objects.filter(run=run).order_by("id")),
    }


@exchange_view
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A run: progress, counts, files, journal. While the run goes the page opens on the journal's newest lines
    and the progress poll appends the lines written since (see `run_progress`)."""
    run = _run(pk)
    state = _run_state(run)
    filters = _event_filter(request)
    after, before = int_param(request.GET.get("after")), int_param(request.GET.get("before"))
    tail = state["running"] and after is None and before is None
    newest = exchange_selectors.last_event_id(run=run) if state["running"] else 0  # read before the page
    events = exchange_selectors.event_page(run=run, filters=filters, after=after, before=before, latest=tail)
    live = state["running"] and not events.has_next
    context = {
        **state,
        **_finished_parts(run),
        "events": events,
        "filters": filters,
        "levels": EventLevel.choices,
        "query": query_without(request, "after", "before"),
        "live": live,
        # The task whose last run this is gets its "Run now" here; an OData run records no task of its own.
        "task": SyncTask.objects.filter(last_run=run).first() if run.route == Route.ODATA else None,
        "tail_query": _tail_query(filters, max(newest, events.last_id or 0), len(events.items)) if live else "",
    }
    if request.htmx and request.GET.get("part") == "journal":  # type: ignore[attr-defined]
        return render(request, "web/exchange/_journal.html", context)
    return render(request, "web/exchange/run.html", context)


@exchange_view
def run_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress block of a run, polled while the run goes. With `after` (the newest journal line the page
    shows) it also appends the lines written since, at most LIVE_BATCH a poll and LIVE_ROWS_LIMIT a page; when
    the run has ended, its files and warning counts replace the page's and the polling stops."""
    run = _run(pk)
    context = _run_state(run)
    after = int_param(request.GET.get("after"))
    if after is not None:
        shown = int_param(request.GET.get("shown")) or 0
        context.update(_live_lines(run, _event_filter(request), after, shown, context["running"]))
    if not context["running"]:
        context.update(_finished_parts(run), finished=True)
    return render(request, "web/exchange/_progress_poll.html", context)


def _live_lines(
    run: ExchangeRun, filters: exchange_selectors.EventFilter, after: int, shown: int, running: bool
) -> dict[str, Any]:
    """The journal lines to append. The page stops growing at LIVE_ROWS_LIMIT lines (and a run that ends
    leaves at most one batch to append): what is left is behind a link to the page after the last line shown."""
    room = min(LIVE_BATCH, LIVE_ROWS_LIMIT - shown)
    found = (
        exchange_selectors.events_after(run=run, filters=filters, after=after, limit=room)
        if room > 0
        else exchange_selectors.NewEvents(items=[], cursor=after, more=True)
    )
    stop = found.more and (not running or shown + len(found.items) >= LIVE_ROWS_LIMIT)
    return {
        "new_events": found.items,
        "more_query": urlencode({**_filter_params(filters), "after": found.cursor}) if stop else "",
        "tail_query": "" if stop or not running else _tail_query(filters, found.cursor, shown + len(found.items)),
    }


@exchange_view
def run_file(request: HttpRequest, pk: int, file_pk: int) -> FileResponse:
    """A raw file of the run, as 1C sent it: only a file recorded for this run, read from the run's own folder."""
    run = _run(pk)
    record = get_object_or_404(ExchangeFile, run=run, pk=file_pk)
    if run.files_removed or not run.folder:
        raise Http404(
            _("The files of this run were removed after %(days)s days.") % {"days": run.connection.keep_files_days}
        )
    folder = run_folder(run.folder, run.route)
    try:
        if not folder.exists(record.name):
            raise Http404(_("The file is no longer stored."))
        stream = folder.open(record.name)
    except UnsafeName as exc:
        raise Http404(_("The file is no longer stored.")) from exc
    return FileResponse(stream, as_attachment=True, filename=posixpath.basename(record.name))


# --- run now --------------------------------------------------------------------------------------------


@login_required
def my_sync_tasks(request: HttpRequest) -> HttpResponse:
    """The sync tasks the user may start: a team member named in a task's `run_teams` runs it from here without
    seeing the rest of the exchange; the last run's progress refreshes itself while it goes."""
    tasks = list(exchange_selectors.runnable_tasks(user=acting_user(request)))
    active = any(task.last_run and task.last_run.status in ACTIVE_RUN_STATUSES for task in tasks)
    return render(request, "web/exchange/my_tasks.html", {"tasks": tasks, "active": active})


@login_required
@require_POST
def task_run(request: HttpRequest, pk: int) -> HttpResponse:
    """Run now: whoever the task lets run it (`SyncTask.may_run`); anybody else gets 403."""
    user = acting_user(request)
    task = get_object_or_404(SyncTask.objects.select_related("connection"), pk=pk)
    if not task.may_run(user):
        raise PermissionDenied(_("You may not run this task."))
    try:
        enqueue_sync(task=task, user=user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request, _("Task “%(name)s” queued; its run appears below when it starts.") % {"name": task.name}
        )
    if user.manages_exchange:
        return redirect("web:exchange-connection", pk=task.connection_id)
    return redirect("web:exchange-my-tasks")


@exchange_view
@require_POST
def connection_check(request: HttpRequest, pk: int) -> HttpResponse:
    """Check an OData connection in the background (reading a 17 MB $metadata takes a while)."""
    connection = get_object_or_404(Connection, pk=pk, kind=ConnectionKind.ODATA)
    check_odata_connection(connection.pk)
    messages.success(request, _("The check is queued; its report appears in the connection journal below."))
    return redirect("web:exchange-connection", pk=connection.pk)


@exchange_view
@require_POST
def statement_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """Import a bank statement file (1CClientBankExchange) into the bank connection; the run shows what came."""
    connection = get_object_or_404(Connection, pk=pk, kind=ConnectionKind.BANK)
    result = _import_upload(request, connection)
    if result is None:
        return redirect("web:exchange-connection", pk=connection.pk)
    return redirect("web:exchange-run", pk=result.run.pk)


@login_required
@require_POST
def statement_import(request: HttpRequest) -> HttpResponse:
    """The same import from the payments list, for the accountants and directors the exchange screens are closed
    to: they land on the payment queue when some payments wait for a person, on the payments otherwise."""
    result = _import_upload(request, None)
    if result is not None and result.ok and result.queued:
        return redirect("exchange:payment-queue")
    return redirect("web:payment-list")


def _import_upload(request: HttpRequest, connection: Connection | None) -> ImportResult | None:
    """Import the uploaded statement and say how it went; None when there was nothing to import."""
    user = acting_user(request)
    if not user.sees_everything:
        raise PermissionDenied(_("Only an accountant, a director or an administrator imports bank statements."))
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, _("Choose the statement file (kl_to_1c.txt) to upload."))
        return None
    if upload.size is not None and upload.size > MAX_STATEMENT_BYTES:
        messages.error(request, _("The file is too large for a bank statement."))
        return None
    try:
        result = import_statement(data=upload.read(), user=user, filename=upload.name or "", connection=connection)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return None
    if result.ok:
        messages.success(request, result.summary())
    else:
        messages.error(request, result.error)
    return result
