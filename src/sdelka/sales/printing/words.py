"""Amounts and dates as a Russian invoice prints them.

`amount_in_words` follows 1C's «ЧислоПрописью» for money: the whole units in words, the subunits
as two digits, each with its plural form — «Одна тысяча двести рублей 05 копеек». The forms come
from the currency (`core.Currency.words_unit` / `words_subunit`: "one,few,many"), so dollars, euros
or yuan print in their own words. Printed documents are Russian whatever the interface language.
"""

from __future__ import annotations

import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from num2words import num2words

KOPECK = Decimal("0.01")
NBSP = "\u00a0"
MONTHS_GENITIVE = (
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
)


class Forms(NamedTuple):
    """A noun's forms after 1, 2 and 5 («рубль, рубля, рублей») and its grammatical gender."""

    one: str
    few: str
    many: str
    feminine: bool

    @classmethod
    def parse(cls, forms: str, fallback: str = "") -> Forms:
        """ "рубль,рубля,рублей" → Forms; a single word serves all three; empty → `fallback`."""
        parts = [part.strip() for part in forms.split(",") if part.strip()] or [fallback]
        one, few, many = (parts + [parts[-1]] * 3)[:3]
        # Feminine nouns of currencies end in -а/-я (копейка, гривна, крона, рупия); евро, тенге, доллар,
        # рубль, цент are masculine. An adjective in front («белорусская») ends in -ая: same rule.
        return cls(one, few, many, feminine=one.split(" ")[0].endswith(("а", "я")))

    def pick(self, number: int) -> str:
        return (self.one, self.few, self.many)[plural_index(number)]


RUB_UNIT = Forms.parse("рубль,рубля,рублей")
RUB_SUBUNIT = Forms.parse("копейка,копейки,копеек")


def plural_index(number: int) -> int:
    """0 for 1, 21, 101…; 1 for 2–4, 22–24…; 2 for 0, 5–20, 25–30, 111…"""
    number = abs(number)
    if 11 <= number % 100 <= 14:
        return 2
    if number % 10 == 1:
        return 0
    if 2 <= number % 10 <= 4:
        return 1
    return 2


def integer_in_words(number: int, *, feminine: bool = False) -> str:
    """A whole number in Russian words, lower case; `feminine` agrees the last group with a
    feminine noun («двадцать одна копейка», «две тысячи две кроны»)."""
    if number < 0:
        return "минус " + integer_in_words(-number, feminine=feminine)
    if number == 0:
        return "ноль"
    if not feminine:
        return str(num2words(number, lang="ru"))
    # num2words' feminine flag also changes «миллион»: only the last three digits take the gender.
    high, low = divmod(number, 1000)
    words = [str(num2words(high * 1000, lang="ru"))] if high else []
    if low:
        words.append(str(num2words(low, lang="ru", gender="f")))
    return " ".join(words)


def to_kopecks(amount: Decimal) -> int:
    return int(amount.quantize(KOPECK, rounding=ROUND_HALF_UP) * 100)


def amount_in_words(amount: Decimal, *, unit: Forms = RUB_UNIT, subunit: Forms = RUB_SUBUNIT) -> str:
    """«Одна тысяча один рубль 99 копеек» for 1001.99; the first letter capitalised."""
    kopecks = to_kopecks(amount)
    whole, cents = divmod(abs(kopecks), 100)
    text = f"{integer_in_words(whole, feminine=unit.feminine)} {unit.pick(whole)} {cents:02d} {subunit.pick(cents)}"
    if kopecks < 0:
        text = "минус " + text
    return text[0].upper() + text[1:]


def currency_forms(currency: object) -> tuple[Forms, Forms]:
    """The unit and subunit forms of a `core.Currency` (its code when it has no words)."""
    code = str(getattr(currency, "code", currency) or "")
    unit = Forms.parse(str(getattr(currency, "words_unit", "") or ""), fallback=code)
    subunit = Forms.parse(str(getattr(currency, "words_subunit", "") or ""), fallback=f"/100 {code}")
    return unit, subunit


def format_money(amount: Decimal) -> str:
    """1234567.5 → «1 234 567,50» with non-breaking spaces, as Russian documents print sums."""
    kopecks = to_kopecks(amount)
    whole, cents = divmod(abs(kopecks), 100)
    grouped = f"{whole:,}".replace(",", NBSP)
    return f"{'-' if kopecks < 0 else ''}{grouped},{cents:02d}"


def format_quantity(quantity: Decimal) -> str:
    """3.000 → «3», 2.500 → «2,5»: no trailing zeros, a decimal comma."""
    text = f"{quantity.normalize():f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    whole, _, fraction = text.partition(".")
    grouped = f"{int(whole):,}".replace(",", NBSP)
    return f"{grouped},{fraction}" if fraction else grouped


def date_in_words(day: datetime.date) -> str:
    """«10 марта 2026 г.»"""
    return f"{day.day} {MONTHS_GENITIVE[day.month - 1]} {day.year}{NBSP}г."
