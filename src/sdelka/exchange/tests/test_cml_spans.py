"""Products and offers cut from the byte stream unparsed (commerceml/spans.py): read raw and expanded, a file gives
exactly the records of the plain reader, whatever its encoding, namespaces, comments or CDATA; broken elements
are refused with their line; the digest depends on the element's bytes and the context they are read in only."""

from __future__ import annotations

from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdelka.exchange.commerceml.reader import read_package
from sdelka.exchange.records import Product, RawElement, Record
from sdelka.exchange.xmlsafe import BadXmlError
from tests.fixtures_path import fixture_files

NS = "urn:1C.ru:commerceml_2"


def expanded(source: bytes) -> tuple[list[Record], list[RawElement]]:
    """The raw reader's records with every raw element turned into its records, and the raw elements."""
    records: list[Record] = []
    raws: list[RawElement] = []
    for record in read_package(source, raw=True):
        if isinstance(record, RawElement):
            raws.append(record)
            records.extend(record.records())
        else:
            records.append(record)
    return records, raws


def document(
    body: str, *, prefix: str = "", namespace: str | None = NS, encoding: str = "UTF-8", bom: bool = False
) -> bytes:
    """A CommerceML file; with `prefix` every element is written as `prefix:Name` (body uses «p:» for it)."""
    p = f"{prefix}:" if prefix else ""
    declaration = ""
    if namespace:
        declaration = f' xmlns:{prefix}="{namespace}"' if prefix else f' xmlns="{namespace}"'
    xml = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n<{p}КоммерческаяИнформация{declaration} ВерсияСхемы="2.08">\n'
        + body.replace("<p:", f"<{p}").replace("</p:", f"</{p}")
        + f"\n</{p}КоммерческаяИнформация>\n"
    )
    data = xml.encode("cp1251" if encoding == "windows-1251" else "utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def product(pid: str, name: str, *, extra: str = "", pictures: tuple[str, ...] = ()) -> str:
    images = "".join(f"<p:Картинка>{escape(path)}</p:Картинка>" for path in pictures)
    return (
        f"<p:Товар>\n  <p:Ид>{pid}</p:Ид>\n  <p:Наименование>{escape(name)}</p:Наименование>{extra}{images}\n"
        f"  <p:Группы><p:Ид>g1</p:Ид></p:Группы>\n</p:Товар>"
    )


def catalogue(goods: list[str]) -> str:
    return (
        "<p:Классификатор><p:Ид>c</p:Ид><p:Наименование>К</p:Наименование><p:Группы><p:Группа><p:Ид>g1</p:Ид>"
        "<p:Наименование>Инструмент</p:Наименование></p:Группа></p:Группы></p:Классификатор>\n"
        '<p:Каталог СодержитТолькоИзменения="false"><p:Ид>cat</p:Ид><p:Наименование>К</p:Наименование>\n<p:Товары>\n'
        + "\n".join(goods)
        + "\n</p:Товары></p:Каталог>"
    )


def offers(items: list[str]) -> str:
    return (
        "<p:ПакетПредложений><p:Ид>cat#</p:Ид><p:ТипыЦен><p:ТипЦены><p:Ид>pt</p:Ид><p:Наименование>Розница"
        "</p:Наименование><p:Валюта>RUB</p:Валюта></p:ТипЦены></p:ТипыЦен>\n<p:Предложения>\n"
        + "\n".join(items)
        + "\n</p:Предложения></p:ПакетПредложений>"
    )


def offer(oid: str, price: str) -> str:
    return (
        f"<p:Предложение><p:Ид>{oid}</p:Ид><p:Наименование>О {oid}</p:Наименование><p:Цены><p:Цена>"
        f"<p:ИдТипаЦены>pt</p:ИдТипаЦены><p:ЦенаЗаЕдиницу>{price}</p:ЦенаЗаЕдиницу></p:Цена></p:Цены>"
        f'<p:Количество>3</p:Количество><p:Склад ИдСклада="w1" КоличествоНаСкладе="3"/></p:Предложение>'
    )


def test_every_fixture_reads_the_same_raw_and_plain() -> None:
    files = fixture_files("commerceml")
    if not files:
        pytest.skip("shared fixtures not found")
    cut = 0
    for path in files:
        if path.suffix != ".xml":
            continue
        data = path.read_bytes()
        records, raws = expanded(data)
        assert records == list(read_package(data)), path.name
        cut += sum(1 for raw in raws if raw.data in data)  # cut elements are the file's own bytes
    assert cut > 100


NAME = st.text(st.characters(codec="cp1251", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
    lambda s: s.strip() == s and s
)
EXTRA = st.sampled_from(
    [
        "",
        "<!-- комментарий </p:Товар> -->",
        "<p:Описание><![CDATA[<b>жирный</b> </p:Товар>]]></p:Описание>",
        "<?pi </p:Товар>?>",
        "<p:Описание>a &amp; b &#1046; ?!</p:Описание>",
        '<p:БазоваяЕдиница Код="796" Имя="a>b">шт</p:БазоваяЕдиница>',
    ]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(NAME, min_size=1, max_size=5),
    extras=st.lists(EXTRA, min_size=5, max_size=5),
    prefix=st.sampled_from(["", "cml"]),
    namespace=st.sampled_from([NS, None]),
    encoding=st.sampled_from(["UTF-8", "windows-1251"]),
    bom=st.booleans(),
    pictures=st.lists(st.sampled_from(["import_files/a.jpg", "b&c.png", " d.png "]), max_size=2),
)
def test_raw_reading_gives_the_plain_records(names, extras, prefix, namespace, encoding, bom, pictures) -> None:
    if prefix and namespace is None:
        namespace = NS
    goods = [product(f"id{n}", name, extra=extras[n], pictures=tuple(pictures)) for n, name in enumerate(names)]
    data = document(
        catalogue(goods), prefix=prefix, namespace=namespace, encoding=encoding, bom=bom and encoding == "UTF-8"
    )
    records, raws = expanded(data)
    assert records == list(read_package(data))
    products = [record for record in records if isinstance(record, Product)]
    assert [raw.external_id for raw in raws] == [p.id for p in products]
    assert [raw.images for raw in raws] == [p.images for p in products]
    offers_file = document(offers([offer("id0", "10.5"), offer("id0#s", "11")]), prefix=prefix, namespace=namespace)
    assert expanded(offers_file)[0] == list(read_package(offers_file))


def test_order_lines_are_never_cut() -> None:
    order = (
        "<p:Документ><p:Ид>o1</p:Ид><p:Номер>1</p:Номер><p:Дата>2026-01-05</p:Дата><p:ХозОперация>Заказ товара"
        "</p:ХозОперация><p:Сумма>10</p:Сумма><p:Товары><p:Товар><p:Ид>a</p:Ид><p:Наименование>Дрель"
        "</p:Наименование><p:ЦенаЗаЕдиницу>10</p:ЦенаЗаЕдиницу><p:Количество>1</p:Количество><p:Сумма>10</p:Сумма>"
        "</p:Товар></p:Товары></p:Документ>"
    )
    data = document(order)
    records, raws = expanded(data)
    assert raws == [] and records == list(read_package(data))


def test_a_broken_element_is_refused_with_its_line_in_the_file() -> None:
    goods = [product("a1", "Дрель"), product("a2", "Пила").replace("</p:Наименование>", "</p:Имя>")]
    data = document(catalogue(goods))
    raws = [record for record in read_package(data, raw=True) if isinstance(record, RawElement)]
    assert len(raws) == 2
    line = data.decode().splitlines().index("  <p:Наименование>Пила</p:Имя>".replace("p:", "")) + 1
    with pytest.raises(BadXmlError) as refused:
        list(raws[1].records())
    assert refused.value.line == line


def test_a_file_cut_inside_a_product_is_refused() -> None:
    data = document(catalogue([product("a1", "Дрель"), product("a2", "Пила")]))
    with pytest.raises(BadXmlError):
        list(read_package(data[: data.index("Пила".encode())], raw=True))


def test_the_digest_follows_the_bytes_and_their_context_not_the_position() -> None:
    def digest(data: bytes, external_id: str = "a1") -> str:
        return next(
            r.digest for r in read_package(data, raw=True) if isinstance(r, RawElement) and r.external_id == external_id
        )

    plain = document(catalogue([product("a1", "Дрель")]))
    moved = document(catalogue([product("a0", "Пила"), product("a1", "Дрель")]))
    assert digest(plain) == digest(moved)
    assert digest(plain) != digest(document(catalogue([product("a1", "Дрель ")])))
    assert digest(plain) != digest(document(catalogue([product("a1", "Дрель")]), encoding="windows-1251"))
    assert digest(plain) != digest(document(catalogue([product("a1", "Дрель")]), namespace="urn:other"))
