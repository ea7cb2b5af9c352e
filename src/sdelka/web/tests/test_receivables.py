"""The receivables page: by counterparty and by manager, aging per currency, only what the user sees."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from sdelka.sales import services as sales_services
from sdelka.sales.models import Invoice
from tests.factories import CounterpartyFactory

from .world import Shop, build_shop


@pytest.fixture
def shop(db) -> Shop:
    return build_shop()


def issued(user, shop, counterparty, overdue_days: int | None = None) -> Invoice:
    invoice = sales_services.create_invoice(
        user=user, organisation=shop.organisation, counterparty=counterparty,
        lines=[{"product": shop.products[0].pk, "quantity": "2"}],
    )  # fmt: skip
    invoice = sales_services.issue_invoice(user=user, invoice=invoice)
    if overdue_days is not None:
        Invoice.objects.filter(pk=invoice.pk).update(due_date=timezone.localdate() - timedelta(days=overdue_days))
        invoice.refresh_from_db()
    return invoice


def rows(client, **params):
    return client.get(reverse("web:receivables"), params).context["page"].items


def test_by_counterparty_puts_each_debt_in_its_age_bucket(client, staff, shop, django_assert_max_num_queries):
    late = CounterpartyFactory(owner=staff.manager, name="ООО «Должник»")
    fresh = CounterpartyFactory(owner=staff.manager, name="ООО «Аккуратный»")
    old_invoice = issued(staff.manager, shop, late, overdue_days=45)
    new_invoice = issued(staff.manager, shop, fresh)
    Invoice.objects.filter(pk=new_invoice.pk).update(due_date=timezone.localdate() + timedelta(days=5))
    client.force_login(staff.manager)

    with django_assert_max_num_queries(10):
        response = client.get(reverse("web:receivables"))

    by_name = {row.name: row for row in response.context["page"].items}
    assert set(by_name) == {"ООО «Должник»", "ООО «Аккуратный»"}
    assert by_name["ООО «Должник»"].overdue == old_invoice.total
    assert by_name["ООО «Должник»"].buckets == [0, 0, old_invoice.total, 0, 0]  # 31–60 days
    assert by_name["ООО «Аккуратный»"].buckets == [new_invoice.total, 0, 0, 0, 0]  # not yet due
    [total] = response.context["totals"]
    assert total.open == old_invoice.total + new_invoice.total
    assert reverse("web:counterparty-detail", args=[late.pk]) in response.content.decode()


def test_a_manager_sees_only_his_own_debtors_and_the_director_sees_everyone(client, staff, shop):
    issued(staff.manager, shop, CounterpartyFactory(owner=staff.manager, name="ООО «Своё»"))
    issued(staff.outsider, shop, CounterpartyFactory(owner=staff.outsider, name="ООО «Чужое»"))

    client.force_login(staff.manager)
    assert [row.name for row in rows(client)] == ["ООО «Своё»"]
    client.force_login(staff.director)
    assert {row.name for row in rows(client)} == {"ООО «Своё»", "ООО «Чужое»"}


def test_by_manager_names_the_invoices_manager(client, staff, shop):
    staff.manager.first_name, staff.manager.last_name = "Иван", "Петров"
    staff.manager.save(update_fields=["first_name", "last_name"])
    invoice = issued(staff.manager, shop, CounterpartyFactory(owner=staff.manager), overdue_days=100)
    client.force_login(staff.director)

    [row] = rows(client, by="manager")

    assert row.name == "Петров Иван"
    assert row.buckets[-1] == invoice.total  # over 90 days


def test_nobody_owes_anything(client, staff, shop):
    client.force_login(staff.manager)
    response = client.get(reverse("web:receivables"), {"by": "nonsense"})
    assert response.status_code == 200 and response.context["by"] == "counterparty"
    assert "Nobody owes anything." in response.content.decode()
