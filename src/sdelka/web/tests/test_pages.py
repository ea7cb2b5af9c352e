from decimal import Decimal

import pytest
from django.urls import reverse

from tests.factories import CounterpartyFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def test_dashboard_requires_login(client):
    response = client.get(reverse("web:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_page_is_russian_by_default(client):
    response = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ru")
    assert response.status_code == 200
    assert 'lang="ru"' in response.content.decode()


def test_dashboard_counts_only_what_the_user_sees(client, staff):
    CounterpartyFactory(owner=staff.manager)
    foreign = CounterpartyFactory(owner=staff.outsider)
    InvoiceFactory(counterparty=foreign, status="issued", total=Decimal("500.00"))
    client.force_login(staff.manager)

    summary = client.get(reverse("web:dashboard")).context["summary"]

    assert summary.counterparties == 1
    assert summary.unpaid_total == Decimal("0.00")


def test_dashboard_sums_unpaid_invoices(client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    InvoiceFactory(counterparty=own, status="issued", total=Decimal("500.00"))
    InvoiceFactory(counterparty=own, status="partly_paid", total=Decimal("300.00"), paid_amount=Decimal("100.10"))
    InvoiceFactory(counterparty=own, status="draft", total=Decimal("999.00"))
    client.force_login(staff.manager)

    summary = client.get(reverse("web:dashboard")).context["summary"]

    assert summary.unpaid_total == Decimal("699.90")
