"""Sending an invoice by e-mail (locmem backend): the PDF attached, the status sent, a timeline note;
no address, a bad address, a refusing mail server or a draft change nothing; 404 outside the scope."""

from __future__ import annotations

import io
import smtplib
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail as django_mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.test import Client
from pypdf import PdfReader
from rest_framework.test import APIClient

from sdelka.activities.models import Note
from sdelka.activities.selectors import timeline
from sdelka.sales import mail, services
from sdelka.sales.models import Invoice, InvoiceStatus
from sdelka.sales.tests.conftest import DATE, line
from sdelka.sales.tests.test_print import URLS, make_invoice
from sdelka.sales.tests.test_print import urlpatterns as urlpatterns  # this module is a URLconf too
from tests.factories import ContactPersonFactory, DealFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invoice(staff: Any, organisation: Any, own_counterparty: Any) -> Invoice:
    own_counterparty.emails = "buh@svoya.ru, director@svoya.ru"
    own_counterparty.save()
    return make_invoice(
        staff.manager, organisation, own_counterparty, lines=[line(price=Decimal("1220.00"))], due_date=DATE
    )


def test_send_attaches_the_pdf_marks_sent_and_notes_it(staff: Any, invoice: Invoice) -> None:
    result = mail.send_invoice(user=staff.manager, invoice=invoice)

    (message,) = django_mail.outbox
    assert message.to == ["buh@svoya.ru", "director@svoya.ru"]
    assert message.subject == f"Счет на оплату № 1 от 10.03.2026 — {invoice.organisation.name}"
    assert "Направляем счет на оплату № 1 от 10.03.2026 на сумму 1\u00a0220,00 руб." in message.body
    assert "Просим оплатить его не позднее 10.03.2026." in message.body
    assert message.reply_to == [staff.manager.email]
    ((filename, content, mimetype),) = message.attachments
    assert (filename, mimetype) == ("Счет_1_от_10.03.2026.pdf", "application/pdf")
    assert content[:5] == b"%PDF-"
    text = " ".join(PdfReader(io.BytesIO(content)).pages[0].extract_text().split())
    assert "Счет на оплату № 1 от 10 марта 2026 г." in text and "Всего к оплате: 1 220,00" in text

    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.SENT == result.invoice.status
    assert invoice.history.first().history_user == staff.manager
    note = Note.objects.get()
    assert (note.author, note.counterparty, note.deal) == (staff.manager, invoice.counterparty, None)
    assert "СД-1" in note.text and "10.03.2026" in note.text and "buh@svoya.ru, director@svoya.ru" in note.text
    assert result.note == note and result.recipients == message.to
    items = timeline(user=staff.manager, counterparty_id=invoice.counterparty_id)
    assert f"note:{note.pk}" in [item.ref for item in items]


def test_the_contact_persons_address_comes_first_and_a_given_one_wins(staff: Any, invoice: Invoice) -> None:
    contact = ContactPersonFactory(counterparty=invoice.counterparty, emails="anna@svoya.ru")
    deal = DealFactory(counterparty=invoice.counterparty, owner=staff.manager)
    services.update_invoice(user=staff.manager, invoice=invoice, contact=contact)
    Invoice.objects.filter(pk=invoice.pk).update(deal=deal)
    mail.send_invoice(user=staff.manager, invoice=invoice.pk)
    assert django_mail.outbox[-1].to == ["anna@svoya.ru"]
    assert Note.objects.get().deal == deal
    mail.send_invoice(user=staff.manager, invoice=invoice, to="Other@Example.ru; other@example.ru", message="Ждём!")
    assert django_mail.outbox[-1].to == ["Other@Example.ru"]
    assert "\nЖдём!\n" in django_mail.outbox[-1].body
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.SENT  # sent again: stays sent
    assert Note.objects.count() == 2


def nothing_changed(invoice: Invoice, status: str = InvoiceStatus.ISSUED) -> bool:
    return not django_mail.outbox and not Note.objects.exists() and Invoice.objects.get(pk=invoice.pk).status == status


def test_no_address_is_a_clear_error(staff: Any, invoice: Invoice) -> None:
    invoice.counterparty.emails = ""
    invoice.counterparty.save()
    with pytest.raises(ValidationError) as error:
        mail.send_invoice(user=staff.manager, invoice=invoice)
    assert list(error.value.message_dict) == ["to"]
    assert "no e-mail address" in error.value.message_dict["to"][0]
    assert nothing_changed(invoice)


def test_a_bad_address_is_named(staff: Any, invoice: Invoice) -> None:
    with pytest.raises(ValidationError) as error:
        mail.send_invoice(user=staff.manager, invoice=invoice, to="ok@example.ru, not-an-address")
    assert "not-an-address" in error.value.message_dict["to"][0]
    assert nothing_changed(invoice)


def test_a_refusing_mail_server_changes_nothing(staff: Any, invoice: Invoice, monkeypatch: Any) -> None:
    def refuse(self: EmailMessage, fail_silently: bool = False) -> int:
        raise smtplib.SMTPRecipientsRefused({"buh@svoya.ru": (550, b"no such user")})

    monkeypatch.setattr(EmailMessage, "send", refuse)
    with pytest.raises(ValidationError) as error:
        mail.send_invoice(user=staff.manager, invoice=invoice)
    assert "did not accept" in error.value.message_dict["to"][0]
    assert nothing_changed(invoice)


def test_a_draft_or_cancelled_invoice_is_not_sent(staff: Any, organisation: Any, own_counterparty: Any) -> None:
    own_counterparty.emails = "buh@svoya.ru"
    own_counterparty.save()
    draft = services.create_invoice(
        user=staff.manager, organisation=organisation, counterparty=own_counterparty, lines=[line()], date=DATE
    )
    with pytest.raises(ValidationError) as error:
        mail.send_invoice(user=staff.manager, invoice=draft)
    assert list(error.value.message_dict) == ["status"]
    assert nothing_changed(draft, InvoiceStatus.DRAFT)
    services.issue_invoice(user=staff.manager, invoice=draft)
    services.cancel_invoice(user=staff.manager, invoice=draft)
    with pytest.raises(ValidationError):
        mail.send_invoice(user=staff.manager, invoice=draft)
    assert nothing_changed(draft, InvoiceStatus.CANCELLED)


def test_outside_the_scope_reads_as_missing(staff: Any, invoice: Invoice) -> None:
    with pytest.raises(ValidationError) as error:
        mail.send_invoice(user=staff.outsider, invoice=invoice, to="x@example.ru")
    assert list(error.value.message_dict) == ["invoice"]
    assert nothing_changed(invoice)


def test_a_paid_invoice_keeps_its_status_and_an_unpaid_one_returns_to_sent(staff: Any, invoice: Invoice) -> None:
    mail.send_invoice(user=staff.manager, invoice=invoice)
    payment = services.register_payment(
        user=staff.manager,
        organisation=invoice.organisation,
        date=DATE,
        amount="1220.00",
        counterparty=invoice.counterparty,
    )
    allocation = services.allocate_payment(user=staff.manager, payment=payment, invoice=invoice, amount="1220.00")
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    mail.send_invoice(user=staff.manager, invoice=invoice)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.PAID
    services.remove_allocation(user=staff.manager, allocation=allocation)
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.SENT


# --- The send form and the API ---------------------------------------------------------------------


@URLS
def test_send_form_posts_and_comes_back_with_a_message(staff: Any, invoice: Invoice) -> None:
    client = Client()
    client.force_login(staff.manager)
    answer = client.post(f"/invoices/{invoice.pk}/send/", {"to": "buh@svoya.ru"}, follow=True)
    assert answer.redirect_chain == [(f"/invoices/{invoice.pk}/print/", 302)]
    assert len(django_mail.outbox) == 1
    assert Invoice.objects.get(pk=invoice.pk).status == InvoiceStatus.SENT
    (message,) = answer.context["messages"]
    assert message.level_tag == "success" and "buh@svoya.ru" in str(message)


@URLS
def test_send_form_shows_the_error_and_changes_nothing(staff: Any, invoice: Invoice) -> None:
    client = Client()
    client.force_login(staff.manager)
    answer = client.post(f"/invoices/{invoice.pk}/send/", {"to": "nonsense"}, follow=True)
    assert answer.status_code == 200
    (message,) = answer.context["messages"]
    assert message.level_tag == "error" and "nonsense" in str(message)
    assert nothing_changed(invoice)


@URLS
def test_send_form_outside_the_scope_and_by_get(staff: Any, invoice: Invoice) -> None:
    client = Client()
    client.force_login(staff.outsider)
    assert client.post(f"/invoices/{invoice.pk}/send/", {"to": "x@example.ru"}).status_code == 404
    client.force_login(staff.manager)
    # GET is the invoice card's "Send by e-mail" link: it opens the form at the send box and sends nothing
    answer = client.get(f"/invoices/{invoice.pk}/send/")
    assert answer.status_code == 302 and answer["Location"] == f"/invoices/{invoice.pk}/print/?send=1#send-to"
    assert nothing_changed(invoice)


@URLS
def test_api_send(staff: Any, invoice: Invoice) -> None:
    api = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    api.force_authenticate(staff.outsider)
    assert api.post(f"/api/v1/invoices/{invoice.pk}/send/", {}, format="json").status_code == 404
    api.force_authenticate(staff.manager)
    answer = api.post(f"/api/v1/invoices/{invoice.pk}/send/", {"to": ["bad"]}, format="json")
    assert answer.status_code == 400 and "to" in answer.json()
    assert nothing_changed(invoice)
    answer = api.post(
        f"/api/v1/invoices/{invoice.pk}/send/", {"to": ["cfo@svoya.ru"], "message": "Спасибо"}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["status"] == "sent"
    assert django_mail.outbox[0].to == ["cfo@svoya.ru"]
    invoice.counterparty.emails = ""
    invoice.counterparty.save()
    answer = api.post(f"/api/v1/invoices/{invoice.pk}/send/", {}, format="json")
    assert answer.status_code == 400 and "no e-mail address" in answer.json()["to"][0]
