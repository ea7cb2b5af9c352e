from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.test import Client

from sdelka.core.models import ExchangeRate

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(staff, admin_client) -> Client:
    """pytest-django's admin client, signed in as the `admin` of the staff fixture."""
    return admin_client


def test_currency_list_and_search(client):
    response = client.get("/admin/core/currency/", {"q": "USD"})
    assert response.status_code == 200
    assert [c.code for c in response.context["cl"].result_list] == ["USD"]


def test_exchange_rate_is_added_and_listed(client):
    response = client.post(
        "/admin/core/exchangerate/add/", {"currency": "USD", "date": "2026-01-15", "rate": "78.1234", "nominal": "1"}
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    rate = ExchangeRate.objects.get()
    assert (rate.date, rate.rate) == (datetime.date(2026, 1, 15), Decimal("78.1234"))
    response = client.get("/admin/core/exchangerate/", {"currency__code__exact": "USD"})
    assert list(response.context["cl"].result_list) == [rate]


def test_non_positive_rate_is_refused(client):
    response = client.post(
        "/admin/core/exchangerate/add/", {"currency": "USD", "date": "2026-01-15", "rate": "0", "nominal": "1"}
    )
    assert response.status_code == 200
    assert not ExchangeRate.objects.exists()
