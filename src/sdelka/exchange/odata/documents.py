"""Rules of documents and registers: invoices / customer orders with their rows (both ways), incoming payments
allocated to invoices, prices from the price register's last slice and counterparty debt from the settlement
registers' balance. The generic page writer (`sync.Syncer._page`) handles flat catalog objects; these need the
sales services (numbering, totals, allocations, history) and read 1C's rows or virtual tables.

* Invoices from 1C: created through `create_invoice` + `issue_invoice` (Sdelka's own number; 1C's number is
  kept as the code of the ExternalRef and shown in the comment). A later change in 1C updates the invoice;
  one already paid keeps its lines and the change is refused with a reason. DeletionMark cancels it.
* Invoices to 1C: issued (not draft) invoices are POSTed / PATCHed with their rows sent whole, LineNumber 1..n;
  the object is read back and every header field and row compared; with the task's "post documents" the
  document is posted, and 1C's refusal text becomes the error event.
* Payments from 1C: one Sdelka payment per 1C document. A payment already in Sdelka from a bank statement
  (same organisation, amount and payer, dates a day apart at most, the same number when both have one:
  payment_match.py) is linked, not duplicated; it keeps the bank's date and text. The rows of
  РасшифровкаПлатежа allocate it to the invoices they name, through `allocate_payment`. A document unposted or
  marked for deletion in 1C cancels its payment (kept, allocations released); posted again, it is valid again.
* Debt: `<register>/Balance(…)` once per run; the balance per counterparty and currency is stored with the
  moment it was read.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.catalog.models import Price
from sdelka.exchange.apply_orders import exchange_user
from sdelka.exchange.models import Conflict, ConflictStatus, Direction, EventLevel, ExchangeRun, ExternalRef
from sdelka.exchange.payment_match import DATE_TOLERANCE, pick_same
from sdelka.parties.models import Counterparty
from sdelka.sales import services as sales
from sdelka.sales.models import Invoice, InvoiceStatus, Payment, PaymentAllocation, PaymentDirection, PaymentSource

from . import values as v
from .client import ODataError
from .doc_merge import ROWS, merge_document, ownership_of
from .fields import (
    Currencies,
    Lookups,
    Read,
    fallback_guids,
    lookup_guids,
    read_value,
    row_field,
    same,
    sdelka_field,
    split_pairs,
    write_value,
)
from .models import CounterpartyDebt, MappingRule, Ownership, SdelkaEntity
from .targets import TARGETS, Target

if TYPE_CHECKING:
    from .sync import Change, RuleResult, Syncer

ZERO = Decimal("0.00")


def _digest(values: Any) -> str:
    payload = json.dumps(values, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8"), usedforsecurity=False).hexdigest()


def _first_error(exc: ValidationError) -> tuple[str, str]:
    if hasattr(exc, "error_dict"):
        name, messages = next(iter(exc.message_dict.items()))
        return name, messages[0]
    return "", exc.messages[0]


class Record:
    """One 1C document read through a rule: header values, rows, GUIDs still to resolve, errors by 1C field."""

    def __init__(self, external_id: str, version: str, raw: dict[str, Any]) -> None:
        self.external_id = external_id
        self.version = version
        self.raw = raw
        self.values: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []
        self.guids: dict[str, str | None] = {}  # header field → GUID
        self.row_guids: list[dict[str, str | None]] = []
        self.errors: dict[str, str] = {}


class DocumentRule:
    """Reads a document rule's 1C objects page by page and hands each record to `apply` (or to the diff)."""

    def __init__(self, syncer: Syncer, rule: MappingRule, outcome: RuleResult) -> None:
        self.syncer = syncer
        self.rule = rule
        self.outcome = outcome
        self.target: Target = TARGETS[rule.entity]
        self.header, self.parts = split_pairs(rule)
        self.lookups = Lookups(syncer.client)
        self.currencies = Currencies.load()
        self.user = exchange_user()
        self.content_type = ContentType.objects.get_for_model(self.target.model)

    # --- reading ---

    def select(self) -> list[str]:
        label = "Number" if self.rule.entity_set.startswith("Document_") else "Description"
        names = ["Ref_Key", "DataVersion", label, *self.rule.key_fields]
        for pair in self.header:
            if pair.get("onec"):
                names.append(pair["onec"])
                if pair.get("type"):
                    names.append(f"{pair['onec']}_Type")
                if pair.get("fallback"):
                    names.append(pair["fallback"]["onec"])
        if self.rule.entity == SdelkaEntity.PAYMENT:
            names += ["Posted", "DeletionMark"]  # a payment unposted or deleted in 1C is cancelled in Sdelka
        names += list(self.parts)
        return list(dict.fromkeys(names))

    def read(self, row: dict[str, Any]) -> Record:
        record = Record(v.text(row.get("Ref_Key")).lower(), v.text(row.get("DataVersion")), row)
        for pair in self.header:
            spec = self.target.fields[pair["sdelka"]]
            self._take(record, pair, read_value(pair, spec, row, self.lookups, self.currencies), record.values,
                       record.guids)  # fmt: skip
        for part, pairs in self.parts.items():
            for line in sorted(row.get(part) or [], key=lambda r: v.integer(r.get("LineNumber")) or 0):
                values: dict[str, Any] = {}
                guids: dict[str, str | None] = {}
                for pair in pairs:
                    spec = self.target.fields[pair["sdelka"]]
                    self._take(record, pair, read_value(pair, spec, line, self.lookups, self.currencies), values,
                               guids)  # fmt: skip
                record.rows.append(values)
                record.row_guids.append(guids)
        return record

    def _take(self, record: Record, pair: dict[str, Any], read: Read, values: dict[str, Any],
              guids: dict[str, str | None]) -> None:  # fmt: skip
        name = sdelka_field(pair)
        if read.error:
            record.errors[pair.get("onec", name)] = read.error
        elif self.target.fields[pair["sdelka"]].kind == "ref":
            guids[name] = read.guid
        else:
            values[name] = read.value

    def prefetch(self, rows: list[dict[str, Any]]) -> None:
        header = lookup_guids(self.header, rows)
        for part, pairs in self.parts.items():
            lines = [line for row in rows for line in (row.get(part) or [])]
            for key, guids in lookup_guids(pairs, lines).items():
                header.setdefault(key, set()).update(guids)
        for (entity_set, field_name), wanted in header.items():
            self.lookups.prefetch(entity_set, field_name, wanted)
        for (entity_set, field_name), wanted in fallback_guids(self.header, rows).items():
            self.lookups.prefetch_owners(entity_set, field_name, wanted)

    def resolve(self, records: list[Record]) -> dict[tuple[str, str], int]:
        """(entity, GUID) → Sdelka pk for every reference of the page, one query per entity."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for record in records:
            for name, guid in record.guids.items():
                if guid:
                    wanted[self._ref_entity(name, header=True)].add(guid)
            for guids in record.row_guids:
                for name, guid in guids.items():
                    if guid:
                        wanted[self._ref_entity(name, header=False)].add(guid)
        found: dict[tuple[str, str], int] = {}
        for entity, ids in wanted.items():
            for ext, pk in ExternalRef.objects.filter(
                connection=self.syncer.connection, kind=TARGETS[entity].ref_kind, external_id__in=ids
            ).values_list("external_id", "object_id"):
                found[(entity, ext)] = pk
        return found

    def _ref_entity(self, name: str, *, header: bool) -> str:
        for key, spec in self.target.fields.items():
            if spec.kind == "ref" and key.rpartition(".")[2] == name and (("." not in key) == header):
                return spec.ref
        raise KeyError(name)

    def _onec(self, name: str, *, header: bool = True) -> str:
        for pair in self.header if header else [p for pairs in self.parts.values() for p in pairs]:
            if sdelka_field(pair) == name:
                return str(pair.get("onec", name))
        return name

    def pull(self, start: int) -> None:
        syncer, rule = self.syncer, self.rule
        self.outcome.total = syncer.client.count(rule.entity_set, rule.filter)
        if syncer.run is not None:
            ExchangeRun.objects.filter(pk=syncer.run.pk).update(total=F("total") + self.outcome.total)
        for offset, rows in syncer.client.pages(
            rule.entity_set, select=self.select(), filter=rule.filter, page_size=max(1, syncer.task.page_size),
            start=start,
        ):  # fmt: skip
            self.page(rows)
            syncer.progress(rule, offset + len(rows), len(rows))

    def page(self, rows: list[dict[str, Any]]) -> None:
        from .sync import Change

        known = {
            ref.external_id: ref
            for ref in ExternalRef.objects.filter(
                connection=self.syncer.connection,
                kind=self.target.ref_kind,
                external_id__in=[v.text(row.get("Ref_Key")).lower() for row in rows],
            )
        }
        fresh = []
        for row in rows:
            ref = known.get(v.text(row.get("Ref_Key")).lower())
            if ref is not None and ref.version == v.text(row.get("DataVersion")) and not self.syncer.full:
                self.outcome.count(Change("unchanged", ref.external_id, ref.code), keep=False)
                continue
            fresh.append(row)
        if not fresh:
            return
        self.prefetch(fresh)
        records = [self.read(row) for row in fresh]
        resolved = self.resolve(records)
        for record in records:
            label = v.text(record.raw.get("Number") or record.raw.get("Description"))
            change = Change("pending", record.external_id, label or record.external_id)
            self.decide(record, known.get(record.external_id), resolved, change)

    def decide(self, record: Record, ref: ExternalRef | None, resolved: dict[tuple[str, str], int],
               change: Change) -> None:  # fmt: skip
        for name, guid in record.guids.items():
            pk = resolved.get((self._ref_entity(name, header=True), guid or ""))
            if guid and pk is None:
                record.errors[self._onec(name)] = _(
                    "Refers to a 1C object not yet in Sdelka (%(guid)s); run the rule that brings it first."
                ) % {"guid": guid}
            record.values[f"{name}_id"] = pk
        for index, guids in enumerate(record.row_guids):
            for name, guid in guids.items():
                record.rows[index][name] = resolved.get((self._ref_entity(name, header=False), guid or ""))
                if guid and record.rows[index][name] is None:
                    record.rows[index][f"{name}_guid"] = guid
        missing = [
            self._onec(name.rpartition(".")[2], header="." not in name)
            for name, spec in self.target.fields.items()
            if spec.required and "." not in name and spec.kind == "ref" and not record.values.get(f"{name}_id")
        ]
        for onec in missing:
            record.errors.setdefault(onec, _("Empty in 1C; Sdelka needs it."))
        if record.errors:
            change.action, change.errors = "refused", record.errors
            self.syncer._refused(change, self.outcome, record.raw)
            return
        try:
            APPLY[self.rule.entity](self, record, ref, change)
        except ValidationError as exc:
            name, message = _first_error(exc)
            change.action, change.errors = "refused", {self._onec(name.partition(".")[0]) or name: message}
            self.syncer._refused(change, self.outcome, record.raw)
            return
        self.outcome.count(change, keep=True)
        if self.syncer.run is not None and change.action in ("create", "update"):
            counter = "created" if change.action == "create" else "updated"
            ExchangeRun.objects.filter(pk=self.syncer.run.pk).update(**{counter: F(counter) + 1})

    def link(self, record: Record, obj: models.Model, ref: ExternalRef | None, code: str = "",
             synced: dict[str, str] | None = None) -> ExternalRef:  # fmt: skip
        """Remember the 1C object, its DataVersion and (documents) the values both sides now agree on."""
        if ref is None:
            ref = ExternalRef(
                connection=self.syncer.connection,
                kind=self.target.ref_kind,
                external_id=record.external_id,
                content_type=self.content_type,
                object_id=obj.pk,
            )
        ref.version = record.version[:100]
        ref.code = code[:100]
        ref.content_hash = ""
        ref.seen_run = self.syncer.run
        if synced is not None:
            ref.synced = synced
        ref.save()
        return ref


# --- invoices from 1C ---------------------------------------------------------------------------------------


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


def _comparable_lines(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (line.get("product"), Decimal(str(line.get("quantity") or 0)).normalize(),
         Decimal(str(line.get("price") or 0)).quantize(ZERO), line.get("vat_rate"))
        for line in lines
    ]  # fmt: skip


def apply_invoice(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    values = record.values
    lines, errors = _invoice_lines(record)
    if errors:
        raise ValidationError(errors)
    number = values.get("number") or v.text(record.raw.get("Number"))
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
    invoice = Invoice.objects.filter(pk=ref.object_id).first() if ref is not None else None
    active = values.get("is_active", True)
    if invoice is None:
        if not rule.syncer.task.create_allowed:
            change.action = "skipped"
            return
        if not active:
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
                organisation=_organisation(values["organisation_id"]),
                counterparty=counterparty,
                owner=counterparty.owner if counterparty.owner.is_active else None,  # in its manager's own list
                lines=lines,
                **{"comment": _("Invoice № %(number)s in 1C") % {"number": number}, **header},  # type: ignore[arg-type]
            )
            sales.issue_invoice(user=rule.user, invoice=invoice)
            _adopt(rule, invoice, rule.link(record, invoice, ref, number, synced=_invoice_state(invoice)))
        return
    diff = _invoice_diff(invoice, values, header, lines)
    merged = None
    if not active and invoice.status != InvoiceStatus.CANCELLED:
        diff["status"] = (invoice.status, InvoiceStatus.CANCELLED)
    elif ref is not None:
        merged = merge_document(rule, ref, invoice, _invoice_state(invoice), _onec_invoice_state(header, lines), change)
        header = {name: value for name, value in header.items() if name in merged.take}
        if ROWS not in merged.take:
            lines = _current_lines(invoice)
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


def _rows_text(lines: list[dict[str, Any]]) -> str:
    """The rows as one comparable, readable value: a line per row (product id, quantity, price, VAT rate)."""
    return "\n".join(f"{product or '—'} × {quantity:f} × {price} ({vat or '—'})"
                     for product, quantity, price, vat in _comparable_lines(lines))  # fmt: skip


def _current_lines(invoice: Invoice) -> list[dict[str, Any]]:
    return [
        {"product": line.product_id, "description": line.description, "quantity": line.quantity,
         "price": line.price, "vat_rate": line.vat_rate}
        for line in invoice.lines.all()
    ]  # fmt: skip


def _invoice_state(invoice: Invoice) -> dict[str, str]:
    """Sdelka's side of a linked invoice, as doc_merge compares it."""
    return {"date": invoice.date.isoformat(), "currency": str(invoice.currency_id), "vat_mode": str(invoice.vat_mode),
            "comment": invoice.comment, "contract": str(invoice.contract_id or ""),
            ROWS: _rows_text(_current_lines(invoice))}  # fmt: skip


def _onec_invoice_state(header: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, str]:
    """1C's side: the header fields it fills (an empty 1C comment does not clear Sdelka's) and the rows."""
    state = {name: value.isoformat() if name == "date" else str(value or "") for name, value in header.items()
             if name in _INVOICE_MERGED}  # fmt: skip
    return {**state, ROWS: _rows_text(lines)}


def _adopt(rule: DocumentRule, invoice: Invoice, ref: ExternalRef) -> None:
    """An invoice just read from 1C is as 1C has it: for a two-way rule its hash is that of the body a write
    would send, so the write that follows sends nothing until the invoice changes in Sdelka."""
    if rule.rule.direction != Direction.BOTH:
        return
    push = InvoicePush(rule.syncer, rule.rule, rule.outcome)
    body, errors = push.body(invoice, push.guids([invoice]), linked=True)
    if not errors:
        ExternalRef.objects.filter(pk=ref.pk).update(content_hash=_digest(body))


def _organisation(pk: int) -> Any:
    from sdelka.sales.models import Organisation

    return Organisation.objects.get(pk=pk)


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
    if _comparable_lines(stored) != _comparable_lines(lines):
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


# --- payments from 1C ---------------------------------------------------------------------------------------


def apply_payment(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    values = record.values
    number = (values.get("number") or v.text(record.raw.get("Number")))[:30]
    wanted: dict[int, Decimal] = defaultdict(lambda: ZERO)
    unknown = ZERO
    for row in record.rows:
        amount = Decimal(str(row.get("amount") or 0)).quantize(ZERO)
        if row.get("invoice"):
            wanted[row["invoice"]] += amount
        else:
            unknown += amount
    payment = Payment.objects.filter(pk=ref.object_id).first() if ref is not None else None
    withdrawn = _withdrawn(record)
    if withdrawn:
        _withdraw_payment(rule, record, ref, payment, change, number, withdrawn)
        return
    linked_from_bank = False
    if payment is None:
        payment = _same_payment(rule, values, number)
        linked_from_bank = payment is not None
    amount = Decimal(str(values.get("amount") or 0)).quantize(ZERO)
    fields = {"date": values.get("date"), "amount": amount, "purpose": values.get("purpose", "")}
    synced = _payment_state(fields, wanted)  # 1C's side; what both agree on once it is applied
    if payment is None:
        if not rule.syncer.task.create_allowed:
            change.action = "skipped"
            return
        change.action = "create"
        change.diff = {"number": (None, number), **{k: (None, val) for k, val in fields.items()},
                       "allocations": (None, {str(k): str(a) for k, a in wanted.items()})}  # fmt: skip
        if rule.syncer.dry_run:
            return
        with transaction.atomic():
            payment = sales.register_payment(
                user=rule.user,
                organisation=_organisation(values["organisation_id"]),
                date=values["date"],
                amount=amount,
                counterparty=values.get("counterparty_id"),
                currency=values.get("currency") or "RUB",
                source=PaymentSource.ONEC,
                number=number,
                purpose=values.get("purpose", ""),
            )
            _allocate(rule, payment, wanted)
            rule.link(record, payment, ref, number, synced=synced)
    else:
        current = {"date": payment.date, "amount": payment.amount, "purpose": payment.purpose}
        diff = {name: (current[name], value) for name, value in fields.items() if current[name] != value}
        # A statement's payment keeps the bank's date of receipt and text; one typed by hand keeps its text.
        kept = {"date", "purpose"} if payment.source == PaymentSource.BANK else set()
        if linked_from_bank:
            kept.add("purpose")
        diff = {name: pair for name, pair in diff.items() if name not in kept}
        if linked_from_bank:
            diff["linked"] = (None, payment.pk)
        if payment.cancelled:
            diff["cancelled"] = (True, False)
        allocated = dict(payment.allocations.values_list("invoice_id", "amount"))
        if {k: a for k, a in wanted.items() if a} != allocated:
            diff["allocations"] = ({str(k): str(a) for k, a in allocated.items()},
                                   {str(k): str(a) for k, a in wanted.items()})  # fmt: skip
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
            if "cancelled" in diff:
                payment = sales.restore_payment(user=rule.user, payment=payment)
                rule.syncer.event(EventLevel.INFO, _("Payment %(number)s is posted in 1C again; valid again in Sdelka.")
                                  % {"number": number}, external_id=record.external_id, obj=number)  # fmt: skip
            if "allocations" in diff:
                for allocation in PaymentAllocation.objects.filter(payment=payment):
                    sales.remove_allocation(user=rule.user, allocation=allocation)
            changed = {name: value for name, value in fields.items() if name in diff}
            if changed:
                sales.update_payment(user=rule.user, payment=payment, **changed)
            if "allocations" in diff:
                _allocate(rule, Payment.objects.get(pk=payment.pk), wanted)
            rule.link(record, payment, ref, number, synced=synced)
        if linked_from_bank:
            rule.syncer.event(
                EventLevel.INFO,
                _("Payment %(number)s from 1C is the one already in Sdelka (%(payment)s); linked, not recorded again.")
                % {"number": number, "payment": payment},
                external_id=record.external_id,
                obj=number,
            )
    if unknown and not rule.syncer.dry_run:
        rule.syncer.event(
            EventLevel.INFO,
            _("%(amount)s of payment %(number)s settles 1C documents Sdelka does not have; left unallocated.")
            % {"amount": unknown, "number": number},
            external_id=record.external_id,
            obj=number,
        )


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
            _name, message = _first_error(exc)
            rule.syncer.event(
                EventLevel.WARNING,
                _("Payment %(number)s: %(amount)s not allocated to invoice № %(invoice)s: %(reason)s")
                % {"number": payment.number, "amount": amount, "invoice": invoice.number, "reason": message},
                external_id=payment.number,
                obj=str(payment),
            )


# --- a counterparty's bank accounts and contact persons from 1C ---------------------------------------------

_BANK_FIELDS = ("number", "bik", "bank_name", "correspondent_account")
_CONTACT_FIELDS = ("last_name", "first_name", "middle_name", "position", "birthday", "is_active")


def _apply_row(
    rule: DocumentRule,
    record: Record,
    ref: ExternalRef | None,
    change: Change,
    *,
    model: type[models.Model],
    fields: tuple[str, ...],
    find: Callable[[dict[str, Any]], models.Model | None],
    add: Callable[..., models.Model],
    update: Callable[..., models.Model],
    delete: Callable[..., None] | None,
) -> None:
    """A row of a counterparty (bank account, contact person) through the parties services, which check it
    like the card does. Linked by the 1C id, else by `find` (an account already typed in Sdelka)."""
    values = record.values
    data = {name: values[name] for name in fields if name in values}
    active = values.get("is_active", True)
    row = model._default_manager.filter(pk=ref.object_id).first() if ref is not None else None
    if row is None:
        row = find(values)
    if row is None:
        if not active or not rule.syncer.task.create_allowed:
            change.action = "unchanged" if not active else "skipped"
            return
        change.action, change.diff = "create", {name: (None, value) for name, value in data.items()}
        if not rule.syncer.dry_run:
            with transaction.atomic():
                counterparty = Counterparty.objects.get(pk=values["counterparty_id"])
                rule.link(record, add(user=rule.user, counterparty=counterparty, data=data), None)
        return
    if not active and delete is not None:
        if ref is None:  # marked for deletion in 1C, typed in Sdelka by hand: left alone, not linked
            change.action = "unchanged"
            return
        change.action, change.diff = "update", {"deleted": (False, True)}
        if not rule.syncer.dry_run:
            with transaction.atomic():
                ExternalRef.objects.filter(pk=ref.pk).delete()
                delete(row)
        return
    diff = {name: (getattr(row, name), value) for name, value in data.items() if getattr(row, name) != value}
    change.action, change.diff = ("update" if diff else "unchanged"), diff
    if not rule.syncer.dry_run:
        with transaction.atomic():
            if diff:
                row = update(row, {name: new for name, (_old, new) in diff.items()})
            rule.link(record, row, ref)


def apply_bank_account(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    from sdelka.parties import services as parties
    from sdelka.parties.models import CounterpartyBankAccount

    def find(values: dict[str, Any]) -> Any:
        return CounterpartyBankAccount.objects.filter(
            counterparty_id=values["counterparty_id"], number=values.get("number"), bik=values.get("bik")
        ).first()

    _apply_row(
        rule, record, ref, change, model=CounterpartyBankAccount, fields=_BANK_FIELDS, find=find,
        add=parties.add_bank_account,
        update=lambda row, data: parties.update_bank_account(user=rule.user, bank_account=row, data=data),
        delete=lambda row: parties.delete_bank_account(user=rule.user, bank_account=row),
    )  # fmt: skip


def apply_contact(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    from sdelka.parties import services as parties
    from sdelka.parties.models import ContactPerson

    def find(values: dict[str, Any]) -> Any:
        return ContactPerson.objects.filter(
            counterparty_id=values["counterparty_id"],
            last_name=values.get("last_name", ""),
            first_name=values.get("first_name", ""),
            middle_name=values.get("middle_name", ""),
        ).first()

    _apply_row(
        rule, record, ref, change, model=ContactPerson, fields=_CONTACT_FIELDS, find=find,
        add=parties.add_contact,
        update=lambda row, data: parties.update_contact(user=rule.user, contact=row, data=data),
        delete=None,  # a contact marked for deletion in 1C is kept, inactive
    )  # fmt: skip


# The contract's own fields, as the comparison reads them on the model (`organisation_id`, `currency_id`).
_CONTRACT_FIELDS = (
    "organisation_id", "kind", "name", "number", "date", "valid_until", "currency_id", "comment", "is_active",
)  # fmt: skip


def _contract_data(data: dict[str, Any]) -> dict[str, Any]:
    """The service's names for the values of `_CONTRACT_FIELDS`."""
    renamed = {"organisation_id": "organisation", "currency_id": "currency"}
    return {renamed.get(name, name): value for name, value in data.items()}


def apply_contract(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    """A counterparty's contract, through the sales services; one marked for deletion in 1C is closed."""
    from sdelka.sales.models import Contract

    values = record.values
    if "currency" in values:
        values["currency_id"] = values.pop("currency") or "RUB"
    if not values.get("name"):
        values.pop("name", None)  # the service names it «Договор № … от …»

    def find(found: dict[str, Any]) -> Any:
        if not found.get("number"):
            return None
        return Contract.objects.filter(
            counterparty_id=found["counterparty_id"], number=found["number"], date=found.get("date")
        ).first()

    _apply_row(
        rule, record, ref, change, model=Contract, fields=_CONTRACT_FIELDS, find=find,
        add=lambda user, counterparty, data: sales.create_contract(
            user=user, counterparty=counterparty, **_contract_data(data)
        ),
        update=lambda row, data: sales.update_contract(user=rule.user, contract=row, **_contract_data(data)),
        delete=None,
    )  # fmt: skip


APPLY: dict[str, Callable[[DocumentRule, Record, ExternalRef | None, Change], None]] = {
    SdelkaEntity.INVOICE: apply_invoice,
    SdelkaEntity.PAYMENT: apply_payment,
    SdelkaEntity.BANK_ACCOUNT: apply_bank_account,
    SdelkaEntity.CONTACT: apply_contact,
    SdelkaEntity.CONTRACT: apply_contract,
}


# --- invoices to 1C -----------------------------------------------------------------------------------------


class InvoicePush:
    """Issued Sdelka invoices → 1C documents with their rows, read back and compared; posted on request."""

    def __init__(self, syncer: Syncer, rule: MappingRule, outcome: RuleResult) -> None:
        self.syncer = syncer
        self.rule = rule
        self.outcome = outcome
        self.target = TARGETS[rule.entity]
        self.header, self.parts = split_pairs(rule)
        self.lookups = Lookups(syncer.client)
        self.currencies = Currencies.load()
        self.content_type = ContentType.objects.get_for_model(Invoice)

    def invoices(self) -> models.QuerySet[Invoice]:
        return Invoice.objects.exclude(status=InvoiceStatus.DRAFT).order_by("pk")

    def run(self) -> None:
        from .sync import Change

        queryset = self.invoices()
        self.outcome.total = queryset.count()
        if self.syncer.run is not None:
            ExchangeRun.objects.filter(pk=self.syncer.run.pk).update(total=F("total") + self.outcome.total)
        last = 0
        while chunk := list(queryset.filter(pk__gt=last).select_related("contract").prefetch_related("lines")[:100]):
            last = chunk[-1].pk
            refs = {
                ref.object_id: ref
                for ref in ExternalRef.objects.filter(
                    connection=self.syncer.connection, kind=self.target.ref_kind, content_type=self.content_type,
                    object_id__in=[i.pk for i in chunk],
                )
            }  # fmt: skip
            guids = self.guids(chunk)
            waiting = set(
                Conflict.objects.filter(external_ref__in=list(refs.values()), status=ConflictStatus.OPEN).values_list(
                    "external_ref_id", flat=True
                )
            )
            for invoice in chunk:
                ref = refs.get(invoice.pk)
                if ref is not None and ref.pk in waiting:  # a person decides first: 1C's document stays as it is
                    self.outcome.count(Change("skipped", ref.external_id, str(invoice)), keep=False)
                    continue
                self.one(invoice, ref, guids)
            self.syncer.progress(self.rule, 0, len(chunk))

    def guids(self, chunk: list[Invoice]) -> dict[tuple[str, Any], str]:
        wanted: dict[str, set[int]] = defaultdict(set)
        for invoice in chunk:
            wanted[SdelkaEntity.COUNTERPARTY].add(invoice.counterparty_id)
            wanted[SdelkaEntity.ORGANISATION].add(invoice.organisation_id)
            if invoice.contract_id:
                wanted[SdelkaEntity.CONTRACT].add(invoice.contract_id)
            for line in invoice.lines.all():
                if line.product_id:
                    wanted[SdelkaEntity.PRODUCT].add(line.product_id)
        out: dict[tuple[str, Any], str] = {}
        for entity, pks in wanted.items():
            for object_id, external_id in ExternalRef.objects.filter(
                connection=self.syncer.connection, kind=TARGETS[entity].ref_kind, object_id__in=pks
            ).values_list("object_id", "external_id"):
                out[(entity, object_id)] = external_id
        return out

    def body(self, invoice: Invoice, guids: dict[tuple[str, Any], str], *,
             linked: bool = False) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
        """The 1C document of an invoice; for one 1C already has, without the fields 1C owns (never written)."""
        errors: dict[str, str] = {}
        sources = {
            "number": invoice.number, "date": invoice.date, "organisation": invoice.organisation_id,
            "counterparty": invoice.counterparty_id, "currency": invoice.currency_id, "vat_mode": invoice.vat_mode,
            "comment": invoice.comment, "is_active": invoice.status != InvoiceStatus.CANCELLED,
            # a contract 1C does not know yet is left out (see `one`), not a reason to hold the invoice back
            "contract": invoice.contract_id if (SdelkaEntity.CONTRACT, invoice.contract_id) in guids else None,
        }  # fmt: skip
        body: dict[str, Any] = {}
        for pair in self.header:
            if "const" in pair or not pair.get("onec") or pair["sdelka"] == "number":
                continue  # 1C numbers its documents itself
            if linked and ownership_of(self.rule, pair["sdelka"]) == Ownership.ONEC and pair["sdelka"] != "is_active":
                continue
            value, error = write_value(pair, self.target.fields[pair["sdelka"]], sources[pair["sdelka"]], guids,
                                       self.lookups, self.currencies)  # fmt: skip
            if error:
                errors[pair["onec"]] = error
            else:
                body[pair["onec"]] = value
        for part, pairs in self.parts.items():
            if linked and ownership_of(self.rule, ROWS) == Ownership.ONEC:
                continue
            rows = []
            for number, line in enumerate(invoice.lines.all(), start=1):
                row: dict[str, Any] = {"LineNumber": number}
                line_values = {"product": line.product_id, "description": line.description,
                               "quantity": line.quantity, "price": line.price, "amount": line.amount,
                               "vat_rate": line.vat_rate, "vat_amount": line.vat_amount}  # fmt: skip
                for pair in pairs:
                    value, error = write_value(pair, self.target.fields[pair["sdelka"]],
                                               line_values[sdelka_field(pair)], guids, self.lookups,
                                               self.currencies)  # fmt: skip
                    if error:
                        errors[f"{pair['onec']} ({number})"] = error
                    else:
                        row[row_field(pair)] = value
                rows.append(row)
            body[part] = rows
        return body, errors

    def one(self, invoice: Invoice, ref: ExternalRef | None, guids: dict[tuple[str, Any], str]) -> None:
        from .sync import Change

        syncer = self.syncer
        if ref is None and invoice.status == InvoiceStatus.CANCELLED:
            self.outcome.count(Change("unchanged", "", str(invoice)), keep=False)
            return
        body, errors = self.body(invoice, guids, linked=ref is not None)
        digest = _digest(body)
        label = _("Invoice № %(number)s") % {"number": invoice.number}
        if ref is not None and ref.content_hash == digest and not syncer.full:  # as last written or read
            self.outcome.count(Change("unchanged", ref.external_id, label), keep=False)
            return
        change = Change("create" if ref is None else "update", ref.external_id if ref else "", label)
        change.diff = {name: (None, value) for name, value in body.items()}
        if errors:
            change.action, change.errors = "refused", errors
            syncer._refused(change, self.outcome, body)
            return
        if ref is None and not syncer.task.create_allowed:
            change.action = "skipped"
        if change.action == "skipped" or syncer.dry_run:
            self.outcome.count(change, keep=True)
            return
        self.warn_contract_unknown(invoice, guids, label)
        self.write(invoice, ref, body, digest, change)

    def warn_contract_unknown(self, invoice: Invoice, guids: dict[tuple[str, Any], str], label: str) -> None:
        mapped = any(pair["sdelka"] == "contract" for pair in self.header)
        if not mapped or invoice.contract is None or (SdelkaEntity.CONTRACT, invoice.contract_id) in guids:
            return
        self.syncer.event(
            EventLevel.WARNING,
            _(
                "%(invoice)s goes to 1C without its contract «%(contract)s»: 1C does not know that contract. "
                "Create it in 1C and run the contracts rule; the invoice is sent again with it."
            )
            % {"invoice": label, "contract": invoice.contract},
            obj=label,
            field_name="contract",
            value=str(invoice.contract),
        )

    def write(self, invoice: Invoice, ref: ExternalRef | None, body: dict[str, Any], digest: str,
              change: Change) -> None:  # fmt: skip
        syncer, client, entity_set = self.syncer, self.syncer.client, self.rule.entity_set
        try:
            if ref is None:
                key = v.text(client.create(entity_set, body).get("Ref_Key")).lower()
            else:
                key = ref.external_id
                if body.get("DeletionMark") is True:
                    client.unpost_document(entity_set, key)  # 1C marks only an unposted document for deletion
                client.update(entity_set, key, body)
        except ODataError as exc:
            change.action, change.errors = "refused", {"": exc.message}
            self.outcome.count(change, keep=True)
            syncer.event(EventLevel.ERROR, str(exc), external_id=change.external_id, obj=change.label,
                         value=exc.message)  # fmt: skip
            return
        change.external_id = key
        posted_error = ""
        if syncer.task.post_documents and body.get("DeletionMark") is not True:
            try:
                client.post_document(entity_set, key)
            except ODataError as exc:
                posted_error = exc.message
        stored = client.entity(entity_set, key)
        mismatches = self.compare(body, stored)
        with transaction.atomic():
            if ref is None:
                ref = ExternalRef(connection=syncer.connection, kind=self.target.ref_kind, external_id=key,
                                  content_type=self.content_type, object_id=invoice.pk)  # fmt: skip
            # A mismatch or a refused posting keeps the hash empty: the invoice is sent again next time.
            ref.content_hash = "" if mismatches or posted_error else digest
            ref.version = v.text(stored.get("DataVersion"))[:100]
            ref.code = v.text(stored.get("Number"))[:100]
            ref.seen_run = syncer.run
            if not mismatches:  # 1C holds Sdelka's values now: the base of the next comparison
                ref.synced = _invoice_state(invoice)
            ref.save()
        if posted_error:
            mismatches["Posted"] = _("1C refused to post the document: %(message)s") % {"message": posted_error}
        if mismatches:
            change.action, change.errors = "refused", mismatches
            syncer._refused(change, self.outcome, {name: stored.get(name.partition(" ")[0]) for name in mismatches})
            return
        self.outcome.count(change, keep=True)
        counter = "created" if change.action == "create" else "updated"
        assert syncer.run is not None
        ExchangeRun.objects.filter(pk=syncer.run.pk).update(**{counter: F(counter) + 1})

    def compare(self, body: dict[str, Any], stored: dict[str, Any]) -> dict[str, str]:
        mismatches: dict[str, str] = {}
        for name, sent in body.items():
            if name in self.parts:
                rows = sorted(stored.get(name) or [], key=lambda r: v.integer(r.get("LineNumber")) or 0)
                if len(rows) != len(sent):
                    mismatches[name] = _("1C kept %(kept)s rows of %(sent)s.") % {"kept": len(rows), "sent": len(sent)}
                    continue
                for row_sent, row_stored in zip(sent, rows, strict=True):
                    for field_name, value in row_sent.items():
                        if field_name != "LineNumber" and not same(value, row_stored.get(field_name)):
                            mismatches[f"{name}/{field_name} ({row_sent['LineNumber']})"] = _(
                                "1C stored %(stored)r instead of %(sent)r."
                            ) % {"stored": row_stored.get(field_name), "sent": v.text(value)}
            elif not same(sent, stored.get(name)):
                mismatches[name] = _("1C stored %(stored)r instead of %(sent)r.") % {
                    "stored": stored.get(name), "sent": v.text(sent)}  # fmt: skip
        return mismatches


# --- registers: prices and debt -----------------------------------------------------------------------------


def _virtual_rows(syncer: Syncer, rule: MappingRule, function: str, extra: dict[str, str]) -> list[dict[str, Any]]:
    now = timezone.localtime().replace(tzinfo=None, microsecond=0)
    args = {"Period": f"datetime'{now.isoformat()}'", **extra}
    if rule.filter:
        args["Condition"] = v.string_literal(rule.filter)
    text = ",".join(f"{name}={value}" for name, value in args.items())
    data = syncer.client.get(f"{rule.entity_set}/{function}({text})")
    rows = data.get("value") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise ODataError(_("1C sent JSON without a `value` list."), path=rule.entity_set)
    return [row for row in rows if isinstance(row, dict)]


class RegisterRule(DocumentRule):
    """A register read through its virtual table in one call; rows mapped like a document's header."""

    def pull(self, start: int) -> None:
        rows = _virtual_rows(self.syncer, self.rule, self.target.virtual, self.extra())
        self.outcome.total = len(rows)
        self.prefetch(rows)
        records = [self.read(row) for row in rows]
        resolved = self.resolve(records)
        self.store(records, resolved)
        self.syncer.progress(self.rule, len(rows), len(rows))

    def extra(self) -> dict[str, str]:
        return {}

    def resolved_values(self, record: Record, resolved: dict[tuple[str, str], int]) -> dict[str, Any] | None:
        from .sync import Change

        values = dict(record.values)
        for name, guid in record.guids.items():
            pk = resolved.get((self._ref_entity(name, header=True), guid or ""))
            if pk is None:
                if guid:
                    self.outcome.count(Change("skipped", guid, guid), keep=False)
                return None
            values[f"{name}_id"] = pk
        if record.errors:
            change = Change("refused", record.external_id, record.external_id, errors=record.errors)
            self.syncer._refused(change, self.outcome, record.raw)
            return None
        return values

    def store(self, records: list[Record], resolved: dict[tuple[str, str], int]) -> None:
        raise NotImplementedError


class PriceRule(RegisterRule):
    def store(self, records: list[Record], resolved: dict[tuple[str, str], int]) -> None:
        from .sync import Change

        wanted: dict[tuple[int, int], Decimal] = {}
        for record in records:
            values = self.resolved_values(record, resolved)
            if values is not None:
                wanted[(values["price_type_id"], values["product_id"])] = Decimal(values["value"]).quantize(ZERO)
        existing = {
            (p.price_type_id, p.product_id): p
            for p in Price.objects.filter(
                variant__isnull=True, price_type_id__in={k[0] for k in wanted}, product_id__in={k[1] for k in wanted}
            )
        }
        to_create, to_update = [], []
        for key, value in wanted.items():
            price = existing.get(key)
            label = f"{key[0]}/{key[1]}"
            if price is None:
                to_create.append(Price(price_type_id=key[0], product_id=key[1], value=value))
                self.outcome.count(Change("create", label, label, diff={"value": (None, value)}), keep=True)
            elif price.value != value:
                self.outcome.count(Change("update", label, label, diff={"value": (price.value, value)}), keep=True)
                price.value = value
                to_update.append(price)
            else:
                self.outcome.count(Change("unchanged", label, label), keep=False)
        if self.syncer.dry_run:
            return
        with transaction.atomic():
            Price.objects.bulk_create(to_create)
            Price.objects.bulk_update(to_update, ["value", "updated_at"])
        _count_run(self.syncer, len(to_create), len(to_update))


class DebtRule(RegisterRule):
    def extra(self) -> dict[str, str]:
        account = next((pair["const"] for pair in self.rule.fields if pair["sdelka"] == "account"), "")
        if not account:
            return {}
        # The account and its sub-accounts (62 → 62.01, 62.02 …): their GUIDs from the chart of accounts.
        chart = "ChartOfAccounts_Хозрасчетный"
        code = v.string_literal(account)
        accounts = self.syncer.client.fetch(
            chart, select=["Ref_Key"], filter=f"Code eq {code} or startswith(Code, {v.string_literal(account + '.')})"
        )
        if not accounts:
            raise ODataError(_("1C's chart of accounts has no account %(code)s.") % {"code": account}, path=chart)
        condition = " or ".join(f"Account_Key eq {v.guid_literal(v.text(a.get('Ref_Key')))}" for a in accounts)
        return {"AccountCondition": v.string_literal(condition)}

    def store(self, records: list[Record], resolved: dict[tuple[str, str], int]) -> None:
        from .sync import Change

        totals: dict[tuple[int, str], Decimal] = defaultdict(lambda: ZERO)
        for record in records:
            values = self.resolved_values(record, resolved)
            if values is not None:
                key = (values["counterparty_id"], values.get("currency") or "RUB")
                totals[key] += Decimal(values["amount"]).quantize(ZERO)
        connection = self.syncer.connection
        existing = {
            (debt.counterparty_id, str(debt.currency_id)): debt
            for debt in CounterpartyDebt.objects.filter(connection=connection)
        }
        now = timezone.now()
        for key in existing.keys() - totals.keys():
            totals[key] = ZERO  # settled since the last read
        changed = []
        for key, amount in totals.items():
            debt = existing.get(key)
            label = f"{key[0]} {key[1]}"
            old = debt.amount if debt is not None else None
            action = "create" if debt is None else ("update" if old != amount else "unchanged")
            self.outcome.count(Change(action, label, label, diff={"amount": (old, amount)}), keep=action != "unchanged")
            changed.append(CounterpartyDebt(connection=connection, counterparty_id=key[0], currency_id=key[1],
                                            amount=amount, as_of=now, register=self.rule.entity_set[:255]))  # fmt: skip
        if self.syncer.dry_run:
            return
        with transaction.atomic():
            CounterpartyDebt.objects.bulk_create(
                changed,
                update_conflicts=True,
                unique_fields=["connection", "counterparty", "currency"],
                update_fields=["amount", "as_of", "register"],
            )
        _count_run(self.syncer, self.outcome.created, self.outcome.updated)


def _count_run(syncer: Syncer, created: int, updated: int) -> None:
    if syncer.run is not None:
        ExchangeRun.objects.filter(pk=syncer.run.pk).update(
            created=F("created") + created, updated=F("updated") + updated
        )


def run_rule(syncer: Syncer, rule: MappingRule, outcome: RuleResult, start: int) -> None:
    """A document or register rule, in its direction."""
    if rule.entity == SdelkaEntity.INVOICE and rule.direction == "out":
        InvoicePush(syncer, rule, outcome).run()
        return
    handlers: dict[str, type[DocumentRule]] = {SdelkaEntity.PRICE: PriceRule, SdelkaEntity.DEBT: DebtRule}
    handler = handlers.get(rule.entity, DocumentRule)
    handler(syncer, rule, outcome).pull(start)
    if rule.entity == SdelkaEntity.INVOICE and rule.direction == "both":
        InvoicePush(syncer, rule, outcome).run()


HANDLED = frozenset(
    {
        SdelkaEntity.PRICE,
        SdelkaEntity.DEBT,
        SdelkaEntity.INVOICE,
        SdelkaEntity.PAYMENT,
        SdelkaEntity.BANK_ACCOUNT,
        SdelkaEntity.CONTACT,
        SdelkaEntity.CONTRACT,
    }
)
