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
        value = pair["const"]
        if spec.kind == "choice" and value not in spec.choices:
            _add(errors, f"{prefix}.const", _("%(value)s is not one of %(choices)s.") % {
                "value": value, "choices": ", ".join(spec.choices)})  # fmt: skip
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
    if spec.kind == "ref":
        if edm != "Edm.Guid":
            _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s, not a reference (Edm.Guid, a …_Key field).")
                 % {"field": onec, "type": edm})  # fmt: skip
        if spec.ref not in mapped:
            _add(errors, f"{prefix}.onec", _("%(field)s refers to %(entity)s, which no rule of this connection maps.")
                 % {"field": onec, "entity": spec.ref})  # fmt: skip
        return
    if spec.kind == "bool":
        if edm != "Edm.Boolean":
            _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s; a yes/no field needs Edm.Boolean.")
                 % {"field": onec, "type": edm})  # fmt: skip
        return
    if pair.get("invert"):
        _add(errors, f"{prefix}.invert", _("Only a yes/no field can be inverted."))
    if spec.kind == "choice":
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
        return
    if edm not in _STRING_TYPES:
        _add(errors, f"{prefix}.onec", _("%(field)s is %(type)s and cannot fill a text field.")
             % {"field": onec, "type": edm})  # fmt: skip


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
    properties = entity_properties(metadata, rule.entity_set)
    if properties is None:
        _add(errors, "entity_set", _("1C does not publish %(set)s (or it does not exist in this configuration).")
             % {"set": rule.entity_set})  # fmt: skip
        return errors
    keys = rule.key_fields if isinstance(rule.key_fields, list) else []
    if not keys:
        _add(errors, "key_fields", _("Give the key fields that identify a 1C object (Ref_Key, Code, ИНН+КПП)."))
    for key in keys:
        if key not in properties:
            _add(errors, "key_fields", _("%(set)s has no field %(field)s.") % {"set": rule.entity_set, "field": key})
    if rule.filter:
        for message in _filter_errors(rule.filter, properties):
            _add(errors, "filter", message)
    pairs = rule.fields if isinstance(rule.fields, list) else []
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
    return errors


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


def map_row(rule: MappingRule, target: Target, row: dict[str, Any]) -> Mapped:
    mapped = Mapped(external_id(rule, row), v.text(row.get("DataVersion")), {}, {}, {}, row)
    for pair in rule.fields:
        name = pair["sdelka"]
        spec = target.fields[name]
        onec = pair.get("onec", "")
        if pair.get("ownership", Ownership.ONEC) == Ownership.SDELKA:
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
        ],
    },
}
