"""Field pairs of a rule read and written one value at a time, for the rules the generic page writer does not
handle (documents with rows, registers): 1C value → Sdelka value and back, with lookups of referenced objects.

A pair may carry ``"lookup": {"set": "Catalog_Валюты", "field": "Code"}``: the 1C field is a reference whose
object's field is the value (a currency's code, a VAT rate's name, the counterparty of a partner analytics
key). `Lookups` reads those objects in one request per set and batch and keeps them for the run.

A reference pair may carry ``"fallback": {"onec": "Партнер_Key", "set": "Catalog_Контрагенты",
"field": "Партнер_Key"}``: when its own field is empty (or the zero GUID), the reference is the one object of
`set` whose `field` holds the fallback field's GUID (УТ 11: an order with no counterparty yet names the
partner, whose only counterparty it is).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.core.models import Currency

from . import values as v
from .client import ODataClient
from .models import MappingRule
from .targets import FieldSpec, Target

Batch = tuple[list[str], list[dict[str, Any]]]  # GUIDs asked for, the objects 1C answered with
BATCH = 40  # GUIDs per lookup request: an OR of 40 comparisons keeps the URL well under IIS's limits


def split_pairs(rule: MappingRule) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(header pairs, {tabular part: its pairs}); a row pair maps "lines.x" to "Товары/Поле"."""
    header: list[dict[str, Any]] = []
    rows: dict[str, list[dict[str, Any]]] = {}
    for pair in rule.fields:
        onec = pair.get("onec", "")
        if "/" in onec:
            rows.setdefault(onec.partition("/")[0], []).append(pair)
        else:
            header.append(pair)
    return header, rows


def row_field(pair: dict[str, Any]) -> str:
    return str(pair["onec"]).partition("/")[2]


def sdelka_field(pair: dict[str, Any]) -> str:
    """ "lines.price" → "price"; header names unchanged."""
    return str(pair["sdelka"]).rpartition(".")[2]


class Lookups:
    """Fields of referenced 1C objects by GUID (and GUIDs by a field's value, to write), cached per run."""

    def __init__(self, client: ODataClient) -> None:
        self.client = client
        self._values: dict[tuple[str, str], dict[str, str]] = {}
        self._guids: dict[tuple[str, str, str], str | None] = {}
        self._owners: dict[tuple[str, str], dict[str, str | None]] = {}

    def _batches(self, entity_set: str, key: str, field_name: str, wanted: list[str]) -> Iterator[Batch]:
        """(GUIDs, the objects whose `key` is one of them) per request of BATCH GUIDs."""
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            condition = " or ".join(f"{key} eq {v.guid_literal(g)}" for g in chunk)
            yield chunk, self.client.fetch(entity_set, select=["Ref_Key", field_name], filter=condition)

    def prefetch(self, entity_set: str, field_name: str, guids: Iterable[str]) -> None:
        known = self._values.setdefault((entity_set, field_name), {})
        wanted = sorted({g for g in guids if g and g not in known})
        for chunk, rows in self._batches(entity_set, "Ref_Key", field_name, wanted):
            for row in rows:
                known[v.text(row.get("Ref_Key")).lower()] = v.text(row.get(field_name))
            for guid in chunk:
                known.setdefault(guid, "")  # a broken reference: 1C stores them (see the spec)

    def value(self, entity_set: str, field_name: str, guid: str | None) -> str:
        if not guid:
            return ""
        self.prefetch(entity_set, field_name, [guid])
        return self._values[(entity_set, field_name)].get(guid, "")

    def prefetch_owners(self, entity_set: str, field_name: str, guids: Iterable[str]) -> None:
        """The object of `entity_set` whose `field_name` is each GUID (None when none or several are)."""
        known = self._owners.setdefault((entity_set, field_name), {})
        wanted = sorted({g for g in guids if g and g not in known})
        for chunk, rows in self._batches(entity_set, field_name, field_name, wanted):
            found: dict[str, list[str]] = {}
            for row in rows:
                found.setdefault(v.text(row.get(field_name)).lower(), []).append(v.text(row.get("Ref_Key")).lower())
            for guid in chunk:
                owners = found.get(guid, [])
                known[guid] = owners[0] if len(owners) == 1 else None

    def owner(self, entity_set: str, field_name: str, guid: str) -> str | None:
        self.prefetch_owners(entity_set, field_name, [guid])
        return self._owners[(entity_set, field_name)][guid]

    def guid(self, entity_set: str, field_name: str, value: str) -> str | None:
        key = (entity_set, field_name, value)
        if key not in self._guids:
            rows = self.client.fetch(
                entity_set, select=["Ref_Key"], filter=f"{field_name} eq {v.string_literal(value)}", top=2
            )
            self._guids[key] = v.ref(rows[0].get("Ref_Key")) if len(rows) == 1 else None
        return self._guids[key]


@dataclass
class Read:
    """One value read from 1C: the Sdelka value, a GUID still to resolve through ExternalRef, or an error."""

    value: Any = None
    guid: str | None = None
    error: str = ""


@dataclass
class Currencies:
    by_numeric: dict[str, str] = field(default_factory=dict)
    numeric_of: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls) -> Currencies:
        pairs = list(Currency.objects.values_list("code", "numeric_code"))
        return cls({numeric: code for code, numeric in pairs}, dict(pairs))

    def code(self, raw: str) -> str | None:
        raw = raw.strip().upper()
        if raw in self.numeric_of:
            return raw
        return self.by_numeric.get(raw.zfill(3)) if raw.isdigit() else None


def lookup_guids(pairs: Iterable[dict[str, Any]], rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """Every (set, field) → GUIDs a batch of 1C rows needs looked up."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for pair in pairs:
        lookup = pair.get("lookup")
        if not lookup:
            continue
        name = row_field(pair) if "/" in pair["onec"] else pair["onec"]
        found = wanted.setdefault((lookup["set"], lookup["field"]), set())
        for row in rows:
            guid = v.ref(row.get(name))
            if guid:
                found.add(guid)
    return wanted


def read_value(
    pair: dict[str, Any], spec: FieldSpec, row: dict[str, Any], lookups: Lookups, currencies: Currencies
) -> Read:
    """The Sdelka value of one pair from one 1C object (or tabular row)."""
    if "const" in pair:
        return Read(pair["const"])
    name = row_field(pair) if "/" in pair["onec"] else pair["onec"]
    raw = row.get(name)
    wanted_type = pair.get("type")  # of a composite attribute: "Catalog_Контрагенты"
    if wanted_type and str(row.get(f"{name}_Type", "")).rpartition(".")[2] != wanted_type:
        return Read(None)  # it holds another kind of object (a person, an employee, an empty value…)
    lookup = pair.get("lookup")
    if lookup:
        raw = lookups.value(lookup["set"], lookup["field"], v.ref(raw))
    if spec.kind == "ref":
        guid = v.ref(raw)
        fallback = pair.get("fallback")
        if guid is None and fallback:
            return _fallback_ref(fallback, name, row, lookups)
        return Read(guid=guid)
    if spec.kind == "bool":
        flag = v.boolean(raw)
        return Read(not flag if pair.get("invert") else flag)
    if spec.kind == "choice":
        key = str(raw).lower() if isinstance(raw, bool) else v.text(raw)
        value_map = pair.get("map", {})
        if key in value_map:
            return Read(value_map[key])
        if "default" in pair:
            return Read(pair["default"])
        return Read(error=_("The 1C value %(value)s has no match in the rule.") % {"value": key})
    if spec.kind == "decimal":
        try:
            return Read(v.decimal(raw) or Decimal(0))
        except (InvalidOperation, ValueError):
            return Read(error=_("%(value)s is not a number.") % {"value": raw})
    if spec.kind == "date":
        moment = v.moment(raw, timezone.get_default_timezone_name())
        return Read(moment.date() if moment else None)
    if spec.kind == "currency":
        code = currencies.code(v.text(raw))
        if code is None:
            return Read(error=_("Sdelka knows no currency with the code %(code)s.") % {"code": v.text(raw)})
        return Read(code)
    text = v.text(raw)
    return Read(text[: spec.max_length] if spec.max_length else text)


def _fallback_ref(fallback: dict[str, str], name: str, row: dict[str, Any], lookups: Lookups) -> Read:
    other = v.ref(row.get(fallback["onec"]))
    if other is None:
        return Read(None)  # both empty: "Empty in 1C" for a required reference
    guid = lookups.owner(fallback["set"], fallback["field"], other)
    if guid is None:
        return Read(error=_("%(field)s is empty and %(set)s has no single object with %(other)s = %(guid)s.") % {
            "field": name, "set": fallback["set"], "other": fallback["field"], "guid": other})  # fmt: skip
    return Read(guid=guid)


def fallback_guids(pairs: Iterable[dict[str, Any]], rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """Every (set, field) → GUIDs the fallbacks of a batch of 1C rows will look up (rows whose own field is empty)."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for pair in pairs:
        fallback = pair.get("fallback")
        if not fallback or "/" in pair.get("onec", ""):
            continue
        found = wanted.setdefault((fallback["set"], fallback["field"]), set())
        for row in rows:
            other = v.ref(row.get(fallback["onec"]))
            if other and v.ref(row.get(pair["onec"])) is None:
                found.add(other)
    return wanted


def write_value(
    pair: dict[str, Any], spec: FieldSpec, value: Any, guids: dict[tuple[str, Any], str], lookups: Lookups,
    currencies: Currencies,
) -> tuple[Any, str]:  # fmt: skip
    """(1C value, error) of one Sdelka value; a reference's GUID comes from `guids` ((entity, pk) → GUID)."""
    lookup = pair.get("lookup")
    if spec.kind == "ref":
        if value is None:
            return v.ZERO_GUID, ""
        guid = guids.get((spec.ref, value))
        if guid is None:
            return None, _("The %(entity)s this refers to is not in 1C yet.") % {"entity": spec.ref}
        return guid, ""
    if spec.kind == "bool":
        return (not value) if pair.get("invert") else bool(value), ""
    if spec.kind == "choice":
        sources = [key for key, target in pair.get("map", {}).items() if target == value]
        source = pair.get("map_out", {}).get(value) or (sources[0] if sources else None)
        if source is None:
            return None, _("Sdelka's value %(value)s has no 1C value in the rule.") % {"value": value}
        out: Any = source == "true" if source in ("true", "false") else source
    elif spec.kind == "currency":
        out = currencies.numeric_of.get(str(value), str(value))
    elif spec.kind == "date":
        out = dt.datetime.combine(value, dt.time()).isoformat() if value else v.EMPTY_DATE
    elif spec.kind == "decimal":
        out = value if value is not None else Decimal(0)
    else:
        out = "" if value is None else str(value)
    if lookup:
        guid = lookups.guid(lookup["set"], lookup["field"], str(out))
        if guid is None:
            return None, _("1C has no %(set)s with %(field)s = %(value)s.") % {
                "set": lookup["set"], "field": lookup["field"], "value": out}  # fmt: skip
        return guid, ""
    return out, ""


def same(sent: Any, stored: Any) -> bool:
    """Whether 1C kept what was sent (numbers compared as numbers, strings without 1C's padding)."""
    if isinstance(sent, bool) or isinstance(stored, bool):
        return v.boolean(stored) == bool(sent)
    if isinstance(sent, Decimal | int) and not isinstance(sent, bool):
        try:
            return Decimal(str(stored)) == Decimal(sent)
        except (InvalidOperation, ValueError):
            return False
    if isinstance(sent, str) and len(sent) == 36 and sent.count("-") == 4:
        return v.ref(stored) == v.ref(sent) or (v.ref(sent) is None and v.ref(stored) is None)
    return v.text(sent) == v.text(stored)


def target_spec(target: Target, pair: dict[str, Any]) -> FieldSpec:
    return target.fields[pair["sdelka"]]
