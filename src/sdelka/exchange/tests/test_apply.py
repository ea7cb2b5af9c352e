"""The apply engine on canonical records: upserts, unchanged skipping, never deleting, per-record errors."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from sdelka.catalog.models import (
    Price,
    PriceType,
    Product,
    ProductGroup,
    ProductPropertyValue,
    Property,
    PropertyOption,
    StockLevel,
    Unit,
    Variant,
    Warehouse,
)
from sdelka.core.vat import VatRate
from sdelka.exchange import records as r
from sdelka.exchange.apply import BATCH_SIZE, apply_records, batched, deactivate_missing
from sdelka.exchange.models import (
    Connection,
    EventLevel,
    ExchangeEvent,
    ExchangeRun,
    ExternalRef,
    RefKind,
    Route,
    RunStatus,
)
from sdelka.exchange.services import create_connection

FULL_IMPORT = r.Package(kind=r.PackageKind.IMPORT, changes_only=False)
DELTA_IMPORT = r.Package(kind=r.PackageKind.IMPORT, changes_only=True)


def new_run(connection: Connection) -> ExchangeRun:
    return ExchangeRun.objects.create(connection=connection, route=Route.CATALOG, status=RunStatus.RUNNING)


def finish(run: ExchangeRun) -> None:
    ExchangeRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS)


def apply(connection: Connection, records: list[Any]) -> ExchangeRun:
    run = new_run(connection)
    apply_records(connection=connection, run=run, records=records)
    finish(run)
    run.refresh_from_db()
    return run


@pytest.fixture
def base(db: None) -> Connection:
    return create_connection(name="УТ", login="ut", password="password-123")


def classifier() -> list[Any]:
    return [
        FULL_IMPORT,
        r.Group(id="g1", name="Инструмент"),
        r.Group(id="g2", name="Дрели", parent_id="g1"),
        r.Property(id="p1", name="Цвет", value_type="Справочник", options={"o1": "Красный", "o2": "Синий"}),
        r.Property(id="p2", name="Мощность"),
    ]


def drill(**changes: Any) -> r.Product:
    fields: dict[str, Any] = {
        "id": "a1",
        "name": "Дрель",
        "article": "DR-1",
        "barcode": "4600000000011",
        "group_ids": ("g2",),
        "unit": r.Unit(code="796", name="шт"),
        "vat_rate": VatRate.VAT_22,
        "manufacturer": "Bosch",
        "description": "Ударная",
        "property_values": {"p1": "o1", "p2": "800 Вт"},
    }
    fields.update(changes)
    return r.Product(**fields)


def offers() -> list[Any]:
    return [
        r.Package(kind=r.PackageKind.OFFERS, changes_only=False),
        r.PriceType(id="pt1", name="Розничная", currency="RUB", vat_included=True),
        r.Warehouse(id="w1", name="Основной"),
        r.Warehouse(id="w2", name="Магазин"),
        r.Variant(id="a1#v1", product_id="a1", characteristics={"Цвет": "Красный"}),
        r.Price(product_id="a1", variant_id=None, price_type_id="pt1", value=Decimal("1999.90")),
        r.Price(product_id="a1", variant_id="a1#v1", price_type_id="pt1", value=Decimal("2100")),
        r.Stock(product_id="a1", variant_id=None, warehouse_id="w1", quantity=Decimal("3")),
        r.Stock(product_id="a1", variant_id=None, warehouse_id="w2", quantity=Decimal("2.5")),
    ]


def test_full_catalogue_is_created(base: Connection) -> None:
    run = apply(base, [*classifier(), drill(), *offers()])
    product = Product.objects.get()
    assert (product.name, product.article, product.barcode, product.manufacturer) == (
        "Дрель",
        "DR-1",
        "4600000000011",
        "Bosch",
    )
    assert product.description == "Ударная"
    assert product.vat_rate == VatRate.VAT_22
    assert product.unit == Unit.objects.get(okei="796")
    assert product.group is not None and product.group.name == "Дрели"
    assert product.group.parent is not None and product.group.parent.name == "Инструмент"
    values = dict(ProductPropertyValue.objects.values_list("property__name", "value"))
    assert values == {"Цвет": "Красный", "Мощность": "800 Вт"}
    assert set(PropertyOption.objects.values_list("value", flat=True)) == {"Красный", "Синий"}
    variant = Variant.objects.get()
    assert variant.product == product and variant.characteristics == {"Цвет": "Красный"}
    assert Price.objects.get(variant=None).value == Decimal("1999.90")
    assert Price.objects.get(variant=variant).value == Decimal("2100.00")
    assert PriceType.objects.get().vat_included
    stock = dict(StockLevel.objects.values_list("warehouse__name", "quantity"))
    assert stock == {"Основной": Decimal("3.000"), "Магазин": Decimal("2.500")}
    assert run.created > 0 and run.failed == 0
    assert ExternalRef.objects.filter(kind=RefKind.PRODUCT, external_id="a1", object_id=product.pk).exists()


def test_reapplying_the_same_records_changes_nothing(base: Connection) -> None:
    records = [*classifier(), drill(), *offers()]
    apply(base, records)
    stamp = Product.objects.get().updated_at
    run = apply(base, records)
    assert (run.created, run.updated, run.failed) == (0, 0, 0)
    assert run.unchanged == len(records) - 2  # every record but the two packages
    assert Product.objects.get().updated_at == stamp


def test_changes_are_applied_and_only_to_what_is_named(base: Connection) -> None:
    apply(base, [*classifier(), drill(), r.Product(id="a2", name="Пила", group_ids=("g1",)), *offers()])
    saw = Product.objects.get(name="Пила")
    saw_stamp = saw.updated_at
    run = apply(base, [DELTA_IMPORT, drill(name="Дрель ударная", description=None, property_values={"p1": "o2"})])
    assert run.updated == 1 and run.created == 0
    product = Product.objects.get(article="DR-1")
    assert product.name == "Дрель ударная"
    assert product.description == "Ударная"  # not sent: left alone
    assert ProductPropertyValue.objects.get(product=product, property__name="Цвет").value == "Синий"
    assert ProductPropertyValue.objects.get(product=product, property__name="Мощность").value == "800 Вт"
    saw.refresh_from_db()
    assert saw.updated_at == saw_stamp and saw.is_active
    assert not run.full_products


def test_deleted_mark_deactivates_and_nothing_is_deleted(base: Connection) -> None:
    apply(base, [*classifier(), drill(), *offers()])
    apply(base, [DELTA_IMPORT, drill(deleted=True), r.Group(id="g2", name="Дрели", parent_id="g1", deleted=True)])
    assert not Product.objects.get().is_active
    assert not ProductGroup.objects.get(name="Дрели").is_active
    assert Price.objects.count() == 2 and Variant.objects.count() == 1


def test_missing_products_are_deactivated_only_when_the_option_is_on(base: Connection) -> None:
    apply(base, [*classifier(), drill(), r.Product(id="a2", name="Пила")])
    run = apply(base, [FULL_IMPORT, drill()])
    assert not run.full_products  # the option is off: nothing was marked as seen
    assert deactivate_missing(connection=base, run=run) == 0
    assert Product.objects.filter(is_active=True).count() == 2
    base.options = {"deactivate_missing_products": True}
    base.save()
    # Switched on after the upload: that run marked nothing, so it deactivates nothing (not everything).
    assert deactivate_missing(connection=base, run=run) == 0
    assert Product.objects.filter(is_active=True).count() == 2
    run = apply(base, [FULL_IMPORT, drill()])
    assert run.full_products
    assert deactivate_missing(connection=base, run=run) == 1
    assert list(Product.objects.filter(is_active=True).values_list("name", flat=True)) == ["Дрель"]


def test_two_bases_do_not_mix_ids_and_share_named_references(base: Connection) -> None:
    other = create_connection(name="Розница", login="retail", password="password-456")
    apply(base, [*classifier(), drill(), *offers()])
    apply(other, [*classifier(), drill(name="Дрель из розницы"), *offers()])
    assert Product.objects.count() == 2
    assert set(Product.objects.values_list("name", flat=True)) == {"Дрель", "Дрель из розницы"}
    # Names are unique for properties, price types and warehouses: both bases map onto the same rows.
    assert Property.objects.count() == 2 and PriceType.objects.count() == 1 and Warehouse.objects.count() == 2
    assert ExternalRef.objects.filter(kind=RefKind.PRODUCT, external_id="a1").count() == 2


def test_match_by_article_links_an_existing_product(base: Connection) -> None:
    unit = Unit.objects.get(okei="796")
    existing = Product.objects.create(name="Дрель (заведена вручную)", article="DR-1", unit=unit)
    base.options = {"match_products_by_article": True}
    base.save()
    apply(base, [*classifier(), drill()])
    assert Product.objects.count() == 1
    existing.refresh_from_db()
    assert existing.name == "Дрель"
    assert ExternalRef.objects.get(kind=RefKind.PRODUCT).object_id == existing.pk


def test_without_matching_an_article_twin_is_a_new_product(base: Connection) -> None:
    Product.objects.create(name="Чужая дрель", article="DR-1", unit=Unit.objects.get(okei="796"))
    apply(base, [*classifier(), drill()])
    assert Product.objects.count() == 2


def test_bad_records_are_journalled_and_the_rest_goes_on(base: Connection) -> None:
    run = apply(
        base,
        [
            *classifier(),
            r.RecordError(
                kind="product", external_id="bad", field="ЦенаЗаЕдиницу", value="abc", message="Not a number."
            ),
            drill(),
            r.Price(product_id="unknown", variant_id=None, price_type_id="pt1", value=Decimal(1)),
            r.Price(product_id="a1", variant_id=None, price_type_id="nope", value=Decimal(1)),
        ],
    )
    assert Product.objects.count() == 1
    assert run.failed == 1 and run.skipped == 2
    error = ExchangeEvent.objects.get(run=run, level=EventLevel.ERROR)
    assert (error.external_id, error.field, error.value) == ("bad", "ЦенаЗаЕдиницу", "abc")
    assert ExchangeEvent.objects.filter(run=run, level=EventLevel.WARNING).count() == 2


def test_stock_of_an_offer_is_complete(base: Connection) -> None:
    apply(base, [*classifier(), drill(), *offers()])
    # The next offers file lists only w1: w2 now holds zero (1C leaves out zero stock).
    apply(base, [r.Stock(product_id="a1", variant_id=None, warehouse_id="w1", quantity=Decimal(7))])
    stock = dict(StockLevel.objects.values_list("warehouse__name", "quantity"))
    assert stock == {"Основной": Decimal(7), "Магазин": Decimal(0)}


def test_total_only_stock_goes_to_the_base_total_warehouse(base: Connection) -> None:
    apply(base, [*classifier(), drill()])
    apply(base, [r.Stock(product_id="a1", variant_id=None, warehouse_id=None, quantity=Decimal(11))])
    level = StockLevel.objects.get()
    assert level.quantity == Decimal(11) and level.warehouse.name == "УТ: total"


def test_duplicate_ids_in_one_batch_the_last_wins(base: Connection) -> None:
    run = apply(base, [*classifier(), drill(name="Первая"), drill(name="Вторая")])
    assert Product.objects.get().name == "Вторая"
    assert run.failed == 0


def test_product_without_unit_gets_pieces_and_unknown_okei_is_created(base: Connection) -> None:
    apply(
        base,
        [
            FULL_IMPORT,
            r.Product(id="x", name="Без единицы"),
            r.Product(id="y", name="Рулон", unit=r.Unit(code="9999", name="рул")),
        ],
    )
    assert Product.objects.get(name="Без единицы").unit.okei == "796"
    assert Product.objects.get(name="Рулон").unit.name == "рул"


def test_a_deleted_product_is_recreated_when_1c_sends_it_again(base: Connection) -> None:
    apply(base, [*classifier(), drill()])
    Product.objects.all().delete()
    apply(base, [*classifier(), drill()])
    product = Product.objects.get()
    assert ExternalRef.objects.get(kind=RefKind.PRODUCT).object_id == product.pk


def test_batches_keep_an_offer_together() -> None:
    records: list[Any] = [r.Product(id=str(n), name=str(n)) for n in range(BATCH_SIZE - 1)]
    records += [r.Price(product_id="z", variant_id=None, price_type_id=str(n), value=Decimal(n)) for n in range(5)]
    records += [r.Product(id="after", name="after")]
    batches = list(batched(records))
    assert [len(b) for b in batches] == [BATCH_SIZE + 4, 1]


def test_queries_grow_with_batches_not_with_rows(base: Connection) -> None:
    apply(base, classifier())

    def queries_for(count: int, prefix: str) -> int:
        products = [
            r.Product(id=f"{prefix}{n}", name=f"Товар {n}", group_ids=("g1",), property_values={"p1": "o1"})
            for n in range(count)
        ]
        with CaptureQueriesContext(connection) as captured:
            apply_records(connection=base, run=new_run(base), records=[FULL_IMPORT, *products])
        ExchangeRun.objects.update(status=RunStatus.SUCCESS)
        return len(captured)

    one_batch = queries_for(BATCH_SIZE, "a")
    four_batches = queries_for(4 * BATCH_SIZE, "b")
    assert one_batch < 80  # SQLite splits a 1000-row INSERT into statements of 999 parameters
    assert four_batches <= 4 * one_batch
    assert Product.objects.count() == 5 * BATCH_SIZE
    assert ProductPropertyValue.objects.count() == 5 * BATCH_SIZE


def test_one_active_run_per_connection_and_route(base: Connection) -> None:
    new_run(base)
    with pytest.raises(IntegrityError), transaction.atomic():
        new_run(base)
    other = create_connection(name="Другая", login="other", password="password-789")
    new_run(other)  # another base runs in parallel
    ExchangeRun.objects.create(connection=base, route=Route.BANK, status=RunStatus.RUNNING)  # another route too
