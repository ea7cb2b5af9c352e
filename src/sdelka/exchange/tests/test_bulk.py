"""Bulk writes: the fast path (COPY on PostgreSQL, reserved ids + executemany on SQLite) stores exactly what the
generic ORM path stores; and a whole catalogue applied both ways ends in the same rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from sdelka.catalog.models import Price, PriceType, Product, StockLevel, Unit, Variant, Warehouse
from sdelka.exchange import bulk
from sdelka.exchange import records as r
from sdelka.exchange.apply import apply_records
from sdelka.exchange.models import ExchangeRun, ExternalRef, Route, RunStatus
from sdelka.exchange.services import create_connection

COUNT = bulk.COPY_THRESHOLD + 7


@pytest.fixture
def generic(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the ORM path (bulk_create, executemany) whatever the database."""
    monkeypatch.setattr(bulk, "COPY_THRESHOLD", 10**9)


def make_products(prefix: str) -> list[dict[str, Any]]:
    unit = Unit.objects.get(okei="796")
    return [
        {"name": f"{prefix} {n}", "article": f"{prefix}-{n}", "unit_id": unit.pk, "description": "«кавычки»\tи\\слэш\n"}
        for n in range(COUNT)
    ]


def stored(ids: list[int]) -> list[tuple[Any, ...]]:
    fields = ("name", "article", "description", "unit_id", "vat_rate", "kind", "is_active")
    rows = Product.objects.filter(pk__in=ids).order_by("pk").values_list(*fields)
    return [tuple(row) for row in rows]


def insert_and_read(prefix: str) -> tuple[list[int], list[tuple[Any, ...]]]:
    with transaction.atomic():
        ids = bulk.insert_values(Product, make_products(prefix))
    return ids, stored(ids)


@pytest.mark.django_db
def test_fast_insert_returns_the_keys_and_stores_what_the_orm_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, fast_rows = insert_and_read("A")
    assert len(set(fast)) == COUNT and fast == sorted(fast)
    assert [row[0] for row in fast_rows] == [f"A {n}" for n in range(COUNT)]  # the keys in the order of the rows
    assert all(p.created_at and p.updated_at for p in Product.objects.filter(pk__in=fast))
    orm_ids = [Product.objects.create(**row).pk for row in make_products("A")]
    assert stored(orm_ids) == fast_rows  # defaults filled as a model instance fills them
    monkeypatch.setattr(bulk, "COPY_THRESHOLD", 10**9)
    slow, slow_rows = insert_and_read("A")
    assert fast_rows == slow_rows
    # the sequence moved past the reserved ids: the ORM's next row does not collide
    assert min(slow) > max(fast)
    assert Product.objects.create(name="next", unit=Unit.objects.get(okei="796")).pk > max(slow)


@pytest.mark.django_db
def test_fast_rows_and_updates_match_the_generic_path(monkeypatch: pytest.MonkeyPatch) -> None:
    product_ids, _rows = insert_and_read("B")
    stamp = timezone.now()
    characteristics = {"Размер": "XL", "Цвет": "тёмно-синий", "Состав": 'хлопок "100%"'}

    def write(type_name: str) -> tuple[list[tuple[Any, ...]], list[Any]]:
        type_id = PriceType.objects.create(name=type_name).pk
        rows = [(type_id, pk, None, Decimal(n) + Decimal("0.25"), stamp) for n, pk in enumerate(product_ids)]
        variants = [
            {"product_id": pk, "name": f"{type_name} XL", "characteristics": characteristics} for pk in product_ids
        ]
        with transaction.atomic():
            bulk.insert_rows(Price, ("price_type_id", "product_id", "variant_id", "value", "updated_at"), rows)
            pks = Price.objects.filter(price_type_id=type_id).order_by("product_id").values_list("pk", flat=True)
            bulk.update_rows(Price, ("value",), [(pk, Decimal("99.90") + n) for n, pk in enumerate(pks)])
            variant_ids = bulk.insert_values(Variant, variants)
        prices = Price.objects.filter(price_type_id=type_id).order_by("product_id")
        stored = Variant.objects.filter(pk__in=variant_ids).order_by("pk")
        return list(prices.values_list("product_id", "value", "updated_at")), [v.characteristics for v in stored]

    fast = write("Розничная")
    monkeypatch.setattr(bulk, "COPY_THRESHOLD", 10**9)
    slow = write("Оптовая")
    assert fast == slow
    assert fast[0][3] == (product_ids[3], Decimal("102.90"), stamp)
    assert fast[1] == [characteristics] * COUNT


def catalogue(size: int) -> list[Any]:
    records: list[Any] = [
        r.Package(kind=r.PackageKind.IMPORT, changes_only=False),
        r.Group(id="g", name="Группа"),
        r.PriceType(id="pt", name="Розничная", currency="RUB"),
        r.Warehouse(id="w1", name="Склад 1"),
        r.Warehouse(id="w2", name="Склад 2"),
        r.Property(id="p", name="Цвет", options={"o1": "Красный"}),
    ]
    for n in range(size):
        records.append(
            r.Product(id=f"id{n}", name=f"Товар {n}", article=f"A{n}", group_ids=("g",), property_values={"p": "o1"})
        )
    for n in range(size):
        variant = f"id{n}#v" if n % 5 == 0 else None
        if variant:
            records.append(r.Variant(id=variant, product_id=f"id{n}", characteristics={"Размер": "M"}))
        records.append(r.Price(product_id=f"id{n}", variant_id=variant, price_type_id="pt", value=Decimal(n)))
        records.append(r.Stock(product_id=f"id{n}", variant_id=variant, warehouse_id="w1", quantity=Decimal(n % 7)))
        records.append(r.Stock(product_id=f"id{n}", variant_id=variant, warehouse_id="w2", quantity=Decimal(1)))
    return records


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "products": sorted(Product.objects.values_list("name", "article", "group__name", "is_active")),
        "variants": sorted(
            (v.product.name, v.name, str(v.characteristics)) for v in Variant.objects.select_related("product")
        ),
        "prices": sorted(Price.objects.values_list("product__name", "variant__name", "price_type__name", "value")),
        "stock": sorted(
            StockLevel.objects.values_list("product__name", "variant__name", "warehouse__name", "quantity")
        ),
        "refs": sorted(ExternalRef.objects.values_list("connection__name", "kind", "external_id")),
    }


def run_twice(name: str) -> tuple[int, int]:
    connection = create_connection(name=name, login=name, password="password-123")
    results = []
    for _ in range(2):
        run = ExchangeRun.objects.create(connection=connection, route=Route.CATALOG, status=RunStatus.RUNNING)
        outcome = apply_records(connection=connection, run=run, records=catalogue(2 * COUNT))
        ExchangeRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS)
        results.append(outcome.counts)
    assert results[1].created == 0 and results[1].updated == 0  # the second time nothing changed
    return results[0].created, results[1].unchanged


@pytest.mark.django_db
def test_a_catalogue_applied_by_the_fast_path_equals_the_generic_one(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = run_twice("fast")
    fast_rows = snapshot()
    Price.objects.all().delete()
    StockLevel.objects.all().delete()
    Variant.objects.all().delete()
    Product.objects.all().delete()
    Warehouse.objects.all().delete()
    ExternalRef.objects.all().delete()
    monkeypatch.setattr(bulk, "COPY_THRESHOLD", 10**9)
    slow = run_twice("slow")
    slow_rows = snapshot()
    slow_rows["refs"] = [("fast", kind, ext) for _name, kind, ext in slow_rows["refs"]]
    assert fast[1] == slow[1]  # (the first counts differ: the second base finds the property and price type by name)
    assert fast_rows == slow_rows
    assert len(fast_rows["products"]) == 2 * COUNT and len(fast_rows["stock"]) == 4 * COUNT


@pytest.mark.django_db
def test_insert_values_fills_defaults_and_one_time_stamp_like_an_instance() -> None:
    from sdelka.parties.models import Counterparty, CounterpartyKind
    from tests.factories import UserFactory

    owner = UserFactory.create().pk
    rows = [
        {"name": "ООО Один", "inn": "7707083893", "owner_id": owner},
        {"name": "ИП Два", "kind": CounterpartyKind.ENTREPRENEUR, "created_at": None, "owner_id": owner},
    ]
    with transaction.atomic():
        ids = bulk.insert_values(Counterparty, rows)
    one, two = (Counterparty.objects.get(pk=pk) for pk in ids)
    assert (one.name, one.inn, one.kind, one.is_active, one.kpp) == ("ООО Один", "7707083893", "legal", True, "")
    assert two.kind == CounterpartyKind.ENTREPRENEUR
    assert one.created_at == one.updated_at == two.created_at is not None  # auto_now fields: one stamp, always


@pytest.mark.django_db
def test_set_column_updates_only_the_given_rows() -> None:
    unit = Unit.objects.get(okei="796")
    products = [Product.objects.create(name=f"Товар {i}", unit=unit) for i in range(3)]
    with transaction.atomic():
        bulk.set_column(Product, "name", "Переименован", [products[0].pk, products[2].pk])
    assert list(Product.objects.order_by("pk").values_list("name", flat=True)) == [
        "Переименован",
        "Товар 1",
        "Переименован",
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "wanted",
    [
        ["A 1", "A 3"],
        [""],
        ["", "A 2"],
        ["A 4", "нет такого", 'o\'neil \\ "q"'],
        ["A 5", "A 6\x1fA 7"],  # the separator inside a value: sent as an array instead
    ],
)
def test_one_of_matches_text_values_exactly(wanted: list[str]) -> None:
    unit = Unit.objects.get(okei="796")
    names = ["", "A 1", "A 2", "A 3", "A 4", "A 5", "A 6", "A 7", 'o\'neil \\ "q"', "A 6\x1fA 7"]
    ids = {Product.objects.create(name=name, unit=unit).pk: name for name in names}
    found = Product.objects.filter(bulk.one_of("name", wanted), pk__in=ids).values_list("name", flat=True)
    assert sorted(found) == sorted(name for name in names if name in wanted)


@pytest.mark.django_db
def test_one_of_matches_numbers() -> None:
    products, _rows = insert_and_read("N")
    assert set(Product.objects.filter(bulk.one_of("pk", products[:3])).values_list("pk", flat=True)) == set(
        products[:3]
    )


@pytest.mark.django_db
def test_statistics_of_a_filling_table_are_refreshed_as_it_grows() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    statistics = bulk.Statistics(ExternalRef, ["connection_id", "kind", "external_id"])
    site = create_connection(name="stats", login="stats", password="stats-password")
    product_type = ContentType.objects.get_for_model(Product)
    ExternalRef.objects.bulk_create(
        ExternalRef(connection=site, kind="product", external_id=f"id-{n}", content_type=product_type, object_id=n)
        for n in range(40)
    )
    analysed = []
    for rows in (40, 1, 300, 1000):
        with CaptureQueriesContext(connection) as queries:
            statistics.wrote(rows)
        analysed.append(any(q["sql"].startswith("ANALYZE") for q in queries.captured_queries))
    if connection.vendor != "postgresql":
        assert analysed == [False] * 4  # SQLite plans its IN lookups by index without statistics
        return
    assert analysed == [True, False, True, False]  # after the first rows, then each eightfold growth
    with connection.cursor() as cursor:
        cursor.execute("SELECT attname, n_distinct FROM pg_stats WHERE tablename = 'exchange_externalref'")
        stats = dict(cursor.fetchall())
    assert stats["external_id"] == -1 and set(stats) == {"connection_id", "kind", "external_id"}
