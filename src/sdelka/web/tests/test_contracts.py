"""Contracts in the workspace: the card's panel and form, the edit page, the invoice editor's picker."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from sdelka.sales import services as sales_services
from sdelka.sales.models import Contract, ContractKind, Invoice
from tests.factories import CounterpartyFactory, OrganisationFactory

from .test_workspace import line_post
from .world import Shop, build_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(db: None) -> Shop:
    return build_shop()


def sign(user, counterparty, **fields):
    fields.setdefault("date", datetime.date(2026, 2, 1))
    return sales_services.create_contract(user=user, counterparty=counterparty, **fields)


def test_card_lists_contracts_and_adds_one_keeping_what_was_typed_on_error(client, staff):
    client.force_login(staff.manager)
    own = CounterpartyFactory(owner=staff.manager)
    sign(staff.manager, own, number="7")
    card = client.get(reverse("web:counterparty-detail", args=[own.pk]))
    assert "Договор № 7 от 01.02.2026" in card.content.decode()

    url = reverse("web:contract-add", args=[own.pk])
    bad = {"kind": "sale", "number": "8", "date": "2026-03-01", "valid_until": "2026-02-01", "currency": "RUB"}
    response = client.post(url, bad, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and response.context["contract_form"].errors["valid_until"]
    assert 'value="8"' in response.content.decode()
    assert Contract.objects.count() == 1

    response = client.post(url, {**bad, "valid_until": "2026-12-31"}, HTTP_HX_REQUEST="true")
    assert not response.context["contract_form"].errors
    assert "Договор № 8 от 01.03.2026" in response.content.decode()
    assert client.post(url, {**bad, "valid_until": ""}).status_code == 302  # without htmx: back to the card


def test_contract_edit_page_saves_and_hides_other_managers_contracts(client, staff):
    client.force_login(staff.manager)
    own, foreign = CounterpartyFactory(owner=staff.manager), CounterpartyFactory(owner=staff.outsider)
    mine, theirs = sign(staff.manager, own, number="1"), sign(staff.director, foreign, number="2")
    url = reverse("web:contract-edit", args=[mine.pk])
    assert client.get(url).status_code == 200
    response = client.post(url, {"kind": "sale", "number": "1", "date": "2026-02-01", "currency": "RUB"})
    assert response.status_code == 302
    mine.refresh_from_db()
    assert mine.is_active is False  # the box was left unticked: the contract is closed
    assert client.get(reverse("web:contract-edit", args=[theirs.pk])).status_code == 404
    assert client.post(reverse("web:contract-add", args=[foreign.pk]), {"number": "3"}).status_code == 404


def test_invoice_editor_offers_the_counterpartys_sale_contracts_and_saves_the_choice(client, staff, shop):
    client.force_login(staff.manager)
    own = CounterpartyFactory(owner=staff.manager)
    sale = sign(staff.manager, own, number="10", organisation=shop.organisation)
    sign(staff.manager, own, number="11", kind=ContractKind.PURCHASE)
    sign(staff.manager, own, number="12", organisation=OrganisationFactory(name="Ярус"))  # sorts after ours
    sign(staff.manager, own, number="13", is_active=False)
    sign(staff.manager, CounterpartyFactory(owner=staff.manager), number="14")

    options = client.get(
        reverse("web:invoice-contract-options"), {"counterparty": own.pk, "organisation": shop.organisation.pk}
    )
    assert [c.pk for c in options.context["contracts"]] == [sale.pk]
    assert options.context["selected"] == sale.pk  # the only one offered is chosen, as 1C fills the main contract

    new = client.get(reverse("web:invoice-create"), {"counterparty": own.pk})
    assert f'<option value="{sale.pk}" selected>' in new.content.decode()

    lines = [{"key": "a", "description": "Услуга", "quantity": "1", "price": "100", "vat_rate": "22"}]
    response = client.post(reverse("web:invoice-create"), line_post(shop, own, lines, contract=str(sale.pk)))
    assert response.status_code == 302
    saved = Invoice.objects.get()
    assert saved.contract == sale
    detail = client.get(reverse("web:invoice-detail", args=[saved.pk]))
    assert "Договор № 10 от 01.02.2026" in detail.content.decode()


def test_invoice_editor_refuses_a_purchase_contract_next_to_the_field(client, staff, shop):
    client.force_login(staff.manager)
    own = CounterpartyFactory(owner=staff.manager)
    purchase = sign(staff.manager, own, number="11", kind=ContractKind.PURCHASE)
    lines = [{"key": "a", "description": "Услуга", "quantity": "1", "price": "100", "vat_rate": "22"}]
    response = client.post(reverse("web:invoice-create"), line_post(shop, own, lines, contract=str(purchase.pk)))
    assert response.status_code == 200 and response.context["form"].errors["contract"]
    assert not Invoice.objects.exists()
