from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from sdelka.sales import services
from sdelka.sales.models import Invoice, InvoiceStatus, Pipeline
from sdelka.sales.tests.conftest import DATE, line
from tests.factories import ContactPersonFactory, CounterpartyFactory, DealFactory

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.force_authenticate(user)
    return client


def invoice_payload(organisation, counterparty, **overrides):
    payload = {
        "organisation": organisation.pk,
        "counterparty": counterparty.pk,
        "date": DATE.isoformat(),
        "lines": [{"description": "Монтаж", "quantity": "2.5", "price": "1200.00", "vat_rate": "22"}],
    }
    payload.update(overrides)
    return payload


def test_invoice_create_with_lines_then_issue_and_cancel(staff, organisation, product, own_counterparty):
    api = client_for(staff.manager)
    payload = invoice_payload(
        organisation,
        own_counterparty,
        lines=[
            {"description": "Монтаж", "quantity": "2.5", "price": "1200.00"},
            {"product": product.pk, "quantity": "1"},
        ],
    )
    answer = api.post("/api/v1/invoices/", payload, format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["number"] == "СД-1" and body["status"] == "draft"
    assert [item["total"] for item in body["lines"]] == ["3000.00", "450.00"]
    assert (body["total"], body["vat_amount"]) == ("3450.00", "622.13")
    invoice_id = body["id"]

    answer = api.patch(
        f"/api/v1/invoices/{invoice_id}/",
        {"lines": [{"description": "Монтаж", "quantity": "1", "price": "99.99"}], "total": "1"},
        format="json",
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["total"] == "99.99"

    assert api.post(f"/api/v1/invoices/{invoice_id}/issue/").json()["status"] == "issued"
    answer = api.patch(
        f"/api/v1/invoices/{invoice_id}/",
        {"lines": [{"description": "x", "quantity": "1", "price": "1"}]},
        format="json",
    )
    assert answer.status_code == 400 and "lines" in answer.json()
    answer = api.post(f"/api/v1/invoices/{invoice_id}/issue/")
    assert answer.status_code == 400 and "status" in answer.json()
    assert api.post(f"/api/v1/invoices/{invoice_id}/cancel/").json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"lines": [{"description": "x", "quantity": "-1", "price": "1.00"}]}, "lines"),
        ({"lines": [{"description": "x", "quantity": "1", "price": "1.005"}]}, "lines"),
        ({"currency": "XYZ"}, "currency"),
        ({"lines": []}, "lines"),
    ],
)
def test_bad_invoice_input_is_refused_naming_the_field(staff, organisation, own_counterparty, change, field):
    answer = client_for(staff.manager).post(
        "/api/v1/invoices/", invoice_payload(organisation, own_counterparty, **change), format="json"
    )
    assert answer.status_code == 400
    assert field in answer.json()
    assert not Invoice.objects.exists()


def test_line_errors_name_the_line_field(staff, organisation, own_counterparty):
    answer = client_for(staff.manager).post(
        "/api/v1/invoices/",
        invoice_payload(
            organisation, own_counterparty, lines=[{"description": "x", "quantity": "1", "price": "1.005"}]
        ),
        format="json",
    )
    errors = answer.json()["lines"]
    first = errors[0] if isinstance(errors, list) else errors["0"]
    assert "price" in first
    answer = client_for(staff.manager).post(
        "/api/v1/invoices/",
        invoice_payload(
            organisation, own_counterparty, lines=[{"description": "x", "quantity": "1", "price": "5", "discount": "6"}]
        ),
        format="json",
    )
    assert answer.status_code == 400 and "lines.0.discount" in answer.json()


def test_cross_scope_references_answer_does_not_exist(staff, organisation, own_counterparty, foreign_counterparty):
    api = client_for(staff.manager)
    answer = api.post("/api/v1/invoices/", invoice_payload(organisation, foreign_counterparty), format="json")
    assert answer.status_code == 400
    assert "does not exist" in answer.json()["counterparty"][0]
    foreign_deal = DealFactory(counterparty=foreign_counterparty)
    foreign_contact = ContactPersonFactory(counterparty=foreign_counterparty)
    answer = api.post(
        "/api/v1/invoices/",
        invoice_payload(organisation, own_counterparty, deal=foreign_deal.pk, contact=foreign_contact.pk),
        format="json",
    )
    assert answer.status_code == 400 and {"deal", "contact"} <= set(answer.json())
    assert not Invoice.objects.exists()


def test_objects_outside_the_scope_answer_404(staff, organisation, own_counterparty, foreign_counterparty):
    theirs = services.create_invoice(
        user=staff.outsider, organisation=organisation, counterparty=foreign_counterparty, date=DATE, lines=[line()]
    )
    deal = DealFactory(counterparty=foreign_counterparty)
    payment = services.register_payment(
        user=staff.outsider, organisation=organisation, date=DATE, amount="5", counterparty=foreign_counterparty
    )
    api = client_for(staff.manager)
    for url in (f"/api/v1/invoices/{theirs.pk}/", f"/api/v1/deals/{deal.pk}/", f"/api/v1/payments/{payment.pk}/"):
        assert api.get(url).status_code == 404
        assert client_for(staff.director).get(url).status_code == 200
    assert api.post(f"/api/v1/invoices/{theirs.pk}/issue/").status_code == 404
    assert api.post(f"/api/v1/deals/{deal.pk}/move/", {"stage": deal.stage_id}).status_code == 404
    assert api.get("/api/v1/invoices/").json()["count"] == 0
    assert client_for(staff.outsider).get("/api/v1/invoices/").json()["count"] == 1


def test_payment_allocate_action(staff, organisation, own_counterparty, foreign_counterparty):
    invoice = services.create_invoice(
        user=staff.manager, organisation=organisation, counterparty=own_counterparty, date=DATE, lines=[line()]
    )
    services.issue_invoice(user=staff.manager, invoice=invoice)
    api = client_for(staff.accountant)
    answer = api.post(
        "/api/v1/payments/",
        {"organisation": organisation.pk, "date": DATE.isoformat(), "amount": "1500.00", "purpose": "Оплата"},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    payment_id = answer.json()["id"]
    answer = api.post(
        f"/api/v1/payments/{payment_id}/allocate/", {"invoice": invoice.pk, "amount": "400.00"}, format="json"
    )
    assert answer.status_code == 200, answer.json()
    assert answer.json()["allocated_amount"] == "400.00" and answer.json()["counterparty"] == own_counterparty.pk
    assert answer.json()["allocations"][0]["invoice_number"] == invoice.number
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTLY_PAID
    answer = api.post(
        f"/api/v1/payments/{payment_id}/allocate/", {"invoice": invoice.pk, "amount": "600.01"}, format="json"
    )
    assert answer.status_code == 400 and "amount" in answer.json()
    answer = api.post(
        f"/api/v1/payments/{payment_id}/allocate/", {"invoice": invoice.pk, "amount": "600.00"}, format="json"
    )
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and answer.json()["unallocated_amount"] == "500.00"
    # A manager allocating to an invoice he cannot see gets "does not exist".
    theirs = services.create_invoice(
        user=staff.outsider, organisation=organisation, counterparty=foreign_counterparty, date=DATE, lines=[line()]
    )
    mine = services.register_payment(
        user=staff.manager, organisation=organisation, date=DATE, amount="5", counterparty=own_counterparty
    )
    answer = client_for(staff.manager).post(
        f"/api/v1/payments/{mine.pk}/allocate/", {"invoice": theirs.pk, "amount": "1"}, format="json"
    )
    assert answer.status_code == 400 and "does not exist" in answer.json()["invoice"][0]


def test_deals_create_move_and_filter(staff, own_counterparty):
    api = client_for(staff.manager)
    pipeline = Pipeline.objects.get(is_default=True)
    answer = api.post(
        "/api/v1/deals/", {"title": "Офис", "counterparty": own_counterparty.pk, "amount": "100.10"}, format="json"
    )
    assert answer.status_code == 201, answer.json()
    deal_id = answer.json()["id"]
    assert answer.json()["stage"] == pipeline.stages.order_by("order").first().pk
    lost = pipeline.stages.get(kind="lost")
    answer = api.post(f"/api/v1/deals/{deal_id}/move/", {"stage": lost.pk}, format="json")
    assert answer.status_code == 400 and "lost_reason" in answer.json()
    answer = api.post(
        f"/api/v1/deals/{deal_id}/move/", {"stage": lost.pk, "lost_reason": "Ушли к конкуренту"}, format="json"
    )
    assert answer.status_code == 200 and answer.json()["closed_at"]
    answer = api.post(
        "/api/v1/deals/", {"title": "X", "counterparty": own_counterparty.pk, "amount": "-1"}, format="json"
    )
    assert answer.status_code == 400 and "amount" in answer.json()
    assert api.get(f"/api/v1/deals/?stage={lost.pk}").json()["count"] == 1
    assert api.get(f"/api/v1/deals/?stage={lost.pk + 100}").json()["count"] == 0
    assert api.get("/api/v1/deals/?is_closed=false").json()["count"] == 0
    assert api.get(f"/api/v1/deals/?owner={staff.manager.pk}&ordering=amount").json()["count"] == 1


def test_invoice_filters_and_search(staff, organisation, own_counterparty):
    second = CounterpartyFactory(owner=staff.manager, name="ЗАО «Вектор»", inn="7707083893", kpp="773601001")
    for counterparty in (own_counterparty, second, second):
        services.create_invoice(
            user=staff.manager, organisation=organisation, counterparty=counterparty, date=DATE, lines=[line()]
        )
    api = client_for(staff.manager)
    assert api.get("/api/v1/invoices/?search=7707083893").json()["count"] == 2
    assert api.get("/api/v1/invoices/?search=Вектор").json()["count"] == 2
    assert api.get("/api/v1/invoices/?search=СД-1").json()["count"] == 1
    assert api.get(f"/api/v1/invoices/?counterparty={own_counterparty.pk}&status=draft").json()["count"] == 1
    assert api.get("/api/v1/invoices/?date_from=2026-03-11").json()["count"] == 0
    assert api.get("/api/v1/invoices/?date_to=2026-03-10&status=paid").json()["count"] == 0
    numbers = [item["number"] for item in api.get("/api/v1/invoices/?ordering=date").json()["results"]]
    assert numbers == ["СД-3", "СД-2", "СД-1"]


@pytest.mark.parametrize("url", ["/api/v1/invoices/", "/api/v1/deals/", "/api/v1/payments/", "/api/v1/organisations/"])
def test_list_query_count_does_not_grow_with_rows(
    staff, organisation, own_counterparty, product, url, django_assert_max_num_queries
):
    def add_rows() -> None:
        counterparty = CounterpartyFactory(owner=staff.manager)
        invoice = services.create_invoice(
            user=staff.manager,
            organisation=organisation,
            counterparty=counterparty,
            date=DATE,
            lines=[line(), {"product": product, "quantity": "1"}],
        )
        services.issue_invoice(user=staff.manager, invoice=invoice)
        DealFactory(counterparty=counterparty)
        payment = services.register_payment(
            user=staff.manager, organisation=organisation, date=DATE, amount="10", counterparty=counterparty
        )
        services.allocate_payment(user=staff.manager, payment=payment, invoice=invoice, amount="10")

    api = client_for(staff.head)
    add_rows()
    with django_assert_max_num_queries(12) as few:
        assert api.get(url).status_code == 200
    for _ in range(5):
        add_rows()
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert api.get(url).status_code == 200


def test_organisations_are_read_only(staff, organisation):
    api = client_for(staff.manager)
    body = api.get("/api/v1/organisations/").json()
    assert body["count"] == 1 and body["results"][0]["bank_accounts"][0]["bik"] == "044525225"
    assert api.post("/api/v1/organisations/", {"name": "x"}).status_code == 405
    assert APIClient().get("/api/v1/organisations/").status_code in (401, 403)


def test_invoice_amounts_are_read_only(staff, organisation, own_counterparty):
    answer = client_for(staff.manager).post(
        "/api/v1/invoices/", invoice_payload(organisation, own_counterparty, total="1.00", status="paid"), format="json"
    )
    assert answer.status_code == 201
    assert answer.json()["total"] == "3000.00" and answer.json()["status"] == "draft"
    assert Invoice.objects.get().total == Decimal("3000.00")
