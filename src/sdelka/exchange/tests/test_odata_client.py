"""The OData client against the fake 1C: encoding, 1C's value quirks, errors and every fault mode for reads."""

from __future__ import annotations

import urllib.request
from decimal import Decimal
from typing import Any

import pytest

from sdelka.exchange.odata.client import (
    ODataAuthError,
    ODataBadResponse,
    ODataClient,
    ODataError,
    ODataUnavailable,
    _error_text,
)
from sdelka.exchange.odata.values import moment, ref, string_literal, text
from tests.fake_odata import ZERO_GUID, FakeOneC, fake_onec

__all__ = ["fake_onec"]

PARTIES = "Catalog_Контрагенты"


def client_for(fake: FakeOneC, **kwargs: Any) -> ODataClient:
    kwargs.setdefault("sleep", lambda seconds: None)
    kwargs.setdefault("timeout", 2)
    return ODataClient(fake.base_url, fake.login, fake.password, **kwargs)


def test_reads_json_with_1c_value_quirks(fake_onec: FakeOneC) -> None:
    fake_onec.add(PARTIES, Description="ООО «Ромашка»", ИНН="7707083893  ")
    rows = client_for(fake_onec).fetch(PARTIES)
    assert len(rows) == 1
    row = rows[0]
    assert row["ИНН"] == "7707083893  "  # fixed-length padding as 1C sends it
    assert text(row["ИНН"]) == "7707083893"
    assert row["ГоловнойКонтрагент_Key"] == ZERO_GUID
    assert ref(row["ГоловнойКонтрагент_Key"]) is None
    assert row["DataVersion"].endswith("=")
    assert all("$format=json" in r.raw_query for r in fake_onec.requests)


def test_default_format_is_atom_and_the_client_always_asks_json(fake_onec: FakeOneC) -> None:
    fake_onec.add(PARTIES, Description="A")
    client = client_for(fake_onec)
    request = urllib.request.Request(client.url(PARTIES), headers={"Authorization": client._auth})
    with urllib.request.urlopen(request, timeout=5) as response:
        raw = response.read()
    assert raw.startswith(b"<?xml") and b"<feed" in raw
    assert client.get(PARTIES)["value"][0]["Description"] == "A"


def test_int64_as_strings_doubles_as_decimal(fake_onec: FakeOneC) -> None:
    fake_onec.add(
        "Document_СчетНаОплатуПокупателю",
        Number="00-000001",
        СуммаДокумента=Decimal("1234.56"),
        Товары=[{"LineNumber": 1, "Количество": Decimal(2), "Цена": Decimal("617.28"), "Сумма": Decimal("1234.56")}],
    )
    row = client_for(fake_onec).fetch("Document_СчетНаОплатуПокупателю")[0]
    assert row["СуммаДокумента"] == Decimal("1234.56") and isinstance(row["СуммаДокумента"], Decimal)
    assert row["Товары"][0]["LineNumber"] == "1"


def test_inlinecount_ignores_paging_so_the_client_counts_separately(fake_onec: FakeOneC) -> None:
    for i in range(5):
        fake_onec.add(PARTIES, Description=f"N{i}")
    client = client_for(fake_onec)
    data = client.get(PARTIES, {"$inlinecount": "allpages", "$top": 2})
    assert data["odata.count"] == "5" and len(data["value"]) == 5  # 1C's documented behaviour
    assert client.count(PARTIES) == 5
    assert client.count(PARTIES, "Description eq 'N1' or Description eq 'N2'") == 2
    pages = list(client.pages(PARTIES, select=["Ref_Key"], page_size=2))
    assert [offset for offset, _ in pages] == [0, 2, 4]
    assert sum(len(rows) for _, rows in pages) == 5


def test_filter_spaces_are_percent_20_and_quotes_doubled(fake_onec: FakeOneC) -> None:
    fake_onec.add(PARTIES, Description="ООО Д'Артаньян и К")
    fake_onec.add(PARTIES, Description="Other")
    name = "ООО Д'Артаньян и К"
    rows = client_for(fake_onec).fetch(PARTIES, filter="Description eq " + string_literal(name))
    assert [r["Description"] for r in rows] == ["ООО Д'Артаньян и К"]
    raw = fake_onec.requests[-1].raw_query
    assert "%20" in raw and "+" not in raw


def test_unknown_select_field_gives_1c_message(fake_onec: FakeOneC) -> None:
    with pytest.raises(ODataError) as info:
        client_for(fake_onec).fetch(PARTIES, select=["Ref_Key", "НетТакого"])
    assert info.value.status == 400 and info.value.code == "6"
    assert "НетТакого" in info.value.message
    assert len(fake_onec.requests) == 1  # a 4xx is not retried


def test_cyrillic_login_and_wrong_password(fake_onec: FakeOneC) -> None:
    assert client_for(fake_onec).service_document()  # login "Обмен" is sent as UTF-8
    wrong = ODataClient(fake_onec.base_url, fake_onec.login, "wrong", sleep=lambda s: None)
    with pytest.raises(ODataAuthError):
        wrong.service_document()


def test_error_text_from_json_and_atom() -> None:
    assert _error_text('{"odata.error": {"code": "9", "message": {"lang": "ru", "value": "Не найден"}}}'.encode()) == (
        "9",
        "Не найден",
    )
    atom = (
        '<m:error xmlns:m="x"><m:code>14</m:code><m:message>Ошибка &quot;разбора&quot;</m:message></m:error>'.encode()
    )
    assert _error_text(atom) == ("14", 'Ошибка "разбора"')
    assert _error_text(b"<html>Service Unavailable</html>") == ("", "")


def test_local_dates_become_aware() -> None:
    value = moment("2015-12-31T23:59:59", "Europe/Moscow")
    assert value is not None and value.utcoffset() is not None and value.hour == 23
    assert moment("0001-01-01T00:00:00", "Europe/Moscow") is None


# --- faults on reads: retried with backoff, then a clear error -------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "503", "drop", "malformed", "timeout"])
def test_read_faults_are_retried_with_backoff(fake_onec: FakeOneC, mode: str) -> None:
    fake_onec.hang_seconds = 1.5
    fake_onec.add(PARTIES, Description="A")
    fake_onec.fail(mode, times=2)
    sleeps: list[float] = []
    client = client_for(fake_onec, timeout=0.5, sleep=sleeps.append, backoff=0.5)
    assert client.fetch(PARTIES)[0]["Description"] == "A"
    assert sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    ("mode", "error", "text_"),
    [
        ("500", ODataUnavailable, "Внутренняя ошибка сервера"),
        ("503", ODataUnavailable, "HTTP 503"),
        ("drop", ODataUnavailable, "dropped the connection"),
        ("malformed", ODataBadResponse, "not valid JSON"),
        ("timeout", ODataUnavailable, "did not answer within"),
    ],
)
def test_read_faults_that_persist_end_in_a_clear_error(
    fake_onec: FakeOneC, mode: str, error: type[Exception], text_: str
) -> None:
    fake_onec.hang_seconds = 1.0
    fake_onec.fail(mode, times=10)
    attempts: list[Any] = []
    client = client_for(fake_onec, timeout=0.3, retries=2, on_request=attempts.append)
    with pytest.raises(error) as info:
        client.fetch(PARTIES)
    assert text_ in str(info.value)
    assert len(fake_onec.requests) == 3 and len({a.status for a in attempts}) == 1


def test_slow_session_start_within_the_timeout_is_not_an_error(fake_onec: FakeOneC) -> None:
    fake_onec.slow_start_seconds = 0.3
    fake_onec.fail("slow")
    attempts: list[Any] = []
    client = client_for(fake_onec, timeout=5, on_request=attempts.append)
    assert client.service_document()
    assert len(attempts) == 1 and attempts[0].seconds >= 0.3


def test_writes_are_not_retried_and_carry_1c_message(fake_onec: FakeOneC) -> None:
    fake_onec.fail("refuse", method="POST", message="Не заполнено поле ИНН")
    client = client_for(fake_onec)
    with pytest.raises(ODataError) as info:
        client.create(PARTIES, {"Description": "X"})
    assert info.value.message == "Не заполнено поле ИНН" and info.value.code == "-1"
    assert [r.method for r in fake_onec.requests] == ["POST"]
    assert not fake_onec.data[PARTIES]


def test_write_round_trip_truncates_and_bumps_data_version(fake_onec: FakeOneC) -> None:
    client = client_for(fake_onec)
    created = client.create(PARTIES, {"Description": "Я" * 150, "НетТакогоПоля": 1})
    assert len(created["Description"]) == 100  # 1C truncates silently
    again = client.update(PARTIES, created["Ref_Key"], {})
    assert again["DataVersion"] != created["DataVersion"]  # every write bumps DataVersion
    assert client.entity(PARTIES, created["Ref_Key"])["DataVersion"] == again["DataVersion"]


def test_post_and_unpost(fake_onec: FakeOneC) -> None:
    doc = fake_onec.add("Document_СчетНаОплатуПокупателю", Number="1")
    client = client_for(fake_onec)
    client.post_document("Document_СчетНаОплатуПокупателю", doc["Ref_Key"])
    assert fake_onec.data["Document_СчетНаОплатуПокупателю"][doc["Ref_Key"]]["Posted"] is True
    client.unpost_document("Document_СчетНаОплатуПокупателю", doc["Ref_Key"])
    assert fake_onec.data["Document_СчетНаОплатуПокупателю"][doc["Ref_Key"]]["Posted"] is False
