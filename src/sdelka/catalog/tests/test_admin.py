from __future__ import annotations

import pytest
from django.urls import reverse

from sdelka.catalog.services import save_product_group
from sdelka.sales.tests.conftest import staff_client
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_catalog_admin(staff):
    client = staff_client(staff.manager)
    ProductFactory(name="Скрепки", article="CLIP-1")
    ProductFactory(name="Кнопки", article="PIN-1")
    answer = client.get(reverse("admin:catalog_product_changelist"), {"q": "CLIP"})
    assert answer.status_code == 200 and answer.context["cl"].result_count == 1
    for model in ("productgroup", "unit", "pricetype", "warehouse", "property"):
        assert client.get(reverse(f"admin:catalog_{model}_changelist")).status_code == 200
    root = save_product_group(name="Корень")
    child = save_product_group(name="Ветка", parent=root)
    answer = client.post(
        reverse("admin:catalog_productgroup_change", args=[root.pk]),
        {"name": "Корень", "parent": child.pk, "is_active": "on"},
    )
    assert answer.status_code == 200 and answer.context["adminform"].form.errors


def test_product_admin_saves_prices_through_the_service(staff):
    from sdelka.catalog.models import Product, Unit
    from sdelka.catalog.services import save_price_type

    retail = save_price_type(name="Розница", is_default=True)
    client = staff_client(staff.admin)
    data = {
        "name": "Степлер",
        "full_name": "",
        "article": "ST-1",
        "barcode": "",
        "description": "",
        "group": "",
        "unit": Unit.objects.get(okei="796").pk,
        "vat_rate": "22",
        "kind": "goods",
        "manufacturer": "",
        "is_active": "on",
        "prices-TOTAL_FORMS": "1",
        "prices-INITIAL_FORMS": "0",
        "prices-MIN_NUM_FORMS": "0",
        "prices-MAX_NUM_FORMS": "1000",
        "prices-0-price_type": retail.pk,
        "prices-0-value": "199.90",
        "stock-TOTAL_FORMS": "0",
        "stock-INITIAL_FORMS": "0",
        "stock-MIN_NUM_FORMS": "0",
        "stock-MAX_NUM_FORMS": "1000",
        "variants-TOTAL_FORMS": "0",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
        "property_values-TOTAL_FORMS": "0",
        "property_values-INITIAL_FORMS": "0",
        "property_values-MIN_NUM_FORMS": "0",
        "property_values-MAX_NUM_FORMS": "1000",
    }
    answer = client.post(reverse("admin:catalog_product_add"), data)
    assert answer.status_code == 302, answer.context and answer.context["adminform"].form.errors
    product = Product.objects.get()
    assert str(product.prices.get().value) == "199.90"
    assert product.history.get().history_user == staff.admin
    data["prices-0-value"] = "1.999"
    answer = client.post(reverse("admin:catalog_product_add"), data)
    assert answer.status_code == 200 and Product.objects.count() == 1
