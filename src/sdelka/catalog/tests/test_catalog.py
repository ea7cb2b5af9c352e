from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from sdelka.catalog import selectors, services
from sdelka.catalog.models import Price, PriceType, Product, Unit, Variant
from tests.factories import ProductFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pieces() -> Unit:
    return Unit.objects.get(okei="796")


def variant_of(product: Product | None = None, **kwargs) -> Variant:
    return services.save_variant(product=product or ProductFactory(), name=kwargs.pop("name", "Красный"), **kwargs)


def api(user) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    return client


def test_group_tree_refuses_cycles():
    root = services.save_product_group(name="Бумага")
    child = services.save_product_group(name="Офисная", parent=root)
    grandchild = services.save_product_group(name="А4", parent=child)
    for parent in (root, grandchild):
        with pytest.raises(ValidationError) as caught:
            services.save_product_group(group=root, name="Бумага", parent=parent)
        assert "parent" in caught.value.message_dict
    services.save_product_group(group=grandchild, name="А4", parent=root)


def test_product_with_properties_and_history(staff, pieces):
    product = services.create_product(
        user=staff.manager, name="Ручка", unit=pieces, article="P-1", properties={"Цвет": "синий", "Тип": "шариковая"}
    )
    assert selectors.product_get(user=staff.manager, pk=product.pk).property_values.count() == 2
    services.update_product(user=staff.head, product=product, vat_rate="10", properties={"Цвет": "красный"})
    assert dict(product.property_values.values_list("property__name", "value")) == {"Цвет": "красный"}
    assert [h.history_user for h in product.history.order_by("history_id")] == [staff.manager, staff.head]
    with pytest.raises(ValidationError) as caught:
        services.update_product(user=staff.head, product=product, vat_rate="18")
    assert "vat_rate" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.create_product(user=staff.head, name=" ", unit=pieces)
    assert "name" in caught.value.message_dict


def test_prices_decimals_sign_and_one_default_type():
    first = services.save_price_type(name="Розница", is_default=True)
    second = services.save_price_type(name="Опт", is_default=True, currency="USD", vat_included=False)
    first.refresh_from_db()
    assert not first.is_default and second.is_default
    assert list(PriceType.objects.filter(is_default=True)) == [second]
    with pytest.raises(ValidationError) as caught:
        services.save_price_type(name="Евро", currency="XYZ")
    assert "currency" in caught.value.message_dict

    product = ProductFactory()
    price = services.set_price(price_type=second, product=product, value="10.5")
    assert price.value == Decimal("10.50")
    assert services.set_price(price_type=second, product=product, value=Decimal("12.00")).pk == price.pk
    for bad in ("1.005", "-1", "abc", 1.5):
        with pytest.raises(ValidationError) as caught:
            services.set_price(price_type=second, product=product, value=bad)
        assert "value" in caught.value.message_dict
    other_variant = variant_of()
    with pytest.raises(ValidationError) as caught:
        services.set_price(price_type=second, product=product, variant=other_variant, value="1")
    assert "variant" in caught.value.message_dict
    assert Price.objects.get().value == Decimal("12.00")


def test_stock_levels():
    product, warehouse = ProductFactory(), WarehouseFactory()
    services.set_stock(warehouse=warehouse, product=product, quantity="5.125")
    level = services.set_stock(warehouse=warehouse, product=product, quantity="-2")
    assert level.quantity == Decimal("-2.000")
    with pytest.raises(ValidationError) as caught:
        services.set_stock(warehouse=warehouse, product=product, quantity="1.0001")
    assert "quantity" in caught.value.message_dict


def test_product_list_search_and_group_subtree(staff):
    root = services.save_product_group(name="Канцтовары")
    sub = services.save_product_group(name="Ручки", parent=root)
    other = services.save_product_group(name="Мебель")
    pen = ProductFactory(name="Ручка синяя", article="PEN-1", barcode="4600000000017", group=sub)
    ProductFactory(name="Стол", article="T-1", group=other)
    variant = variant_of(ProductFactory(name="Маркер", group=root), barcode="4600000000999")
    names = lambda **kw: {p.name for p in selectors.product_list(user=staff.manager, **kw)}  # noqa: E731
    assert names(search="синяя") == {"Ручка синяя"}
    assert names(search="pen-1") == {"Ручка синяя"}
    assert names(search="4600000000017") == {"Ручка синяя"}
    assert names(search="4600000000999") == {variant.product.name}
    assert names(group=root) == {"Ручка синяя", "Маркер"}
    assert names(group=sub.pk) == {"Ручка синяя"}
    assert pen.pk in {p.pk for p in selectors.product_list(user=staff.outsider)}
    from django.contrib.auth.models import AnonymousUser

    assert not selectors.product_list(user=AnonymousUser()).exists()


def test_product_api_shows_prices_and_stock_with_constant_queries(staff, django_assert_max_num_queries):
    retail = services.save_price_type(name="Розница", is_default=True)
    wholesale = services.save_price_type(name="Опт", currency="USD")
    main, spare = WarehouseFactory(name="Основной"), WarehouseFactory(name="Запасной")

    def add(n: int) -> Product:
        product = ProductFactory.create(name=f"Товар {n}")
        services.set_price(price_type=retail, product=product, value="100.00")
        services.set_price(price_type=wholesale, product=product, value="1.25")
        services.set_stock(warehouse=main, product=product, quantity="3")
        services.set_stock(warehouse=spare, product=product, quantity="1.5")
        return product

    first = add(0)
    client = api(staff.manager)
    with django_assert_max_num_queries(10) as few:
        body = client.get("/api/v1/products/").json()
    item = body["results"][0]
    assert item["prices"] == [
        {"price_type": wholesale.pk, "variant": None, "value": "1.25", "currency": "USD"},
        {"price_type": retail.pk, "variant": None, "value": "100.00", "currency": "RUB"},
    ]
    assert item["stock"] == [
        {"warehouse": spare.pk, "variant": None, "quantity": "1.500"},
        {"warehouse": main.pk, "variant": None, "quantity": "3.000"},
    ]
    assert Decimal(item["total_stock"]) == Decimal("4.5")
    for n in range(1, 8):
        add(n)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/api/v1/products/").json()["count"] == 8
    assert client.get(f"/api/v1/products/{first.pk}/").json()["name"] == "Товар 0"
    assert client.get("/api/v1/products/?search=Товар 3").json()["count"] == 1
    assert client.get("/api/v1/products/?group=x").status_code == 400


def test_product_api_create_update_and_errors(staff):
    client = api(staff.manager)
    unit = Unit.objects.get(okei="166")
    answer = client.post(
        "/api/v1/products/",
        {"name": "Гвозди", "unit": unit.pk, "article": "NAIL", "vat_rate": "22", "properties": {"Размер": "100 мм"}},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    assert answer.json()["property_values"] == {"Размер": "100 мм"} and answer.json()["total_stock"] == "0.000"
    product_id = answer.json()["id"]
    answer = client.patch(f"/api/v1/products/{product_id}/", {"name": "Гвозди строительные"}, format="json")
    assert answer.status_code == 200 and answer.json()["name"] == "Гвозди строительные"
    assert Product.objects.get(pk=product_id).history.first().history_user == staff.manager
    answer = client.post("/api/v1/products/", {"name": "X", "unit": unit.pk, "vat_rate": "18"}, format="json")
    assert answer.status_code == 400 and "vat_rate" in answer.json()
    assert client.delete(f"/api/v1/products/{product_id}/").status_code == 405


def test_reference_endpoints(staff):
    client = api(staff.manager)
    assert client.get("/api/v1/units/").json()["count"] >= 10
    answer = client.post(
        "/api/v1/price-types/", {"name": "Дилерская", "currency": "RUB", "is_default": True}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    answer = client.post("/api/v1/price-types/", {"name": "Иностранная", "currency": "XYZ"}, format="json")
    assert answer.status_code == 400 and "currency" in answer.json()
    answer = client.post("/api/v1/warehouses/", {"name": "Склад №1"}, format="json")
    assert answer.status_code == 201
    assert (
        client.patch(f"/api/v1/warehouses/{answer.json()['id']}/", {"address": "Москва"}, format="json").json()[
            "address"
        ]
        == "Москва"
    )
    root = client.post("/api/v1/product-groups/", {"name": "Корень"}, format="json").json()
    child = client.post("/api/v1/product-groups/", {"name": "Ветка", "parent": root["id"]}, format="json").json()
    answer = client.patch(f"/api/v1/product-groups/{root['id']}/", {"parent": child["id"]}, format="json")
    assert answer.status_code == 400 and "parent" in answer.json()
    assert APIClient().get("/api/v1/products/").status_code in (401, 403)
