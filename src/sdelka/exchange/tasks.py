"""Background jobs of the exchange hub (Huey)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task
from huey.exceptions import TaskLockedException

from .apply import analyze_catalogue
from .commerceml.protocol import process_import
from .models import (
    ACTIVE_RUN_STATUSES,
    Connection,
    ConnectionKind,
    EventLevel,
    ExchangeRun,
    Route,
    RunStatus,
    Trigger,
)
from .odata.client import ODataError
from .odata.models import SyncTask
from .odata.schedule import start_due_tasks
from .services import finish_run, log_event, remove_old_files


@db_task(name="exchange.import_file")
def import_file(file_id: int) -> None:
    if process_import(file_id=file_id):
        refresh_catalogue_statistics()


@db_task(name="exchange.refresh_catalogue_statistics")
def refresh_catalogue_statistics() -> None:
    """After a big catalogue file, apart from its import: 1C hears "success" and sends the next file (taken by
    the other worker) while the statistics are refreshed."""
    analyze_catalogue()


def enqueue_import(file_id: int) -> None:
    import_file(file_id)


@db_periodic_task(crontab(minute="17", hour="3"), name="exchange.remove_old_files")
def remove_old_exchange_files() -> None:
    remove_old_files()


@db_task(name="exchange.run_sync_task")
def run_sync_task(task_id: int, trigger: str = Trigger.MANUAL, full: bool = False, run_id: int | None = None) -> None:
    """Run one OData sync task in the background; what stops it before a run exists goes to the journal. A lock
    per task keeps a second start of the same task from running alongside (SQLite and Redis Huey alike).
    `run_id`: the run made when the task was queued (`queue_sync_run`); closed as failed if the task cannot start."""
    from .odata.services import client_for
    from .odata.sync import SyncBusy, run_task

    queued = ExchangeRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).first() if run_id else None
    task = SyncTask.objects.select_related("connection").filter(pk=task_id, is_active=True).first()
    if task is None:
        if queued is not None:
            finish_run(run=queued, status=RunStatus.FAILED, message=_("The task is switched off or deleted."))
        return
    message = ""
    try:
        with HUEY.lock_task(f"exchange.run_sync_task.{task_id}"):
            run_task(connection=task.connection, task=task, client=client_for(task.connection), trigger=trigger,
                     full=full, queued=queued)  # fmt: skip
    except (SyncBusy, TaskLockedException) as exc:
        message = str(exc) or _("The task %(name)s is already running.") % {"name": task.name}
        log_event(connection=task.connection, level=EventLevel.WARNING, message=message, object_repr=task.name)
    except ODataError as exc:
        message = str(exc)
        log_event(connection=task.connection, level=EventLevel.ERROR, message=message, object_repr=task.name)
    if queued is not None and message and ExchangeRun.objects.filter(pk=queued.pk, status=RunStatus.QUEUED).exists():
        finish_run(run=queued, status=RunStatus.FAILED, message=message)  # never started: not left in the way


def enqueue_sync(*, task: SyncTask, trigger: str = Trigger.MANUAL, user: Any = None, full: bool = False) -> None:
    """Queue a run of `task`; refused while a run of its connection is going (one run per connection), and
    refused to a `user` the task does not let run it."""
    if user is not None and not task.may_run(user):
        raise PermissionDenied(
            _("%(user)s may not run the task %(task)s: it is open to administrators and the teams it names.")
            % {"user": user, "task": task.name}
        )
    if not task.is_active:
        raise ValidationError(_("The task “%(name)s” is switched off.") % {"name": task.name})
    active = ExchangeRun.objects.filter(
        connection_id=task.connection_id, route=Route.ODATA, status__in=ACTIVE_RUN_STATUSES
    ).first()
    if active is not None:
        raise ValidationError(active.busy_message())
    run_sync_task(task.pk, trigger, full)


def queue_sync_run(*, task: SyncTask, user: Any, full: bool = False) -> ExchangeRun:
    """Queue a run of `task` for `user` (the API), with its run made now — queued, holding the connection's one
    active run — so the caller learns its id at once; the same checks as `enqueue_sync`."""
    if not task.may_run(user):
        raise PermissionDenied(
            _("%(user)s may not run the task %(task)s: it is open to administrators and the teams it names.")
            % {"user": user, "task": task.name}
        )
    if not task.is_active:
        raise ValidationError(_("The task “%(name)s” is switched off.") % {"name": task.name})
    try:
        with transaction.atomic():
            run = ExchangeRun.objects.create(connection_id=task.connection_id, route=Route.ODATA,
                                             trigger=Trigger.MANUAL, status=RunStatus.QUEUED)  # fmt: skip
    except IntegrityError:
        active = ExchangeRun.objects.filter(
            connection_id=task.connection_id, route=Route.ODATA, status__in=ACTIVE_RUN_STATUSES
        ).first()
        raise ValidationError(
            active.busy_message() if active else _("Another run of this connection has just started.")
        ) from None
    SyncTask.objects.filter(pk=task.pk).update(last_run=run)
    run_sync_task(task.pk, Trigger.MANUAL, full, run.pk)
    return run


@db_periodic_task(crontab(), name="exchange.odata_schedule")
def start_scheduled_syncs() -> None:
    """Every minute: queue the sync tasks whose schedule has come."""
    start_due_tasks(lambda task_id, full: run_sync_task(task_id, Trigger.SCHEDULE, full))


@db_task(name="exchange.check_odata_connection")
def check_odata_connection(connection_id: int) -> None:
    """Reachability, credentials, configuration and a fresh $metadata; the report goes to the connection's journal."""
    from .odata.services import check_connection

    connection = Connection.objects.filter(pk=connection_id, kind=ConnectionKind.ODATA).first()
    if connection is not None:
        check_connection(connection=connection, refresh=True)
