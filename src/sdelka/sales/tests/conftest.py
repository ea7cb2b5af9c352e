"""Fixtures of the sales tests: an organisation with a bank account, a default price type, a product
with a price, and counterparties owned by the staff of the shared `staff` fixture."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from sdelka.catalog.models import PriceType, Product
from sdelka.catalog.services import save_price_type, set_price
from sdelka.sales.models import Organisation, OrganisationBankAccount
from tests.factories import SBER_BIK, SBER_CORR, CounterpartyFactory, OrganisationFactory, ProductFactory

DATE = datetime.date(2026, 3, 10)
_ACCOUNTS = itertools.count(1)


def valid_account(bik: str = SBER_BIK, balance: str = "40702") -> str:
    """A fresh 20-digit account whose control key matches the БИК (weights 7,1,3 over 23 digits)."""
    tail = f"{next(_ACCOUNTS):011d}"
    for key in "0123456789":
        account = f"{balance}810{key}{tail}"
        if sum(int(c) * w for c, w in zip(bik[6:9] + account, [7, 1, 3] * 8, strict=False)) % 10 == 0:
            return account
    raise AssertionError("unreachable: the key digit has weight 3")


def add_bank_account(organisation: Organisation, **kwargs: Any) -> OrganisationBankAccount:
    data: dict[str, Any] = {
        "bik": SBER_BIK,
        "bank_name": "ПАО Сбербанк",
        "correspondent_account": SBER_CORR,
        "number": valid_account(),
        "is_main": True,
    }
    data.update(kwargs)
    return OrganisationBankAccount.objects.create(organisation=organisation, **data)


@pytest.fixture
def organisation(db: None) -> Organisation:
    organisation = OrganisationFactory.create(invoice_prefix="СД-")
    add_bank_account(organisation)
    return organisation


@pytest.fixture
def price_type(db: None) -> PriceType:
    return save_price_type(name="Розничная", is_default=True)


@pytest.fixture
def product(price_type: PriceType) -> Product:
    product = ProductFactory.create(name="Бумага А4", full_name="Бумага офисная А4, 500 листов", vat_rate="22")
    set_price(price_type=price_type, product=product, value="450.00")
    return product


@pytest.fixture
def own_counterparty(staff: Any) -> Any:
    return CounterpartyFactory(owner=staff.manager, name="ООО «Своя»")


@pytest.fixture
def foreign_counterparty(staff: Any) -> Any:
    return CounterpartyFactory(owner=staff.outsider, name="ООО «Чужая»")


def line(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"description": "Услуги по договору", "quantity": Decimal("1"), "price": Decimal("1000.00")}
    data.update(overrides)
    return data


def staff_client(user: Any) -> Client:
    """A logged-in admin client; non-superusers become staff with every sales and catalog permission."""
    if not user.is_superuser:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=["sales", "catalog"]))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client
