"""Schedules of sync tasks: a five-field cron expression per task (minute hour day month weekday, in the
project's time zone), parsed by `cronsim`, and the minute tick that starts the tasks that are due.

`SyncTask.next_run_at` holds the next start; the tick claims a due task by moving `next_run_at` on with a
conditional update (so two consumers never start it twice) and queues its run. The run itself holds a Huey lock
per task and the hub's one-active-run-per-connection constraint, so a task never runs twice at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cronsim import CronSim, CronSimError
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

DEFAULT_SCHEDULE = "0 * * * *"  # hourly, on the hour
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")


def _field_names() -> dict[str, str]:
    return {
        "minute": _("the minute (0–59)"),
        "hour": _("the hour (0–23)"),
        "day-of-month": _("the day of the month (1–31)"),
        "month": _("the month (1–12 or JAN–DEC)"),
        "day-of-week": _("the day of the week (0–7 or SUN–SAT)"),
    }


def parse_error(expression: str) -> str:
    """Why `expression` is not a usable five-field cron expression; "" when it is."""
    parts = expression.split()
    if len(parts) != len(_FIELDS):
        return _(
            "A schedule has five fields separated by spaces: minute hour day month weekday "
            "(e.g. “0 * * * *”: hourly); this one has %(count)d."
        ) % {"count": len(parts)}
    try:
        iterator = CronSim(expression, timezone.localtime())
    except CronSimError as exc:
        name = str(exc).removeprefix("Bad ").strip()
        if name == "day-of-month" and _valid(" ".join([*parts[:3], "*", parts[4]])):
            return _never_comes()  # each field is fine, the day never falls in the months given
        if name in _FIELDS:
            return _("The schedule has a wrong value for %(field)s.") % {"field": _field_names()[name]}
        return _("The schedule cannot be read: %(error)s.") % {"error": exc}
    try:
        next(iterator)
    except (StopIteration, CronSimError):
        return _never_comes()
    return ""


def _never_comes() -> str:
    return _("The schedule never comes (a day that does not exist, such as 30 February).")


def _valid(expression: str) -> bool:
    try:
        CronSim(expression, timezone.localtime())
    except CronSimError:
        return False
    return True


def validate_cron(value: str) -> None:
    if value and (message := parse_error(value)):
        raise ValidationError(message, code="cron")


def next_fire(expression: str, after: datetime | None = None) -> datetime | None:
    """The first start strictly after `after` (default now), or None for an empty or unusable schedule."""
    if not expression or parse_error(expression):
        return None
    start = timezone.localtime(after or timezone.now()).replace(second=0, microsecond=0)
    try:
        return next(CronSim(expression, start))
    except (StopIteration, CronSimError):
        return None


def start_due_tasks(enqueue: Callable[[int, bool], object], now: datetime | None = None) -> list[int]:
    """Queue a run of every active task whose time has come (`enqueue(task_id, full)`); the ids queued.

    Each due task is claimed by moving its `next_run_at` on with an update conditional on the old value, so a
    second scheduler ticking at the same minute finds nothing to claim."""
    from .models import SyncTask

    now = now or timezone.now()
    scheduled = SyncTask.objects.filter(is_active=True, connection__is_active=True).exclude(schedule="")
    for task in scheduled.filter(next_run_at__isnull=True):  # set up before schedules existed
        SyncTask.objects.filter(pk=task.pk, next_run_at__isnull=True).update(next_run_at=next_fire(task.schedule, now))
    started = []
    for task in scheduled.filter(next_run_at__lte=now).order_by("next_run_at", "pk"):
        claimed = SyncTask.objects.filter(pk=task.pk, next_run_at=task.next_run_at).update(
            next_run_at=next_fire(task.schedule, now)
        )
        if claimed:
            enqueue(task.pk, task.full_resync)
            started.append(task.pk)
    return started
