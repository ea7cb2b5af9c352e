"""Invoices (and customer orders) from 1C, through the sales services.

Created through `create_invoice` + `issue_invoice` (Sdelka's own number; 1C's number is kept as the code of the
ExternalRef and shown in the comment). A later change in 1C updates the invoice; one already paid keeps its
lines and the change is refused with a reason. DeletionMark cancels it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from sdelka.exchange.apply_orders import invoice_owner
from sdelka.exchange.models import Direction, ExternalRef
from sdelka.parties.models import Counterparty
from sdelka.sales import services as sales
from sdelka.sales.models import Invoice, InvoiceStatus

from .. import values as v
from ..doc_merge import ROWS, merge_document
from .common import body_digest, organisation
from .invoice_state import comparable_lines, current_lines, invoice_state, rows_text
from .invoices_to_1c import InvoicePush

if TYPE_CHECKING:
    from ..sync import Change
    from .rule import DocumentRule, Record


def _invoice_lines(record: Record) -> tuple[list[dict[str, Any]], dict[str, str]]:
    lines, errors = [], {}
    for index, row in enumerate(record.rows, start=1):
        if row.get("product") is None and not row.get("description"):
            errors[f"Товары/{index}"] = _("Line %(n)s: the product %(guid)s is not in Sdelka and has no text.") % {
                "n": index, "guid": row.get("product_guid", "")}  # fmt: skip
            continue
        lines.append(
            {
                "product": row.get("product"),
                "description": row.get("description") or "",
                "quantity": row.get("quantity"),
                "price": row.get("price"),
                "vat_rate": row.get("vat_rate") or None,
            }
        )
    return lines, errors


def apply_invoice(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    lines, errors = _invoice_lines(record)
    if errors:
        raise ValidationError(errors)
    number = record.values.get("number") or v.text(record.raw.get("Number"))
    header = _invoice_header(record.values)
    invoice = Invoice.objects.filter(pk=ref.object_id).first() if ref is not None else None
    if invoice is None:
        _create_invoice(rule, record, ref, change, number, header, lines)
    else:
        _update_invoice_from_1c(rule, record, ref, change, invoice, number, header, lines)


def _invoice_header(values: dict[str, Any]) -> dict[str, Any]:
    """The invoice fields 1C fills, by the sales services' names; a field 1C leaves empty is not changed."""
    header = {
        "date": values.get("date"),
        "currency": values.get("currency") or "RUB",
        "vat_mode": values.get("vat_mode"),
    }
    header = {name: value for name, value in header.items() if value is not None}
    if "contract_id" in values:  # the rule maps the contract; an empty one in 1C clears it
        header["contract"] = values["contract_id"]
    if values.get("comment"):
        header["comment"] = values["comment"]
    return header


def _create_invoice(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change, number: str,
                    header: dict[str, Any], lines: list[dict[str, Any]]) -> None:  # fmt: skip
    values = record.values
    if not rule.syncer.task.create_allowed:
        change.action = "skipped"
        return
    if not values.get("is_active", True):
        change.action = "unchanged"  # made and deleted in 1C: nothing to bring
        return
    change.action = "create"
    change.diff = {"number_1c": (None, number), **{k: (None, val) for k, val in header.items()},
                   "lines": (None, len(lines))}  # fmt: skip
    if rule.syncer.dry_run:
        return
    with transaction.atomic():
        counterparty = Counterparty.objects.select_related("owner").get(pk=values["counterparty_id"])
        invoice = sales.create_invoice(
            user=rule.user,
            organisation=organisation(values["organisation_id"]),
            counterparty=counterparty,
            owner=invoice_owner(counterparty),
            lines=lines,
            **{"comment": _("Invoice № %(number)s in 1C") % {"number": number}, **header},
        )
        sales.issue_invoice(user=rule.user, invoice=invoice)
        _adopt(rule, invoice, rule.link(record, invoice, ref, number, synced=invoice_state(invoice)))


def _update_invoice_from_1c(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change,
                            invoice: Invoice, number: str, header: dict[str, Any],
                            lines: list[dict[str, Any]]) -> None:  # fmt: skip
    """An invoice already linked: cancelled when 1C deleted it, else changed by the fields merged from 1C."""
    diff = _invoice_diff(invoice, record.values, header, lines)
    merged = None
    if not record.values.get("is_active", True) and invoice.status != InvoiceStatus.CANCELLED:
        diff["status"] = (invoice.status, InvoiceStatus.CANCELLED)
    elif ref is not None:
        merged = merge_document(rule, ref, invoice, invoice_state(invoice), _onec_invoice_state(header, lines), change)
        header = {name: value for name, value in header.items() if name in merged.take}
        if ROWS not in merged.take:
            lines = current_lines(invoice)
        decided = {*_INVOICE_MERGED, "lines"}
        diff = {name: pair for name, pair in diff.items()
                if name not in decided or (ROWS if name == "lines" else name) in merged.take}  # fmt: skip
    change.action = "update" if diff or change.to_onec else "unchanged"
    change.diff = diff
    if rule.syncer.dry_run:
        return
    with transaction.atomic():
        if "status" in diff:
            sales.cancel_invoice(user=rule.user, invoice=invoice)
        elif diff:
            _update_invoice(rule, invoice, header, lines, money="lines" in diff or "vat_mode" in diff)
        ref = rule.link(record, invoice, ref, number, synced=merged.synced if merged else None)
        if merged is None or not merged.send:  # Sdelka's values to send keep the hash empty: the write sends them
            _adopt(rule, Invoice.objects.get(pk=invoice.pk), ref)


_INVOICE_MERGED = ("date", "currency", "vat_mode", "comment", "contract")


def _onec_invoice_state(header: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, str]:
    """1C's side: the header fields it fills (an empty 1C comment does not clear Sdelka's) and the rows."""
    state = {name: value.isoformat() if name == "date" else str(value or "") for name, value in header.items()
             if name in _INVOICE_MERGED}  # fmt: skip
    return {**state, ROWS: rows_text(lines)}


def _adopt(rule: DocumentRule, invoice: Invoice, ref: ExternalRef) -> None:
    """An invoice just read from 1C is as 1C has it: for a two-way rule its hash is that of the body a write
    would send, so the write that follows sends nothing until the invoice changes in Sdelka."""
    if rule.rule.direction != Direction.BOTH:
        return
    push = InvoicePush(rule.syncer, rule.rule, rule.outcome)
    body, errors = push.body(invoice, push.guids([invoice]), linked=True)
    if not errors:
        ExternalRef.objects.filter(pk=ref.pk).update(content_hash=body_digest(body))


def _invoice_diff(invoice: Invoice, values: dict[str, Any], header: dict[str, Any],
                  lines: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:  # fmt: skip
    diff: dict[str, tuple[Any, Any]] = {}
    current = {"date": invoice.date, "currency": invoice.currency_id, "vat_mode": invoice.vat_mode,
               "comment": invoice.comment, "contract": invoice.contract_id}  # fmt: skip
    for name, value in header.items():
        if current[name] != value:
            diff[name] = (current[name], value)
    if values.get("counterparty_id") != invoice.counterparty_id:
        diff["counterparty"] = (invoice.counterparty_id, values.get("counterparty_id"))
    stored = [
        {"product": line.product_id, "quantity": line.quantity, "price": line.price, "vat_rate": line.vat_rate}
        for line in invoice.lines.all()
    ]
    if comparable_lines(stored) != comparable_lines(lines):
        diff["lines"] = (len(stored), len(lines))
    return diff


def _update_invoice(rule: DocumentRule, invoice: Invoice, header: dict[str, Any], lines: list[dict[str, Any]],
                    *, money: bool) -> None:  # fmt: skip
    """1C changed the invoice: an unpaid one takes the change (back to a draft for the money fields, then
    issued again, so the history shows both steps); a paid one keeps its lines."""
    if money and invoice.status != InvoiceStatus.DRAFT:
        if invoice.allocations.exists():
            raise ValidationError(
                {"lines": _("The invoice has payments in Sdelka; remove them before 1C's new lines can be applied.")}
            )
        Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.DRAFT)
        invoice.refresh_from_db()
        updated = sales.update_invoice(user=rule.user, invoice=invoice, lines=lines, **header)
        sales.issue_invoice(user=rule.user, invoice=updated)
        return
    free = {name: value for name, value in header.items() if name in sales.INVOICE_FREE_FIELDS or not money}
    sales.update_invoice(user=rule.user, invoice=invoice, **free)
