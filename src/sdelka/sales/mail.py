"""Sending an invoice to the client by e-mail, with its PDF attached.

`send_invoice` is a service: it reads the invoice through the user's visibility, takes the address
given or the contact's / counterparty's e-mail, and then, in one transaction, marks the invoice sent
(issued → sent, `sales.services.mark_invoice_sent`), writes a note into the counterparty's timeline
and hands the message to Django's e-mail backend. A refused address or a failing mail server rolls
everything back and comes out as a ValidationError naming `to`.

The message is written to a Russian client: its subject and body are Russian whatever the sender's
interface language, like the printed form.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from sdelka.activities.models import Note
from sdelka.activities.services import add_note

from . import selectors, services
from .models import Invoice
from .printing.invoice_pdf import pdf_filename, print_number, render_pdf, short_date
from .printing.words import format_money

logger = logging.getLogger(__name__)
ADDRESS_SPLIT = re.compile(r"[,;\s]+")


def split_addresses(value: str | Sequence[str] | None) -> list[str]:
    """ "a@x.ru, b@y.ru; c@z.ru" (or a list of such strings) → the addresses in order, without repeats."""
    if value is None:
        return []
    chunks = [value] if isinstance(value, str) else list(value)
    found: list[str] = []
    for chunk in chunks:
        for address in ADDRESS_SPLIT.split(str(chunk)):
            if address and address.lower() not in {a.lower() for a in found}:
                found.append(address)
    return found


def default_recipients(invoice: Invoice) -> list[str]:
    """The invoice's contact person's e-mails, else the counterparty's."""
    if invoice.contact is not None and invoice.contact.emails.strip():
        return split_addresses(invoice.contact.emails)
    return split_addresses(invoice.counterparty.emails)


def _subject(invoice: Invoice) -> str:
    return f"Счет на оплату № {print_number(invoice)} от {short_date(invoice)} — {invoice.organisation.name}"


def _body(invoice: Invoice, user: Any, message: str) -> str:
    currency = "руб." if invoice.currency_id == "RUB" else invoice.currency_id
    lines = [
        "Здравствуйте!",
        "",
        f"Направляем счет на оплату № {print_number(invoice)} от {short_date(invoice)} "
        f"на сумму {format_money(invoice.total)} {currency}.",
    ]
    if invoice.due_date:
        lines.append(f"Просим оплатить его не позднее {invoice.due_date:%d.%m.%Y}.")
    lines.append("Счет — во вложении, в формате PDF.")
    if message.strip():
        lines += ["", message.strip()]
    signature = [user.get_full_name() if hasattr(user, "get_full_name") else "", invoice.organisation.name]
    signature += [invoice.organisation.phone] if invoice.organisation.phone else []
    lines += ["", "С уважением,", *[part for part in signature if part]]
    return "\n".join(lines) + "\n"


def _validated_recipients(invoice: Invoice, to: str | Sequence[str] | None) -> list[str]:
    recipients = split_addresses(to) or default_recipients(invoice)
    if not recipients:
        raise ValidationError(
            {"to": _("The counterparty has no e-mail address: enter the address to send the invoice to.")},
            code="no_address",
        )
    bad = []
    for address in recipients:
        try:
            validate_email(address)
        except ValidationError:
            bad.append(address)
    if bad:
        raise ValidationError(
            {"to": _("Not an e-mail address: %(addresses)s.") % {"addresses": ", ".join(bad)}}, code="invalid"
        )
    return recipients


@dataclass(frozen=True)
class SentInvoice:
    invoice: Invoice
    """The invoice as it is after sending (status sent unless it was already further)."""
    recipients: list[str]
    note: Note


def send_invoice(
    *,
    user: Any,
    invoice: Invoice | int,
    to: str | Sequence[str] | None = None,
    message: str = "",
    facsimile: bool = False,
) -> SentInvoice:
    """E-mail the invoice's PDF (with the organisation's facsimile signatures and stamp when asked) to `to`
    (or the client's address on file); the invoice becomes sent and the sending is noted in the
    counterparty's timeline."""
    pk = invoice.pk if isinstance(invoice, Invoice) else invoice
    found = selectors.invoice_list(user=user).filter(pk=pk).first()
    if found is None:
        raise ValidationError(
            {"invoice": _("Object with id %(pk)s does not exist.") % {"pk": pk}}, code="does_not_exist"
        )
    if found.status not in services.SENDABLE_STATUSES:
        raise ValidationError({"status": _("Only an issued invoice can be sent to the client.")}, code="not_issued")
    recipients = _validated_recipients(found, to)
    pdf = render_pdf(found, facsimile=facsimile)  # before any lock: rendering takes a moment

    email = EmailMessage(
        subject=_subject(found),
        body=_body(found, user, message),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
        reply_to=[address for address in (getattr(user, "email", ""), found.organisation.email) if address][:1],
    )
    email.attach(pdf_filename(found), pdf, "application/pdf")

    with transaction.atomic():
        sent = services.mark_invoice_sent(user=user, invoice=found)
        note = add_note(
            user=user,
            counterparty=found.counterparty,
            deal=found.deal,
            text=_("Invoice № %(number)s of %(date)s sent to %(to)s")
            % {"number": found.number, "date": short_date(found), "to": ", ".join(recipients)},
        )
        try:
            email.send(fail_silently=False)
        except OSError as exc:  # smtplib.SMTPException and connection errors are OSErrors
            logger.warning("invoice %s: e-mail to %s failed: %s", found.pk, recipients, exc)
            raise ValidationError(
                {"to": _("The mail server did not accept the message: %(error)s") % {"error": exc}},
                code="smtp",
            ) from exc
    return SentInvoice(invoice=sent, recipients=recipients, note=note)
