"""Receivables: open and overdue amounts and exact aging buckets per counterparty and manager, in one query."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from sdelka.sales import receivables
from sdelka.sales.models import InvoiceStatus
from tests.factories import CounterpartyFactory, InvoiceFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 6, 30)
D = Decimal


def days_ago(n: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=n)


@pytest.fixture
def book(staff):
    org = OrganisationFactory()
    mine = CounterpartyFactory(owner=staff.manager, name="Альфа")
    theirs = CounterpartyFactory(owner=staff.other_manager, name="Бета")

    def inv(counterparty, total, due, paid="0", status=InvoiceStatus.ISSUED, currency="RUB"):
        return InvoiceFactory(
            organisation=org, counterparty=counterparty, total=D(total), paid_amount=D(paid), status=status,
            date=days_ago(200), due_date=due, currency_id=currency,
        )  # fmt: skip

    inv(mine, "100", TODAY)  # due today: not due
    inv(mine, "200", days_ago(1))  # 1–30
    inv(mine, "300", days_ago(30), paid="50", status=InvoiceStatus.PARTLY_PAID)  # 1–30, 250 owed
    inv(mine, "400", days_ago(31))  # 31–60
    inv(mine, "500", days_ago(60), status=InvoiceStatus.SENT)  # 31–60
    inv(mine, "600", days_ago(61))  # 61–90
    inv(mine, "700", days_ago(90))  # 61–90
    inv(mine, "800", days_ago(91))  # 90+
    inv(mine, "900", None)  # no due date: due on its date (200 days ago) → 90+
    inv(mine, "1000", days_ago(5), status=InvoiceStatus.PAID, paid="1000")  # paid: not a receivable
    inv(mine, "1100", days_ago(5), status=InvoiceStatus.DRAFT)  # draft: not a receivable
    inv(mine, "1200", days_ago(5), status=InvoiceStatus.CANCELLED)
    inv(mine, "50", days_ago(10), currency="USD")  # another currency: its own row
    inv(theirs, "70", days_ago(45))
    return mine, theirs


def test_buckets_per_counterparty_are_exact(staff, book, django_assert_num_queries):
    mine, theirs = book
    with django_assert_num_queries(1):
        rows = list(receivables.by_counterparty(user=staff.director, today=TODAY))
    by_key = {(r["counterparty_id"], r["currency_id"]): r for r in rows}
    row = by_key[(mine.pk, "RUB")]
    assert row["open"] == D("4450.00")
    assert row["overdue"] == D("4350.00")
    assert (row["not_due"], row["days_1_30"], row["days_31_60"], row["days_61_90"], row["days_90_plus"]) == (
        D("100.00"), D("450.00"), D("900.00"), D("1300.00"), D("1700.00"),
    )  # fmt: skip
    assert sum(row[b] for b in receivables.BUCKETS) == row["open"]
    assert by_key[(mine.pk, "USD")]["days_1_30"] == D("50.00")
    assert by_key[(theirs.pk, "RUB")]["days_31_60"] == D("70.00")
    assert rows[0]["counterparty_id"] == mine.pk  # largest debt first


def test_visibility_and_per_manager(staff, book):
    mine, _theirs = book
    rows = list(receivables.by_counterparty(user=staff.manager, today=TODAY))
    assert {r["counterparty_id"] for r in rows} == {mine.pk}
    managers = {(r["owner_id"], r["currency_id"]): r for r in receivables.by_manager(user=staff.head, today=TODAY)}
    assert managers[(staff.manager.pk, "RUB")]["open"] == D("4450.00")
    assert managers[(staff.other_manager.pk, "RUB")]["overdue"] == D("70.00")
    assert list(receivables.by_manager(user=staff.outsider, today=TODAY)) == []


def test_totals_and_overdue_list(staff, book):
    totals = {r["currency_id"]: r for r in receivables.totals(user=staff.director, today=TODAY)}
    assert totals["RUB"]["open"] == D("4520.00") and totals["RUB"]["not_due"] == D("100.00")
    overdue = receivables.overdue_invoices(user=staff.manager, today=TODAY)
    assert overdue.count() == 9


def test_api_per_counterparty_manager_and_total(staff, book):
    from rest_framework.test import APIClient

    mine, _theirs = book
    api = APIClient()
    api.force_authenticate(staff.manager)
    rows = api.get("/api/v1/receivables/").json()["results"]
    assert {(r["counterparty_id"], r["currency_id"]) for r in rows} == {(mine.pk, "RUB"), (mine.pk, "USD")}
    api.force_authenticate(staff.head)
    managers = api.get("/api/v1/receivables/", {"by": "manager"}).json()["results"]
    other = next(r for r in managers if r["owner_id"] == staff.other_manager.pk)
    assert (other["open"], other["overdue"]) == ("70.00", "70.00")  # the API ages as of today: due long ago
    (usd,) = [
        r for r in api.get("/api/v1/receivables/", {"by": "total"}).json()["results"] if r["currency_id"] == "USD"
    ]
    assert usd["open"] == "50.00"
    assert api.get("/api/v1/receivables/", {"by": "region"}).status_code == 400
    api.force_authenticate(None)
    assert api.get("/api/v1/receivables/").status_code in (401, 403)
