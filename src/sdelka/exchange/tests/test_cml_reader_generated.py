"""Generated CommerceML: round trips (hypothesis), per-record errors, and bounded memory on a big file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sdelka.core.vat import VatRate
from sdelka.exchange.commerceml.detect import detect
from sdelka.exchange.commerceml.reader import read_package, read_records
from sdelka.exchange.records import Group, PackageKind, Price, Product, RecordError, Stock, Variant

NS2 = "urn:1C.ru:commerceml_2"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
ALPHABET = CYRILLIC + "abcXYZ0123456789 -.,«»№&<>\"'"
text = st.text(alphabet=ALPHABET, min_size=1, max_size=30).map(str.strip).filter(bool)
ident = st.uuids().map(str)


def _root(body: str, *, namespace: str | None, version: str = "2.08") -> str:
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    head = f'<КоммерческаяИнформация{xmlns} ВерсияСхемы="{version}" ДатаФормирования="2026-01-05T10:00:00">'
    return f"{head}{body}</КоммерческаяИнформация>"


def _encode(xml: str, *, encoding: str, bom: bool, declare: bool = True) -> bytes:
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>\n' if declare else ""
    data = (declaration + xml).encode("cp1251" if encoding == "windows-1251" else "utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def _import_xml(groups: list[tuple[str, str]], products: list[dict]) -> str:
    group_xml = "".join(
        f"<Группа><Ид>{gid}</Ид><Наименование>{escape(name)}</Наименование></Группа>" for gid, name in groups
    )
    items = []
    for p in products:
        items.append(
            f"<Товар><Ид>{p['id']}</Ид><Артикул>{escape(p['article'])}</Артикул><Наименование>{escape(p['name'])}</Наименование>"
            f'<БазоваяЕдиница Код="796" НаименованиеПолное="Штука">шт</БазоваяЕдиница>'
            f"<Группы><Ид>{p['group']}</Ид></Группы><Описание>{escape(p['description'])}</Описание>"
            f"<СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование><Ставка>{p['vat']}</Ставка></СтавкаНалога></СтавкиНалогов>"
            "</Товар>"
        )
    return (
        f"<Классификатор><Ид>cls</Ид><Наименование>К</Наименование><Группы>{group_xml}</Группы></Классификатор>"
        f'<Каталог СодержитТолькоИзменения="false"><Ид>cat</Ид><ИдКлассификатора>cls</ИдКлассификатора>'
        f"<Наименование>Каталог</Наименование><Товары>{''.join(items)}</Товары></Каталог>"
    )


def _offers_xml(products: list[dict]) -> str:
    offers = []
    for p in products:
        oid = f"{p['id']}#{p['variant']}" if p["variant"] else p["id"]
        offers.append(
            f"<Предложение><Ид>{oid}</Ид><Наименование>{escape(p['name'])}</Наименование>"
            f"<Цены><Цена><ИдТипаЦены>retail</ИдТипаЦены><ЦенаЗаЕдиницу>{p['price']}</ЦенаЗаЕдиницу>"
            f"<Валюта>руб</Валюта><Коэффициент>1</Коэффициент></Цена></Цены>"
            f"<Количество>{p['stock']}</Количество>"
            f'<Склад ИдСклада="w1" КоличествоНаСкладе="{p["stock"]}"/></Предложение>'
        )
    return (
        "<ПакетПредложений><Ид>cat#</Ид><Наименование>П</Наименование><ИдКаталога>cat</ИдКаталога>"
        "<ТипыЦен><ТипЦены><Ид>retail</Ид><Наименование>Розничная</Наименование><Валюта>RUB</Валюта></ТипЦены></ТипыЦен>"
        f"<Предложения>{''.join(offers)}</Предложения></ПакетПредложений>"
    )


product_strategy = st.fixed_dictionaries(
    {
        "id": ident,
        "name": text,
        "article": text,
        "description": st.text(alphabet=ALPHABET, max_size=60).map(str.strip),
        "vat": st.sampled_from(["22", "20", "10", "0", "Без НДС"]),
        "variant": st.one_of(st.none(), ident),
        "price": st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False),
        "stock": st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    }
)
VAT = {"22": VatRate.VAT_22, "20": VatRate.VAT_20, "10": VatRate.VAT_10, "0": VatRate.VAT_0, "Без НДС": VatRate.WITHOUT}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    groups=st.lists(st.tuples(ident, text), min_size=1, max_size=4, unique_by=lambda g: g[0]),
    products=st.lists(product_strategy, min_size=1, max_size=8, unique_by=lambda p: p["id"]),
    namespace=st.sampled_from([None, NS2, "urn:1C.ru:commerceml_3"]),
    encoding=st.sampled_from(["UTF-8", "windows-1251"]),
    bom=st.booleans(),
    data=st.data(),
)
def test_round_trip(groups, products, namespace, encoding, bom, data) -> None:
    bom = bom and encoding == "UTF-8"
    for product in products:
        product["group"] = data.draw(st.sampled_from([gid for gid, _ in groups]))
    import_bytes = _encode(_root(_import_xml(groups, products), namespace=namespace), encoding=encoding, bom=bom)
    offers_bytes = _encode(_root(_offers_xml(products), namespace=namespace), encoding=encoding, bom=bom)

    records = list(read_package(import_bytes))
    package = records[0]
    assert package.kind is PackageKind.IMPORT and package.changes_only is False
    assert package.namespace == (namespace or "")
    assert [(g.id, g.name) for g in records if isinstance(g, Group)] == groups
    read = [r for r in records if isinstance(r, Product)]
    assert [(p.id, p.name, p.article, p.description, p.group_ids, p.vat_rate) for p in read] == [
        (p["id"], p["name"], p["article"], p["description"], (p["group"],), VAT[p["vat"]]) for p in products
    ]
    assert not [r for r in records if isinstance(r, RecordError)]

    offers = list(read_package(offers_bytes))
    assert offers[0].kind is PackageKind.OFFERS
    prices = [r for r in offers if isinstance(r, Price)]
    assert [(p.product_id, p.variant_id, p.value, p.currency) for p in prices] == [
        (p["id"], f"{p['id']}#{p['variant']}" if p["variant"] else None, p["price"], "RUB") for p in products
    ]
    stocks = [r for r in offers if isinstance(r, Stock)]
    assert [(s.warehouse_id, s.quantity) for s in stocks] == [
        pair for p in products for pair in ((None, p["stock"]), ("w1", p["stock"]))
    ]
    assert [v.product_id for v in offers if isinstance(v, Variant)] == [p["id"] for p in products if p["variant"]]


def test_undeclared_windows_1251_round_trip() -> None:
    product = {"id": "p", "name": "Ёлка «Зимняя» №1", "article": "Ё-1", "description": "", "vat": "22", "group": "g"}
    data = _encode(
        _root(_import_xml([("g", "Ели")], [product]), namespace=None), encoding="windows-1251", bom=False, declare=False
    )
    names = [r.name for r in read_records(data) if isinstance(r, Product)]
    assert names == ["Ёлка «Зимняя» №1"]


def test_bad_values_become_record_errors_and_the_file_goes_on() -> None:
    offers = (
        "<ПакетПредложений><Предложения>"
        "<Предложение><Ид>a</Ид><Цены><Цена><ИдТипаЦены>t</ИдТипаЦены><ЦенаЗаЕдиницу>12,3,4</ЦенаЗаЕдиницу></Цена>"
        "<Цена><ИдТипаЦены>u</ИдТипаЦены><ЦенаЗаЕдиницу>1 234,50</ЦенаЗаЕдиницу></Цена></Цены>"
        "<Количество>много</Количество></Предложение>"
        "<Предложение><Цены/></Предложение>"
        "<Предложение><Ид>b</Ид><Количество>5</Количество></Предложение>"
        "</Предложения></ПакетПредложений>"
    )
    records = list(read_records(_root(offers, namespace=NS2).encode()))
    errors = [r for r in records if isinstance(r, RecordError)]
    assert [(e.kind, e.external_id, e.field, e.value, e.level) for e in errors] == [
        ("price", "a", "ЦенаЗаЕдиницу", "12,3,4", "error"),
        ("stock", "a", "Количество", "много", "error"),
        ("offer", "", "Ид", "", "error"),
    ]
    assert all(e.line for e in errors)
    assert [r for r in records if isinstance(r, Price)] == [Price("a", None, "u", Decimal("1234.50"))]
    assert [r for r in records if isinstance(r, Stock)] == [Stock("b", None, None, Decimal(5))]


def test_unknown_vat_is_a_warning_and_the_product_stays() -> None:
    body = (
        "<Каталог><Товары><Товар><Ид>p</Ид><Наименование>N</Наименование>"
        "<ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>СтавкаНДС</Наименование><Значение>13%</Значение>"
        "</ЗначениеРеквизита><ЗначениеРеквизита><Наименование>ТипНоменклатуры</Наименование><Значение>Услуга</Значение>"
        "</ЗначениеРеквизита></ЗначенияРеквизитов><Статус>Удален</Статус></Товар></Товары></Каталог>"
    )
    records = list(read_records(_root(body, namespace=None).encode()))
    product, warning = records
    assert isinstance(product, Product) and product.vat_rate is None and product.kind == "service" and product.deleted
    assert isinstance(warning, RecordError)
    assert (warning.level, warning.external_id, warning.value) == ("warning", "p", "13%")


def test_documents_in_container_with_payments() -> None:
    body = (
        "<Контейнер><Документ><Ид>7</Ид><Номер>7</Номер><Дата>2026-02-01</Дата><Время>10:00:00</Время>"
        "<ХозОперация>Заказ товара</ХозОперация><Валюта>RUB</Валюта><Сумма>100</Сумма>"
        "<Товары><Товар><Ид>p#v</Ид><Наименование>x</Наименование><ЦенаЗаЕдиницу>50</ЦенаЗаЕдиницу>"
        "<Количество>2</Количество><Сумма>100</Сумма></Товар></Товары>"
        "<ЗначениеРеквизита><Наименование>Отменен</Наименование><Значение>false</Значение></ЗначениеРеквизита>"
        "<ЗначениеРеквизита><Наименование>Дата отгрузки по 1С</Наименование><Значение>T</Значение></ЗначениеРеквизита>"
        "<ПодчиненныеДокументы><ПодчиненныйДокумент><Ид>pay1</Ид><Номер>11</Номер><Дата>2026-02-02</Дата>"
        "<ХозОперация>Выплата безналичных денег</ХозОперация><Сумма>60,00</Сумма></ПодчиненныйДокумент>"
        "</ПодчиненныеДокументы></Документ></Контейнер>"
    )
    (order,) = list(read_records(_root(body, namespace="urn:1C.ru:commerceml_3", version="3.1").encode()))
    assert order.lines[0].variant_id == "p#v" and order.lines[0].product_id == "p"
    assert order.status.cancelled is False
    assert order.status.shipped is False  # an empty date ("T") means not shipped
    (payment,) = order.payments
    assert (payment.id, payment.number, payment.amount, payment.order_id) == ("pay1", "11", Decimal("60.00"), "7")
    assert detect(_root(body, namespace=None).encode()).kind is PackageKind.DOCUMENTS


def _write_big_catalog(path: Path, count: int) -> None:
    description = escape("Описание товара с подробностями. " * 30)
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        out.write(f'<КоммерческаяИнформация xmlns="{NS2}" ВерсияСхемы="2.08"><Каталог><Ид>c</Ид><Товары>')
        for n in range(count):
            out.write(
                f"<Товар><Ид>{n:08d}-0000-0000-0000-000000000000</Ид><Артикул>A-{n}</Артикул>"
                f"<Наименование>Товар номер {n}</Наименование><Описание>{description}</Описание>"
                "<ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Полное наименование</Наименование>"
                f"<Значение>Товар номер {n} полностью</Значение></ЗначениеРеквизита></ЗначенияРеквизитов></Товар>"
            )
        out.write("</Товары></Каталог></КоммерческаяИнформация>")


def test_big_file_parses_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "import.xml"
    _write_big_catalog(path, 20_000)
    size = path.stat().st_size
    assert size > 20_000_000
    tracemalloc.start()
    try:
        count = sum(isinstance(record, Product) for record in read_package(path))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 20_000
    assert peak < size / 20, (peak, size)


CHILD = """
import json, resource, sys
from sdelka.exchange.commerceml.reader import read_package
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
count = sum(1 for _ in read_package(sys.argv[1]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"count": count, "grown_kb": after - before}))
"""


def test_big_file_process_memory_does_not_follow_file_size(tmp_path: Path) -> None:
    """libxml2's own allocations are invisible to tracemalloc: measure the peak RSS of a child process."""
    path = tmp_path / "import.xml"
    _write_big_catalog(path, 20_000)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "sdelka.settings_test"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True, env=env, timeout=300
    )
    figures = json.loads(result.stdout)
    assert figures["count"] == 20_001
    assert figures["grown_kb"] * 1024 < path.stat().st_size / 4, figures
