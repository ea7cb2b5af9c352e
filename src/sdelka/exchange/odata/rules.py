"""Mapping rules as data: field pairs with transforms, validation against the real `$metadata` (each error named
by the field at fault), applying a rule to one 1C object, and the ready-made rule sets.

A field pair is a dict::

    {"sdelka": "kind", "onec": "ЮридическоеФизическоеЛицо",
     "map": {"ЮридическоеЛицо": "legal", "ФизическоеЛицо": "person"}, "ownership": "onec"}

Transforms: ``map`` (a value map, for enums and for Boolean → choice: keys "true"/"false"), ``invert`` (Boolean
negation: DeletionMark → is_active), ``const`` (a constant instead of a 1C field), and references — a Sdelka
field of kind "ref" takes a ``X_Key`` GUID and resolves it through `ExternalRef` of the referenced entity, which
must itself be mapped by a rule of the connection. Strings lose 1C's fixed-length padding and are cut to the
Sdelka column's length. ``ownership`` (1C wins / Sdelka wins / newest wins / ask) is kept per field for the
two-way sync; a read from 1C applies the fields 1C owns or shares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from sdelka.exchange.models import Direction

from . import values as v
from .models import MappingRule, Ownership, SdelkaEntity
from .targets import TARGETS, FieldSpec, Target

Errors = dict[str, list[str]]

_STRING_TYPES = {"Edm.String", "Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Double", "Edm.Decimal"}
_FILTER_WORDS = {
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "add", "sub", "mul", "div", "true", "false", "null",
    "substringof", "startswith", "endswith", "concat", "substring", "like", "dateadd", "datedifference", "year",
    "month", "day", "hour", "minute", "second", "quarter", "dayofweek", "dayofyear", "cast", "isof", "round",
    "any", "all",
}  # fmt: skip
_FILTER_UNSUPPORTED = {"length", "indexof", "replace", "tolower", "toupper", "trim", "contains", "floor", "ceiling"}
_FILTER_LITERALS = re.compile(r"(?:guid|datetime|time|datetimeoffset|binary|X)?'(?:[^']|'')*'")
_IDENTIFIER = re.compile(r"[^\W\d][\w]*")
_MANDATORY_IN_1C = {"Catalog": ("Description",), "Document": ("Date",)}


def _add(errors: Errors, key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def entity_properties(metadata: dict[str, Any], entity_set: str) -> dict[str, list[Any]] | None:
    entity = metadata.get("entity_sets", {}).get(entity_set)
    return None if entity is None else entity.get("properties", {})


def _filter_errors(text: str, properties: dict[str, list[Any]]) -> list[str]:
    stripped = _FILTER_LITERALS.sub(" ", text)
    if stripped.count("(") != stripped.count(")"):
        return [_("The parentheses of the filter do not match.")]
    errors = []
    for match in _IDENTIFIER.finditer(stripped):
        word = match.group(0)
        if word in _FILTER_UNSUPPORTED:
            errors.append(_("1C does not support the function %(name)s in $filter.") % {"name": word})
        elif (
            word not in _FILTER_WORDS
            and word not in properties
            and f"{word}_Key" not in properties  # a navigation property: Контрагент/ИНН
            and not word.endswith("Presentation")
        ):
            prev = stripped[: match.start()].rstrip()
            if prev.endswith("/"):
                continue  # a path through a reference (Контрагент/ИНН): checked by 1C
            errors.append(_("The filter names %(name)s, which this 1C object does not have.") % {"name": word})
    return errors


def _pair_errors(
    errors: Errors,
    prefix: str,
    pair: dict[str, Any],
    spec: FieldSpec,
    properties: dict[str, list[Any]],
    metadata: dict[str, Any],
    mapped: set[str],
    entity_set: str,
) -> None:
    onec = pair.get("onec") or ""
    if "const" in pair:
        _const_errors(errors, prefix, pair["const"], spec)
        return
    if not onec:
        _add(errors, f"{prefix}.onec", _("Choose a 1C field or give a constant."))
        return
    if onec not in properties:
        _add(errors, f"{prefix}.onec", _("%(set)s has no field %(field)s.") % {"set": entity_set, "field": onec})
        return
    edm = properties[onec][0]
    if pair.get("ownership", Ownership.ONEC) not in Ownership.values:
        _add(errors, f"{prefix}.ownership", _("Unknown ownership %(value)s.") % {"value": pair.get("ownership")})
    if "lookup" in pair:
        edm = _lookup_errors(errors, prefix, pair["lookup"], onec, edm, metadata)
        if edm is None:
            return
    if spec.kind in _EDM_OF_KIND:
        if edm not in _EDM_OF_KIND[spec.kind]:
            _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s and cannot fill a %(kind)s field.")
                 % {"field": onec, "type": edm, "kind": spec.kind})  # fmt: skip
    elif spec.kind == "ref":
        _ref_errors(errors, prefix, pair, spec, edm, properties, metadata, mapped)
    elif spec.kind == "bool":
        if edm != "Edm.Boolean":
            _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s; a yes/no field needs Edm.Boolean.")
                 % {"field": onec, "type": edm})  # fmt: skip
    else:
        if pair.get("invert"):
            _add(errors, f"{prefix}.invert", _("Only a yes/no field can be inverted."))
        if spec.kind == "choice":
            _choice_errors(errors, prefix, pair, spec, edm, metadata)
        elif edm not in _STRING_TYPES:
            _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s and cannot fill a text field.")
                 % {"field": onec, "type": edm})  # fmt: skip


def _const_errors(errors: Errors, prefix: str, value: Any, spec: FieldSpec) -> None:
    if spec.kind == "choice" and value not in spec.choices:
        _add(errors, f"{prefix}.const", _("%(value)s is not one of %(choices)s.") % {
            "value": value, "choices": ", ".join(spec.choices)})  # fmt: skip


def _ref_errors(errors: Errors, prefix: str, pair: dict[str, Any], spec: FieldSpec, edm: str,
                properties: dict[str, list[Any]], metadata: dict[str, Any], mapped: set[str]) -> None:  # fmt: skip
    onec = pair["onec"]
    if "fallback" in pair:
        _fallback_errors(errors, prefix, pair["fallback"], properties, metadata)
    composite = edm == "Edm.String" and f"{onec}_Type" in properties  # X + X_Type: a composite-type attribute
    if edm != "Edm.Guid" and not composite:
        _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s, not a reference (Edm.Guid, a …_Key field).")
             % {"field": onec, "type": edm})  # fmt: skip
    if spec.ref not in mapped:
        _add(errors, f"{prefix}.onec", _("%(field)s refers to %(entity)s, which no rule of this connection maps.")
             % {"field": onec, "entity": spec.ref})  # fmt: skip


def _choice_errors(errors: Errors, prefix: str, pair: dict[str, Any], spec: FieldSpec, edm: str,
                   metadata: dict[str, Any]) -> None:  # fmt: skip
    """A list field: its value map from 1C's values (yes/no or an enumeration's) to Sdelka's choices."""
    onec = pair["onec"]
    value_map = pair.get("map")
    if not isinstance(value_map, dict) or not value_map:
        _add(errors, f"{prefix}.map", _("Map the 1C values of %(field)s to Sdelka's.") % {"field": onec})
        return
    if edm == "Edm.Boolean":
        known: list[str] | None = ["true", "false"]
    elif edm == "Edm.String":
        known = metadata.get("enums", {}).get(onec)
    else:
        _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s; a list value needs an enumeration.")
             % {"field": onec, "type": edm})  # fmt: skip
        return
    if "default" in pair and pair["default"] not in spec.choices:
        _add(errors, f"{prefix}.default", _("%(value)s is not one of %(choices)s.")
             % {"value": pair["default"], "choices": ", ".join(spec.choices)})  # fmt: skip
    for source, target in value_map.items():
        if known is not None and source not in known:
            _add(errors, f"{prefix}.map", _("%(value)s is not a value of %(field)s in 1C.")
                 % {"value": source, "field": onec})  # fmt: skip
        if target not in spec.choices:
            _add(errors, f"{prefix}.map", _("%(value)s is not one of %(choices)s.")
                 % {"value": target, "choices": ", ".join(spec.choices)})  # fmt: skip


_EDM_OF_KIND = {
    "decimal": {"Edm.Double", "Edm.Decimal", "Edm.Int16", "Edm.Int32", "Edm.Int64"},
    "date": {"Edm.DateTime"},
    "currency": {"Edm.String", "Edm.Int16", "Edm.Int32", "Edm.Int64"},  # the code, usually through a lookup
}


def _lookup_errors(
    errors: Errors, prefix: str, lookup: Any, onec: str, edm: str, metadata: dict[str, Any]
) -> str | None:
    """A lookup reads a field of the 1C object a reference points to ({"set": "Catalog_Валюты", "field":
    "Code"}); returns the type of that field, or None when the lookup is wrong."""
    if not isinstance(lookup, dict) or not lookup.get("set") or not lookup.get("field"):
        _add(errors, f"{prefix}.lookup", _("A lookup names a 1C object (set) and its field."))
        return None
    if edm != "Edm.Guid":
        _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s, not a reference to look up.")
             % {"field": onec, "type": edm})  # fmt: skip
        return None
    target = entity_properties(metadata, lookup["set"])
    if target is None:
        _add(errors, f"{prefix}.lookup", _("1C does not publish %(set)s (or it does not exist in this configuration).")
             % {"set": lookup["set"]})  # fmt: skip
        return None
    if lookup["field"] not in target:
        _add(errors, f"{prefix}.lookup", _("%(set)s has no field %(field)s.")
             % {"set": lookup["set"], "field": lookup["field"]})  # fmt: skip
        return None
    return str(target[lookup["field"]][0])


def _fallback_errors(
    errors: Errors, prefix: str, fallback: Any, properties: dict[str, list[Any]], metadata: dict[str, Any]
) -> None:
    """A fallback reads another reference of the object and finds the one object of `set` whose `field` holds
    it ({"onec": "Партнер_Key", "set": "Catalog_Контрагенты", "field": "Партнер_Key"})."""
    if not isinstance(fallback, dict) or not all(fallback.get(key) for key in ("onec", "set", "field")):
        _add(errors, f"{prefix}.fallback", _("A fallback names a 1C field, a 1C object (set) and its field."))
        return
    if fallback["onec"] not in properties:
        message = _("%(field)s is not a field of this 1C object.") % {"field": fallback["onec"]}
        _add(errors, f"{prefix}.fallback", message)
        return
    _lookup_errors(errors, f"{prefix}.fallback", {"set": fallback["set"], "field": fallback["field"]},
                   fallback["onec"], str(properties[fallback["onec"]][0]), metadata)  # fmt: skip


def rule_properties(metadata: dict[str, Any], entity_set: str, virtual: str = "") -> dict[str, list[Any]] | None:
    """The fields a rule may map: the object's own, its tabular parts' as "Part/Field", and for a register
    read through a virtual table, that table's (`…_Balance`)."""
    properties = entity_properties(metadata, entity_set)
    if properties is None:
        return None
    out = dict(properties)
    complex_types = metadata.get("complex_types", {})
    for part, row_type in metadata["entity_sets"][entity_set].get("rows", {}).items():
        for name, spec in complex_types.get(row_type, {}).items():
            out[f"{part}/{name}"] = spec
    if virtual == "Balance":
        out.update(complex_types.get(f"{entity_set}_Balance", {}))
    return out


def validate_rule(rule: MappingRule, metadata: dict[str, Any], mapped: set[str]) -> Errors:
    """Every problem of the rule against this base's `$metadata`, keyed by the field at fault
    ("entity_set", "key_fields", "filter", "fields", "fields[2].onec", "fields[0].map", …).
    `mapped` are the Sdelka entities some rule of the connection maps (targets of references)."""
    errors: Errors = {}
    target = TARGETS.get(rule.entity)
    if target is None:
        _add(errors, "entity", _("Unknown Sdelka object %(value)s.") % {"value": rule.entity})
        return errors
    if rule.direction not in Direction.values:
        _add(errors, "direction", _("Unknown direction."))
    properties = rule_properties(metadata, rule.entity_set, target.virtual)
    if properties is None:
        _add(errors, "entity_set", _("1C does not publish %(set)s (or it does not exist in this configuration).")
             % {"set": rule.entity_set})  # fmt: skip
        return errors
    _key_errors(errors, rule, properties)
    if rule.filter:
        for message in _filter_errors(rule.filter, properties):
            _add(errors, "filter", message)
    pairs = rule.fields if isinstance(rule.fields, list) else []
    seen = _pairs_errors(errors, rule, target, pairs, properties, metadata, mapped)
    _unmapped_errors(errors, rule, target, pairs, properties, seen)
    return errors


def _key_errors(errors: Errors, rule: MappingRule, properties: dict[str, list[Any]]) -> None:
    keys = rule.key_fields if isinstance(rule.key_fields, list) else []
    if not keys:
        _add(errors, "key_fields", _("Give the key fields that identify a 1C object (Ref_Key, Code, ИНН+КПП)."))
    for key in keys:
        if key not in properties:
            _add(errors, "key_fields", _("%(set)s has no field %(field)s.") % {"set": rule.entity_set, "field": key})


def _pairs_errors(errors: Errors, rule: MappingRule, target: Target, pairs: list[Any], properties: dict[str, list[Any]],
                  metadata: dict[str, Any], mapped: set[str]) -> set[str]:  # fmt: skip
    """Checks every field pair; returns the Sdelka fields the rule maps."""
    seen: set[str] = set()
    for index, pair in enumerate(pairs):
        prefix = f"fields[{index}]"
        if not isinstance(pair, dict):
            _add(errors, prefix, _("A field pair is an object."))
            continue
        name = pair.get("sdelka", "")
        spec = target.fields.get(name)
        if spec is None:
            _add(errors, f"{prefix}.sdelka", _("Sdelka's %(entity)s has no field %(field)s.")
                 % {"entity": rule.entity, "field": name})  # fmt: skip
            continue
        if name in seen:
            _add(errors, f"{prefix}.sdelka", _("%(field)s is mapped twice.") % {"field": name})
        seen.add(name)
        _pair_errors(errors, prefix, pair, spec, properties, metadata, mapped, rule.entity_set)
    return seen


def _unmapped_errors(errors: Errors, rule: MappingRule, target: Target, pairs: list[Any],
                     properties: dict[str, list[Any]], seen: set[str]) -> None:  # fmt: skip
    """The fields the receiving side cannot do without: Sdelka's required ones, 1C's mandatory ones."""
    if rule.direction in (Direction.IN, Direction.BOTH):
        for name, spec in target.fields.items():
            if spec.required and name not in seen:
                _add(errors, "fields", _("Sdelka needs %(field)s: map it.") % {"field": name})
    if rule.direction in (Direction.OUT, Direction.BOTH):
        onec_mapped = {pair.get("onec") for pair in pairs if isinstance(pair, dict)}
        prefix_name = rule.entity_set.partition("_")[0]
        for name in _MANDATORY_IN_1C.get(prefix_name, ()):
            if name in properties and name not in onec_mapped:
                _add(errors, "fields", _("1C needs %(field)s filled: map it.") % {"field": name})


# --- applying a rule to one 1C object ----------------------------------------------------------------------


@dataclass
class Mapped:
    """One 1C object read through a rule: Sdelka values (refs still as GUIDs), or errors keyed by 1C field."""

    external_id: str
    version: str
    values: dict[str, Any]
    refs: dict[str, str | None]  # sdelka field → 1C GUID of the referenced object
    errors: dict[str, tuple[str, str]]  # sdelka field → (1C field, message)
    raw: dict[str, Any]


def select_fields(rule: MappingRule) -> list[str]:
    names = ["Ref_Key", "DataVersion", *rule.key_fields]
    names += [pair["onec"] for pair in rule.fields if isinstance(pair, dict) and pair.get("onec")]
    return list(dict.fromkeys(names))


def external_id(rule: MappingRule, row: dict[str, Any]) -> str:
    return "|".join(v.text(row.get(key)) for key in rule.key_fields) or v.text(row.get("Ref_Key"))


def map_row(rule: MappingRule, target: Target, row: dict[str, Any], ext: str | None = None) -> Mapped:
    """1C's side of every pair (`ext`: the row's external id when the caller has it already); a one-way read skips
    the fields Sdelka owns, a two-way rule needs them all to compare (see merge.py)."""
    mapped = Mapped(external_id(rule, row) if ext is None else ext, v.text(row.get("DataVersion")), {}, {}, {}, row)
    two_way = rule.direction == Direction.BOTH
    for pair in rule.fields:
        name = pair["sdelka"]
        spec = target.fields[name]
        onec = pair.get("onec", "")
        if pair.get("ownership", Ownership.ONEC) == Ownership.SDELKA and not two_way:
            continue  # Sdelka owns it: a read from 1C leaves it alone
        if "const" in pair:
            mapped.values[name] = pair["const"]
            continue
        raw = row.get(onec)
        if spec.kind == "ref":
            mapped.refs[name] = v.ref(raw)
            continue
        if spec.kind == "bool":
            value: Any = v.boolean(raw)
            mapped.values[name] = not value if pair.get("invert") else value
            continue
        if spec.kind == "choice":
            key = str(raw).lower() if isinstance(raw, bool) else v.text(raw)
            value_map = pair.get("map", {})
            if key in value_map:
                mapped.values[name] = value_map[key]
            elif "default" in pair:
                mapped.values[name] = pair["default"]
            else:
                mapped.errors[name] = (onec, _("The 1C value %(value)s has no match in the rule.") % {"value": key})
            continue
        text = v.text(raw)
        mapped.values[name] = text[: spec.max_length] if spec.max_length else text
    return mapped


# --- ready-made rule sets ----------------------------------------------------------------------------------

_ACTIVE = {"sdelka": "is_active", "onec": "DeletionMark", "invert": True}
_ORGANISATION = [
    {"sdelka": "name", "onec": "Description"},
    {"sdelka": "full_name", "onec": "НаименованиеПолное"},
    {"sdelka": "inn", "onec": "ИНН"},
    {"sdelka": "kpp", "onec": "КПП"},
    _ACTIVE,
]
_PRICE_TYPE = [
    {"sdelka": "name", "onec": "Description"},
    {"sdelka": "vat_included", "onec": "ЦенаВключаетНДС"},
    _ACTIVE,
]
_CURRENCY = {"set": "Catalog_Валюты", "field": "Code"}


def _bank_account(banks: str) -> list[dict[str, Any]]:
    """An account number and its bank's БИК, name and correspondent account, read from the bank catalogue."""
    return [
        {"sdelka": "number", "onec": "НомерСчета"},
        {"sdelka": "bik", "onec": "Банк_Key", "lookup": {"set": banks, "field": "Code"}},
        {"sdelka": "bank_name", "onec": "Банк_Key", "lookup": {"set": banks, "field": "Description"}},
        {"sdelka": "correspondent_account", "onec": "Банк_Key", "lookup": {"set": banks, "field": "КоррСчет"}},
        _ACTIVE,
    ]


_CONTRACT_KIND = {"map": {"СПокупателем": "sale", "СПоставщиком": "purchase"}, "default": "other"}


def _contract(counterparty: str, kind: str, valid_until: str, *, folders: bool) -> dict[str, Any]:
    """The contract rule of a configuration: its field naming the counterparty, the kind and the term, and
    whether the catalogue has folders (БП's contracts have, УТ's have not)."""
    return {
        "entity": SdelkaEntity.CONTRACT,
        "entity_set": "Catalog_ДоговорыКонтрагентов",
        "key_fields": ["Ref_Key"],
        "filter": "IsFolder eq false" if folders else "",
        "fields": [
            {"sdelka": "counterparty", "onec": counterparty},
            {"sdelka": "organisation", "onec": "Организация_Key"},
            {"sdelka": "name", "onec": "Description"},
            {"sdelka": "number", "onec": "Номер"},
            {"sdelka": "date", "onec": "Дата"},
            {"sdelka": "valid_until", "onec": valid_until},
            {"sdelka": "kind", "onec": kind, **_CONTRACT_KIND},
            {"sdelka": "currency", "onec": "ВалютаВзаиморасчетов_Key", "lookup": _CURRENCY},
            {"sdelka": "comment", "onec": "Комментарий"},
            _ACTIVE,
        ],
    }


_BP_VAT = {"БезНДС": "none", "НДС0": "0", "НДС10": "10", "НДС20": "20", "НДС22": "22", "НДС5": "5", "НДС7": "7"}
_UT_VAT = {"Без НДС": "none", "0%": "0", "5%": "5", "7%": "7", "10%": "10", "20%": "20", "22%": "22"}
# VAT included in the price / sum; an invoice without VAT is written with "included" (its rows have no VAT).
_VAT_MODE = {"map": {"true": "included", "false": "on_top"}, "map_out": {"without": "true"}}

PRESETS: dict[str, dict[str, Any]] = {
    "bp30": {
        "task": "БП 3.0: справочники",
        "rules": [
            {
                "name": "БП: единицы измерения",
                "entity": SdelkaEntity.UNIT,
                "entity_set": "Catalog_КлассификаторЕдиницИзмерения",
                "key_fields": ["Ref_Key"],
                "fields": [
                    {"sdelka": "okei", "onec": "Code"},
                    {"sdelka": "name", "onec": "Description"},
                    {"sdelka": "full_name", "onec": "НаименованиеПолное"},
                    {"sdelka": "international", "onec": "МеждународноеСокращение"},
                ],
            },
            {
                "name": "БП: контрагенты",
                "entity": SdelkaEntity.COUNTERPARTY,
                "entity_set": "Catalog_Контрагенты",
                "key_fields": ["Ref_Key"],
                "filter": "IsFolder eq false",
                "fields": [
                    {"sdelka": "name", "onec": "Description"},
                    {"sdelka": "full_name", "onec": "НаименованиеПолное"},
                    {"sdelka": "inn", "onec": "ИНН"},
                    {"sdelka": "kpp", "onec": "КПП"},
                    {"sdelka": "okpo", "onec": "КодПоОКПО"},
                    {
                        "sdelka": "kind",
                        "onec": "ЮридическоеФизическоеЛицо",
                        "map": {"ЮридическоеЛицо": "legal", "ФизическоеЛицо": "person"},
                        "default": "legal",
                    },
                    _ACTIVE,
                ],
            },
            {
                "name": "БП: номенклатура",
                "entity": SdelkaEntity.PRODUCT,
                "entity_set": "Catalog_Номенклатура",
                "key_fields": ["Ref_Key"],
                "filter": "IsFolder eq false",
                "fields": [
                    {"sdelka": "name", "onec": "Description"},
                    {"sdelka": "full_name", "onec": "НаименованиеПолное"},
                    {"sdelka": "article", "onec": "Артикул"},
                    {"sdelka": "description", "onec": "Комментарий"},
                    {"sdelka": "unit", "onec": "ЕдиницаИзмерения_Key"},
                    {
                        "sdelka": "vat_rate",
                        "onec": "СтавкаНДС",
                        "map": {"БезНДС": "none", "НДС0": "0", "НДС10": "10", "НДС20": "20", "НДС22": "22"},
                        "default": "22",
                    },
                    {"sdelka": "kind", "onec": "Услуга", "map": {"true": "service", "false": "goods"}},
                    _ACTIVE,
                ],
            },
            {
                "name": "БП: организации",
                "entity": SdelkaEntity.ORGANISATION,
                "entity_set": "Catalog_Организации",
                "key_fields": ["Ref_Key"],
                "fields": [*_ORGANISATION],
            },
            {
                "name": "БП: типы цен",
                "entity": SdelkaEntity.PRICE_TYPE,
                "entity_set": "Catalog_ТипыЦенНоменклатуры",
                "key_fields": ["Ref_Key"],
                "fields": [*_PRICE_TYPE],
            },
            {
                "name": "БП: цены номенклатуры",
                "entity": SdelkaEntity.PRICE,
                "entity_set": "InformationRegister_ЦеныНоменклатуры",
                "key_fields": ["ТипЦен_Key", "Номенклатура_Key"],
                "fields": [
                    {"sdelka": "price_type", "onec": "ТипЦен_Key"},
                    {"sdelka": "product", "onec": "Номенклатура_Key"},
                    {"sdelka": "value", "onec": "Цена"},
                ],
            },
        ],
    },
    "ut11": {
        "task": "УТ 11: справочники",
        "rules": [
            {
                "name": "УТ: единицы измерения",
                "entity": SdelkaEntity.UNIT,
                "entity_set": "Catalog_УпаковкиЕдиницыИзмерения",
                "key_fields": ["Ref_Key"],
                "fields": [
                    {"sdelka": "okei", "onec": "Code"},
                    {"sdelka": "name", "onec": "Description"},
                    {"sdelka": "full_name", "onec": "НаименованиеПолное"},
                ],
            },
            {
                "name": "УТ: контрагенты",
                "entity": SdelkaEntity.COUNTERPARTY,
                "entity_set": "Catalog_Контрагенты",
                "key_fields": ["Ref_Key"],
                "filter": "IsFolder eq false",
                "fields": [
                    {"sdelka": "name", "onec": "Description"},
                    {"sdelka": "full_name", "onec": "НаименованиеПолное"},
                    {"sdelka": "inn", "onec": "ИНН"},
                    {"sdelka": "kpp", "onec": "КПП"},
                    {"sdelka": "okpo", "onec": "КодПоОКПО"},
                    {
                        "sdelka": "kind",
                        "onec": "ЮрФизЛицо",
                        "map": {
                            "ЮрЛицо": "legal",
                            "ЮрЛицоНеРезидент": "legal",
                            "ИндивидуальныйПредприниматель": "entrepreneur",
                            "ФизЛицо": "person",
                        },
                        "default": "legal",
                    },
                    _ACTIVE,
                ],
            },
            {
                "name": "УТ: номенклатура",
                "entity": SdelkaEntity.PRODUCT,
                "entity_set": "Catalog_Номенклатура",
                "key_fields": ["Ref_Key"],
                "filter": "IsFolder eq false",
                "fields": [
                    {"sdelka": "name", "onec": "Description"},
                    {"sdelka": "full_name", "onec": "НаименованиеПолное"},
                    {"sdelka": "article", "onec": "Артикул"},
                    {"sdelka": "description", "onec": "Комментарий"},
                    {"sdelka": "unit", "onec": "ЕдиницаИзмерения_Key"},
                    _ACTIVE,
                ],
            },
            {
                "name": "УТ: организации",
                "entity": SdelkaEntity.ORGANISATION,
                "entity_set": "Catalog_Организации",
                "key_fields": ["Ref_Key"],
                "fields": [*_ORGANISATION],
            },
            {
                "name": "УТ: виды цен",
                "entity": SdelkaEntity.PRICE_TYPE,
                "entity_set": "Catalog_ВидыЦен",
                "key_fields": ["Ref_Key"],
                "fields": [*_PRICE_TYPE],
            },
            {
                "name": "УТ: цены номенклатуры",
                "entity": SdelkaEntity.PRICE,
                "entity_set": "InformationRegister_ЦеныНоменклатуры",
                "key_fields": ["ВидЦены_Key", "Номенклатура_Key"],
                # prices of characteristics are not Sdelka's product prices
                "filter": "Характеристика_Key eq guid'00000000-0000-0000-0000-000000000000'",
                "fields": [
                    {"sdelka": "price_type", "onec": "ВидЦены_Key"},
                    {"sdelka": "product", "onec": "Номенклатура_Key"},
                    {"sdelka": "value", "onec": "Цена"},
                ],
            },
        ],
    },
    # Documents and registers: they refer to the objects of the catalogue set, which is loaded first (and whose
    # task sorts first: `sync run` runs the tasks by name).
    "bp30-documents": {
        "task": "БП 3.0: учёт счетов, оплат и долгов",
        "base": "bp30",
        "rules": [
            {
                "name": "БП: банковские счета контрагентов",
                "entity": SdelkaEntity.BANK_ACCOUNT,
                "entity_set": "Catalog_БанковскиеСчета",
                "key_fields": ["Ref_Key"],
                "filter": "Owner_Type eq 'StandardODATA.Catalog_Контрагенты'",  # not the organisation's own
                "fields": [
                    {"sdelka": "counterparty", "onec": "Owner", "type": "Catalog_Контрагенты"},
                    *_bank_account("Catalog_Банки"),
                ],
            },
            {
                "name": "БП: контактные лица",
                "entity": SdelkaEntity.CONTACT,
                "entity_set": "Catalog_КонтактныеЛица",
                "key_fields": ["Ref_Key"],
                "fields": [
                    {"sdelka": "counterparty", "onec": "ОбъектВладелец", "type": "Catalog_Контрагенты"},
                    {"sdelka": "last_name", "onec": "Фамилия"},
                    {"sdelka": "first_name", "onec": "Имя"},
                    {"sdelka": "middle_name", "onec": "Отчество"},
                    {"sdelka": "position", "onec": "ДолжностьПоВизитке"},
                    {"sdelka": "birthday", "onec": "ДатаРождения"},
                    _ACTIVE,
                ],
            },
            {
                "name": "БП: договоры контрагентов",
                **_contract("Owner_Key", "ВидДоговора", "СрокДействия", folders=True),
            },
            {
                "name": "БП: счета покупателям",
                "entity": SdelkaEntity.INVOICE,
                "entity_set": "Document_СчетНаОплатуПокупателю",
                "direction": Direction.BOTH,
                "key_fields": ["Ref_Key"],
                "fields": [
                    {"sdelka": "number", "onec": "Number"},
                    {"sdelka": "date", "onec": "Date"},
                    {"sdelka": "organisation", "onec": "Организация_Key"},
                    {"sdelka": "counterparty", "onec": "Контрагент_Key"},
                    {"sdelka": "contract", "onec": "ДоговорКонтрагента_Key"},
                    {"sdelka": "currency", "onec": "ВалютаДокумента_Key", "lookup": _CURRENCY},
                    {"sdelka": "vat_mode", "onec": "СуммаВключаетНДС", **_VAT_MODE},
                    {"sdelka": "comment", "onec": "Комментарий"},
                    _ACTIVE,
                    {"sdelka": "lines.product", "onec": "Товары/Номенклатура_Key"},
                    {"sdelka": "lines.description", "onec": "Товары/Содержание"},
                    {"sdelka": "lines.quantity", "onec": "Товары/Количество"},
                    {"sdelka": "lines.price", "onec": "Товары/Цена"},
                    {"sdelka": "lines.amount", "onec": "Товары/Сумма"},
                    {"sdelka": "lines.vat_rate", "onec": "Товары/СтавкаНДС", "map": _BP_VAT, "default": "22"},
                    {"sdelka": "lines.vat_amount", "onec": "Товары/СуммаНДС"},
                ],
            },
            {
                "name": "БП: оплаты покупателей",
                "entity": SdelkaEntity.PAYMENT,
                "entity_set": "Document_ПоступлениеНаРасчетныйСчет",
                "key_fields": ["Ref_Key"],
                # unposted ones too: their payments are cancelled
                "filter": "ВидОперации eq 'ОплатаПокупателя'",
                "fields": [
                    {"sdelka": "number", "onec": "НомерВходящегоДокумента"},
                    {"sdelka": "date", "onec": "Date"},
                    {"sdelka": "organisation", "onec": "Организация_Key"},
                    {"sdelka": "counterparty", "onec": "Контрагент", "type": "Catalog_Контрагенты"},
                    {"sdelka": "amount", "onec": "СуммаДокумента"},
                    {"sdelka": "currency", "onec": "ВалютаДокумента_Key", "lookup": _CURRENCY},
                    {"sdelka": "purpose", "onec": "НазначениеПлатежа"},
                    {"sdelka": "allocations.invoice", "onec": "РасшифровкаПлатежа/СчетНаОплату_Key"},
                    {"sdelka": "allocations.amount", "onec": "РасшифровкаПлатежа/СуммаПлатежа"},
                ],
            },
            {
                "name": "БП: долг покупателей по счету 62",
                "entity": SdelkaEntity.DEBT,
                "entity_set": "AccountingRegister_Хозрасчетный",
                "key_fields": ["ExtDimension1"],
                "fields": [
                    {"sdelka": "counterparty", "onec": "ExtDimension1", "type": "Catalog_Контрагенты"},
                    {"sdelka": "amount", "onec": "СуммаBalance"},
                    {"sdelka": "account", "const": "62"},
                ],
            },
        ],
    },
    "ut11-documents": {
        "task": "УТ 11: учёт заказов, оплат и долгов",
        "base": "ut11",
        "rules": [
            {
                "name": "УТ: банковские счета контрагентов",
                "entity": SdelkaEntity.BANK_ACCOUNT,
                "entity_set": "Catalog_БанковскиеСчетаКонтрагентов",
                "key_fields": ["Ref_Key"],
                "fields": [
                    {"sdelka": "counterparty", "onec": "Owner_Key"},
                    *_bank_account("Catalog_КлассификаторБанков"),
                ],
            },
            {
                "name": "УТ: договоры с контрагентами",
                **_contract("Контрагент_Key", "ТипДоговора", "ДатаОкончанияДействия", folders=False),
            },
            {
                "name": "УТ: заказы клиентов",
                "entity": SdelkaEntity.INVOICE,
                "entity_set": "Document_ЗаказКлиента",
                "direction": Direction.BOTH,
                "key_fields": ["Ref_Key"],
                "fields": [
                    {"sdelka": "number", "onec": "Number"},
                    {"sdelka": "date", "onec": "Date"},
                    {"sdelka": "organisation", "onec": "Организация_Key"},
                    {
                        "sdelka": "counterparty",
                        "onec": "Контрагент_Key",
                        # an order with no counterparty yet: the partner's only counterparty
                        "fallback": {"onec": "Партнер_Key", "set": "Catalog_Контрагенты", "field": "Партнер_Key"},
                    },
                    {"sdelka": "contract", "onec": "Договор_Key"},
                    {"sdelka": "currency", "onec": "Валюта_Key", "lookup": _CURRENCY},
                    {"sdelka": "vat_mode", "onec": "ЦенаВключаетНДС", **_VAT_MODE},
                    {"sdelka": "comment", "onec": "Комментарий"},
                    _ACTIVE,
                    {"sdelka": "lines.product", "onec": "Товары/Номенклатура_Key"},
                    {"sdelka": "lines.quantity", "onec": "Товары/Количество"},
                    {"sdelka": "lines.price", "onec": "Товары/Цена"},
                    {"sdelka": "lines.amount", "onec": "Товары/Сумма"},
                    {
                        "sdelka": "lines.vat_rate",
                        "onec": "Товары/СтавкаНДС_Key",
                        "lookup": {"set": "Catalog_СтавкиНДС", "field": "Description"},
                        "map": _UT_VAT,
                        "default": "22",
                    },
                    {"sdelka": "lines.vat_amount", "onec": "Товары/СуммаНДС"},
                ],
            },
            {
                "name": "УТ: оплаты клиентов",
                "entity": SdelkaEntity.PAYMENT,
                "entity_set": "Document_ПоступлениеБезналичныхДенежныхСредств",
                "key_fields": ["Ref_Key"],
                # unposted ones too: their payments are cancelled
                "filter": "ХозяйственнаяОперация eq 'ПоступлениеОплатыОтКлиента'",
                "fields": [
                    {"sdelka": "number", "onec": "НомерВходящегоДокумента"},
                    {"sdelka": "date", "onec": "Date"},
                    {"sdelka": "organisation", "onec": "Организация_Key"},
                    {"sdelka": "counterparty", "onec": "Контрагент_Key"},
                    {"sdelka": "amount", "onec": "СуммаДокумента"},
                    {"sdelka": "currency", "onec": "Валюта_Key", "lookup": _CURRENCY},
                    {"sdelka": "purpose", "onec": "НазначениеПлатежа"},
                    {
                        "sdelka": "allocations.invoice",
                        "onec": "РасшифровкаПлатежа/ОснованиеПлатежа",
                        "type": "Document_ЗаказКлиента",
                    },
                    {"sdelka": "allocations.amount", "onec": "РасшифровкаПлатежа/Сумма"},
                ],
            },
            {
                "name": "УТ: долг клиентов",
                "entity": SdelkaEntity.DEBT,
                "entity_set": "AccumulationRegister_РасчетыСКлиентами",
                "key_fields": ["АналитикаУчетаПоПартнерам_Key"],
                "fields": [
                    {
                        "sdelka": "counterparty",
                        "onec": "АналитикаУчетаПоПартнерам_Key",
                        "lookup": {"set": "Catalog_КлючиАналитикиУчетаПоПартнерам", "field": "Контрагент_Key"},
                    },
                    {"sdelka": "amount", "onec": "СуммаBalance"},
                    {"sdelka": "currency", "onec": "Валюта_Key", "lookup": _CURRENCY},
                ],
            },
        ],
    },
}


def _newest_wins(preset: dict[str, Any]) -> None:
    """A two-way document rule of a ready-made set: a change on either side travels (doc_merge.py); a pair
    without an owner would be "1C wins", which never sends Sdelka's edits of a document 1C has."""
    for rule in preset["rules"]:
        if rule["entity"] in DOCUMENT_ENTITIES and rule.get("direction") == Direction.BOTH:
            rule["fields"] = [pair if "const" in pair else {**pair, "ownership": Ownership.NEWEST}
                              for pair in rule["fields"]]  # fmt: skip


DOCUMENT_ENTITIES = frozenset({SdelkaEntity.INVOICE, SdelkaEntity.PAYMENT})
for _preset in PRESETS.values():
    _newest_wins(_preset)
