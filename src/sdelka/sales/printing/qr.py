"""The payment QR code of ГОСТ Р 56042-2014 (ru-requisites §6): payload and rendering.

The payload is `ST0001` + encoding flag `2` (UTF-8) + separator, then `Key=Value` pairs, the
mandatory block (Name, PersonalAcc, BankName, BIC, CorrespAcc) first. The separator is `|` unless a
value contains it; then the first character of QRCoder's list that no value contains. `Sum` is in
kopecks, digits only. Values lose line breaks and are cut to the lengths the standard allows.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from decimal import Decimal

import segno

from .words import to_kopecks

HEADER = "ST0001"
UTF8_FLAG = "2"
SEPARATORS = "|#;:^_~{}!$%&()*+,/@"
MANDATORY = ("Name", "PersonalAcc", "BankName", "BIC", "CorrespAcc")
MAX_LENGTH = {
    "Name": 160,
    "PersonalAcc": 20,
    "BankName": 45,
    "BIC": 9,
    "CorrespAcc": 20,
    "Sum": 18,
    "Purpose": 210,
    "PayeeINN": 12,
    "KPP": 9,
}


class QrPayloadError(ValueError):
    """The requisites cannot make a valid payload (a mandatory value is missing or no separator fits)."""


def _clean(key: str, value: str) -> str:
    value = " ".join(str(value).split())
    return value[: MAX_LENGTH[key]] if key in MAX_LENGTH else value


def build_payload(fields: Sequence[tuple[str, str]]) -> str:
    """The payload string of `(key, value)` pairs in the given order; empty optional values are left out.

    Mandatory keys must come first and be non-empty (`CorrespAcc` is `0` when the bank has none).
    """
    pairs = [(key, _clean(key, value)) for key, value in fields]
    keys = [key for key, _ in pairs]
    if tuple(keys[: len(MANDATORY)]) != MANDATORY:
        raise QrPayloadError(f"the payload starts with {', '.join(MANDATORY)}")
    missing = [key for key, value in pairs[: len(MANDATORY)] if not value]
    if missing:
        raise QrPayloadError(f"empty mandatory values: {', '.join(missing)}")
    pairs = [(key, value) for key, value in pairs if value]
    separator = next(
        (sep for sep in SEPARATORS if not any(sep in f"{key}={value}" for key, value in pairs)),
        None,
    )
    if separator is None:
        raise QrPayloadError("every possible separator occurs in the values")
    return HEADER + UTF8_FLAG + separator + separator.join(f"{key}={value}" for key, value in pairs)


def sum_in_kopecks(amount: Decimal) -> str:
    """1500.00 → "150000"."""
    return str(to_kopecks(amount))


def make_qr(payload: str) -> segno.QRCode:
    """The QR symbol of a payload, bytes in UTF-8 as the flag says, error correction M."""
    return segno.make_qr(payload.encode("utf-8"), error="m", boost_error=False)


def qr_svg(payload: str, *, scale: int = 3) -> str:
    """An inline SVG (no XML declaration) for HTML and PDF."""
    out = io.BytesIO()
    make_qr(payload).save(out, kind="svg", scale=scale, border=2, xmldecl=False, svgns=True, svgclass=None)
    return out.getvalue().decode("utf-8")


def qr_png(payload: str, *, scale: int = 6) -> bytes:
    out = io.BytesIO()
    make_qr(payload).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
