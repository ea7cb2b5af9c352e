from __future__ import annotations

import pytest
from django.urls import reverse

from sdelka.sales import services
from sdelka.sales.models import Invoice, InvoiceStatus, Organisation
from sdelka.sales.tests.conftest import DATE, line, staff_client
from tests.factories import DealFactory

pytestmark = pytest.mark.django_db

ROLES = ["manager", "head", "director", "accountant", "admin"]


@pytest.fixture
def invoices(staff, organisation, own_counterparty, foreign_counterparty):
    mine = services.create_invoice(
        user=staff.manager, organisation=organisation, counterparty=own_counterparty, date=DATE, lines=[line()]
    )
    theirs = services.create_invoice(
        user=staff.outsider, organisation=organisation, counterparty=foreign_counterparty, date=DATE, lines=[line()]
    )
    return mine, theirs


@pytest.mark.parametrize("role", ROLES)
def test_changelists_per_role(staff, role, invoices, own_counterparty, foreign_counterparty, organisation):
    DealFactory(counterparty=own_counterparty)
    DealFactory(counterparty=foreign_counterparty)
    for counterparty in (own_counterparty, foreign_counterparty):
        services.register_payment(
            user=staff.admin, organisation=organisation, date=DATE, amount="1", counterparty=counterparty
        )
    services.register_payment(user=staff.admin, organisation=organisation, date=DATE, amount="1")
    client = staff_client(getattr(staff, role))
    expected_rows = {"manager": 1, "head": 1, "director": 2, "accountant": 2, "admin": 2}[role]
    unknown_payer = 1 if role in {"director", "accountant", "admin"} else 0
    for model, rows in (
        ("deal", expected_rows),
        ("invoice", expected_rows),
        ("payment", expected_rows + unknown_payer),
    ):
        answer = client.get(reverse(f"admin:sales_{model}_changelist"))
        assert answer.status_code == 200
        assert answer.context["cl"].result_count == rows, model
    for model in ("organisation", "pipeline"):
        assert client.get(reverse(f"admin:sales_{model}_changelist")).status_code == 200
    answer = client.get(reverse("admin:sales_invoice_changelist"), {"q": "Чужая"})
    assert answer.context["cl"].result_count == (0 if role in {"manager", "head"} else 1)


def test_manager_cannot_open_a_foreign_invoice(staff, invoices):
    client = staff_client(staff.manager)
    mine, theirs = invoices
    assert client.get(reverse("admin:sales_invoice_change", args=[mine.pk])).status_code == 200
    answer = client.get(reverse("admin:sales_invoice_change", args=[theirs.pk]))
    assert answer.status_code == 302  # admin's "doesn't exist" redirect


def invoice_form(organisation, counterparty, lines):
    data = {
        "organisation": organisation.pk,
        "date": "2026-03-10",
        "counterparty": counterparty.pk,
        "owner": "",
        "currency": "RUB",
        "vat_mode": "included",
        "basis": "",
        "comment": "",
        "lines-TOTAL_FORMS": str(len(lines)),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    for index, item in enumerate(lines):
        for key, value in item.items():
            data[f"lines-{index}-{key}"] = value
    return data


def test_invoice_added_in_admin_goes_through_the_service(staff, organisation, own_counterparty):
    client = staff_client(staff.manager)
    data = invoice_form(
        organisation,
        own_counterparty,
        [{"description": "Доставка", "quantity": "2", "price": "150.00", "discount": "0", "vat_rate": "22"}],
    )
    data["owner"] = staff.manager.pk
    answer = client.post(reverse("admin:sales_invoice_add"), data)
    assert answer.status_code == 302, answer.context and answer.context["adminform"].form.errors
    invoice = Invoice.objects.get()
    assert invoice.number == "СД-1" and str(invoice.total) == "300.00" and invoice.lines.count() == 1
    assert invoice.history.first().history_user == staff.manager


def test_bad_line_in_admin_is_shown_and_nothing_saved(staff, organisation, own_counterparty, foreign_counterparty):
    client = staff_client(staff.manager)
    data = invoice_form(
        organisation,
        own_counterparty,
        [{"description": "Доставка", "quantity": "2", "price": "150.00", "discount": "301", "vat_rate": "22"}],
    )
    data["owner"] = staff.manager.pk
    answer = client.post(reverse("admin:sales_invoice_add"), data)
    assert answer.status_code == 200
    assert "The discount cannot exceed the line sum." in answer.content.decode()
    data = invoice_form(
        organisation,
        foreign_counterparty,
        [{"description": "x", "quantity": "1", "price": "1", "discount": "0", "vat_rate": "22"}],
    )
    data["owner"] = staff.manager.pk
    answer = client.post(reverse("admin:sales_invoice_add"), data)
    assert answer.status_code == 200 and "counterparty" in answer.context["adminform"].form.errors
    assert not Invoice.objects.exists()


def test_issued_invoice_lines_are_read_only_in_admin(staff, invoices):
    mine, _ = invoices
    services.issue_invoice(user=staff.manager, invoice=mine)
    client = staff_client(staff.manager)
    answer = client.get(reverse("admin:sales_invoice_change", args=[mine.pk]))
    assert answer.status_code == 200
    assert 'name="lines-0-quantity"' not in answer.content.decode()
    answer = client.post(
        reverse("admin:sales_invoice_changelist"), {"action": "cancel_selected", "_selected_action": [mine.pk]}
    )
    mine.refresh_from_db()
    assert mine.status == InvoiceStatus.CANCELLED


def test_organisation_admin_checks_requisites(staff):
    client = staff_client(staff.admin)
    data = {
        "name": "ООО «Тест»",
        "full_name": "",
        "inn": "7707083894",
        "kpp": "773601001",
        "ogrn": "",
        "okpo": "",
        "legal_address": "",
        "postal_address": "",
        "phone": "",
        "email": "",
        "director_title": "Директор",
        "director_name": "",
        "accountant_name": "",
        "vat_mode": "included",
        "invoice_prefix": "",
        "is_active": "on",
        "bank_accounts-TOTAL_FORMS": "1",
        "bank_accounts-INITIAL_FORMS": "0",
        "bank_accounts-MIN_NUM_FORMS": "0",
        "bank_accounts-MAX_NUM_FORMS": "1000",
        "bank_accounts-0-bik": "044525225",
        "bank_accounts-0-bank_name": "Сбер",
        "bank_accounts-0-correspondent_account": "30101810400000000225",
        "bank_accounts-0-number": "40702810138250123018",
        "bank_accounts-0-currency": "RUB",
    }
    answer = client.post(reverse("admin:sales_organisation_add"), data)
    assert answer.status_code == 200
    assert "inn" in answer.context["adminform"].form.errors
    assert "number" in answer.context["inline_admin_formsets"][0].formset.forms[0].errors
    data["inn"] = "7707083893"
    data["bank_accounts-0-number"] = "40702810138250123017"
    answer = client.post(reverse("admin:sales_organisation_add"), data)
    assert answer.status_code == 302
    organisation = Organisation.objects.get()
    assert organisation.bank_accounts.get().number == "40702810138250123017"


def test_a_rule_only_the_service_knows_rolls_the_admin_save_back(staff, own_counterparty):
    from sdelka.sales.models import Deal, Pipeline

    deal = DealFactory(counterparty=own_counterparty, title="Поставка")
    lost = Pipeline.objects.get(is_default=True).stages.get(kind="lost")
    client = staff_client(staff.manager)
    data = {
        "title": "Поставка (изменена)",
        "pipeline": deal.pipeline_id,
        "stage": lost.pk,
        "counterparty": own_counterparty.pk,
        "contact": "",
        "owner": staff.manager.pk,
        "amount": "10.00",
        "currency": "RUB",
        "expected_close_date": "",
        "probability": "",
        "source": "",
        "lost_reason": "",
    }
    answer = client.post(reverse("admin:sales_deal_change", args=[deal.pk]), data, follow=True)
    assert "lost reason: Say why the deal was lost." in [str(m) for m in answer.context["messages"]]
    deal.refresh_from_db()
    assert deal.title == "Поставка" and deal.stage != lost  # nothing partial saved
    data["lost_reason"] = "Дорого"
    answer = client.post(reverse("admin:sales_deal_change", args=[deal.pk]), data)
    assert answer.status_code == 302
    deal.refresh_from_db()
    assert deal.stage == lost and deal.closed_at and deal.history.first().history_user == staff.manager
    assert Deal.objects.count() == 1
