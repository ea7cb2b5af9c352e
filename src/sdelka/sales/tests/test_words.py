"""Amount in words (1C's «ЧислоПрописью» for money) and the number and date formats of the printed form."""

from __future__ import annotations

import datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdelka.sales.printing.words import (
    Forms,
    amount_in_words,
    currency_forms,
    date_in_words,
    format_money,
    format_quantity,
    integer_in_words,
    plural_index,
)

USD_UNIT = Forms.parse("доллар США,доллара США,долларов США")
USD_CENT = Forms.parse("цент,цента,центов")


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("0.01", "Ноль рублей 01 копейка"),
        ("1", "Один рубль 00 копеек"),
        ("2", "Два рубля 00 копеек"),
        ("5", "Пять рублей 00 копеек"),
        ("11", "Одиннадцать рублей 00 копеек"),
        ("21", "Двадцать один рубль 00 копеек"),
        ("1000001.99", "Один миллион один рубль 99 копеек"),
        ("1000000", "Один миллион рублей 00 копеек"),
        ("1000000000", "Один миллиард рублей 00 копеек"),
        ("0.02", "Ноль рублей 02 копейки"),
        ("0.11", "Ноль рублей 11 копеек"),
        ("0.21", "Ноль рублей 21 копейка"),
        ("1001", "Одна тысяча один рубль 00 копеек"),
        ("2000", "Две тысячи рублей 00 копеек"),
        ("21000.22", "Двадцать одна тысяча рублей 22 копейки"),
        ("111", "Сто одиннадцать рублей 00 копеек"),
        ("112.14", "Сто двенадцать рублей 14 копеек"),
        ("2000002.02", "Два миллиона два рубля 02 копейки"),
        ("5000000000", "Пять миллиардов рублей 00 копеек"),
        ("1234567.89", "Один миллион двести тридцать четыре тысячи пятьсот шестьдесят семь рублей 89 копеек"),
        ("0.005", "Ноль рублей 01 копейка"),  # half a kopeck rounds up, as the line sums do
        ("0", "Ноль рублей 00 копеек"),
    ],
)
def test_roubles_and_kopecks(amount: str, words: str) -> None:
    assert amount_in_words(Decimal(amount)) == words


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("1", "Один доллар США 00 центов"),
        ("2.01", "Два доллара США 01 цент"),
        ("1000001.99", "Один миллион один доллар США 99 центов"),
        ("11.22", "Одиннадцать долларов США 22 цента"),
    ],
)
def test_dollars_and_cents(amount: str, words: str) -> None:
    assert amount_in_words(Decimal(amount), unit=USD_UNIT, subunit=USD_CENT) == words


def test_forms_of_a_currency_record_and_fallback_to_its_code() -> None:
    euro = SimpleNamespace(code="EUR", words_unit="евро,евро,евро", words_subunit="евроцент,евроцента,евроцентов")
    unit, subunit = currency_forms(euro)
    assert amount_in_words(Decimal("21.05"), unit=unit, subunit=subunit) == "Двадцать один евро 05 евроцентов"

    unit, subunit = currency_forms(SimpleNamespace(code="XAU", words_unit="", words_subunit=""))
    assert amount_in_words(Decimal("3.50"), unit=unit, subunit=subunit) == "Три XAU 50 /100 XAU"


def test_a_feminine_unit_agrees_only_in_the_last_group() -> None:
    krona = Forms.parse("крона,кроны,крон")
    assert krona.feminine and not USD_UNIT.feminine and not Forms.parse("евро").feminine
    assert amount_in_words(Decimal("1000001"), unit=krona, subunit=USD_CENT) == "Один миллион одна крона 00 центов"
    assert amount_in_words(Decimal("2002"), unit=krona, subunit=USD_CENT) == "Две тысячи две кроны 00 центов"
    assert integer_in_words(2_000_000, feminine=True) == "два миллиона"


# Plural forms: the ending follows the last two digits, 11–14 always take the "many" form.
PLURALS = {
    0: 2, 1: 0, 2: 1, 3: 1, 4: 1, 5: 2, 9: 2, 10: 2, 11: 2, 12: 2, 13: 2, 14: 2, 15: 2, 19: 2, 20: 2,
    21: 0, 22: 1, 24: 1, 25: 2, 100: 2, 101: 0, 102: 1, 111: 2, 112: 2, 114: 2, 121: 0, 1000: 2, 1001: 0,
    1011: 2, 1_000_000: 2, 3_000_004: 1, 10_000_011: 2, 999_999_991: 0,
}  # fmt: skip


@pytest.mark.parametrize(("number", "index"), sorted(PLURALS.items()))
def test_plural_form_index(number: int, index: int) -> None:
    assert plural_index(number) == index
    words = amount_in_words(Decimal(number))
    assert words.endswith(("рубль 00 копеек", "рубля 00 копеек", "рублей 00 копеек")[index])


@pytest.mark.parametrize("kopecks", range(100))
def test_every_kopeck_form(kopecks: int) -> None:
    form = ("копейка", "копейки", "копеек")[plural_index(kopecks)]
    assert amount_in_words(Decimal(kopecks) / 100) == f"Ноль рублей {kopecks:02d} {form}"


# A reader of Russian numerals, to check the words give back the digits.
UNITS = {
    "ноль": 0, "один": 1, "одна": 1, "два": 2, "две": 2, "три": 3, "четыре": 4, "пять": 5, "шесть": 6,
    "семь": 7, "восемь": 8, "девять": 9, "десять": 10, "одиннадцать": 11, "двенадцать": 12,
    "тринадцать": 13, "четырнадцать": 14, "пятнадцать": 15, "шестнадцать": 16, "семнадцать": 17,
    "восемнадцать": 18, "девятнадцать": 19, "двадцать": 20, "тридцать": 30, "сорок": 40, "пятьдесят": 50,
    "шестьдесят": 60, "семьдесят": 70, "восемьдесят": 80, "девяносто": 90, "сто": 100, "двести": 200,
    "триста": 300, "четыреста": 400, "пятьсот": 500, "шестьсот": 600, "семьсот": 700, "восемьсот": 800,
    "девятьсот": 900,
}  # fmt: skip
SCALES = {"тысяч": 10**3, "миллион": 10**6, "миллиард": 10**9}


def read_number(words: list[str]) -> tuple[int, list[str]]:
    """The number the leading numeral words say, and the words after them."""
    total = group = 0
    for index, word in enumerate(words):
        scale = next((value for stem, value in SCALES.items() if word.startswith(stem)), None)
        if word in UNITS:
            group += UNITS[word]
        elif scale is not None:
            total, group = total + group * scale, 0
        else:
            return total + group, words[index:]
    return total + group, []


@given(st.integers(min_value=0, max_value=999_999_999_999), st.integers(min_value=0, max_value=99))
def test_words_read_back_as_the_digits(roubles: int, kopecks: int) -> None:
    amount = Decimal(roubles) + Decimal(kopecks) / 100
    words = amount_in_words(amount).lower().split()
    number, rest = read_number(words)
    assert number == roubles
    unit = ("рубль", "рубля", "рублей")[plural_index(roubles)]
    assert rest == [unit, f"{kopecks:02d}", ("копейка", "копейки", "копеек")[plural_index(kopecks)]]


def test_money_quantity_and_date_formats() -> None:
    nbsp = "\u00a0"
    assert format_money(Decimal("1234567.5")) == f"1{nbsp}234{nbsp}567,50"
    assert format_money(Decimal("0.00")) == "0,00"
    assert format_quantity(Decimal("2.500")) == "2,5"
    assert format_quantity(Decimal("1000.000")) == f"1{nbsp}000"
    assert format_quantity(Decimal("0.125")) == "0,125"
    assert date_in_words(datetime.date(2026, 3, 1)) == f"1 марта 2026{nbsp}г."
    assert date_in_words(datetime.date(2026, 12, 31)) == f"31 декабря 2026{nbsp}г."
