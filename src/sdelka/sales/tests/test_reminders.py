"""The daily payment-reminder job: tasks before and after the due date, e-mails, never twice a day."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.core import mail

from sdelka.activities.models import Task
from sdelka.sales import reminders
from sdelka.sales.models import InvoiceReminder, InvoiceStatus
from sdelka.sales.tasks import send_payment_reminders
from tests.factories import CounterpartyFactory, InvoiceFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 6, 30)


def due(days: int) -> datetime.date:
    return TODAY + datetime.timedelta(days=days)


@pytest.fixture
def invoices(staff):
    org = OrganisationFactory(email="office@sdelka.ru")
    client = CounterpartyFactory(owner=staff.manager, emails="buh@client.ru")

    def make(d, status=InvoiceStatus.ISSUED, **kw):
        return InvoiceFactory(
            organisation=org, counterparty=client, total=Decimal("1000.00"), status=status, due_date=d, **kw
        )

    return {
        "soon": make(due(3)),
        "late": make(due(-1), status=InvoiceStatus.PARTLY_PAID, paid_amount=Decimal("400.00")),
        "week_late": make(due(-7), status=InvoiceStatus.SENT),
        "other_day": make(due(2)),
        "paid": make(due(3), status=InvoiceStatus.PAID, paid_amount=Decimal("1000.00")),
        "draft": make(due(3), status=InvoiceStatus.DRAFT),
    }


def test_tasks_before_and_after_the_due_date(staff, invoices):
    result = reminders.send_payment_reminders(today=TODAY, days_before=[3], days_after=[1, 7], email_clients=False)
    assert (result.tasks, result.emails) == (3, 0)
    tasks = {t.invoice_id: t for t in Task.objects.all()}
    assert set(tasks) == {invoices["soon"].pk, invoices["late"].pk, invoices["week_late"].pk}
    assert all(
        t.assignee == staff.manager and t.counterparty_id == invoices["soon"].counterparty_id for t in tasks.values()
    )
    kinds = dict(InvoiceReminder.objects.values_list("invoice_id", "kind"))
    assert kinds[invoices["soon"].pk] == "before" and kinds[invoices["late"].pk] == "after"


def test_idempotent_for_the_same_day(staff, invoices):
    first = reminders.send_payment_reminders(today=TODAY, days_before=[3], days_after=[1], email_clients=True)
    second = reminders.send_payment_reminders(today=TODAY, days_before=[3], days_after=[1], email_clients=True)
    assert (first.tasks, first.emails) == (2, 2)
    assert (second.tasks, second.emails, second.already_done) == (0, 0, 2)
    assert Task.objects.count() == 2 and len(mail.outbox) == 2
    # The next day is another day: the overdue invoice (due 1 day before yesterday's run) is not targeted again.
    assert reminders.send_payment_reminders(today=due(1), days_before=[3], days_after=[1]).tasks == 0


def test_client_email_is_polite_and_carries_the_pdf(staff, invoices):
    reminders.send_payment_reminders(today=TODAY, days_before=[], days_after=[1], email_clients=True)
    (message,) = mail.outbox
    assert message.to == ["buh@client.ru"] and message.reply_to == ["office@sdelka.ru"]
    assert invoices["late"].number in message.subject
    assert "600.00 RUB" in message.body
    (_name, content, mimetype) = message.attachments[0]
    assert mimetype == "application/pdf" and content.startswith(b"%PDF")


def test_settings_drive_the_periodic_task(staff, invoices, settings, monkeypatch):
    settings.SDELKA_REMINDER_DAYS_BEFORE = [2]
    settings.SDELKA_REMINDER_DAYS_AFTER = []
    settings.SDELKA_REMINDER_EMAIL_CLIENTS = False
    monkeypatch.setattr(reminders.timezone, "localdate", lambda: TODAY)
    assert send_payment_reminders.call_local() == 1
    assert Task.objects.get().invoice == invoices["other_day"]
