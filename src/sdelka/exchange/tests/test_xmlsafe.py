"""Hostile and odd input for the hardened XML layer and the CommerceML reader on top of it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sdelka.exchange.commerceml.detect import detect
from sdelka.exchange.commerceml.reader import read_package, read_records
from sdelka.exchange.records import PackageKind, Product
from sdelka.exchange.xmlsafe import BadXmlError, UnsafeXmlError, WrongEncodingError, XmlError, safe_iterparse

CATALOG = (
    '<КоммерческаяИнформация ВерсияСхемы="2.05"><Каталог><Ид>c</Ид><Товары>'
    "<Товар><Ид>p1</Ид><Наименование>Привет</Наименование></Товар>"
    "</Товары></Каталог></КоммерческаяИнформация>"
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<lolz>&lol4;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<r>&xxe;</r>"""


def _names(data: bytes) -> list[str]:
    return [p.name for p in read_records(data) if isinstance(p, Product)]


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        list(safe_iterparse(BILLION_LAUGHS))


def test_external_entity_is_refused_and_not_read() -> None:
    with pytest.raises(UnsafeXmlError) as caught:
        list(read_package(EXTERNAL_ENTITY))
    assert "root:" not in str(caught.value)


def test_public_dtd_is_refused() -> None:
    data = b'<?xml version="1.0"?><!DOCTYPE r PUBLIC "-//x//EN" "http://example.com/x.dtd"><r/>'
    with pytest.raises(UnsafeXmlError):
        detect(data)


def test_doctype_after_a_comment_is_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        detect(b'<?xml version="1.0"?><!-- hi --><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>')


def test_doctype_text_inside_cdata_is_allowed() -> None:
    xml = CATALOG.replace("Привет", "<![CDATA[<!DOCTYPE html>]]>")
    assert _names(xml.encode()) == ["<!DOCTYPE html>"]


def test_truncated_file_raises_after_the_good_records() -> None:
    data = CATALOG.replace("</Товары>", "<Товар><Ид>p2</Ид><Наименование>Т")[:-40].encode()
    records = read_records(data)
    first = next(records)
    assert isinstance(first, Product)
    with pytest.raises(BadXmlError) as caught:
        list(records)
    assert caught.value.line == 1


@pytest.mark.parametrize(
    "data", [b"", b"   \n", b"PK\x03\x04\x14\x00\x00\x00garbage", b"not xml at all", b"\x00\x01\x02"]
)
def test_non_xml_bytes(data: bytes) -> None:
    with pytest.raises(BadXmlError):
        list(read_package(data))


def test_foreign_root_is_not_commerceml() -> None:
    with pytest.raises(BadXmlError, match="not a CommerceML"):
        detect(b"<html><body/></html>")


def test_utf8_declared_over_windows_1251_bytes() -> None:
    data = ('<?xml version="1.0" encoding="UTF-8"?>' + CATALOG).encode("cp1251")
    with pytest.raises(WrongEncodingError) as caught:
        list(read_package(data))
    assert caught.value.line == 1


def test_windows_1251_declared_over_utf8_bytes() -> None:
    data = ('<?xml version="1.0" encoding="windows-1251"?>' + CATALOG).encode()
    with pytest.raises(WrongEncodingError, match="UTF-8"):
        list(read_package(data))


def test_bom_with_windows_1251_declaration() -> None:
    data = b"\xef\xbb\xbf" + ('<?xml version="1.0" encoding="windows-1251"?>' + CATALOG).encode("cp1251")
    with pytest.raises(WrongEncodingError, match="byte-order mark"):
        detect(data)


def test_unknown_encoding_name() -> None:
    with pytest.raises(WrongEncodingError):
        list(read_records(('<?xml version="1.0" encoding="x-nonsense-9"?>' + CATALOG).encode()))


def test_utf16_is_refused_clearly() -> None:
    with pytest.raises(WrongEncodingError, match="UTF-16"):
        detect(CATALOG.encode("utf-16"))


@pytest.mark.parametrize(
    "data",
    [
        CATALOG.encode(),
        b"\xef\xbb\xbf" + CATALOG.encode(),
        ('<?xml version="1.0" encoding="UTF-8"?>' + CATALOG).encode(),
        b"\xef\xbb\xbf" + ('<?xml version="1.0" encoding="utf-8"?>' + CATALOG).encode(),
        ('<?xml version="1.0" encoding="windows-1251"?>' + CATALOG).encode("cp1251"),
        ("<?xml version='1.0' encoding='cp1251'?>" + CATALOG).encode("cp1251"),
        CATALOG.encode("cp1251"),  # undeclared windows-1251, as some 1C order files come
    ],
    ids=["utf8", "utf8-bom", "utf8-declared", "utf8-bom-declared", "cp1251", "cp1251-alias", "cp1251-undeclared"],
)
def test_accepted_encodings(data: bytes) -> None:
    assert _names(data) == ["Привет"]
    assert detect(data).kind is PackageKind.IMPORT


def test_sources_path_bytes_and_file_object(tmp_path: Path) -> None:
    path = tmp_path / "import.xml"
    path.write_bytes(CATALOG.encode())
    stream = io.BytesIO(CATALOG.encode())
    assert _names(path.read_bytes()) == ["Привет"]
    assert [type(r).__name__ for r in read_package(path)] == ["Package", "Product"]
    assert [type(r).__name__ for r in read_package(str(path))] == ["Package", "Product"]
    assert [type(r).__name__ for r in read_package(stream)] == ["Package", "Product"]


def test_error_types_share_a_base_with_reason() -> None:
    with pytest.raises(XmlError) as caught:
        detect("<КоммерческаяИнформация><a></b></КоммерческаяИнформация>".encode())
    assert caught.value.reason
    assert caught.value.line == 1
