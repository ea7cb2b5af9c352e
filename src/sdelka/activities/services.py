"""Every write of the activities domain: tasks, notes and due-task reminders."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from sdelka.accounts.models import User
from sdelka.accounts.visibility import scope_user_ids
from sdelka.parties.models import Counterparty
from sdelka.sales.models import Deal, Invoice

from .models import Note, Notification, Task

logger = logging.getLogger(__name__)

TASK_EDITABLE_FIELDS = frozenset(
    {"title", "description", "due_at", "remind_at", "assignee", "counterparty", "deal", "invoice"}
)


def _require_aware(field: str, value: datetime | None) -> None:
    if value is not None and timezone.is_naive(value):
        raise ValidationError({field: _("Give the time with its time zone.")})


def _require_visible(user: User, field: str, obj: Counterparty | Deal | Invoice | None) -> None:
    if obj is not None and not type(obj).objects.visible_to(user).filter(pk=obj.pk).exists():
        raise ValidationError({field: _("Object does not exist or is outside your scope.")})


def assignable_users(user: User) -> Any:
    """Whom `user` may give a task to: a manager himself, a head his team subtree, the rest anyone."""
    active = User.objects.filter(is_active=True)
    if user.sees_everything:
        return active
    return active.filter(pk__in=scope_user_ids(user))


def validate_task(
    *,
    user: User,
    title: str,
    assignee: User,
    due_at: datetime | None,
    remind_at: datetime | None,
    counterparty: Counterparty | None,
    deal: Deal | None,
    invoice: Invoice | None,
) -> Counterparty | None:
    """Check a task's fields as `user` would set them; return its counterparty (taken from the deal or
    invoice when not given). Raises ValidationError naming the field."""
    if not title.strip():
        raise ValidationError({"title": _("A task needs a title.")})
    _require_aware("due_at", due_at)
    _require_aware("remind_at", remind_at)
    if not assignable_users(user).filter(pk=assignee.pk).exists():
        raise ValidationError({"assignee": _("You cannot assign tasks to this user.")})
    _require_visible(user, "counterparty", counterparty)
    _require_visible(user, "deal", deal)
    _require_visible(user, "invoice", invoice)
    for field, linked in (("deal", deal), ("invoice", invoice)):
        if linked is None:
            continue
        if counterparty is None:
            counterparty = linked.counterparty
        elif linked.counterparty_id != counterparty.pk:
            raise ValidationError({field: _("It belongs to another counterparty.")})
    return counterparty


@transaction.atomic
def create_task(
    *,
    user: User,
    title: str,
    assignee: User,
    due_at: datetime | None = None,
    remind_at: datetime | None = None,
    description: str = "",
    counterparty: Counterparty | None = None,
    deal: Deal | None = None,
    invoice: Invoice | None = None,
) -> Task:
    counterparty = validate_task(
        user=user,
        title=title,
        assignee=assignee,
        due_at=due_at,
        remind_at=remind_at,
        counterparty=counterparty,
        deal=deal,
        invoice=invoice,
    )
    return Task.objects.create(
        title=title.strip(),
        description=description,
        due_at=due_at,
        remind_at=remind_at,
        assignee=assignee,
        author=user,
        counterparty=counterparty,
        deal=deal,
        invoice=invoice,
    )


@transaction.atomic
def update_task(*, user: User, task: Task, changes: dict[str, Any]) -> Task:
    """Change the given fields of a task the user can see. A new reminder time re-arms the reminder."""
    unknown = set(changes) - TASK_EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    task = Task.objects.visible_to(user).select_for_update(of=("self",)).get(pk=task.pk)
    values = {field: changes.get(field, getattr(task, field)) for field in TASK_EDITABLE_FIELDS}
    if "counterparty" not in changes and ("deal" in changes or "invoice" in changes):
        values["counterparty"] = None  # taken again from the new deal or invoice
    values["counterparty"] = validate_task(
        user=user,
        title=values["title"],
        assignee=values["assignee"],
        due_at=values["due_at"],
        remind_at=values["remind_at"],
        counterparty=values["counterparty"],
        deal=values["deal"],
        invoice=values["invoice"],
    )
    values["title"] = values["title"].strip()
    rearm = values["remind_at"] != task.remind_at
    for field, value in values.items():
        setattr(task, field, value)
    update_fields = [*sorted(TASK_EDITABLE_FIELDS), "updated_at"]
    if rearm:
        task.reminded_at = None
        update_fields.append("reminded_at")
        # One reminder notification per task: the old one gives way to the new reminder.
        Notification.objects.filter(task=task).delete()
    task.save(update_fields=update_fields)
    return task


@transaction.atomic
def complete_task(*, user: User, task: Task, now: datetime | None = None) -> Task:
    task = Task.objects.visible_to(user).select_for_update(of=("self",)).get(pk=task.pk)
    if task.is_done:
        return task
    task.is_done = True
    task.done_at = now or timezone.now()
    _require_aware("done_at", task.done_at)
    task.completed_by = user
    task.save(update_fields=["is_done", "done_at", "completed_by", "updated_at"])
    return task


@transaction.atomic
def reopen_task(*, user: User, task: Task) -> Task:
    task = Task.objects.visible_to(user).select_for_update(of=("self",)).get(pk=task.pk)
    if not task.is_done:
        return task
    task.is_done = False
    task.done_at = None
    task.completed_by = None
    task.save(update_fields=["is_done", "done_at", "completed_by", "updated_at"])
    return task


@transaction.atomic
def add_note(*, user: User, counterparty: Counterparty, text: str, deal: Deal | None = None) -> Note:
    if not text.strip():
        raise ValidationError({"text": _("A note needs text.")})
    _require_visible(user, "counterparty", counterparty)
    _require_visible(user, "deal", deal)
    if deal is not None and deal.counterparty_id != counterparty.pk:
        raise ValidationError({"deal": _("It belongs to another counterparty.")})
    return Note.objects.create(counterparty=counterparty, deal=deal, author=user, text=text.strip())


@transaction.atomic
def update_note(*, user: User, note: Note, text: str) -> Note:
    note = Note.objects.visible_to(user).select_for_update(of=("self",)).get(pk=note.pk)
    if not text.strip():
        raise ValidationError({"text": _("A note needs text.")})
    note.text = text.strip()
    note.save(update_fields=["text", "updated_at"])
    return note


def _reminder_text(task: Task) -> str:
    if task.due_at is None:
        return _("Reminder: %(title)s") % {"title": task.title}
    due = date_format(timezone.localtime(task.due_at), "DATETIME_FORMAT")
    return _("Reminder: %(title)s (due %(due)s)") % {"title": task.title, "due": due}


def send_due_reminders(*, now: datetime | None = None, send_email: bool = True) -> int:
    """Notify assignees of the open tasks whose reminder time has come; return how many were reminded.

    Safe with several consumers running it at once: on PostgreSQL the due tasks are claimed with
    FOR UPDATE SKIP LOCKED, on SQLite the IMMEDIATE transaction serialises the runs; in both the
    conditional UPDATE of `reminded_at` and the one-notification-per-task constraint make a second run
    a no-op. E-mail goes out after the commit, only for the tasks this run claimed.
    """
    now = now or timezone.now()
    _require_aware("now", now)
    with transaction.atomic():
        due = list(
            Task.objects.filter(is_done=False, reminded_at__isnull=True, remind_at__lte=now)
            .select_related("assignee")
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("remind_at", "pk")
        )
        if not due:
            return 0
        Notification.objects.bulk_create(
            [Notification(user=t.assignee, task=t, text=_reminder_text(t), url=t.get_absolute_url()) for t in due],
            ignore_conflicts=True,
        )
        Task.objects.filter(pk__in=[t.pk for t in due], reminded_at__isnull=True).update(reminded_at=now)
    if send_email:
        _email_reminders(due)
    logger.info("Sent %d task reminder(s)", len(due))
    return len(due)


def _email_reminders(tasks: list[Task]) -> None:
    messages = [
        EmailMessage(
            subject=_reminder_text(task),
            body="\n\n".join(filter(None, [_reminder_text(task), task.description])),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[task.assignee.email],
        )
        for task in tasks
        if task.assignee.email
    ]
    if not messages:
        return
    try:
        get_connection().send_messages(messages)
    except Exception:
        # The notification in the interface is the reminder; e-mail is a courtesy that must not undo it.
        logger.exception("Could not e-mail %d task reminder(s)", len(messages))
