"""Every read of the activities domain, always through `visible_to(user)`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time

from django.db.models import QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from sdelka.accounts.models import User
from sdelka.parties.models import Counterparty
from sdelka.sales.models import Deal, Invoice, Payment, PaymentAllocation

from .models import Note, Notification, Task

TIMELINE_LIMIT = 200


def task_list(
    *, user: User, mine: bool = False, team: bool = False, overdue: bool = False, now: datetime | None = None
) -> QuerySet[Task]:
    """Tasks the user may see. `mine`: assigned to him; `team`: assigned to anyone he answers for
    (himself, his team subtree, everyone for a director); `overdue`: open and past due."""
    tasks = Task.objects.visible_to(user)
    if mine:
        tasks = tasks.assigned_to(user)
    if team:
        tasks = tasks.assigned_within_scope(user)
    if overdue:
        tasks = tasks.overdue(now or timezone.now())
    return tasks_with_related(tasks)


def tasks_with_related(tasks: QuerySet[Task]) -> QuerySet[Task]:
    return tasks.select_related("assignee", "author", "completed_by", "counterparty", "deal", "invoice")


def note_list(*, user: User) -> QuerySet[Note]:
    return Note.objects.visible_to(user).select_related("author", "counterparty", "deal")


def notification_list(*, user: User, unread: bool = False) -> QuerySet[Notification]:
    notifications = Notification.objects.visible_to(user).select_related("task")
    return notifications.filter(read_at__isnull=True) if unread else notifications


@dataclass(frozen=True)
class TimelineItem:
    kind: str
    """task, task_done, note, deal, invoice, payment or allocation."""
    when: datetime
    title: str
    ref: str
    """`kind:id` of the record, e.g. `invoice:17`."""
    url: str
    actor: User | None


def _document_time(day: date, created_at: datetime) -> datetime:
    """Where a dated document (invoice, payment) sits on the timeline: at its creation time when it was
    entered on its own date, at the start of its date when it was entered later (e.g. imported from 1C)."""
    if timezone.localdate(created_at) == day:
        return created_at
    return timezone.make_aware(datetime.combine(day, time.min))


def _money(amount: object, currency: object) -> str:
    return f"{amount} {currency}"


def _day(day: date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def timeline(*, user: User, counterparty_id: int, limit: int = TIMELINE_LIMIT) -> list[TimelineItem]:
    """Tasks, notes, deals, invoices, payments and allocations of a counterparty, newest first.

    A fixed number of queries whatever the number of records: one per kind plus the visibility check.
    What hangs off a counterparty is visible exactly when the counterparty is (accounts.visibility), so
    once the counterparty passes `visible_to` its records are read by counterparty. Raises Http404 for a
    counterparty outside the user's scope. At most `limit` items, the newest.
    """
    try:
        counterparty = get_object_or_404(Counterparty.objects.visible_to(user), pk=counterparty_id)
    except (ValueError, TypeError) as error:
        raise Http404 from error
    items = [item for items_of in _TIMELINE_KINDS for item in items_of(counterparty, limit)]
    items.sort(key=lambda item: (item.when, item.ref), reverse=True)
    return items[:limit]


def _task_items(counterparty: Counterparty, limit: int) -> Iterator[TimelineItem]:
    tasks = Task.objects.filter(counterparty=counterparty).select_related("author", "completed_by")
    for task in tasks.order_by("-created_at", "-pk")[:limit]:
        yield TimelineItem("task", task.created_at, task.title, f"task:{task.pk}", task.get_absolute_url(), task.author)
        if task.is_done and task.done_at is not None:
            title = _("Done: %(title)s") % {"title": task.title}
            yield TimelineItem(
                "task_done", task.done_at, title, f"task:{task.pk}", task.get_absolute_url(), task.completed_by
            )


def _note_items(counterparty: Counterparty, limit: int) -> Iterator[TimelineItem]:
    notes = Note.objects.filter(counterparty=counterparty).select_related("author")
    for note in notes.order_by("-created_at", "-pk")[:limit]:
        url = f"{counterparty.get_absolute_url()}#note-{note.pk}"
        yield TimelineItem("note", note.created_at, note.text, f"note:{note.pk}", url, note.author)


def _deal_items(counterparty: Counterparty, limit: int) -> Iterator[TimelineItem]:
    deals = Deal.objects.filter(counterparty=counterparty).select_related("owner", "stage")
    for deal in deals.order_by("-created_at", "-pk")[:limit]:
        title = _("Deal «%(title)s», %(stage)s, %(amount)s") % {
            "title": deal.title,
            "stage": deal.stage.name,
            "amount": _money(deal.amount, deal.currency_id),
        }
        yield TimelineItem("deal", deal.created_at, title, f"deal:{deal.pk}", f"/deals/{deal.pk}/", deal.owner)


def _invoice_items(counterparty: Counterparty, limit: int) -> Iterator[TimelineItem]:
    invoices = Invoice.objects.filter(counterparty=counterparty).select_related("owner")
    for invoice in invoices.order_by("-date", "-created_at", "-pk")[:limit]:
        title = _("Invoice № %(number)s of %(date)s, %(total)s, %(status)s") % {
            "number": invoice.number,
            "date": _day(invoice.date),
            "total": _money(invoice.total, invoice.currency_id),
            "status": invoice.get_status_display(),
        }
        when = _document_time(invoice.date, invoice.created_at)
        yield TimelineItem("invoice", when, title, f"invoice:{invoice.pk}", f"/invoices/{invoice.pk}/", invoice.owner)


def _payment_items(counterparty: Counterparty, limit: int) -> Iterator[TimelineItem]:
    payments = Payment.objects.filter(counterparty=counterparty).select_related("created_by")
    for payment in payments.order_by("-date", "-created_at", "-pk")[:limit]:
        title = _("Payment № %(number)s of %(date)s, %(amount)s, %(direction)s") % {
            "number": payment.number,
            "date": _day(payment.date),
            "amount": _money(payment.amount, payment.currency_id),
            "direction": payment.get_direction_display(),
        }
        when = _document_time(payment.date, payment.created_at)
        url = f"/payments/{payment.pk}/"
        yield TimelineItem("payment", when, title, f"payment:{payment.pk}", url, payment.created_by)


def _allocation_items(counterparty: Counterparty, limit: int) -> Iterator[TimelineItem]:
    allocations = PaymentAllocation.objects.filter(invoice__counterparty=counterparty).select_related(
        "payment__created_by", "invoice"
    )
    for allocation in allocations.order_by("-created_at", "-pk")[:limit]:
        title = _("Payment № %(payment)s allocated to invoice № %(invoice)s: %(amount)s") % {
            "payment": allocation.payment.number,
            "invoice": allocation.invoice.number,
            "amount": _money(allocation.amount, allocation.invoice.currency_id),
        }
        url = f"/invoices/{allocation.invoice_id}/"
        ref = f"allocation:{allocation.pk}"
        yield TimelineItem("allocation", allocation.created_at, title, ref, url, allocation.payment.created_by)


# One query per kind.
_TIMELINE_KINDS: tuple[Callable[[Counterparty, int], Iterator[TimelineItem]], ...] = (
    _task_items, _note_items, _deal_items, _invoice_items, _payment_items, _allocation_items,
)  # fmt: skip
