"""Writes on the payment queue: a person matches a queued bank payment in two clicks.

`match_queued_payment` allocates the payment to the invoices chosen (amounts default to what the invoice
still owes, within what the payment has left), keeps the rest as the client's advance, or first creates
the payer as a counterparty from the statement's requisites. Money moves through sales.services
(`allocate_payment`), so the invoice status follows it exactly as for a payment entered by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.activities.models import Notification
from sdelka.core.requisites import validate_account_against_bik
from sdelka.parties import services as parties
from sdelka.parties.models import Counterparty, CounterpartyKind
from sdelka.sales import services as sales
from sdelka.sales.models import Invoice, Payment

from ..models import BankDocument, BankDocumentStatus
from .importer import OPEN_STATUSES, payment_notification
from .matcher import MAX_CANDIDATES


def counterparty_offer(document: BankDocument) -> dict[str, Any]:
    """The counterparty the statement's requisites describe, as `parties.services.create_counterparty` takes it."""
    party = document.party or {}
    inn = str(party.get("inn") or "")
    kind = {10: CounterpartyKind.LEGAL, 12: CounterpartyKind.ENTREPRENEUR}.get(len(inn), CounterpartyKind.LEGAL)
    data = {"kind": kind, "name": str(party.get("name") or inn)[:255], "inn": inn, "kpp": str(party.get("kpp") or "")}
    if kind == CounterpartyKind.ENTREPRENEUR:
        data["kpp"] = ""
    account = {
        "number": str(party.get("account") or ""),
        "bik": str(party.get("bik") or ""),
        "bank_name": str(party.get("bank_name") or "")[:255],
        "correspondent_account": str(party.get("correspondent_account") or ""),
    }
    try:
        validate_account_against_bik(account["number"], account["bik"])
    except ValidationError:
        return {"data": data, "bank_accounts": []}  # an account the bank wrote wrong is not worth a refusal
    return {"data": data, "bank_accounts": [account]}


def _queued(user: Any, document: BankDocument | int) -> BankDocument:
    pk = document.pk if isinstance(document, BankDocument) else document
    found = (
        BankDocument.objects.visible_to(user)
        .select_for_update(of=("self",))
        .select_related("payment")
        .filter(pk=pk)
        .first()
    )
    if found is None or found.payment is None:
        raise ValidationError({"document": _("Object with id %(pk)s does not exist.") % {"pk": pk}})
    if found.status != BankDocumentStatus.QUEUED:
        raise ValidationError({"status": _("This payment has already been matched.")})
    return found


def _create_payer(user: Any, document: BankDocument, payment: Payment) -> Counterparty:
    if payment.counterparty_id is not None:
        raise ValidationError({"create_counterparty": _("The payer is already a counterparty.")})
    offer = counterparty_offer(document)
    counterparty = parties.create_counterparty(user=user, data=offer["data"], bank_accounts=offer["bank_accounts"])
    sales.update_payment(user=user, payment=payment, counterparty=counterparty)
    return counterparty


@transaction.atomic
def match_queued_payment(
    *,
    user: Any,
    document: BankDocument | int,
    invoices: Sequence[Mapping[str, Any]] = (),
    create_counterparty: bool = False,
    keep_as_advance: bool = False,
) -> BankDocument:
    """Resolve a queued statement payment. `invoices`: [{"invoice": Invoice or id, "amount": optional}]."""
    document = _queued(user, document)
    if not (invoices or create_counterparty or keep_as_advance):
        raise ValidationError({"invoices": _("Choose the invoices this payment pays, or keep it as an advance.")})
    if invoices and keep_as_advance:
        raise ValidationError({"keep_as_advance": _("Either allocate the payment or keep it as an advance.")})
    payment = document.payment
    assert payment is not None
    if create_counterparty:
        _create_payer(user, document, payment)
    notifications = []
    for item in invoices:
        invoice = sales._require_visible(Invoice, item.get("invoice"), user, "invoice")
        payment.refresh_from_db()
        amount = item.get("amount")
        if amount in (None, ""):
            amount = min(invoice.open_amount, payment.unallocated_amount)
            if amount <= 0:
                raise ValidationError({"amount": _("Nothing is left to allocate.")})
        sales.allocate_payment(user=user, payment=payment, invoice=invoice, amount=amount)
        invoice.refresh_from_db()
        if invoice.owner_id != getattr(user, "pk", None):
            notifications.append(payment_notification(invoice, Decimal(str(amount))))
    Notification.objects.bulk_create(notifications)
    if invoices or keep_as_advance:
        document.status = BankDocumentStatus.RESOLVED
        document.reason = (
            _("Matched by %(user)s.") % {"user": user}
            if invoices
            else _("Kept as the client's advance by %(user)s.") % {"user": user}
        )
        document.resolved_by = user
        document.resolved_at = timezone.now()
    else:
        payment.refresh_from_db()
        assert payment.counterparty_id is not None
        document.candidates = list(
            Invoice.objects.filter(
                counterparty_id=payment.counterparty_id,
                organisation_id=payment.organisation_id,
                status__in=OPEN_STATUSES,
            )
            .order_by("date", "pk")
            .values_list("pk", flat=True)[:MAX_CANDIDATES]
        )
        document.reason = _("The counterparty is created; choose the invoice.")
    document.save(update_fields=["status", "reason", "resolved_by", "resolved_at", "candidates"])
    return document
