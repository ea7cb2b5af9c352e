"""Payments from 1C: one Sdelka payment per 1C document.

A payment already in Sdelka from a bank statement (same organisation, amount and payer, dates a day apart at
most, the same number when both have one: payment_match.py) is linked, not duplicated; it keeps the bank's date
and text. The rows of РасшифровкаПлатежа allocate it to the invoices they name, through `allocate_payment`. A
document unposted or marked for deletion in 1C cancels its payment (kept, allocations released); posted again,
it is valid again.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils.translation import gettext as _

from sdelka.exchange.models import EventLevel, ExternalRef
from sdelka.exchange.payment_match import DATE_TOLERANCE, pick_same
from sdelka.parties.models import Counterparty
from sdelka.sales import services as sales
from sdelka.sales.models import Invoice, Payment, PaymentAllocation, PaymentDirection, PaymentSource

from .. import values as v
from ..doc_merge import ROWS, merge_document
from .common import ZERO, first_error, organisation

if TYPE_CHECKING:
    from ..sync import Change
    from .rule import DocumentRule, Record


@dataclass
class _PaymentDocument:
    """A 1C payment document as Sdelka records it."""

    number: str
    fields: dict[str, Any]  # the payment's own fields: date, amount, purpose
    wanted: dict[int, Decimal]  # invoice pk → the amount the document's rows pay it
    unknown: Decimal  # what the rows pay to 1C documents Sdelka does not have


def _read_document(record: Record) -> _PaymentDocument:
    values = record.values
    wanted: dict[int, Decimal] = defaultdict(lambda: ZERO)
    unknown = ZERO
    for row in record.rows:
        amount = Decimal(str(row.get("amount") or 0)).quantize(ZERO)
        if row.get("invoice"):
            wanted[row["invoice"]] += amount
        else:
            unknown += amount
    return _PaymentDocument(
        number=(values.get("number") or v.text(record.raw.get("Number")))[:30],
        fields={
            "date": values.get("date"),
            "amount": Decimal(str(values.get("amount") or 0)).quantize(ZERO),
            "purpose": values.get("purpose", ""),
        },
        wanted=wanted,
        unknown=unknown,
    )


def apply_payment(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    document = _read_document(record)
    payment = Payment.objects.filter(pk=ref.object_id).first() if ref is not None else None
    withdrawn = _withdrawn(record)
    if withdrawn:
        _withdraw_payment(rule, record, ref, payment, change, document.number, withdrawn)
        return
    linked_from_bank = False
    if payment is None:
        payment = _same_payment(rule, record.values, document.number)
        linked_from_bank = payment is not None
    if payment is None:
        if not rule.syncer.task.create_allowed:
            change.action = "skipped"
            return
        _create_payment(rule, record, ref, change, document)
    else:
        _update_payment(rule, record, ref, change, payment, document, linked_from_bank=linked_from_bank)
    if document.unknown and not rule.syncer.dry_run:
        rule.syncer.event(
            EventLevel.INFO,
            _("%(amount)s of payment %(number)s settles 1C documents Sdelka does not have; left unallocated.")
            % {"amount": document.unknown, "number": document.number},
            external_id=record.external_id,
            obj=document.number,
        )


def _create_payment(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change,
                    document: _PaymentDocument) -> None:  # fmt: skip
    values, number = record.values, document.number
    change.action = "create"
    change.diff = {"number": (None, number), **{k: (None, val) for k, val in document.fields.items()},
                   "allocations": (None, {str(k): str(a) for k, a in document.wanted.items()})}  # fmt: skip
    if rule.syncer.dry_run:
        return
    with transaction.atomic():
        payment = sales.register_payment(
            user=rule.user,
            organisation=organisation(values["organisation_id"]),
            date=values["date"],
            amount=document.fields["amount"],
            counterparty=values.get("counterparty_id"),
            currency=values.get("currency") or "RUB",
            source=PaymentSource.ONEC,
            number=number,
            purpose=values.get("purpose", ""),
        )
        _allocate(rule, payment, document.wanted)
        rule.link(record, payment, ref, number, synced=_payment_state(document.fields, document.wanted))


def _update_payment(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change, payment: Payment,
                    document: _PaymentDocument, *, linked_from_bank: bool) -> None:  # fmt: skip
    current = {"date": payment.date, "amount": payment.amount, "purpose": payment.purpose}
    allocated = dict(payment.allocations.values_list("invoice_id", "amount"))
    diff = _payment_diff(payment, document, current, allocated, linked_from_bank=linked_from_bank)
    synced = _payment_state(document.fields, document.wanted)  # 1C's side; what both agree on once it is applied
    if ref is not None and not payment.cancelled:
        merged = merge_document(rule, ref, payment, _payment_state(current, allocated), synced, change)
        change.to_onec.clear()  # payments are not written to 1C: Sdelka's value simply stays
        synced = merged.synced
        diff = {name: pair for name, pair in diff.items()
                if name not in _PAYMENT_MERGED or _PAYMENT_MERGED[name] in merged.take}  # fmt: skip
    change.action = "update" if diff else "unchanged"
    change.diff = diff
    if rule.syncer.dry_run:
        return
    with transaction.atomic():
        payment = _write_payment_diff(rule, record, payment, document, diff)
        rule.link(record, payment, ref, document.number, synced=synced)
    if linked_from_bank:
        rule.syncer.event(
            EventLevel.INFO,
            _("Payment %(number)s from 1C is the one already in Sdelka (%(payment)s); linked, not recorded again.")
            % {"number": document.number, "payment": payment},
            external_id=record.external_id,
            obj=document.number,
        )


def _payment_diff(payment: Payment, document: _PaymentDocument, current: dict[str, Any],
                  allocated: dict[int, Decimal], *, linked_from_bank: bool) -> dict[str, tuple[Any, Any]]:  # fmt: skip
    diff = {name: (current[name], value) for name, value in document.fields.items() if current[name] != value}
    # A statement's payment keeps the bank's date of receipt and text; one typed by hand keeps its text.
    kept = {"date", "purpose"} if payment.source == PaymentSource.BANK else set()
    if linked_from_bank:
        kept.add("purpose")
    diff = {name: pair for name, pair in diff.items() if name not in kept}
    if linked_from_bank:
        diff["linked"] = (None, payment.pk)
    if payment.cancelled:
        diff["cancelled"] = (True, False)
    wanted = document.wanted
    if {k: a for k, a in wanted.items() if a} != allocated:
        diff["allocations"] = ({str(k): str(a) for k, a in allocated.items()},
                               {str(k): str(a) for k, a in wanted.items()})  # fmt: skip
    return diff


def _write_payment_diff(rule: DocumentRule, record: Record, payment: Payment, document: _PaymentDocument,
                        diff: dict[str, tuple[Any, Any]]) -> Payment:  # fmt: skip
    """Applies the update's diff; returns the payment as restored when 1C posted the document again."""
    if "cancelled" in diff:
        payment = sales.restore_payment(user=rule.user, payment=payment)
        rule.syncer.event(EventLevel.INFO, _("Payment %(number)s is posted in 1C again; valid again in Sdelka.")
                          % {"number": document.number}, external_id=record.external_id,
                          obj=document.number)  # fmt: skip
    if "allocations" in diff:
        for allocation in PaymentAllocation.objects.filter(payment=payment):
            sales.remove_allocation(user=rule.user, allocation=allocation)
    changed = {name: value for name, value in document.fields.items() if name in diff}
    if changed:
        sales.update_payment(user=rule.user, payment=payment, **changed)
    if "allocations" in diff:
        _allocate(rule, Payment.objects.get(pk=payment.pk), document.wanted)
    return payment


_PAYMENT_MERGED = {"date": "date", "amount": "amount", "purpose": "purpose", "allocations": ROWS}


def _payment_state(fields: dict[str, Any], allocations: dict[int, Decimal]) -> dict[str, str]:
    """A payment as doc_merge compares it; its allocations are its rows ("invoice id: amount" per line)."""
    rows = "\n".join(f"{invoice}: {amount}" for invoice, amount in sorted(allocations.items()) if amount)
    return {"date": fields["date"].isoformat() if fields["date"] else "", "amount": str(fields["amount"]),
            "purpose": fields["purpose"], ROWS: rows}  # fmt: skip


def _withdrawn(record: Record) -> str:
    """Why 1C no longer stands by the payment document ("" while it is posted and not marked for deletion)."""
    if v.boolean(record.raw.get("DeletionMark")):
        return _("1C marked the document for deletion")
    if not v.boolean(record.raw.get("Posted", True)):
        return _("1C unposted the document")
    return ""


def _withdraw_payment(rule: DocumentRule, record: Record, ref: ExternalRef | None, payment: Payment | None,
                      change: Change, number: str, reason: str) -> None:  # fmt: skip
    """A payment document unposted or deleted in 1C: its payment from 1C is cancelled (kept, never deleted) and
    the invoices it paid are released. One the bank statement brought too stays: the bank saw the money."""
    change.action = "unchanged"
    if payment is None or payment.cancelled:  # never brought, or cancelled already
        if payment is not None and not rule.syncer.dry_run:
            rule.link(record, payment, ref, number)
        return
    if payment.source != PaymentSource.ONEC:
        if not rule.syncer.dry_run:
            rule.link(record, payment, ref, number)
            rule.syncer.event(
                EventLevel.WARNING,
                _("Payment %(number)s: %(reason)s, but the payment came to Sdelka from a bank statement or by hand "
                  "too, so it stays; check the document in 1C.") % {"number": number, "reason": reason},
                external_id=record.external_id, obj=number,
            )  # fmt: skip
        return
    released = {number: str(amount) for number, amount in payment.allocations.values_list("invoice__number", "amount")}
    change.action = "update"
    change.diff = {"cancelled": (False, True), "allocations": (released, {})}
    if rule.syncer.dry_run:
        return
    with transaction.atomic():
        sales.cancel_payment(user=rule.user, payment=payment, reason=reason)
        rule.link(record, payment, ref, number)
    rule.syncer.event(
        EventLevel.WARNING,
        _("Payment %(number)s is cancelled: %(reason)s. Invoices it no longer pays: %(invoices)s.")
        % {"number": number, "reason": reason, "invoices": ", ".join(f"№ {n}" for n in released) or "—"},
        external_id=record.external_id,
        obj=number,
    )


def _same_payment(rule: DocumentRule, values: dict[str, Any], number: str) -> Payment | None:
    """The same incoming payment already in Sdelka from a bank statement (or entered by hand) and not yet
    linked to another 1C document of this base (payment_match.py says what "the same" is)."""
    date = values["date"]
    payer = values.get("counterparty_id")
    candidates = Payment.objects.filter(
        organisation_id=values["organisation_id"],
        direction=PaymentDirection.INCOMING,
        date__range=(date - DATE_TOLERANCE, date + DATE_TOLERANCE),
        amount=Decimal(str(values.get("amount") or 0)).quantize(ZERO),
        cancelled=False,
    ).exclude(
        pk__in=ExternalRef.objects.filter(
            connection=rule.syncer.connection, kind=rule.target.ref_kind, content_type=rule.content_type
        ).values("object_id")
    )
    if payer:
        inn = Counterparty.objects.filter(pk=payer).values_list("inn", flat=True).first() or ""
        candidates = candidates.filter(
            models.Q(counterparty_id=payer) | models.Q(counterparty__isnull=True, payer_inn=inn)
        )
    return pick_same(candidates[:20], number, date, number_of=lambda p: p.number, date_of=lambda p: p.date)


def _allocate(rule: DocumentRule, payment: Payment, wanted: dict[int, Decimal]) -> None:
    invoices = Invoice.objects.in_bulk(list(wanted))
    for invoice_id, amount in wanted.items():
        invoice = invoices.get(invoice_id)
        if invoice is None or amount <= 0:
            continue
        try:
            with transaction.atomic():
                sales.allocate_payment(user=rule.user, payment=payment, invoice=invoice, amount=amount)
        except ValidationError as exc:
            _name, message = first_error(exc)
            rule.syncer.event(
                EventLevel.WARNING,
                _("Payment %(number)s: %(amount)s not allocated to invoice № %(invoice)s: %(reason)s")
                % {"number": payment.number, "amount": amount, "invoice": invoice.number, "reason": message},
                external_id=payment.number,
                obj=str(payment),
            )
