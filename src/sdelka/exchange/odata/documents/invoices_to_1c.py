"""Invoices to 1C: issued (not draft) invoices are POSTed / PATCHed with their rows sent whole, LineNumber 1..n;
the object is read back and every header field and row compared; with the task's "post documents" the document
is posted, and 1C's refusal text becomes the error event.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from sdelka.exchange.models import Conflict, ConflictStatus, EventLevel, ExchangeRun, ExternalRef
from sdelka.sales.models import Invoice, InvoiceStatus

from .. import values as v
from ..client import ODataError
from ..doc_merge import ROWS, ownership_of
from ..fields import Currencies, Lookups, row_field, same, sdelka_field, split_pairs, write_value
from ..models import MappingRule, Ownership, SdelkaEntity
from ..targets import TARGETS
from .common import body_digest, linked
from .invoice_state import invoice_state

if TYPE_CHECKING:
    from ..sync import Change, RuleResult, Syncer


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
        from ..sync import Change

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
        return linked(self.syncer.connection, wanted, by="object_id")

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
        from ..sync import Change

        syncer = self.syncer
        if ref is None and invoice.status == InvoiceStatus.CANCELLED:
            self.outcome.count(Change("unchanged", "", str(invoice)), keep=False)
            return
        body, errors = self.body(invoice, guids, linked=ref is not None)
        digest = body_digest(body)
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
                ref.synced = invoice_state(invoice)
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
