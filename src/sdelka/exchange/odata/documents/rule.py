"""The reading side shared by every document rule: 1C objects page by page, their references resolved to
Sdelka pks in one query per entity, and each record handed to the apply function of its entity."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F
from django.utils.translation import gettext as _

from sdelka.exchange.apply_orders import exchange_user
from sdelka.exchange.models import ExchangeRun, ExternalRef

from .. import values as v
from ..fields import Currencies, Lookups, Read, fallback_guids, lookup_guids, read_value, sdelka_field, split_pairs
from ..models import MappingRule, SdelkaEntity
from ..targets import TARGETS, Target
from .common import first_error, linked
from .counterparty_rows import apply_bank_account, apply_contact, apply_contract
from .invoices_from_1c import apply_invoice
from .payments import apply_payment

if TYPE_CHECKING:
    from ..sync import Change, RuleResult, Syncer


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
        return linked(self.syncer.connection, wanted, by="external_id")

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
        from ..sync import Change

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
            name, message = first_error(exc)
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
        ref.object_id = obj.pk  # the object it named may have been deleted in Sdelka and made again
        ref.version = record.version[:100]
        ref.code = code[:100]
        ref.content_hash = ""
        ref.seen_run = self.syncer.run
        if synced is not None:
            ref.synced = synced
        ref.save()
        return ref


APPLY: dict[str, Callable[[DocumentRule, Record, ExternalRef | None, Change], None]] = {
    SdelkaEntity.INVOICE: apply_invoice,
    SdelkaEntity.PAYMENT: apply_payment,
    SdelkaEntity.BANK_ACCOUNT: apply_bank_account,
    SdelkaEntity.CONTACT: apply_contact,
    SdelkaEntity.CONTRACT: apply_contract,
}
