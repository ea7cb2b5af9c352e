"""Registers: prices from the price register's last slice and counterparty debt from the settlement registers'
balance, each read through its virtual table (`<register>/Balance(…)`) once per run; the debt per counterparty
and currency is stored with the moment it was read.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.catalog.models import Price
from sdelka.exchange.models import ExchangeRun

from .. import values as v
from ..client import ODataError
from ..models import CounterpartyDebt, MappingRule
from .common import ZERO
from .rule import DocumentRule, Record

if TYPE_CHECKING:
    from ..sync import Syncer


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
        from ..sync import Change

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
        from ..sync import Change

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
        from ..sync import Change

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
