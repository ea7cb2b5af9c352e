"""Huey jobs of the activities domain. The consumer (`sdelka run_huey`) imports this module on start."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from . import services

REMINDER_SCHEDULE = crontab(minute="*")


@db_periodic_task(REMINDER_SCHEDULE)
def send_due_reminders() -> int:
    """Every minute: notify assignees of open tasks whose reminder time has come."""
    return services.send_due_reminders()
