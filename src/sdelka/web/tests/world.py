"""A small shop the workspace tests (and the browser tests) work in: our organisation with a bank account,
a default price type, two warehouses and three products with prices and stock."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sdelka.catalog.models import PriceType, Product, ProductGroup, Warehouse
from sdelka.catalog.services import save_price_type, set_price, set_stock
from sdelka.sales.models import Organisation, OrganisationBankAccount
from tests.factories import (
    SBER_BIK,
    SBER_CORR,
    OrganisationFactory,
    ProductFactory,
    ProductGroupFactory,
    WarehouseFactory,
    make_account,
)

PRODUCTS = (
    ("БУМ-А4", "Бумага А4, 500 листов", Decimal("450.00")),
    ("РУЧ-СИН", "Ручка шариковая синяя", Decimal("35.50")),
    ("СТЕП-24", "Степлер № 24", Decimal("612.00")),
)


@dataclass
class Shop:
    organisation: Organisation
    retail: PriceType
    wholesale: PriceType
    main_store: Warehouse
    far_store: Warehouse
    group: ProductGroup
    products: list[Product]


def build_shop() -> Shop:
    import random

    organisation = OrganisationFactory.create(name="ООО «Сделка»", invoice_prefix="СД-")
    OrganisationBankAccount.objects.create(
        organisation=organisation,
        bik=SBER_BIK,
        bank_name="ПАО Сбербанк",
        correspondent_account=SBER_CORR,
        number=make_account(random.Random(7), SBER_BIK),
        is_main=True,
    )
    retail = save_price_type(name="Розничная", is_default=True)
    wholesale = save_price_type(name="Оптовая")
    main_store = WarehouseFactory.create(name="Основной склад")
    far_store = WarehouseFactory.create(name="Склад в Казани")
    parent = ProductGroupFactory.create(name="Канцтовары")
    group = ProductGroupFactory.create(name="Бумага", parent=parent)
    products = []
    for index, (article, name, price) in enumerate(PRODUCTS):
        product = ProductFactory.create(
            article=article, name=name, vat_rate="22", group=group if index == 0 else parent
        )
        set_price(price_type=retail, product=product, value=price)
        set_price(price_type=wholesale, product=product, value=(price * Decimal("0.9")).quantize(Decimal("0.01")))
        set_stock(warehouse=main_store, product=product, quantity=Decimal(10 * (index + 1)))
        set_stock(warehouse=far_store, product=product, quantity=Decimal(index + 2))
        products.append(product)
    return Shop(organisation, retail, wholesale, main_store, far_store, group, products)
