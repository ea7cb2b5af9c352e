"""Lenient parsing of CommerceML scalar values: numbers, dates, booleans, VAT rates, currencies.

Each parser raises :class:`~sdelka.exchange.records.RecordProblem` for a value it cannot read, so the record loop
can turn it into a per-record error and carry on with the file.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, tzinfo
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sdelka.core.vat import VatRate
from sdelka.exchange.records import RecordProblem

MOSCOW = ZoneInfo("Europe/Moscow")

_SPACES = re.compile(r"[\s\u00a0\u2007\u2009\u202f']+")
_PLAIN_NUMBER = re.compile(r"-?\d{1,30}(\.\d{1,30})?")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(
    r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?"
)
_TIME = re.compile(r"(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?")
_TRUE = frozenset({"true", "1", "да", "yes", "истина"})
_FALSE = frozenset({"false", "0", "нет", "no", "ложь"})


_PLAIN_DECIMALS: dict[str, Decimal] = {}  # quantities, coefficients and prices repeat across a catalogue
_PLAIN_DECIMALS_MAX = 16384  # bounded (a few MB): a file of all-different prices must not grow it without end


def parse_decimal(text: str | None, *, field: str) -> Decimal | None:
    """ "1 234,50", "1234.5", "1\u00a0234", "-5" → Decimal; "" / None → None; anything else → RecordProblem."""
    if text is None:
        return None
    known = _PLAIN_DECIMALS.get(text)
    if known is not None:
        return known
    if _PLAIN_NUMBER.fullmatch(text):  # what 1C writes: no spaces, a point or nothing before the decimals
        value = Decimal(text)
        if len(_PLAIN_DECIMALS) < _PLAIN_DECIMALS_MAX:
            _PLAIN_DECIMALS[text] = value
        return value
    raw = text
    cleaned = _SPACES.sub("", text)
    if not cleaned:
        return None
    if "," in cleaned and "." in cleaned:
        # The later separator is the decimal one; the other groups thousands.
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    else:
        cleaned = cleaned.replace(",", ".")
    if not _NUMBER.fullmatch(cleaned):
        raise RecordProblem(field, raw, f"{field}: {raw!r} is not a number.")
    try:
        return Decimal(cleaned)
    except InvalidOperation:
        raise RecordProblem(field, raw, f"{field}: {raw!r} is not a number.") from None


def parse_bool(text: str | None) -> bool | None:
    """true/false, Да/Нет, 1/0 → bool; empty or unknown → None (Bitrix also treats a non-zero number as true)."""
    if text is None:
        return None
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value.isdigit():
        return int(value) != 0
    return None


def parse_datetime(text: str | None, *, field: str, tz: tzinfo = MOSCOW) -> datetime | None:
    """ISO-ish dates, with T or space, unpadded hours; "", "T" and 0001-01-01 → None; aware in ``tz``."""
    if text is None:
        return None
    value = text.strip()
    if not value or value == "T" or value.startswith("0001-01-01"):
        return None
    match = _DATE.fullmatch(value)
    if not match:
        raise RecordProblem(field, text, f"{field}: {text!r} is not a date.")
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        result = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), tzinfo=tz
        )
        if offset:
            naive = result.replace(tzinfo=None).isoformat()
            return datetime.fromisoformat(naive + (offset if offset != "Z" else "+00:00"))
    except ValueError:
        raise RecordProblem(field, text, f"{field}: {text!r} is not a date.") from None
    return result


def parse_date(text: str | None, *, field: str) -> date | None:
    """A date without time (``Дата1С``); same empty forms as :func:`parse_datetime`."""
    moment = parse_datetime(text, field=field)
    return moment.date() if moment else None


def combine(day: str | None, clock: str | None, *, tz: tzinfo = MOSCOW) -> datetime | None:
    """``Дата`` + ``Время`` of a document into one aware datetime."""
    moment = parse_datetime(day, field="Дата", tz=tz)
    if moment is None or not clock or not clock.strip():
        return moment
    match = _TIME.fullmatch(clock.strip())
    if not match:
        raise RecordProblem("Время", clock, f"Время: {clock!r} is not a time.")
    hour, minute, second = (int(part or 0) for part in match.groups())
    try:
        return datetime.combine(moment.date(), time(hour, minute, second), tzinfo=moment.tzinfo)
    except ValueError:
        raise RecordProblem("Время", clock, f"Время: {clock!r} is not a time.") from None


_VAT_WORDS = re.compile(r"(ндс|vat|ставка|%|\s)", re.IGNORECASE)
_VAT_NONE = frozenset({"безндс", "без", "none", "нет", "ндснеоблагается", "необлагается"})
_VAT_FRACTION = re.compile(r"(\d+)/(\d+)")
_VAT_BY_PERCENT = {
    Decimal(22): VatRate.VAT_22,
    Decimal(20): VatRate.VAT_20,
    Decimal(18): VatRate.VAT_20,  # the general rate before 2019; the nearest rate we keep (see records docs)
    Decimal(10): VatRate.VAT_10,
    Decimal(7): VatRate.VAT_7,
    Decimal(5): VatRate.VAT_5,
    Decimal(0): VatRate.VAT_0,
}


def parse_vat(text: str | None, *, field: str = "СтавкаНДС") -> VatRate | None:
    """«Без НДС», «22%», «20», «НДС22», «НДС 10%», «10/110», «0,2», «18» (old general rate → 20) → VatRate.

    Empty → None. An unknown rate → RecordProblem.
    """
    if text is None:
        return None
    raw = text
    value = _VAT_WORDS.sub("", text.strip().lower()).replace("_", "").replace("-", "")
    if not value:
        return VatRate.WITHOUT if "без" in raw.lower() else None
    if value in _VAT_NONE or value.startswith("без"):
        return VatRate.WITHOUT
    fraction = _VAT_FRACTION.fullmatch(value)
    if fraction:
        value = fraction.group(1)
    try:
        percent = Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise RecordProblem(field, raw, f"{field}: unknown VAT rate {raw!r}.") from None
    if 0 < percent < 1:
        percent *= 100
    rate = _VAT_BY_PERCENT.get(percent.normalize() if percent else Decimal(0))
    if rate is None:
        raise RecordProblem(field, raw, f"{field}: unknown VAT rate {raw!r}.")
    return rate


_CURRENCIES = {
    "руб": "RUB",
    "руб.": "RUB",
    "рубль": "RUB",
    "рублей": "RUB",
    "р": "RUB",
    "р.": "RUB",
    "rur": "RUB",
    "643": "RUB",
    "₽": "RUB",
    "грн": "UAH",
    "грн.": "UAH",
    "980": "UAH",
    "usd": "USD",
    "$": "USD",
    "840": "USD",
    "eur": "EUR",
    "евро": "EUR",
    "€": "EUR",
    "978": "EUR",
    "тенге": "KZT",
    "тг": "KZT",
    "398": "KZT",
    "бел.руб": "BYN",
    "бел. руб": "BYN",
    "933": "BYN",
    "cny": "CNY",
    "юань": "CNY",
    "156": "CNY",
}


def parse_currency(text: str | None) -> str:
    """1C currency names and codes → ISO letter code ("руб" → "RUB", "643" → "RUB"); unknown text kept upper-cased."""
    if not text:
        return ""
    value = text.strip()
    mapped = _CURRENCIES.get(value.lower())
    if mapped:
        return mapped
    return value.upper()


def split_variant_id(raw_id: str) -> tuple[str, str | None]:
    """ "guid#char" → ("guid", "guid#char"); "guid" and "guid#" → ("guid", None); "#guid" stays whole."""
    product, sep, characteristic = raw_id.partition("#")
    if not sep or not product:
        return raw_id, None
    if not characteristic:
        return product, None
    return product, raw_id


# ХозОперация of a shipment document (2.10 «Отпуск товара» / «ОтпускТовара»; «Реализация товаров», «Отгрузка» in
# other builds), a document of its own or a subordinate one of an order.
SHIPMENT_WORDS = ("отпуск", "отгруз", "реализац")


def is_shipment(operation: str) -> bool:
    return any(word in operation.lower() for word in SHIPMENT_WORDS)
