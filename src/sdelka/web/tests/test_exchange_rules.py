"""The rule and task editors: 1C choices from the cached `$metadata`, validation on save shown on the field at
fault (nothing stored), ready-made rule sets copied, tasks with their rules in order and their options."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django import forms
from django.urls import reverse
from django.utils import translation

from sdelka.accounts.models import Role
from sdelka.exchange.models import Connection, ConnectionKind
from sdelka.exchange.odata.metadata import parse_metadata
from sdelka.exchange.odata.models import MappingRule, ODataMetadata, SyncTask
from sdelka.exchange.odata.rules import PRESETS
from sdelka.exchange.odata.services import load_preset
from tests.factories import TeamFactory, UserFactory
from tests.fake_odata import FakeOneC

pytestmark = pytest.mark.django_db

PARTIES = "Catalog_Контрагенты"
UNITS_PARTIES_PRODUCTS = ("БП: единицы измерения", "БП: контрагенты", "БП: номенклатура")


@pytest.fixture(autouse=True)
def english() -> Any:
    with translation.override("en"):
        yield


@pytest.fixture(scope="module")
def bp_metadata() -> dict[str, Any]:
    return parse_metadata(io.BytesIO(FakeOneC("bp30").metadata))


@pytest.fixture
def connection(db: None, bp_metadata: dict[str, Any]) -> Connection:
    connection = Connection.objects.create(
        name="БП 3.0", kind=ConnectionKind.ODATA, url="http://1c/odata/standard.odata"
    )
    ODataMetadata.objects.create(connection=connection, sha1="0" * 40, configuration="bp30", data=bp_metadata)
    return connection


@pytest.fixture
def integrator(client: Any) -> Any:
    user = UserFactory(username="integrator", role=Role.INTEGRATOR)
    client.force_login(user)
    return user


def management(total: int, initial: int = 0) -> dict[str, Any]:
    return {
        "pairs-TOTAL_FORMS": total,
        "pairs-INITIAL_FORMS": initial,
        "pairs-MIN_NUM_FORMS": 0,
        "pairs-MAX_NUM_FORMS": 1000,
    }


def rule_post(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "Контрагенты",
        "entity": "counterparty",
        "entity_set": PARTIES,
        "key_fields": ["Ref_Key"],
        "filter": "DeletionMark eq false",
        "direction": "in",
        "is_active": "on",
        **management(3),
        "pairs-0-sdelka": "name",
        "pairs-0-onec": "Description",
        "pairs-0-ownership": "onec",
        "pairs-1-sdelka": "inn",
        "pairs-1-onec": "ИНН",
        "pairs-1-ownership": "sdelka",
        "pairs-2-ownership": "onec",
    }
    data.update(overrides)
    return data


def test_editor_offers_the_1c_objects_and_fields_of_the_metadata(client: Any, integrator: Any, connection: Any) -> None:
    page = client.get(reverse("web:exchange-rule-create", args=[connection.pk])).content.decode()
    assert f'<option value="{PARTIES}">' in page  # the datalist of 1C objects
    form = client.get(reverse("web:exchange-rule-create", args=[connection.pk])).context["form"]
    form.initial["entity_set"] = PARTIES
    # Choosing the 1C object reloads the form (htmx) with that object's fields, typed.
    response = client.post(
        reverse("web:exchange-rule-create", args=[connection.pk]),
        rule_post(refresh="1"),
        HTTP_HX_REQUEST="true",
    )
    body = response.content.decode()
    assert 'id="rule-form"' in body and "<html" not in body
    assert '<option value="ИНН">ИНН (String)</option>' in body
    assert '<option value="DeletionMark">DeletionMark (Boolean)</option>' in body
    assert 'class="errorlist"' not in body  # a refresh does not validate
    assert not MappingRule.objects.exists()


def test_saving_a_valid_rule(client: Any, integrator: Any, connection: Any) -> None:
    response = client.post(reverse("web:exchange-rule-create", args=[connection.pk]), rule_post())
    assert response.status_code == 302
    rule = MappingRule.objects.get()
    assert (rule.entity_set, rule.key_fields, rule.filter) == (PARTIES, ["Ref_Key"], "DeletionMark eq false")
    assert rule.fields == [
        {"sdelka": "name", "onec": "Description"},
        {"sdelka": "inn", "onec": "ИНН", "ownership": "sdelka"},
    ]


def test_type_mismatch_is_shown_on_the_1c_field_of_that_pair(client: Any, integrator: Any, connection: Any) -> None:
    response = client.post(
        reverse("web:exchange-rule-create", args=[connection.pk]), rule_post(**{"pairs-1-onec": "DeletionMark"})
    )
    assert response.status_code == 200
    assert not MappingRule.objects.exists()
    pair = response.context["formset"].forms[1]
    assert pair.errors == {"onec": ["DeletionMark is Edm.Boolean and cannot fill a text field."]}
    body = response.content.decode()
    assert 'id="id_pairs-1-onec_error"' in body
    assert 'value="Контрагенты"' in body  # what was typed is kept


def test_rule_errors_land_on_their_fields(client: Any, integrator: Any, connection: Any) -> None:
    url = reverse("web:exchange-rule-create", args=[connection.pk])
    unknown = client.post(url, rule_post(entity_set="Catalog_Нет")).context["form"]
    assert unknown.errors["entity_set"] == [
        "1C does not publish Catalog_Нет (or it does not exist in this configuration)."
    ]

    response = client.post(
        url, rule_post(filter="ИННН eq '1'", key_fields=[], **{"pairs-0-sdelka": "", "pairs-0-onec": ""})
    )
    form = response.context["form"]
    assert form.errors["filter"] == ["The filter names ИННН, which this 1C object does not have."]
    assert "key_fields" in form.errors
    assert response.context["general_errors"] == ["Sdelka needs name: map it."]

    value_map = client.post(
        url,
        rule_post(
            **{"pairs-2-sdelka": "kind", "pairs-2-onec": "ЮридическоеФизическоеЛицо", "pairs-2-map": "Юрлицо legal"}
        ),
    ).context["formset"]
    assert value_map.forms[2].errors["map"] == ["Line 1: write the 1C value, “=” and Sdelka's value."]

    bad_value = client.post(
        url,
        rule_post(
            **{"pairs-2-sdelka": "kind", "pairs-2-onec": "ЮридическоеФизическоеЛицо", "pairs-2-map": "Банк = legal"}
        ),
    ).context["formset"]
    assert bad_value.forms[2].errors["map"] == ["Банк is not a value of ЮридическоеФизическоеЛицо in 1C."]
    assert not MappingRule.objects.exists()


def test_a_failed_edit_leaves_the_stored_rule_alone(client: Any, integrator: Any, connection: Any) -> None:
    task = load_preset(connection=connection, preset="bp30")
    rule = MappingRule.objects.get(name="БП: контрагенты")
    before = list(rule.fields)
    page = client.get(reverse("web:exchange-rule-edit", args=[rule.pk])).content.decode()
    assert "ЮридическоеЛицо = legal" in page  # the value map as editable lines

    response = client.post(
        reverse("web:exchange-rule-edit", args=[rule.pk]),
        rule_post(name=rule.name, **{"pairs-1-onec": "НетТакогоПоля"}),
    )
    assert response.context["formset"].forms[1].errors["onec"] == [f"{PARTIES} has no field НетТакогоПоля."]
    rule.refresh_from_db()
    assert rule.fields == before
    assert rule in task.ordered_rules()


def test_copying_a_ready_made_rule_set(client: Any, integrator: Any, connection: Any) -> None:
    response = client.post(reverse("web:exchange-preset", args=[connection.pk]), {"preset": "bp30"}, follow=True)
    assert "Rule set copied" in response.content.decode()
    task = SyncTask.objects.get(connection=connection)
    names = [rule.name for rule in task.ordered_rules()]
    assert names == [item["name"] for item in PRESETS["bp30"]["rules"]]
    assert {"БП: контрагенты", "БП: номенклатура"} <= set(names)
    listing = client.get(reverse("web:exchange-rules", args=[connection.pk])).content.decode()
    assert "БП: номенклатура" in listing and "Catalog_Номенклатура" in listing


def test_no_metadata_yet_says_what_to_run(client: Any, integrator: Any) -> None:
    bare = Connection.objects.create(name="Новая", kind=ConnectionKind.ODATA, url="http://1c/odata/standard.odata")
    page = client.get(reverse("web:exchange-rules", args=[bare.pk])).content.decode()
    assert "sdelka connection check" in page
    response = client.post(reverse("web:exchange-rule-create", args=[bare.pk]), rule_post())
    assert "connection check" in response.context["form"].errors["entity_set"][0]


def test_task_editor_orders_rules_and_keeps_options(client: Any, integrator: Any, connection: Any) -> None:
    task = load_preset(connection=connection, preset="bp30")
    units, parties, products = (MappingRule.objects.get(name=name) for name in UNITS_PARTIES_PRODUCTS)
    team = TeamFactory(name="Отдел продаж")
    url = reverse("web:exchange-task-edit", args=[task.pk])
    response = client.post(
        url,
        {
            "name": "Только товары",
            "on_record_error": "skip_rule",
            "on_rule_error": "go_on",
            "page_size": "200",
            "schedule": "30 6 * * 1-5",
            "run_teams": [team.pk],
            "is_active": "on",
            f"rule-{products.pk}": "1",
            f"position-{products.pk}": "2",
            f"rule-{units.pk}": "1",
            f"position-{units.pk}": "1",
            f"position-{parties.pk}": "3",  # numbered but not ticked: not run
        },
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.name == "Только товары"
    assert task.ordered_rules() == [units, products]
    assert (task.schedule, list(task.run_teams.all())) == ("30 6 * * 1-5", [team])
    assert (task.create_allowed, task.on_record_error, task.on_rule_error, task.page_size) == (
        False, "skip_rule", "go_on", 200,
    )  # fmt: skip

    empty = client.post(url, {"name": "Пустая", "on_record_error": "go_on", "on_rule_error": "stop", "page_size": "0"})
    assert empty.context["form"].errors["page_size"]
    bad_cron = {"name": "Пустая", "on_record_error": "go_on", "on_rule_error": "stop", "page_size": "10"}
    bad_cron["schedule"] = "каждый час"
    assert "schedule" in client.post(url, {**bad_cron, f"rule-{units.pk}": "1"}).context["form"].errors
    empty = client.post(url, {"name": "Пустая", "on_record_error": "go_on", "on_rule_error": "stop", "page_size": "10"})
    assert empty.context["rule_errors"] == ["A task runs at least one rule."]
    task.refresh_from_db()
    assert task.name == "Только товары"


def test_rule_screens_are_for_integrators_only(client: Any, connection: Any) -> None:
    client.force_login(UserFactory(role=Role.DIRECTOR))
    assert client.get(reverse("web:exchange-rules", args=[connection.pk])).status_code == 403
    assert client.post(reverse("web:exchange-preset", args=[connection.pk]), {"preset": "bp30"}).status_code == 403
    assert not MappingRule.objects.exists()


def resubmit(response: Any) -> dict[str, Any]:
    """The editor's form posted back exactly as it was shown (what a user does with "Save" and no change)."""
    form, formset = response.context["form"], response.context["formset"]
    data: dict[str, Any] = {**management(len(formset.forms))}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.BooleanField):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    for pair in formset.forms:
        for name in pair.fields:
            value = pair[name].value()
            if isinstance(pair.fields[name], forms.BooleanField):
                if value:
                    data[pair.add_prefix(name)] = "on"
            elif value is not None:
                data[pair.add_prefix(name)] = value
    return data


def test_a_document_rule_saved_unchanged_keeps_lookups_row_fields_and_outgoing_maps(
    client: Any, integrator: Any, connection: Any
) -> None:
    load_preset(connection=connection, preset="bp30-documents")
    rule = MappingRule.objects.get(name="БП: счета покупателям")
    before = list(rule.fields)
    url = reverse("web:exchange-rule-edit", args=[rule.pk])
    shown = client.get(url)
    page = shown.content.decode()
    assert 'value="Catalog_Валюты.Code"' in page
    assert '<option value="Товары/Цена" selected>' in page  # a tabular part's field, offered and chosen

    response = client.post(url, resubmit(shown))

    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.fields == before


def test_a_wrong_lookup_is_shown_on_the_lookup_field(client: Any, integrator: Any, connection: Any) -> None:
    load_preset(connection=connection, preset="bp30-documents")
    rule = MappingRule.objects.get(name="БП: счета покупателям")
    row = next(i for i, pair in enumerate(rule.fields) if "lookup" in pair)
    url = reverse("web:exchange-rule-edit", args=[rule.pk])
    data = resubmit(client.get(url))

    data[f"pairs-{row}-lookup"] = "Catalog_Валюты"
    assert client.post(url, data).context["formset"].forms[row].errors["lookup"] == [
        "Write the 1C object and its field with a dot: Catalog_Валюты.Code."
    ]
    data[f"pairs-{row}-lookup"] = "Catalog_Валюты.НетПоля"
    assert client.post(url, data).context["formset"].forms[row].errors["lookup"] == [
        "Catalog_Валюты has no field НетПоля."
    ]
