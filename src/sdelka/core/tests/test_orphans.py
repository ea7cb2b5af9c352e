from __future__ import annotations

import pytest
from django.db import connection as db

from sdelka.catalog.models import Price, Product, ProductPropertyValue, Property, StockLevel, Warehouse
from sdelka.core.orphans import sweep_orphan_rows, unconstrained_links
from sdelka.exchange.models import Connection, ExchangeRun, ExternalRef, RefKind, Route
from tests.factories import PriceFactory, ProductFactory, StockLevelFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


def _delete_behind_djangos_back(model: type, pk: int) -> None:
    """What a deletion racing an exchange amounts to: the row is gone, rows written meanwhile still name it."""
    with db.cursor() as cursor:
        cursor.execute(f"DELETE FROM {db.ops.quote_name(model._meta.db_table)} WHERE id = %s", [pk])


def test_bulk_links_have_no_database_constraint() -> None:
    names = {f"{field.model._meta.label}.{field.name}" for field in unconstrained_links()}
    assert {
        "catalog.Price.product",
        "catalog.Price.variant",
        "catalog.Price.price_type",
        "catalog.StockLevel.product",
        "catalog.StockLevel.variant",
        "catalog.StockLevel.warehouse",
        "catalog.ProductPropertyValue.product",
        "catalog.ProductPropertyValue.property",
        "exchange.ExternalRef.connection",
        "exchange.ExternalRef.seen_run",
        "exchange.ElementDigest.connection",
    } <= names
    # The objects people work with keep theirs.
    assert "catalog.Variant.product" not in names
    assert not any(name.startswith("sales.") for name in names)


def test_sweep_removes_rows_of_a_product_deleted_behind_djangos_back() -> None:
    kept, gone = ProductFactory.create(), ProductFactory.create()
    warehouse = WarehouseFactory.create()
    kept_stock = StockLevelFactory.create(product=kept, warehouse=warehouse)
    StockLevelFactory.create(product=gone, warehouse=warehouse)
    kept_price = PriceFactory.create(product=kept)
    PriceFactory.create(product=gone, price_type=kept_price.price_type)
    colour = Property.objects.create(name="Цвет")
    ProductPropertyValue.objects.create(product=gone, property=colour, value="красный")
    kept_value = ProductPropertyValue.objects.create(product=kept, property=colour, value="синий")

    _delete_behind_djangos_back(Product, gone.pk)
    fixed = sweep_orphan_rows()

    assert fixed == {
        "catalog.StockLevel.product": 1,
        "catalog.Price.product": 1,
        "catalog.ProductPropertyValue.product": 1,
    }
    assert list(StockLevel.objects.all()) == [kept_stock]
    assert list(Price.objects.all()) == [kept_price]
    assert list(ProductPropertyValue.objects.all()) == [kept_value]
    assert sweep_orphan_rows() == {}


def test_sweep_removes_stock_of_a_deleted_warehouse() -> None:
    product = ProductFactory.create()
    closed, open_ = WarehouseFactory.create(name="Закрытый"), WarehouseFactory.create(name="Основной")
    StockLevelFactory.create(product=product, warehouse=closed)
    StockLevelFactory.create(product=product, warehouse=open_)

    _delete_behind_djangos_back(Warehouse, closed.pk)

    assert sweep_orphan_rows() == {"catalog.StockLevel.warehouse": 1}
    assert list(StockLevel.objects.values_list("warehouse", flat=True)) == [open_.pk]


def test_sweep_clears_a_set_null_link_instead_of_deleting() -> None:
    connection = Connection.objects.create(name="УТ 11")
    run = ExchangeRun.objects.create(connection=connection, route=Route.CATALOG)
    product = ProductFactory.create()
    ref = ExternalRef.objects.create(
        connection=connection,
        kind=RefKind.PRODUCT,
        external_id="a1",
        content_type_id=1,
        object_id=product.pk,
        seen_run=run,
    )

    _delete_behind_djangos_back(ExchangeRun, run.pk)

    assert sweep_orphan_rows() == {"exchange.ExternalRef.seen_run": 1}
    ref.refresh_from_db()
    assert ref.seen_run_id is None


def test_deleting_through_django_still_cascades() -> None:
    product = ProductFactory.create()
    StockLevelFactory.create(product=product)
    PriceFactory.create(product=product)

    product.delete()

    assert not StockLevel.objects.exists()
    assert not Price.objects.exists()
    assert sweep_orphan_rows() == {}
