"""Huey jobs of the sales domain. The consumer (`sdelka run_huey`) imports this module on start."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from . import reminders

PAYMENT_REMINDER_SCHEDULE = crontab(hour="8", minute="0")


@db_periodic_task(PAYMENT_REMINDER_SCHEDULE)
def send_payment_reminders() -> int:
    """Every morning: tasks for managers (and optionally e-mails to clients) about invoices coming due or overdue."""
    return reminders.send_payment_reminders().tasks
