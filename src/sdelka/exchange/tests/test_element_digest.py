"""Skipping unchanged products and offers by the digest of their raw element: what is skipped must be exactly what
would change nothing, including when what the element means changed elsewhere (classifier, Sdelka's own data)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from sdelka.catalog.models import Price, Product, ProductPropertyValue, StockLevel
from sdelka.exchange import apply as apply_module
from sdelka.exchange.apply import Outcome, analyze_catalogue, apply_records, deactivate_missing
from sdelka.exchange.commerceml.reader import read_package
from sdelka.exchange.models import (
    Connection,
    ElementDigest,
    ExchangeEvent,
    ExchangeRun,
    ExternalRef,
    Route,
    RunStatus,
)
from sdelka.exchange.records import RawElement
from sdelka.exchange.services import create_connection

NS = "urn:1C.ru:commerceml_2"
_bases = itertools.count(1)


def product_xml(pid: str, name: str, *, group: str = "g1", value: str = "v1", article: str = "") -> str:
    return (
        f"<Товар><Ид>{pid}</Ид><Артикул>{article or 'AR-' + pid}</Артикул><Наименование>{name}</Наименование>"
        f'<БазоваяЕдиница Код="796" НаименованиеПолное="Штука">шт</БазоваяЕдиница>'
        f"<Группы><Ид>{group}</Ид></Группы><Описание>Описание {name}</Описание>"
        f"<ЗначенияСвойств><ЗначенияСвойства><Ид>p1</Ид><Значение>{value}</Значение></ЗначенияСвойства>"
        f"</ЗначенияСвойств><СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование><Ставка>22</Ставка>"
        f"</СтавкаНалога></СтавкиНалогов><ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Вес</Наименование>"
        f"<Значение>1.5</Значение></ЗначениеРеквизита></ЗначенияРеквизитов></Товар>"
    )


def import_xml(
    goods: list[str],
    *,
    groups: str = "<Группа><Ид>g1</Ид><Наименование>Инструмент</Наименование></Группа>",
    red: str = "Красный",
    changes_only: bool = False,
) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация xmlns="{NS}" ВерсияСхемы="2.08">'
        f"<Классификатор><Ид>c1</Ид><Наименование>Классификатор</Наименование><Группы>{groups}</Группы>"
        f"<Свойства><Свойство><Ид>p1</Ид><Наименование>Цвет</Наименование><ТипЗначений>Справочник</ТипЗначений>"
        f"<ВариантыЗначений><Справочник><ИдЗначения>v1</ИдЗначения><Значение>{red}</Значение></Справочник>"
        f"<Справочник><ИдЗначения>v2</ИдЗначения><Значение>Синий</Значение></Справочник></ВариантыЗначений>"
        f"</Свойство></Свойства></Классификатор>"
        f'<Каталог СодержитТолькоИзменения="{"true" if changes_only else "false"}"><Ид>cat1</Ид>'
        f"<ИдКлассификатора>c1</ИдКлассификатора><Наименование>Каталог</Наименование>"
        f"<Товары>\n" + "\n".join(goods) + "\n</Товары></Каталог></КоммерческаяИнформация>"
    ).encode()


def offer_xml(oid: str, price: str, stock: tuple[int, int] = (3, 2)) -> str:
    size = (
        f"<ХарактеристикиТовара><ХарактеристикаТовара><Наименование>Размер</Наименование><Значение>{oid}"
        "</Значение></ХарактеристикаТовара></ХарактеристикиТовара>"
        if "#" in oid
        else ""
    )
    return (
        f"<Предложение><Ид>{oid}</Ид><Наименование>Предложение {oid}</Наименование>{size}"
        f"<Цены><Цена><ИдТипаЦены>pt1</ИдТипаЦены><ЦенаЗаЕдиницу>{price}</ЦенаЗаЕдиницу><Валюта>RUB</Валюта>"
        f"</Цена></Цены><Количество>{sum(stock)}</Количество>"
        f'<Склад ИдСклада="w1" КоличествоНаСкладе="{stock[0]}"/><Склад ИдСклада="w2" КоличествоНаСкладе="{stock[1]}"/>'
        f"</Предложение>"
    )


def offers_xml(offers: list[str]) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация xmlns="{NS}" ВерсияСхемы="2.08">'
        f'<ПакетПредложений СодержитТолькоИзменения="false"><Ид>op1</Ид><ИдКаталога>cat1</ИдКаталога>'
        f"<Наименование>Предложения</Наименование>"
        f"<ТипыЦен><ТипЦены><Ид>pt1</Ид><Наименование>Розничная</Наименование><Валюта>RUB</Валюта></ТипЦены>"
        f"</ТипыЦен><Склады><Склад><Ид>w1</Ид><Наименование>Основной</Наименование></Склад>"
        f"<Склад><Ид>w2</Ид><Наименование>Магазин</Наименование></Склад></Склады>"
        f"<Предложения>\n" + "\n".join(offers) + "\n</Предложения></ПакетПредложений></КоммерческаяИнформация>"
    ).encode()


@dataclasses.dataclass
class Spy:
    """Which raw elements the apply engine turned into records."""

    expanded: list[str] = dataclasses.field(default_factory=list)

    def reader(self, data: bytes) -> Iterator[Any]:
        for record in read_package(data, raw=True):
            if isinstance(record, RawElement):
                inner = record.expand

                def expand(raw: RawElement, inner: Any = inner) -> Iterator[Any]:
                    self.expanded.append(raw.external_id)
                    return inner(raw)

                record = dataclasses.replace(record, expand=expand)
            yield record


def new_base() -> Connection:
    number = next(_bases)
    return create_connection(name=f"УТ {number}", login=f"ut{number}", password="password-123")


def apply_file(base: Connection, data: bytes) -> tuple[Outcome, list[str], ExchangeRun]:
    run = ExchangeRun.objects.create(connection=base, route=Route.CATALOG, status=RunStatus.RUNNING)
    spy = Spy()
    outcome = apply_records(connection=base, run=run, records=spy.reader(data))
    ExchangeRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS, full_products=outcome.full_products)
    run.refresh_from_db()
    return outcome, spy.expanded, run


GOODS = [product_xml(f"a{n}", f"Товар {n}") for n in range(1, 6)]
OFFERS = [offer_xml("a1", "100"), offer_xml("a2", "200"), offer_xml("a3#s", "300"), offer_xml("a3#m", "310")]


def product_of(base: Connection, external_id: str) -> Product:
    return Product.objects.get(pk=base.refs.get(kind="product", external_id=external_id).object_id)


@pytest.fixture
def base(db: None) -> Connection:
    return new_base()


@pytest.mark.parametrize("chunk", [apply_module.LOOKUP_CHUNK, 2])  # 2: every lookup split into several queries
def test_an_unchanged_upload_builds_no_records_and_writes_nothing(
    base: Connection, chunk: int, monkeypatch: Any
) -> None:
    monkeypatch.setattr(apply_module, "LOOKUP_CHUNK", chunk)
    first, expanded, _run = apply_file(base, import_xml(GOODS))
    assert sorted(expanded) == [f"a{n}" for n in range(1, 6)] and first.counts.created > 0
    apply_file(base, offers_xml(OFFERS))
    stamps = dict(Product.objects.values_list("pk", "updated_at"))
    again, expanded, _run = apply_file(base, import_xml(GOODS))
    assert expanded == []
    assert (again.counts.created, again.counts.updated, again.counts.unchanged) == (0, 0, 5 + 2)  # goods + classifier
    _outcome, expanded, _run = apply_file(base, offers_xml(OFFERS))
    assert expanded == []
    assert dict(Product.objects.values_list("pk", "updated_at")) == stamps


@st.composite
def element_edit(draw: st.DrawFn) -> tuple[int, str, str]:
    """(product index, a path to a text or attribute inside its element, a new value)."""
    index = draw(st.integers(0, len(GOODS) - 1))
    where = draw(
        st.sampled_from(
            [
                "Наименование",
                "Артикул",
                "Описание",
                "Группы/Ид",
                "ЗначенияСвойств/ЗначенияСвойства/Значение",
                "СтавкиНалогов/СтавкаНалога/Ставка",
                "ЗначенияРеквизитов/ЗначениеРеквизита/Значение",
                "БазоваяЕдиница@Код",
                "+Штрихкод",
                "+ПометкаУдаления",
            ]
        )
    )
    value = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=12))
    return index, where, value


def edited(goods: list[str], index: int, where: str, value: str) -> tuple[list[str], bool]:
    """The goods with one element edited; False when the edit happens to leave its bytes as they were."""
    element = etree.fromstring(f'<Товары xmlns="{NS}">{goods[index]}</Товары>'.encode())[0]
    before = etree.tostring(element)
    q = f"{{{NS}}}"
    if where.startswith("+"):
        etree.SubElement(element, q + where[1:]).text = value
    elif "@" in where:
        path, attribute = where.split("@")
        element.find(q + path).set(attribute, value)
    else:
        element.find("/".join(q + part for part in where.split("/"))).text = value
    after = etree.tostring(element)
    text = etree.tostring(element, encoding="unicode").replace(f' xmlns="{NS}"', "", 1)
    return [*goods[:index], text, *goods[index + 1 :]], after != before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=element_edit())
def test_an_edited_element_is_never_skipped_and_the_others_always_are(db: None, edit: tuple[int, str, str]) -> None:
    base = new_base()
    apply_file(base, import_xml(GOODS))
    goods, differs = edited(GOODS, *edit)
    external_id = f"a{edit[0] + 1}"
    _outcome, expanded, run = apply_file(base, import_xml(goods))
    assert expanded == ([external_id] if differs else [])
    complained = ExchangeEvent.objects.filter(run=run, external_id=external_id).exists()
    _outcome, expanded, _run = apply_file(base, import_xml(goods))
    # Applied cleanly, the edited element is skipped the next time; one the journal complained about is tried again.
    assert expanded == ([external_id] if complained else [])


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(OFFERS) - 1), price=st.decimals("0", "99999", places=2), stock=st.integers(0, 50))
def test_a_changed_price_or_stock_is_applied(db: None, index: int, price: Decimal, stock: int) -> None:
    base = new_base()
    apply_file(base, import_xml(GOODS))
    apply_file(base, offers_xml(OFFERS))
    oid = OFFERS[index].split("<Ид>")[1].split("<")[0]
    offers = [*OFFERS[:index], offer_xml(oid, str(price), (stock, 2)), *OFFERS[index + 1 :]]
    _outcome, expanded, _run = apply_file(base, offers_xml(offers))
    assert expanded == ([oid] if offers != OFFERS else [])
    product = product_of(base, oid.split("#")[0])
    variant = product.variants.get(name=f"Предложение {oid}") if "#" in oid else None
    assert Price.objects.get(product=product, variant=variant).value == price
    levels = StockLevel.objects.filter(product=product, variant=variant, warehouse__name="Основной")
    assert levels.get().quantity == stock


def test_a_reference_value_renamed_in_the_classifier_reaches_unchanged_products(base: Connection) -> None:
    apply_file(base, import_xml(GOODS))
    _outcome, expanded, _run = apply_file(base, import_xml(GOODS, red="Алый"))
    assert len(expanded) == len(GOODS)
    assert ProductPropertyValue.objects.get(product=product_of(base, "a1")).value == "Алый"
    _outcome, expanded, _run = apply_file(base, import_xml(GOODS, red="Алый"))
    assert expanded == []


def test_a_group_sent_after_its_products_is_linked_on_the_next_unchanged_upload(base: Connection) -> None:
    goods = [product_xml("a1", "Товар", group="g2")]
    apply_file(base, import_xml(goods))
    assert product_of(base, "a1").group is None
    groups = (
        "<Группа><Ид>g1</Ид><Наименование>Инструмент</Наименование></Группа>"
        "<Группа><Ид>g2</Ид><Наименование>Дрели</Наименование></Группа>"
    )
    _outcome, expanded, _run = apply_file(base, import_xml(goods, groups=groups))
    assert expanded == ["a1"]
    group = product_of(base, "a1").group
    assert group is not None and group.name == "Дрели"


def test_a_product_deleted_in_sdelka_comes_back_with_its_prices(base: Connection) -> None:
    apply_file(base, import_xml(GOODS))
    apply_file(base, offers_xml(OFFERS))
    product_of(base, "a1").delete()
    _outcome, expanded, _run = apply_file(base, import_xml(GOODS))
    assert expanded == ["a1"]
    _outcome, expanded, _run = apply_file(base, offers_xml(OFFERS))
    assert expanded == ["a1"]
    assert Price.objects.get(product=product_of(base, "a1")).value == Decimal(100)


def test_an_offer_of_a_product_not_yet_received_is_applied_once_the_product_comes(base: Connection) -> None:
    apply_file(base, import_xml(GOODS[:1]))
    _outcome, expanded, _run = apply_file(base, offers_xml(OFFERS))
    assert "a2" in expanded and not Price.objects.filter(product__name="Товар 2").exists()
    apply_file(base, import_xml(GOODS))
    _outcome, expanded, _run = apply_file(base, offers_xml(OFFERS))
    assert sorted(expanded) == ["a2", "a3#m", "a3#s"]  # a1 was applied cleanly the first time
    assert Price.objects.get(product=product_of(base, "a2")).value == Decimal(200)


def test_a_product_deactivated_as_missing_is_reactivated_when_sent_again_unchanged(base: Connection) -> None:
    base.options = {"deactivate_missing_products": True}
    base.save()
    apply_file(base, import_xml(GOODS))
    _outcome, _expanded, run = apply_file(base, import_xml(GOODS[1:]))
    assert deactivate_missing(connection=base, run=run) == 1
    assert not product_of(base, "a1").is_active
    _outcome, expanded, run = apply_file(base, import_xml(GOODS))
    assert expanded == ["a1"]
    assert product_of(base, "a1").is_active
    assert deactivate_missing(connection=base, run=run) == 0  # the unchanged ones were seen too


def test_a_changes_only_package_applies_what_it_names(base: Connection) -> None:
    apply_file(base, import_xml(GOODS))
    delta = [product_xml("a2", "Пила новая")]
    outcome, expanded, _run = apply_file(base, import_xml(delta, changes_only=True))
    assert expanded == ["a2"] and not outcome.full_products
    assert product_of(base, "a2").name == "Пила новая"
    assert product_of(base, "a1").name == "Товар 1"


def test_two_bases_keep_their_own_digests(base: Connection) -> None:
    apply_file(base, import_xml(GOODS))
    other = new_base()
    _outcome, expanded, _run = apply_file(other, import_xml(GOODS))
    assert len(expanded) == len(GOODS)
    assert Product.objects.count() == 2 * len(GOODS)


def estimated_rows(model: type[Any]) -> float:
    """What PostgreSQL's planner believes the table holds (-1: never analysed)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [model._meta.db_table])
        return float(cursor.fetchone()[0])


def test_the_statistics_of_the_catalogue_tables_are_refreshed_after_a_big_file(base: Connection) -> None:
    """PostgreSQL only: a table never analysed looks empty to the planner, which then scans the whole base for the
    digests of the next exchange instead of looking them up."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL statistics")
    apply_file(base, import_xml(GOODS))
    analyze_catalogue()
    assert estimated_rows(ElementDigest) == len(GOODS)


def test_a_long_file_refreshes_the_lookup_statistics_as_it_goes(base: Connection, monkeypatch: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL statistics")
    monkeypatch.setattr(apply_module, "ANALYZE_FIRST", 1)
    run = ExchangeRun.objects.create(connection=base, route=Route.CATALOG, status=RunStatus.RUNNING)
    apply_records(connection=base, run=run, records=read_package(import_xml(GOODS), raw=True), in_transaction=True)
    assert estimated_rows(ExternalRef) >= len(GOODS)
