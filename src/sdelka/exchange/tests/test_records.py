"""Canonical records and the lenient value parsers the CommerceML reader uses."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdelka.core.vat import VatRate
from sdelka.exchange.commerceml.reader_values import (
    combine,
    parse_bool,
    parse_currency,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_vat,
    split_variant_id,
)
from sdelka.exchange.records import Order, Price, Product, RecordError, RecordProblem

MSK = ZoneInfo("Europe/Moscow")


def test_records_are_frozen_and_slotted() -> None:
    product = Product(id="p", name="n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        product.name = "x"  # type: ignore[misc]
    assert not hasattr(product, "__dict__")
    assert Order(id="1").status.paid is None
    assert Price("p", None, "t", Decimal(1)).coefficient == Decimal(1)
    assert RecordError("price", "p", "ЦенаЗаЕдиницу", "x", "bad").level == "error"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 234,50", Decimal("1234.50")),
        ("1234.5", Decimal("1234.5")),
        ("1\u00a0234,5", Decimal("1234.5")),
        ("1\u202f234", Decimal("1234")),
        ("-999 999 999,9", Decimal("-999999999.9")),
        ("1,234.56", Decimal("1234.56")),
        ("1.234,56", Decimal("1234.56")),
        (" 20 ", Decimal("20")),
        ("0", Decimal("0")),
        ("", None),
        (None, None),
    ],
)
def test_parse_decimal(text: str | None, expected: Decimal | None) -> None:
    assert parse_decimal(text, field="Цена") == expected


@pytest.mark.parametrize("text", ["abc", "12abc", "NaN", "Infinity", "1..2", "--1", "1/2"])
def test_parse_decimal_refuses_garbage_with_field_and_value(text: str) -> None:
    with pytest.raises(RecordProblem) as caught:
        parse_decimal(text, field="ЦенаЗаЕдиницу")
    assert caught.value.field == "ЦенаЗаЕдиницу"
    assert caught.value.value == text


@given(st.decimals(min_value=-(10**12), max_value=10**12, places=2, allow_nan=False, allow_infinity=False))
def test_parse_decimal_reads_1c_formatting(value: Decimal) -> None:
    plain = f"{value:f}"
    grouped = f"{value:,.2f}".replace(",", "\u00a0").replace(".", ",")
    assert parse_decimal(plain, field="x") == value
    assert parse_decimal(grouped, field="x") == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Без НДС", VatRate.WITHOUT),
        ("без ндс", VatRate.WITHOUT),
        ("БезНДС", VatRate.WITHOUT),
        ("22%", VatRate.VAT_22),
        ("20", VatRate.VAT_20),
        ("НДС22", VatRate.VAT_22),
        ("НДС 10%", VatRate.VAT_10),
        ("10/110", VatRate.VAT_10),
        ("20/120", VatRate.VAT_20),
        ("18", VatRate.VAT_20),
        ("0", VatRate.VAT_0),
        ("0%", VatRate.VAT_0),
        ("5", VatRate.VAT_5),
        ("7%", VatRate.VAT_7),
        ("0.2", VatRate.VAT_20),
        ("", None),
        (None, None),
    ],
)
def test_parse_vat(text: str | None, expected: VatRate | None) -> None:
    assert parse_vat(text) == expected


@pytest.mark.parametrize("text", ["13", "НДС 33%", "много"])
def test_parse_vat_unknown(text: str) -> None:
    with pytest.raises(RecordProblem):
        parse_vat(text)


def test_parse_datetime_forms() -> None:
    assert parse_datetime("2014-06-01T0:36:33", field="d") == datetime(2014, 6, 1, 0, 36, 33, tzinfo=MSK)
    assert parse_datetime("2015-06-29 15:39:10", field="d") == datetime(2015, 6, 29, 15, 39, 10, tzinfo=MSK)
    assert parse_datetime("2015-06-29", field="d") == datetime(2015, 6, 29, tzinfo=MSK)
    assert parse_datetime("2025-01-02T03:04:05+05:00", field="d") == datetime.fromisoformat("2025-01-02T03:04:05+05:00")
    for empty in ("", "T", "0001-01-01T00:00:00", None):
        assert parse_datetime(empty, field="d") is None
    assert parse_date("2015-06-29", field="Дата1С") == date(2015, 6, 29)
    assert combine("2007-10-30", "15:19:27") == datetime(2007, 10, 30, 15, 19, 27, tzinfo=MSK)
    with pytest.raises(RecordProblem):
        parse_datetime("30.10.2007", field="Дата")
    with pytest.raises(RecordProblem):
        parse_datetime("2007-13-40", field="Дата")


def test_parse_bool_currency_and_ids() -> None:
    assert [parse_bool(v) for v in ("true", "Да", "false", "нет", "1", "", None, "maybe")] == [
        True,
        True,
        False,
        False,
        True,
        None,
        None,
        None,
    ]
    assert [parse_currency(v) for v in ("руб", "RUB", "643", "грн", "usd", "", "XYZ")] == [
        "RUB",
        "RUB",
        "RUB",
        "UAH",
        "USD",
        "",
        "XYZ",
    ]
    assert split_variant_id("a#b") == ("a", "a#b")
    assert split_variant_id("a#") == ("a", None)
    assert split_variant_id("#b") == ("#b", None)
    assert split_variant_id("a") == ("a", None)
