"""The daily payment-reminder job: tasks for managers, polite e-mails to clients, never twice a day.

For every open invoice whose due date is N days ahead (`SDELKA_REMINDER_DAYS_BEFORE`, default 3) or N
days behind (`SDELKA_REMINDER_DAYS_AFTER`, default 1 and 7), the invoice's manager gets a task for today;
when `SDELKA_REMINDER_EMAIL_CLIENTS` is on, the client gets a polite reminder with the invoice PDF.
An `InvoiceReminder` row, unique per invoice and day, is written in the same transaction as the tasks,
so a second run the same day (or a concurrent one) adds nothing. E-mail goes out after the commit.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.activities.models import Task

from .models import OPEN_INVOICE_STATUSES, Invoice, InvoiceReminder

logger = logging.getLogger(__name__)

BEFORE, AFTER = "before", "after"
TASK_HOUR = 18


@dataclass
class ReminderResult:
    tasks: int = 0
    emails: int = 0
    already_done: int = 0


def _targets(today: datetime.date, before: Sequence[int], after: Sequence[int]) -> dict[datetime.date, tuple[str, int]]:
    targets = {today + datetime.timedelta(days=n): (BEFORE, n) for n in before if n >= 0}
    targets.update({today - datetime.timedelta(days=n): (AFTER, n) for n in after if n > 0})
    return targets


def _money(invoice: Invoice) -> str:
    return f"{invoice.open_amount:,.2f}".replace(",", " ") + f" {invoice.currency_id}"


def _task_title(invoice: Invoice, kind: str, days: int) -> str:
    values = {"number": invoice.number, "counterparty": invoice.counterparty.name, "days": days}
    if kind == BEFORE:
        return _("Invoice № %(number)s (%(counterparty)s) is due in %(days)s day(s): check the payment") % values
    return _("Invoice № %(number)s (%(counterparty)s) is %(days)s day(s) overdue: remind the client") % values


def _email(invoice: Invoice, kind: str, recipients: list[str]) -> EmailMessage:
    values = {
        "number": invoice.number,
        "date": invoice.date.strftime("%d.%m.%Y"),
        "due": invoice.due_date.strftime("%d.%m.%Y") if invoice.due_date else "",
        "amount": _money(invoice),
        "organisation": invoice.organisation.name,
    }
    subject = _("Payment reminder: invoice № %(number)s of %(date)s") % values
    if kind == BEFORE:
        text = _(
            "Good day!\n\nWe kindly remind you that invoice № %(number)s of %(date)s for %(amount)s is due on %(due)s."
        )
    else:
        text = _(
            "Good day!\n\nWe kindly remind you that invoice № %(number)s of %(date)s was due on %(due)s; "
            "%(amount)s remains unpaid."
        )
    text += _("\n\nIf you have already paid, please disregard this message. Thank you!\n\n%(organisation)s")
    message = EmailMessage(
        subject=subject,
        body=text % values,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=[invoice.organisation.email] if invoice.organisation.email else None,
    )
    _attach_pdf(message, invoice)
    return message


def _attach_pdf(message: EmailMessage, invoice: Invoice) -> None:
    """The invoice PDF when the printing module is there and can render it; the reminder goes without it otherwise."""
    try:
        from .printing.invoice_pdf import pdf_filename, render_pdf
    except ImportError:  # pragma: no cover - printing is part of the product; kept optional for slim installs
        return
    try:
        # The client receives the invoice as it is normally sent: signed and stamped when the organisation
        # has facsimiles.
        pdf = render_pdf(invoice, facsimile=invoice.organisation.has_facsimile)
        message.attach(pdf_filename(invoice), pdf, "application/pdf")
    except Exception:
        logger.exception("Could not render the PDF of invoice %s for its reminder", invoice.pk)


def _recipients(invoice: Invoice) -> list[str]:
    from .mail import default_recipients

    return default_recipients(invoice)


def send_payment_reminders(
    *,
    today: datetime.date | None = None,
    days_before: Sequence[int] | None = None,
    days_after: Sequence[int] | None = None,
    email_clients: bool | None = None,
) -> ReminderResult:
    """Create today's reminder tasks (and e-mails) for invoices coming due or overdue; idempotent per day."""
    today = today or timezone.localdate()
    before = settings.SDELKA_REMINDER_DAYS_BEFORE if days_before is None else days_before
    after = settings.SDELKA_REMINDER_DAYS_AFTER if days_after is None else days_after
    email = settings.SDELKA_REMINDER_EMAIL_CLIENTS if email_clients is None else email_clients
    targets = _targets(today, before, after)
    result = ReminderResult()
    if not targets:
        return result
    try:
        with transaction.atomic():
            invoices = _invoices_due(targets)
            fresh = _not_reminded(invoices, today)
            result.already_done = len(invoices) - len(fresh)
            if not fresh:
                return result
            tasks = _create_tasks(fresh, targets, today)
            recipients = {i.pk: _recipients(i) if email else [] for i in fresh}
            _record_reminders(fresh, tasks, targets, today, recipients)
    except IntegrityError:
        logger.info("Payment reminders for %s were made by another run", today)
        return ReminderResult()
    result.tasks = len(fresh)
    result.emails = _send_emails(
        [_email(i, _reminder_of(i, targets)[0], recipients[i.pk]) for i in fresh if recipients[i.pk]]
    )
    logger.info("Payment reminders for %s: %d task(s), %d e-mail(s)", today, result.tasks, result.emails)
    return result


def _reminder_of(invoice: Invoice, targets: dict[datetime.date, tuple[str, int]]) -> tuple[str, int]:
    """(kind, days) of an invoice the query picked by its due date, which is therefore set."""
    return targets[cast(datetime.date, invoice.due_date)]


def _invoices_due(targets: dict[datetime.date, tuple[str, int]]) -> list[Invoice]:
    return list(
        Invoice.objects.filter(status__in=OPEN_INVOICE_STATUSES, total__gt=F("paid_amount"), due_date__in=list(targets))
        .select_related("owner", "counterparty", "organisation", "contact")
        .order_by("due_date", "pk")
    )


def _not_reminded(invoices: list[Invoice], today: datetime.date) -> list[Invoice]:
    done = set(
        InvoiceReminder.objects.filter(day=today, invoice__in=[i.pk for i in invoices]).values_list(
            "invoice_id", flat=True
        )
    )
    return [i for i in invoices if i.pk not in done]


def _create_tasks(invoices: list[Invoice], targets: dict[datetime.date, tuple[str, int]],
                  today: datetime.date) -> list[Task]:  # fmt: skip
    due_at = timezone.make_aware(datetime.datetime.combine(today, datetime.time(TASK_HOUR)))
    return Task.objects.bulk_create(
        [
            Task(
                title=_task_title(i, *_reminder_of(i, targets))[:255],
                assignee=i.owner,
                counterparty=i.counterparty,
                invoice=i,
                due_at=due_at,
            )
            for i in invoices
        ]
    )


def _record_reminders(invoices: list[Invoice], tasks: list[Task], targets: dict[datetime.date, tuple[str, int]],
                      today: datetime.date, recipients: dict[int, list[str]]) -> None:  # fmt: skip
    """The row per invoice and day, unique: a second run the same day fails here and adds nothing."""
    InvoiceReminder.objects.bulk_create(
        [
            InvoiceReminder(
                invoice=i,
                day=today,
                kind=_reminder_of(i, targets)[0],
                task=task,
                emailed_to=", ".join(recipients[i.pk])[:500],
            )
            for i, task in zip(invoices, tasks, strict=True)
        ]
    )


def _send_emails(messages: list[EmailMessage]) -> int:
    """How many went out: all of them, or none when the mail server refuses."""
    if not messages:
        return 0
    try:
        get_connection().send_messages(messages)
    except Exception:
        # The manager's task is the reminder; a mail failure must not undo it nor repeat it tomorrow.
        logger.exception("Could not e-mail %d payment reminder(s)", len(messages))
        return 0
    return len(messages)
