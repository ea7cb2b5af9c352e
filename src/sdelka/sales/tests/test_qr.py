"""The ГОСТ Р 56042-2014 payload: header, order, separators, lengths, kopecks; decoded back with zxing-cpp."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
import zxingcpp
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from sdelka.sales.printing import qr

BANK = [
    ("Name", "ООО «Три кита»"),
    ("PersonalAcc", "40702810138250123017"),
    ("BankName", 'ОАО "БАНК"'),
    ("BIC", "044525225"),
    ("CorrespAcc", "30101810400000000225"),
]


def decode_png(png: bytes) -> str:
    """The text of the one QR code in a PNG image."""
    (barcode,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert barcode.format == zxingcpp.BarcodeFormat.QRCode
    return str(barcode.text)


def test_the_example_of_the_standard_decodes_to_itself() -> None:
    payload = qr.build_payload(
        [*BANK, ("PayeeINN", "6200098765"), ("Purpose", "Оплата членского взноса"), ("Sum", "100000")]
    )
    assert payload == (
        'ST00012|Name=ООО «Три кита»|PersonalAcc=40702810138250123017|BankName=ОАО "БАНК"|BIC=044525225'
        "|CorrespAcc=30101810400000000225|PayeeINN=6200098765|Purpose=Оплата членского взноса|Sum=100000"
    )
    assert decode_png(qr.qr_png(payload)) == payload


def test_the_separator_changes_when_a_value_contains_it() -> None:
    fields = [("Name", "ООО «Рога | Копыта»"), *BANK[1:], ("Purpose", "Счет #5")]
    payload = qr.build_payload(fields)
    # `|` is in the name and `#` in the purpose: the next of QRCoder's list, `;`, separates.
    assert payload.startswith("ST00012;Name=ООО «Рога | Копыта»;PersonalAcc=")
    assert payload.split(";")[1:] == [f"{key}={value}" for key, value in fields]
    assert decode_png(qr.qr_png(payload)) == payload


def test_mandatory_fields_come_first_and_are_not_empty() -> None:
    with pytest.raises(qr.QrPayloadError):
        qr.build_payload([BANK[1], BANK[0], *BANK[2:]])
    with pytest.raises(qr.QrPayloadError, match="CorrespAcc"):
        qr.build_payload([*BANK[:4], ("CorrespAcc", "")])
    with pytest.raises(qr.QrPayloadError, match="separator"):
        qr.build_payload([("Name", qr.SEPARATORS), *BANK[1:]])


def test_empty_optional_values_are_left_out_and_long_ones_cut() -> None:
    payload = qr.build_payload([*BANK, ("KPP", ""), ("Purpose", "x" * 300), ("BankName", "Б" * 60)])
    assert "KPP=" not in payload
    assert "|Purpose=" + "x" * 210 + "|" in payload
    assert payload.endswith("|BankName=" + "Б" * 45)


def test_line_breaks_in_values_become_spaces() -> None:
    payload = qr.build_payload([("Name", "ООО\n«Кит»\r\n"), *BANK[1:]])
    assert "|Name=ООО «Кит»|" in payload


@pytest.mark.parametrize(
    ("amount", "kopecks"),
    [("1500.00", "150000"), ("0.01", "1"), ("1000001.99", "100000199"), ("7", "700"), ("12.5", "1250")],
)
def test_sum_is_in_kopecks_digits_only(amount: str, kopecks: str) -> None:
    assert qr.sum_in_kopecks(Decimal(amount)) == kopecks


def test_svg_is_an_inline_element() -> None:
    svg = qr.qr_svg("ST00012|Name=x|PersonalAcc=1|BankName=b|BIC=1|CorrespAcc=0")
    assert svg.startswith("<svg") and "<?xml" not in svg


@given(st.lists(st.text(min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=4))
def test_values_never_contain_the_separator(values: list[str]) -> None:
    fields = [*BANK, *[(f"Extra{index}", value) for index, value in enumerate(values)]]
    try:
        payload = qr.build_payload(fields)
    except qr.QrPayloadError:
        return
    separator = payload[7]
    cleaned = [" ".join(value.split()) for value in values]
    assert payload.split(separator)[1:] == [
        *[f"{key}={value}" for key, value in BANK],
        *[f"Extra{index}={value}" for index, value in enumerate(cleaned) if value],
    ]
