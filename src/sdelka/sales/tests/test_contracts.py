"""Contracts with counterparties: the service rules, the invoice that names one, the printed basis, the API
and the admin, each through `visible_to`."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import ValidationError

from sdelka.sales import services
from sdelka.sales.models import Contract, ContractKind, InvoiceStatus
from sdelka.sales.printing import invoice_pdf
from sdelka.sales.tests.conftest import DATE, line, staff_client
from sdelka.sales.tests.test_api import client_for
from tests.factories import CounterpartyFactory, OrganisationFactory

pytestmark = pytest.mark.django_db


def contract(staff, counterparty, **fields):
    fields.setdefault("number", "7")
    fields.setdefault("date", datetime.date(2026, 2, 1))
    return services.create_contract(user=staff.manager, counterparty=counterparty, **fields)


def invoice(staff, organisation, counterparty, **fields):
    return services.create_invoice(
        user=staff.manager, organisation=organisation, counterparty=counterparty, lines=[line()], date=DATE, **fields
    )


def test_a_contract_is_named_after_its_number_and_date_unless_named(staff, own_counterparty):
    plain = contract(staff, own_counterparty)
    named = contract(staff, own_counterparty, number="", name="Рамочный договор поставки")
    assert plain.name == "Договор № 7 от 01.02.2026" and plain.kind == ContractKind.SALE
    assert plain.currency_id == "RUB" and plain.history.first().history_user == staff.manager
    assert named.name == "Рамочный договор поставки" and named.basis == "Рамочный договор поставки"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"number": "", "name": "  "}, "name"),
        ({"valid_until": datetime.date(2026, 1, 1)}, "valid_until"),
        ({"kind": "lease"}, "kind"),
        ({"currency": "XXX"}, "currency"),
    ],
)
def test_a_bad_contract_is_refused_on_the_field_at_fault(staff, own_counterparty, fields, field):
    with pytest.raises(ValidationError) as caught:
        contract(staff, own_counterparty, **fields)
    assert field in caught.value.message_dict
    assert not Contract.objects.exists()


def test_a_contract_with_someone_elses_counterparty_reads_as_missing(staff, foreign_counterparty):
    with pytest.raises(ValidationError) as caught:
        contract(staff, foreign_counterparty)
    assert "counterparty" in caught.value.message_dict
    assert Contract.objects.visible_to(staff.manager).count() == 0


def test_an_invoice_names_its_counterpartys_sale_contract_and_prints_it_as_the_basis(
    staff, organisation, own_counterparty
):
    signed = contract(staff, own_counterparty, organisation=organisation)
    issued = invoice(staff, organisation, own_counterparty, contract=signed)
    assert issued.contract == signed
    assert invoice_pdf.invoice_document(issued).basis == "Договор № 7 от 01.02.2026"
    services.update_invoice(user=staff.manager, invoice=issued, basis="Заказ № 15")
    issued.refresh_from_db()
    assert invoice_pdf.invoice_document(issued).basis == "Заказ № 15"


def test_an_invoice_refuses_a_contract_that_does_not_fit(staff, organisation, own_counterparty):
    other_counterparty = CounterpartyFactory(owner=staff.manager)
    other_organisation = OrganisationFactory()
    cases = {
        "another counterparty": contract(staff, other_counterparty),
        "a supplier's contract": contract(staff, own_counterparty, kind=ContractKind.PURCHASE),
        "another organisation": contract(staff, own_counterparty, organisation=other_organisation),
        "closed": contract(staff, own_counterparty, is_active=False),
    }
    for case, unfit in cases.items():
        with pytest.raises(ValidationError) as caught:
            invoice(staff, organisation, own_counterparty, contract=unfit)
        assert "contract" in caught.value.message_dict, case


def test_an_invoice_keeps_its_contract_after_the_contract_is_closed(staff, organisation, own_counterparty):
    signed = contract(staff, own_counterparty)
    draft = invoice(staff, organisation, own_counterparty, contract=signed)
    services.update_contract(user=staff.manager, contract=signed, is_active=False)
    services.update_invoice(user=staff.manager, invoice=draft, comment="Срочно")
    services.issue_invoice(user=staff.manager, invoice=draft)
    draft.refresh_from_db()
    assert draft.contract == signed and draft.status == InvoiceStatus.ISSUED


def test_an_issued_invoice_changes_its_contract_only_to_a_fitting_one(staff, organisation, own_counterparty):
    """The contract is printed as the basis, like the basis itself it may change after the invoice is issued."""
    first, second = contract(staff, own_counterparty), contract(staff, own_counterparty, number="8")
    foreign = contract(staff, CounterpartyFactory(owner=staff.manager), number="9")
    issued = invoice(staff, organisation, own_counterparty, contract=first)
    services.issue_invoice(user=staff.manager, invoice=issued)
    services.update_invoice(user=staff.manager, invoice=issued, contract=second)
    issued.refresh_from_db()
    assert issued.contract == second and issued.status == InvoiceStatus.ISSUED
    with pytest.raises(ValidationError) as caught:
        services.update_invoice(user=staff.manager, invoice=issued, contract=foreign)
    assert "contract" in caught.value.message_dict


def test_api_lists_only_visible_contracts_and_creates_through_the_service(
    staff, own_counterparty, foreign_counterparty
):
    contract(staff, own_counterparty)
    services.create_contract(user=staff.director, counterparty=foreign_counterparty, number="99")
    api = client_for(staff.manager)
    listed = api.get("/api/v1/contracts/").json()
    assert [row["name"] for row in listed["results"]] == ["Договор № 7 от 01.02.2026"]
    created = api.post(
        "/api/v1/contracts/",
        {"counterparty": own_counterparty.pk, "number": "12", "date": "2026-03-01", "valid_until": "2025-01-01"},
        format="json",
    )
    assert created.status_code == 400 and "valid_until" in created.json()
    created = api.post(
        "/api/v1/contracts/", {"counterparty": own_counterparty.pk, "number": "12", "date": "2026-03-01"}, format="json"
    )
    assert created.status_code == 201 and created.json()["name"] == "Договор № 12 от 01.03.2026"
    refused = api.post("/api/v1/contracts/", {"counterparty": foreign_counterparty.pk, "number": "1"}, format="json")
    assert refused.status_code == 400 and "counterparty" in refused.json()


def test_admin_saves_a_contract_through_the_service(staff, own_counterparty):
    admin = staff_client(staff.admin)
    response = admin.post(
        "/admin/sales/contract/add/",
        {"counterparty": own_counterparty.pk, "kind": "sale", "number": "5", "date": "2026-01-15", "currency": "RUB",
         "name": "", "is_active": "on"},
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Contract.objects.get().name == "Договор № 5 от 15.01.2026"
