"""The fake 1C itself is faithful to the spec: the `$filter` subset, `+` is not a space, `$count`, unpublished
objects, the service document, write rules (LineNumber 1..n, unknown properties ignored). And the client's
literals survive the round trip through URL encoding and the fake's parser for any text."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdelka.exchange.odata.client import ODataClient, ODataError
from sdelka.exchange.odata.values import string_literal
from tests.fake_odata import FakeOneC, serve
from tests.fake_odata.filters import FilterError, compile_filter

PARTIES = "Catalog_Контрагенты"
INVOICES = "Document_СчетНаОплатуПокупателю"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOneC]:
    with serve(FakeOneC("bp30")) as server:
        yield server


@pytest.fixture
def client(fake: FakeOneC) -> ODataClient:
    return ODataClient(fake.base_url, fake.login, fake.password, retries=0, timeout=5)


ROW = {"Description": "ООО Ромашка", "ИНН": "7707083893", "DeletionMark": False, "Date": "2026-02-01T10:00:00"}
KNOWN = set(ROW) | {"Ref_Key"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Description eq 'ООО Ромашка'", True),
        ("Description eq 'ооо ромашка'", True),  # 1C compares strings case-insensitively
        ("not (DeletionMark eq true) and ИНН ne ''", True),
        ("substringof('Рома', Description)", True),
        ("startswith(ИНН, '77') or ИНН eq '1'", True),
        ("like(Description, 'ООО%ка')", True),
        ("like(Description, 'ООО_Ромашка')", True),
        ("Date ge datetime'2026-02-01T00:00:00' and Date lt datetime'2026-03-01T00:00:00'", True),
        ("year(Date) eq 2025", False),
        ("endswith(Description, 'x')", False),
    ],
)
def test_filter_subset(text: str, expected: bool) -> None:
    assert compile_filter(text, KNOWN)(ROW) is expected


@pytest.mark.parametrize("text", ["tolower(Description) eq 'a'", "length(ИНН) eq 10", "Нет eq 1", "(ИНН eq '1'"])
def test_filter_refusals(text: str) -> None:
    with pytest.raises(FilterError):
        compile_filter(text, KNOWN)


def test_plus_is_not_a_space_and_bad_filter_is_code_14(fake: FakeOneC, client: ODataClient) -> None:
    fake.add(PARTIES, Description="Plus Space")
    url = client.url(PARTIES, {"$format": "json", "$filter": "Description eq 'Plus Space'"})
    assert "%20" in url
    assert client.count(PARTIES, "Description eq 'Plus Space'") == 1
    raw = client.request("GET", f"{PARTIES}/$count", parse=False)
    assert raw.strip().isdigit()
    plus_url = url.replace("%20", "+")
    status, _payload = client._once("GET", plus_url, PARTIES, None, 5, None)
    assert status == 400  # '+' stays '+': "Description+eq+'Plus+Space'" is not a filter
    with pytest.raises(ODataError) as info:
        client.fetch(PARTIES, filter="Description eq")
    assert info.value.code == "14"


def test_unpublished_object_and_missing_entity(fake: FakeOneC, client: ODataClient) -> None:
    with pytest.raises(ODataError) as info:
        client.fetch("Catalog_Партнеры")
    assert info.value.status == 400 and info.value.code == "6"
    with pytest.raises(ODataError) as info:
        client.entity(PARTIES, "11111111-1111-1111-1111-111111111111")
    assert info.value.status == 404 and info.value.code == "9"
    assert "не найден" in info.value.message


def test_service_document_lists_the_published_sets(fake: FakeOneC, client: ODataClient) -> None:
    names = client.service_document()
    assert PARTIES in names and INVOICES in names and f"{INVOICES}_Товары" in names
    assert "Catalog_Партнеры" not in names


def test_tabular_parts_are_replaced_whole_with_consecutive_line_numbers(fake: FakeOneC, client: ODataClient) -> None:
    doc = client.create(INVOICES, {"Date": "2026-02-01T00:00:00", "Товары": [{"LineNumber": 1, "Цена": 10}]})
    assert doc["Товары"][0]["LineNumber"] == "1" and doc["Товары"][0]["Цена"] == Decimal(10)
    with pytest.raises(ODataError) as info:
        client.update(INVOICES, doc["Ref_Key"], {"Товары": [{"LineNumber": 2, "Цена": 5}]})
    assert info.value.status == 400
    with pytest.raises(ODataError) as info:
        client.update(INVOICES, doc["Ref_Key"], {"Товары": [{"Цена": 5}]})
    assert info.value.status == 500 and info.value.code == "-1"
    rows = [{"LineNumber": 1, "Цена": 1}, {"LineNumber": 2, "Цена": 2}]
    updated = client.update(INVOICES, doc["Ref_Key"], {"Товары": rows, "НетТакого": 1, "Ref_Key": "x"})
    assert [r["Цена"] for r in updated["Товары"]] == [1, 2] and updated["Ref_Key"] == doc["Ref_Key"]
    client.update(INVOICES, doc["Ref_Key"], {"DeletionMark": True})
    with pytest.raises(ODataError, match="Помеченный на удаление"):
        client.post_document(INVOICES, doc["Ref_Key"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=40))
def test_string_literals_survive_the_round_trip(fake: FakeOneC, client: ODataClient, value: str) -> None:
    fake.add(PARTIES, Description=value, КодПоОКПО="roundtrip")
    rows = client.fetch(
        PARTIES, select=["Description"], filter=f"Description eq {string_literal(value)} and КодПоОКПО eq 'roundtrip'"
    )
    assert rows and all(row["Description"].lower() == value.lower() for row in rows)
