"""1C's OData value conventions, both ways: literals for URLs and `$filter`, and JSON values read back.

Empty references are the zero GUID, empty dates ``0001-01-01T00:00:00``, dates carry no zone (infobase local
time), Int64 comes as a JSON string, fixed-length strings keep trailing spaces. JSON is parsed with
``parse_float=Decimal`` so money never passes through float.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"


def loads(data: bytes) -> Any:
    """JSON with Decimal numbers (from the raw token, not via float)."""
    return json.loads(data.decode("utf-8-sig"), parse_float=Decimal)


def string_literal(value: str) -> str:
    """An OData v3 string literal: single quotes, an embedded quote doubled."""
    return "'" + value.replace("'", "''") + "'"


def guid_literal(value: str) -> str:
    return f"guid'{value}'"


def datetime_literal(value: dt.datetime) -> str:
    return f"datetime'{value.replace(tzinfo=None, microsecond=0).isoformat()}'"


def ref(value: Any) -> str | None:
    """A reference GUID, or None for an empty reference."""
    text = str(value or "").strip().lower()
    return None if not text or text == ZERO_GUID else text


def text(value: Any) -> str:
    """A string property with 1C's fixed-length padding removed."""
    return "" if value is None else str(value).rstrip()


def integer(value: Any) -> int | None:
    """Edm.Int16/32/64 (Int64 arrives as a string)."""
    if value is None or value == "":
        return None
    return int(str(value))


def decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Decimal) else Decimal(str(value))


def boolean(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def moment(value: Any, zone: str) -> dt.datetime | None:
    """An Edm.DateTime (local time of the infobase, no offset) made aware in `zone`; None for the empty date."""
    raw = str(value or "").strip()
    if not raw or raw.startswith("0001-01-01"):
        return None
    return dt.datetime.fromisoformat(raw).replace(tzinfo=ZoneInfo(zone))


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None, microsecond=0).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, default=_default).encode("utf-8")
