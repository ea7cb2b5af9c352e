"""The CommerceML reader against every real file in ../shared/fixtures/commerceml (skipped when absent)."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sdelka.core.vat import VatRate
from sdelka.exchange.commerceml.detect import detect
from sdelka.exchange.commerceml.reader import read_package, read_records
from sdelka.exchange.records import (
    Group,
    Order,
    Package,
    PackageKind,
    Price,
    PriceType,
    Product,
    Property,
    Record,
    RecordError,
    Stock,
    Unit,
    Variant,
    Warehouse,
)
from tests.fixtures_path import fixture_files, fixtures_dir

MSK = ZoneInfo("Europe/Moscow")

# (file, kind by content, records by type) — counts checked against SOURCES.md and the files themselves.
EXPECTED = [
    ("AlexMobiCraft__FREESPORT-B2B/goods.xml", PackageKind.IMPORT, {"Product": 3}),
    ("AlexMobiCraft__FREESPORT-B2B/groups.xml", PackageKind.GROUPS, {"Group": 119}),
    ("AlexMobiCraft__FREESPORT-B2B/offers.xml", PackageKind.OFFERS, {"Variant": 3}),
    ("AlexMobiCraft__FREESPORT-B2B/priceLists.xml", PackageKind.PRICE_LISTS, {"PriceType": 6}),
    ("AlexMobiCraft__FREESPORT-B2B/prices.xml", PackageKind.PRICES, {"Price": 23}),
    (
        "AlexMobiCraft__FREESPORT-B2B/propertiesGoods_1_1_10f30faa-0a70-44df-bf00-799144e59493.xml",
        PackageKind.PROPERTIES,
        {"Property": 51},
    ),
    (
        "AlexMobiCraft__FREESPORT-B2B/propertiesOffers_1_2_36a5519f-20da-44d9-bbe6-e1dbb43e727a.xml",
        PackageKind.PROPERTIES,
        {"Property": 4},
    ),
    ("AlexMobiCraft__FREESPORT-B2B/rests.xml", PackageKind.RESTS, {"Stock": 10}),
    ("AlexMobiCraft__FREESPORT-B2B/storages.xml", PackageKind.STORAGES, {"Warehouse": 2}),
    ("AlexMobiCraft__FREESPORT-B2B/units.xml", PackageKind.UNITS, {"Unit": 18}),
    ("ArgentCrusade__commerceml/contractors-example.xml", PackageKind.PARTIES, {"Party": 4}),
    ("ArgentCrusade__commerceml/documents-example.xml", PackageKind.DOCUMENTS, {"Order": 2}),
    ("ArgentCrusade__commerceml/group-example.xml", PackageKind.GROUPS, {"Group": 12}),
    ("ArgentCrusade__commerceml/remainders-example.xml", PackageKind.RESTS, {"Stock": 14}),
    ("bigperson__exchange1c/classifier.xml", PackageKind.CLASSIFIER, {"Group": 5, "Property": 3, "Unit": 1}),
    ("bigperson__exchange1c/import.xml", PackageKind.IMPORT, {"Group": 5, "Product": 2, "Property": 3, "Unit": 1}),
    (
        "bigperson__exchange1c/offers.xml",
        PackageKind.OFFERS,
        {"Price": 6, "PriceType": 3, "Property": 1, "Stock": 2, "Variant": 2},
    ),
    ("carono__php-commerceml/import_wo_classifier.xml", PackageKind.IMPORT, {"Product": 2}),
    (
        "carono__php-commerceml/offers.xml",
        PackageKind.OFFERS,
        {"Price": 5, "PriceType": 1, "Stock": 10, "Variant": 5, "Warehouse": 5},
    ),
    ("carono__yii2-1c-exchange/from.xml", PackageKind.DOCUMENTS, {"Order": 1}),
    ("carono__yii2-1c-exchange/import.xml", PackageKind.IMPORT, {"Group": 22, "Product": 2, "Property": 10}),
    (
        "carono__yii2-1c-exchange/offers.xml",
        PackageKind.OFFERS,
        {"Price": 5, "PriceType": 1, "Stock": 10, "Variant": 5, "Warehouse": 5},
    ),
    ("carono__yii2-1c-exchange/to.xml", PackageKind.DOCUMENTS, {"Order": 1}),
    ("d16izhevsk__1coutlet/import0_1.xml", PackageKind.IMPORT, {"Group": 59, "Product": 1197, "Property": 10}),
    (
        "d16izhevsk__1coutlet/offers0_1.xml",
        PackageKind.OFFERS,
        {"Price": 2642, "PriceType": 1, "Stock": 4366, "Variant": 2100, "Warehouse": 6},
    ),
    ("dobromyslov__commerceml-parser/bitrix-query-response-empty.xml", PackageKind.EMPTY, {}),
    ("dobromyslov__commerceml-parser/bitrix-query-response-full.xml", PackageKind.DOCUMENTS, {"Order": 2}),
    ("dobromyslov__commerceml-parser/import0_1.xml", PackageKind.IMPORT, {"Group": 1, "Product": 36, "Property": 12}),
    (
        "dobromyslov__commerceml-parser/import0_1_with_nested_groups.xml",
        PackageKind.IMPORT,
        {"Group": 13, "Product": 283, "Property": 20},
    ),
    (
        "dobromyslov__commerceml-parser/offers0_1.xml",
        PackageKind.OFFERS,
        {"Price": 44, "PriceType": 1, "Stock": 176, "Warehouse": 3},
    ),
    (
        "gillbeits__commerceml/import___b815e2db-7a65-4265-9241-5f0c4f0565a7.xml",
        PackageKind.CLASSIFIER,
        {"Group": 97, "PriceType": 1, "Property": 1908, "Unit": 2, "Warehouse": 1},
    ),
    ("gillbeits__commerceml/offers___7f304edc-2527-4d3d-b058-6e4ee53de2e0.xml", PackageKind.OFFERS, {}),
    (
        "gillbeits__commerceml/offers___f0bab95c-14a6-4141-9746-6650b65f1191.xml",
        PackageKind.PROPERTIES,
        {"Property": 1908},
    ),
    ("gillbeits__commerceml/prices___d66a6b51-ce9c-4e7a-8c7c-25079721107f.xml", PackageKind.PRICES, {"Price": 978}),
    ("gillbeits__commerceml/rests___1af6e7b8-a026-4690-9752-1c9d64cb914d.xml", PackageKind.RESTS, {"Stock": 978}),
    ("irpsv__commerceml/cs-cart_import.xml", PackageKind.IMPORT, {"Group": 4, "Product": 27, "Property": 1}),
    (
        "irpsv__commerceml/cs-cart_offers.xml",
        PackageKind.OFFERS,
        {"Price": 2910, "PriceType": 2, "Stock": 81, "Variant": 1455},
    ),
    ("irpsv__commerceml/off-doc-1c_import.xml", PackageKind.IMPORT, {"Group": 1, "Product": 2, "Variant": 4}),
    (
        "irpsv__commerceml/off-doc-1c_offers.xml",
        PackageKind.OFFERS,
        {"Price": 8, "PriceType": 4, "Stock": 2, "Variant": 2},
    ),
    ("irpsv__commerceml/off-doc-1c_orders.xml", PackageKind.DOCUMENTS, {"Order": 3}),
    ("irpsv__commerceml/ready-script_import.xml", PackageKind.IMPORT, {"Group": 4, "Product": 1, "Property": 7}),
    (
        "irpsv__commerceml/ready-script_offers.xml",
        PackageKind.OFFERS,
        {"Price": 2, "PriceType": 1, "Stock": 2, "Variant": 1},
    ),
    ("irpsv__commerceml/umi-cms_import.xml", PackageKind.IMPORT, {"Group": 1, "Product": 3, "Property": 1}),
    ("irpsv__commerceml/umi-cms_offers.xml", PackageKind.OFFERS, {"Price": 70, "PriceType": 5, "Stock": 14}),
    ("sergey-gru__django-cml/import.xml", PackageKind.IMPORT, {"Group": 36, "Product": 282, "Property": 3}),
    ("solopovsergey__bxmaker.kits/import.xml", PackageKind.IMPORT, {"PriceType": 1, "Product": 3, "Warehouse": 1}),
    ("solopovsergey__bxmaker.kits/prices.xml", PackageKind.PRICES, {"Price": 3}),
    ("solopovsergey__bxmaker.kits/rests.xml", PackageKind.RESTS, {"Stock": 3}),
    (
        "stee1cat__1c-exchange/import___29d3f7f0-36dd-4eea-a06c-4c325bed4285.xml",
        PackageKind.CLASSIFIER,
        {"Group": 25, "Unit": 10, "Warehouse": 13},
    ),
]


def _cml(name: str) -> Path:
    return fixtures_dir("commerceml", name)


def _records(name: str) -> list[Record]:
    return list(read_records(_cml(name)))


def _by_type(records: list[Record], kind: type) -> list:
    return [record for record in records if isinstance(record, kind)]


def test_every_fixture_file_is_listed() -> None:
    files = fixture_files("commerceml")
    if not files:
        pytest.skip("shared fixtures not found")
    base = files[0].parents[1]
    assert {str(path.relative_to(base)) for path in files} == {name for name, _kind, _counts in EXPECTED}


@pytest.mark.parametrize(("name", "kind", "counts"), EXPECTED, ids=[row[0] for row in EXPECTED])
def test_fixture_parses_with_expected_kind_and_counts(name: str, kind: PackageKind, counts: dict[str, int]) -> None:
    records = list(read_package(_cml(name)))
    package = records[0]
    assert isinstance(package, Package)
    assert package.kind is kind
    assert detect(_cml(name)).kind is kind
    found = Counter(type(record).__name__ for record in records[1:])
    assert dict(found) == counts
    assert not _by_type(records, RecordError)


def test_ut11_import_products_values() -> None:
    records = _records("d16izhevsk__1coutlet/import0_1.xml")
    products = {product.id: product for product in _by_type(records, Product)}
    boots = products["bd72d910-55bc-11d9-848a-00112f43529a"]
    assert boots.name == "Женские ботфорты коричневые"
    assert boots.article == "Б-130001"
    assert boots.barcode == "2000018987155"
    assert boots.group_ids == ("bd72d90e-55bc-11d9-848a-00112f43529a",)
    assert boots.unit == Unit(code="715", full_name="Пара (2 шт.)")
    assert boots.vat_rate is VatRate.VAT_20  # the file says 18, the general rate before 2019
    assert boots.kind == "goods"
    assert boots.full_name == "Женские ботфорты коричневые"
    assert boots.property_values["bb14a4b8-6b17-11e0-9819-e0cb4ed5eed4"] == "444bbea3-6b18-11e0-9819-e0cb4ed5eed4"
    assert Counter(product.vat_rate for product in products.values())[VatRate.VAT_10] == 867
    assert sum(product.kind == "service" for product in products.values()) == 2
    groups = _by_type(records, Group)
    seen: set[str] = set()
    for group in groups:  # the tree arrives parents first
        assert group.parent_id is None or group.parent_id in seen
        seen.add(group.id)


def test_ut11_offers_variants_prices_and_stock_per_warehouse() -> None:
    records = _records("d16izhevsk__1coutlet/offers0_1.xml")
    variant_id = "bd72d910-55bc-11d9-848a-00112f43529a#90c55447-d3a8-11e4-9423-e0cb4ed5eed4"
    variant = next(v for v in _by_type(records, Variant) if v.id == variant_id)
    assert variant.product_id == "bd72d910-55bc-11d9-848a-00112f43529a"
    assert variant.name == "Женские ботфорты коричневые (38)"
    prices = [p for p in _by_type(records, Price) if p.variant_id == variant_id]
    assert prices == [
        Price(
            product_id="bd72d910-55bc-11d9-848a-00112f43529a",
            variant_id=variant_id,
            price_type_id="bb14a3a4-6b17-11e0-9819-e0cb4ed5eed4",
            value=Decimal("1719"),
            currency="RUB",
        )
    ]
    stocks = {s.warehouse_id: s.quantity for s in _by_type(records, Stock) if s.variant_id == variant_id}
    assert stocks == {None: Decimal(20), "b6112590-41ba-11dd-ac9d-0015e9b8c48d": Decimal(20)}
    price_type = _by_type(records, PriceType)[0]
    assert (price_type.name, price_type.currency, price_type.vat_included) == ("Розничная", "RUB", True)
    assert len(_by_type(records, Warehouse)) == 6


def test_freesport_31_goods_prices_rests() -> None:
    goods = _by_type(_records("AlexMobiCraft__FREESPORT-B2B/goods.xml"), Product)
    dumbbell = next(p for p in goods if p.id == "018d777d-9094-11ec-a2ff-04421a23d8e8")
    assert dumbbell.article == "ES1115"
    assert dumbbell.unit == Unit(code="796")  # 3.1 writes the code as text: "796 "
    assert dumbbell.country == "КИТАЙ"
    assert dumbbell.manufacturer.startswith("Нантонг энджойплей фитнес")
    assert dumbbell.vat_rate is VatRate.VAT_20
    assert len(dumbbell.images) == 4
    assert dumbbell.images[0].startswith("import_files/01/018d777d-9094-11ec-a2ff-04421a23d8e8_")
    assert dumbbell.description is not None and dumbbell.description.startswith("Гантель ES1115")
    prices = _by_type(_records("AlexMobiCraft__FREESPORT-B2B/prices.xml"), Price)
    own = {p.price_type_id: p.value for p in prices if p.product_id == "038bca5a-747e-11ea-81c1-00155d3cae02"}
    assert own["3d1482c4-bd77-11e4-afc8-20cf3073dde3"] == Decimal("6990")
    assert own["a91bdb02-b3f2-11ea-81c3-00155d3cae02"] == Decimal("4625")
    rests = _by_type(_records("AlexMobiCraft__FREESPORT-B2B/rests.xml"), Stock)
    assert all(stock.warehouse_id for stock in rests)
    assert {s.warehouse_id for s in rests if s.product_id == "069efcc9-a098-11ed-a325-04421a23d8e8"} == {
        "8f06f4f1-b3f0-11ea-81c3-00155d3cae02",
        "b41f7acc-58e5-11f0-90b3-fa163ea88911",
    }
    offers = _by_type(_records("AlexMobiCraft__FREESPORT-B2B/offers.xml"), Variant)
    kimono = offers[0]
    assert kimono.product_id == "3d5f3106-4839-11ef-804f-fa163e775e1f"
    assert kimono.characteristics["Вес коробки (кг)"] == "21,6"  # free text, kept as 1C wrote it
    groups = _by_type(_records("AlexMobiCraft__FREESPORT-B2B/groups.xml"), Group)
    assert groups[0] == Group(id="3d148346-bd77-11e4-afc8-20cf3073dde3", name="СПОРТ", version="AAAAAAAAAAE=")
    assert groups[1].parent_id == groups[0].id
    assert groups[2].parent_id == groups[1].id


def test_split_packages_and_changes_only() -> None:
    package = detect(_cml("gillbeits__commerceml/import___b815e2db-7a65-4265-9241-5f0c4f0565a7.xml"))
    assert package.changes_only is True
    assert package.classifier_id.startswith("86bca4ea-e")
    records = _records("gillbeits__commerceml/import___b815e2db-7a65-4265-9241-5f0c4f0565a7.xml")
    properties = _by_type(records, Property)
    assert sum(p.deleted for p in properties) == 12
    paper = next(p for p in properties if p.id == "fe2f0a8a-d6b6-11e4-80c6-001e675ada8d")
    assert (paper.name, paper.value_type, paper.options) == ("Бумага", "Справочник", {"true": "Да", "false": "Нет"})
    assert detect(_cml("irpsv__commerceml/ready-script_import.xml")).changes_only is True
    assert detect(_cml("d16izhevsk__1coutlet/import0_1.xml")).changes_only is False
    bx = _by_type(_records("solopovsergey__bxmaker.kits/prices.xml"), Price)[0]
    assert (bx.value, bx.unit, bx.coefficient) == (Decimal(2000), "шт", Decimal(1))


def test_characteristics_with_property_values() -> None:
    records = _records("bigperson__exchange1c/offers.xml")
    first = _by_type(records, Variant)[0]
    assert first.characteristics == {"Цвет": "Бежевый"}
    assert first.property_values == {"5ea1e6c2-cc93-11e8-8112-0050569b2b72": "6efed1d2-cc93-11e8-8112-0050569b2b72"}
    colour = _by_type(records, Property)[0]
    assert colour.for_offers is True
    assert colour.options["6efed1d2-cc93-11e8-8112-0050569b2b72"] == "Бежевый"
    assert [s.quantity for s in _by_type(records, Stock)] == [Decimal(2), Decimal(5)]


def test_old_import_with_hash_ids_yields_base_product_once() -> None:
    records = _records("irpsv__commerceml/off-doc-1c_import.xml")
    products = _by_type(records, Product)
    assert [p.id for p in products] == ["05e26d70-01e4-11dc-a411-00055d80a2d1", "05e26d77-01e4-11dc-a411-00055d80a2d1"]
    variants = _by_type(records, Variant)
    assert len(variants) == 4
    assert all(v.id.startswith(v.product_id + "#") for v in variants)


def test_deleted_status_attribute() -> None:
    products = _by_type(_records("dobromyslov__commerceml-parser/import0_1.xml"), Product)
    deleted = [p for p in products if p.deleted]
    assert [p.id for p in deleted] == ["b631c9c1-49de-11e9-80c9-0cc47ab29cd1"]


def test_1c_answer_documents() -> None:
    orders = _by_type(_records("ArgentCrusade__commerceml/documents-example.xml"), Order)
    order = orders[0]
    assert (order.id, order.number, order.number_1c) == ("142", "142", "ТДЦУ-000001")
    assert order.date == datetime(2015, 6, 29, 15, 39, 10, tzinfo=MSK)
    assert order.date_1c == date(2015, 6, 29)
    assert order.version == "AAAAEAAAAAA="
    assert (order.currency, order.total, order.vat_included, order.vat_total) == (
        "RUB",
        Decimal("8186.84"),
        False,
        Decimal("1248.84"),
    )
    status = order.status
    assert status.posted is True
    assert status.paid is True and status.payment_number == "ТДЦУ-000001"
    assert status.payment_date == datetime(2015, 6, 29, 15, 39, 10, tzinfo=MSK)
    assert status.shipped is True and status.shipment_number == "ТДЦУ-000003"
    assert status.status_id == "P"
    party = order.parties[0]
    assert party.name == "Kikinda (Сербия)" and party.role == "Покупатель"
    assert [a.bik for a in party.bank_accounts] == ["044525222", "044579555"]
    assert party.contact_persons == ("Смирнов Олег Иванович",)
    line = order.lines[1]
    assert line.product_id == "bd72d913-55bc-11d9-848a-00112f43529a"
    assert line.variant_id == "bd72d913-55bc-11d9-848a-00112f43529a#b02e2814-720f-11df-b436-0015e92f2802"
    assert (line.quantity, line.price, line.amount, line.vat_amount) == (1, 3600, 3600, 648)
    assert line.unit is not None and line.unit.code == "715"


def test_windows_1251_order_from_site() -> None:
    order = _by_type(_records("carono__yii2-1c-exchange/to.xml"), Order)[0]
    assert order.id == "20"
    assert order.total == Decimal("9683.42")
    assert order.currency == "RUB"  # "руб" in the file
    assert order.parties[0].last_name == "Петров"
    assert order.lines[0].product_id == "ORDER_DELIVERY" and order.lines[0].kind == "service"
    assert order.status.paid is True
    assert order.status.final is True
    assert order.status.status_name == "[F] Доставлен"
    assert order.status.cancelled is False
