"""Mapping rules: validation against the real `$metadata` (each error on the field at fault) and the value
transforms of one 1C object."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from sdelka.exchange.models import Connection, ConnectionKind
from sdelka.exchange.odata.metadata import parse_metadata
from sdelka.exchange.odata.models import MappingRule, ODataMetadata, SyncTask
from sdelka.exchange.odata.rules import PRESETS, map_row, select_fields, validate_rule
from sdelka.exchange.odata.services import export_setup, import_setup, load_preset, save_rule
from sdelka.exchange.odata.targets import TARGETS
from tests.fake_odata import FakeOneC

PARTIES = "Catalog_Контрагенты"


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    with translation.override("en"):
        yield


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return parse_metadata(io.BytesIO(FakeOneC("bp30").metadata))


def rule(**kwargs: Any) -> MappingRule:
    kwargs.setdefault("name", "r")
    kwargs.setdefault("entity", "counterparty")
    kwargs.setdefault("entity_set", PARTIES)
    kwargs.setdefault("key_fields", ["Ref_Key"])
    kwargs.setdefault("fields", [{"sdelka": "name", "onec": "Description"}])
    return MappingRule(**kwargs)


@pytest.mark.parametrize("preset", ["bp30", "ut11", "bp30-documents", "ut11-documents"])
def test_the_ready_made_rules_are_valid(preset: str) -> None:
    base = PRESETS[preset].get("base", preset)
    metadata = parse_metadata(io.BytesIO(FakeOneC(base).metadata))
    items = PRESETS[preset]["rules"] + (PRESETS[base]["rules"] if base != preset else [])
    mapped = {item["entity"] for item in items}
    for item in PRESETS[preset]["rules"]:
        spec = {**item, "filter": "" if item["entity"] == "counterparty" else item.get("filter", "")}
        assert validate_rule(rule(**spec), metadata, mapped) == {}, item["name"]


def test_unknown_fields_on_both_sides(metadata: dict[str, Any]) -> None:
    errors = validate_rule(
        rule(fields=[{"sdelka": "name", "onec": "Наименование"}, {"sdelka": "colour", "onec": "ИНН"}]),
        metadata,
        {"counterparty"},
    )
    assert errors["fields[0].onec"] == ["Catalog_Контрагенты has no field Наименование."]
    assert errors["fields[1].sdelka"] == ["Sdelka's counterparty has no field colour."]


def test_type_mismatches(metadata: dict[str, Any]) -> None:
    errors = validate_rule(
        rule(
            fields=[
                {"sdelka": "name", "onec": "Description"},
                {"sdelka": "is_active", "onec": "ИНН"},
                {"sdelka": "inn", "onec": "Predefined"},
                {"sdelka": "kind", "onec": "ЮридическоеФизическоеЛицо"},
                {"sdelka": "kpp", "onec": "КПП", "invert": True},
            ]
        ),
        metadata,
        {"counterparty"},
    )
    assert "a yes/no field needs Edm.Boolean" in errors["fields[1].onec"][0]
    assert "Edm.Boolean and cannot fill a text field" in errors["fields[2].onec"][0]
    assert errors["fields[3].map"] == ["Map the 1C values of ЮридическоеФизическоеЛицо to Sdelka's."]
    assert errors["fields[4].invert"] == ["Only a yes/no field can be inverted."]


def test_enum_value_maps_are_checked_against_1c_and_sdelka(metadata: dict[str, Any]) -> None:
    errors = validate_rule(
        rule(
            fields=[
                {"sdelka": "name", "onec": "Description"},
                {
                    "sdelka": "kind",
                    "onec": "ЮридическоеФизическоеЛицо",
                    "map": {"ЮрЛицо": "legal", "ФизическоеЛицо": "human"},
                    "default": "robot",
                },
            ]
        ),
        metadata,
        {"counterparty"},
    )
    assert "ЮрЛицо is not a value of ЮридическоеФизическоеЛицо in 1C." in errors["fields[1].map"]
    assert any(message.startswith("human is not one of legal") for message in errors["fields[1].map"])
    assert errors["fields[1].default"][0].startswith("robot is not one of")


def test_required_sdelka_field_unmapped_and_no_key(metadata: dict[str, Any]) -> None:
    errors = validate_rule(rule(fields=[{"sdelka": "inn", "onec": "ИНН"}], key_fields=[]), metadata, set())
    assert errors["fields"] == ["Sdelka needs name: map it."]
    assert errors["key_fields"][0].startswith("Give the key fields")
    errors = validate_rule(rule(key_fields=["Code"]), metadata, set())
    assert errors["key_fields"] == ["Catalog_Контрагенты has no field Code."]


def test_mandatory_1c_fields_for_writing(metadata: dict[str, Any]) -> None:
    errors = validate_rule(
        rule(direction="out", fields=[{"sdelka": "name", "onec": "НаименованиеПолное"}]), metadata, set()
    )
    assert errors["fields"] == ["1C needs Description filled: map it."]


def test_reference_to_an_unmapped_object(metadata: dict[str, Any]) -> None:
    product: dict[str, Any] = {
        "entity": "product",
        "entity_set": "Catalog_Номенклатура",
        "fields": [{"sdelka": "name", "onec": "Description"}, {"sdelka": "unit", "onec": "ЕдиницаИзмерения_Key"}],
    }
    errors = validate_rule(rule(**product), metadata, {"product"})
    assert errors["fields[1].onec"] == ["ЕдиницаИзмерения_Key refers to unit, which no rule of this connection maps."]
    assert validate_rule(rule(**product), metadata, {"product", "unit"}) == {}
    product["fields"][1]["onec"] = "Артикул"
    errors = validate_rule(rule(**product), metadata, {"product", "unit"})
    assert "not a reference" in errors["fields[1].onec"][0]


def test_a_reference_fallback_is_checked() -> None:
    metadata = parse_metadata(io.BytesIO(FakeOneC("ut11").metadata))
    order: dict[str, Any] = {"entity": "invoice", "entity_set": "Document_ЗаказКлиента", "fields": [
        {"sdelka": "counterparty", "onec": "Контрагент_Key",
         "fallback": {"onec": "Партнер_Key", "set": PARTIES, "field": "Партнер_Key"}}]}  # fmt: skip
    fallback = order["fields"][0]["fallback"]
    assert "fields[0].fallback" not in validate_rule(rule(**order), metadata, {"counterparty"})
    fallback["onec"] = "Партнёр"
    errors = validate_rule(rule(**order), metadata, {"counterparty"})
    assert errors["fields[0].fallback"] == ["Партнёр is not a field of this 1C object."]
    fallback["onec"], fallback["field"] = "Партнер_Key", "Нет"
    errors = validate_rule(rule(**order), metadata, {"counterparty"})
    assert errors["fields[0].fallback.lookup"] == ["Catalog_Контрагенты has no field Нет."]
    del fallback["set"]
    errors = validate_rule(rule(**order), metadata, {"counterparty"})
    assert errors["fields[0].fallback"] == ["A fallback names a 1C field, a 1C object (set) and its field."]


def test_filter_and_entity_set(metadata: dict[str, Any]) -> None:
    errors = validate_rule(rule(filter="tolower(ИНН) eq '77' and Город eq 'Москва'"), metadata, set())
    assert "1C does not support the function tolower in $filter." in errors["filter"]
    assert "The filter names Город, which this 1C object does not have." in errors["filter"]
    ok = "DeletionMark eq false and like(Description, '%ООО%') and ИНН ne '' and Партнер/Code eq '1'"
    assert "filter" not in validate_rule(rule(filter=ok), metadata, set())
    errors = validate_rule(rule(entity_set="Catalog_Партнеры"), metadata, set())
    assert "1C does not publish Catalog_Партнеры" in errors["entity_set"][0]


@pytest.mark.django_db
def test_save_rule_needs_metadata_and_refuses_an_invalid_rule(metadata: dict[str, Any]) -> None:
    connection = Connection.objects.create(name="bp", kind=ConnectionKind.ODATA, url="http://x/odata/standard.odata")
    with pytest.raises(ValidationError) as info:
        save_rule(connection=connection, name="r", entity="counterparty", entity_set=PARTIES, fields=[])
    assert "connection check" in info.value.message_dict["entity_set"][0]
    ODataMetadata.objects.create(connection=connection, sha1="x", data=metadata, configuration="bp30")
    with pytest.raises(ValidationError) as info:
        save_rule(
            connection=connection,
            name="r",
            entity="counterparty",
            entity_set=PARTIES,
            fields=[{"sdelka": "name", "onec": "Нет"}],
        )
    assert set(info.value.message_dict) == {"fields[0].onec"}
    assert not MappingRule.objects.exists()
    task = load_preset(connection=connection, preset="bp30")
    assert len(task.ordered_rules()) == 6
    assert load_preset(connection=connection, preset="bp30").pk == task.pk  # loading again refreshes
    assert MappingRule.objects.count() == 6


def test_map_row_applies_the_transforms() -> None:
    target = TARGETS["counterparty"]
    r = rule(fields=PRESETS["bp30"]["rules"][1]["fields"])
    row = {
        "Ref_Key": "A1",
        "DataVersion": "AAAAAAAAAAE=",
        "Description": "ООО Ромашка   ",
        "ИНН": "7707083893  ",
        "КПП": "770701001",
        "ЮридическоеФизическоеЛицо": "",
        "DeletionMark": True,
    }
    mapped = map_row(r, target, row)
    assert mapped.external_id == "A1" and mapped.version == "AAAAAAAAAAE="
    assert mapped.values["name"] == "ООО Ромашка" and mapped.values["inn"] == "7707083893"
    assert mapped.values["kind"] == "legal"  # the empty enum value falls back to the rule's default
    assert mapped.values["is_active"] is False
    assert select_fields(r)[:2] == ["Ref_Key", "DataVersion"]
    no_default = rule(fields=[{"sdelka": "kind", "onec": "ЮридическоеФизическоеЛицо", "map": {"X": "legal"}}])
    assert map_row(no_default, target, {"ЮридическоеФизическоеЛицо": "Y"}).errors["kind"][0] == (
        "ЮридическоеФизическоеЛицо"
    )


@given(st.text(max_size=600))
def test_strings_lose_padding_and_fit_the_column(value: str) -> None:
    mapped = map_row(rule(), TARGETS["counterparty"], {"Description": value})
    assert mapped.values["name"] == value.rstrip()[:255]
    assert len(mapped.values["name"]) <= 255


# --- export and import of a connection's setup ----------------------------------------------------------------


def _connection(name: str, metadata: dict[str, Any]) -> Connection:
    connection = Connection.objects.create(
        name=name, kind=ConnectionKind.ODATA, url=f"http://{name}/odata/standard.odata"
    )
    ODataMetadata.objects.create(connection=connection, sha1=name, data=metadata)
    return connection


@pytest.mark.django_db
def test_setup_export_and_import_on_another_base(metadata: dict[str, Any], tmp_path: Any) -> None:
    source = _connection("one", metadata)
    load_preset(connection=source, preset="bp30")
    SyncTask.objects.filter(connection=source).update(on_record_error="stop", page_size=100)
    out = io.StringIO()
    call_command("sync", "export", "one", stdout=out)
    exported = json.loads(out.getvalue())
    assert exported["format"] == "sdelka-odata-setup" and "password" not in out.getvalue()
    path = tmp_path / "setup.json"
    path.write_text(out.getvalue(), encoding="utf-8")

    target = _connection("two", metadata)
    call_command("sync", "import", "two", str(path), stdout=io.StringIO())
    assert export_setup(connection=target) == exported
    task = SyncTask.objects.get(connection=target)
    assert task.on_record_error == "stop" and task.page_size == 100
    assert [r.connection_id for r in task.ordered_rules()] == [target.pk] * 6


@pytest.mark.django_db
def test_import_is_validated_against_the_target_base_and_all_or_nothing(metadata: dict[str, Any]) -> None:
    source = _connection("one", metadata)
    load_preset(connection=source, preset="bp30")
    exported = export_setup(connection=source)
    ut = parse_metadata(io.BytesIO(FakeOneC("ut11").metadata))
    target = _connection("ut", ut)
    with pytest.raises(ValidationError) as info:
        import_setup(connection=target, data=exported)
    errors = info.value.message_dict
    assert "1C does not publish Catalog_КлассификаторЕдиницИзмерения" in errors["rules[0].entity_set"][0]
    # УТ's VAT rate is a reference (СтавкаНДС_Key), not БП's enum
    assert errors["rules[2].fields[5].onec"] == ["Catalog_Номенклатура has no field СтавкаНДС."]
    assert errors["tasks[0].rules"][0].startswith("Unknown rules:")
    assert not MappingRule.objects.filter(connection=target).exists()
    assert not SyncTask.objects.filter(connection=target).exists()
    with pytest.raises(ValidationError) as info:
        import_setup(connection=target, data={"format": "other"})
    assert "file" in info.value.message_dict
