from __future__ import annotations

import datetime
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from sdelka.core.models import Currency
from sdelka.sales import services
from sdelka.sales.models import Invoice, InvoiceLine, InvoiceNumberSeries, InvoiceStatus
from sdelka.sales.tests.conftest import DATE, add_bank_account, line
from tests.factories import (
    ContactPersonFactory,
    CounterpartyFactory,
    DealFactory,
    OrganisationFactory,
)

pytestmark = pytest.mark.django_db


def make(staff, organisation, counterparty, **kwargs):
    kwargs.setdefault("lines", [line()])
    kwargs.setdefault("date", DATE)
    return services.create_invoice(user=staff.manager, organisation=organisation, counterparty=counterparty, **kwargs)


def test_invoice_with_product_line_takes_defaults_from_the_product(staff, organisation, product, own_counterparty):
    invoice = make(staff, organisation, own_counterparty, lines=[{"product": product, "quantity": "2"}])
    (stored,) = invoice.lines.all()
    assert stored.description == "Бумага офисная А4, 500 листов"
    assert stored.unit == product.unit
    assert stored.vat_rate == "22"
    assert stored.price == Decimal("450.00")
    assert (stored.amount, stored.vat_amount, stored.total) == (Decimal("900.00"), Decimal("162.30"), Decimal("900.00"))
    assert (invoice.amount, invoice.vat_amount, invoice.total) == (
        Decimal("900.00"),
        Decimal("162.30"),
        Decimal("900.00"),
    )
    assert invoice.bank_account == organisation.bank_accounts.get()
    assert invoice.owner == staff.manager
    assert invoice.exchange_rate == Decimal("1.0000")


def test_known_value_1000_including_22_percent(staff, organisation, own_counterparty):
    invoice = make(staff, organisation, own_counterparty, lines=[line(price="1000.00", vat_rate="22")])
    assert (invoice.amount, invoice.vat_amount, invoice.total) == (
        Decimal("1000.00"),
        Decimal("180.33"),
        Decimal("1000.00"),
    )


def test_vat_on_top_and_discount(staff, organisation, own_counterparty):
    invoice = make(
        staff,
        organisation,
        own_counterparty,
        vat_mode="on_top",
        lines=[line(quantity="3", price="333.33", discount="0.99", vat_rate="22"), line(price="100.00", vat_rate="10")],
    )
    first, second = invoice.lines.order_by("position")
    assert (
        first.amount == Decimal("999.00")
        and first.vat_amount == Decimal("219.78")
        and first.total == Decimal("1218.78")
    )
    assert second.total == Decimal("110.00")
    assert invoice.total == Decimal("1328.78") and invoice.vat_amount == Decimal("229.78")


def test_numbers_per_organisation_and_year(staff, organisation, own_counterparty):
    other = OrganisationFactory(invoice_prefix="")
    numbers = [make(staff, organisation, own_counterparty).number for _ in range(3)]
    assert numbers == ["СД-1", "СД-2", "СД-3"]
    assert make(staff, other, own_counterparty).number == "1"
    next_year = make(staff, organisation, own_counterparty, date=datetime.date(2027, 1, 2))
    assert (next_year.number, next_year.year, next_year.sequence) == ("СД-1", 2027, 1)
    assert make(staff, organisation, own_counterparty).number == "СД-4"
    assert InvoiceNumberSeries.objects.get(organisation=organisation, year=2026).last_number == 4


def test_refused_invoice_takes_no_number(staff, organisation, own_counterparty):
    make(staff, organisation, own_counterparty)
    with pytest.raises(ValidationError):
        make(staff, organisation, own_counterparty, lines=[line(quantity="-1")])
    assert make(staff, organisation, own_counterparty).number == "СД-2"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"quantity": "-1"}, "lines.0.quantity"),
        ({"quantity": "0"}, "lines.0.quantity"),
        ({"quantity": "1.0001"}, "lines.0.quantity"),
        ({"price": "10.005"}, "lines.0.price"),
        ({"price": "-1.00"}, "lines.0.price"),
        ({"discount": "1000.01"}, "lines.0.discount"),
        ({"discount": "-1"}, "lines.0.discount"),
        ({"vat_rate": "18"}, "lines.0.vat_rate"),
        ({"description": "", "price": "1"}, "lines.0.description"),
    ],
)
def test_bad_lines_are_refused_naming_the_field_and_nothing_is_saved(staff, organisation, own_counterparty, bad, field):
    with pytest.raises(ValidationError) as caught:
        make(staff, organisation, own_counterparty, lines=[line(**bad)])
    assert field in caught.value.message_dict
    assert not Invoice.objects.exists() and not InvoiceLine.objects.exists()
    assert not InvoiceNumberSeries.objects.filter(last_number__gt=0).exists()


def test_product_without_price_needs_one(staff, organisation, own_counterparty):
    from tests.factories import ProductFactory

    bare = ProductFactory()
    with pytest.raises(ValidationError) as caught:
        make(staff, organisation, own_counterparty, lines=[{"product": bare, "quantity": "1"}])
    assert "lines.0.price" in caught.value.message_dict


def test_unknown_currency_and_missing_rate(staff, organisation, own_counterparty):
    with pytest.raises(ValidationError) as caught:
        make(staff, organisation, own_counterparty, currency="XYZ")
    assert "currency" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        make(staff, organisation, own_counterparty, currency="USD")
    assert "currency" in caught.value.message_dict
    services.set_exchange_rate(currency="USD", date=DATE - datetime.timedelta(days=3), rate="81.5234")
    invoice = make(staff, organisation, own_counterparty, currency=Currency.objects.get(code="USD"))
    assert invoice.exchange_rate == Decimal("81.5234")
    assert not Invoice.objects.filter(currency="XYZ").exists()


def test_rate_on_picks_the_latest_rate_not_after_the_date():
    assert services.rate_on(currency="RUB", date=DATE) == 1
    services.set_exchange_rate(currency="EUR", date=datetime.date(2026, 3, 1), rate="90.0000")
    services.set_exchange_rate(currency="EUR", date=datetime.date(2026, 3, 9), rate="91.0000")
    services.set_exchange_rate(currency="EUR", date=datetime.date(2026, 3, 11), rate="99.0000")
    assert services.rate_on(currency="EUR", date=DATE) == Decimal("91")
    services.set_exchange_rate(currency="KZT", date=datetime.date(2026, 3, 1), rate="17.5000", nominal=100)
    assert services.rate_on(currency="KZT", date=DATE) == Decimal("0.175")
    with pytest.raises(ValidationError) as caught:
        services.rate_on(currency="EUR", date=datetime.date(2026, 2, 1))
    assert "currency" in caught.value.message_dict


def test_cross_scope_references_are_refused_as_not_existing(
    staff, organisation, own_counterparty, foreign_counterparty
):
    with pytest.raises(ValidationError) as caught:
        make(staff, organisation, foreign_counterparty)
    assert "counterparty" in caught.value.message_dict
    foreign_contact = ContactPersonFactory(counterparty=foreign_counterparty)
    foreign_deal = DealFactory(counterparty=foreign_counterparty)
    with pytest.raises(ValidationError) as caught:
        make(staff, organisation, own_counterparty, contact=foreign_contact, deal=foreign_deal)
    assert {"contact", "deal"} <= set(caught.value.message_dict)
    assert not Invoice.objects.exists()


def test_contact_deal_and_bank_account_must_fit(staff, organisation, own_counterparty):
    sibling = CounterpartyFactory(owner=staff.manager)
    with pytest.raises(ValidationError) as caught:
        make(
            staff,
            organisation,
            own_counterparty,
            contact=ContactPersonFactory(counterparty=sibling),
            deal=DealFactory(counterparty=sibling),
            bank_account=add_bank_account(OrganisationFactory()),
        )
    assert {"contact", "deal", "bank_account"} <= set(caught.value.message_dict)
    deal = DealFactory(counterparty=own_counterparty)
    invoice = make(staff, organisation, own_counterparty, deal=deal)
    assert invoice.deal == deal


def test_only_drafts_change_lines_and_status_transitions(staff, organisation, own_counterparty):
    invoice = make(staff, organisation, own_counterparty)
    invoice = services.update_invoice(
        user=staff.manager, invoice=invoice, lines=[line(price="10.00"), line(price="5.50")]
    )
    assert invoice.total == Decimal("15.50") and invoice.lines.count() == 2
    invoice = services.issue_invoice(user=staff.manager, invoice=invoice)
    assert invoice.status == InvoiceStatus.ISSUED
    with pytest.raises(ValidationError) as caught:
        services.update_invoice(user=staff.manager, invoice=invoice, lines=[line()])
    assert "lines" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.update_invoice(user=staff.manager, invoice=invoice, vat_mode="on_top")
    assert "vat_mode" in caught.value.message_dict
    invoice = services.update_invoice(user=staff.manager, invoice=invoice, comment="Отгрузка в пятницу")
    assert invoice.comment == "Отгрузка в пятницу"
    with pytest.raises(ValidationError):
        services.issue_invoice(user=staff.manager, invoice=invoice)
    invoice = services.cancel_invoice(user=staff.manager, invoice=invoice)
    assert invoice.status == InvoiceStatus.CANCELLED
    with pytest.raises(ValidationError):
        services.update_invoice(user=staff.manager, invoice=invoice, comment="x")


def test_changing_the_vat_mode_of_a_draft_recomputes_the_lines(staff, organisation, own_counterparty):
    invoice = make(staff, organisation, own_counterparty)
    assert invoice.total == Decimal("1000.00")
    invoice = services.update_invoice(user=staff.manager, invoice=invoice, vat_mode="on_top")
    assert (invoice.vat_amount, invoice.total) == (Decimal("220.00"), Decimal("1220.00"))


def test_history_records_the_acting_user(staff, organisation, own_counterparty):
    invoice = make(staff, organisation, own_counterparty)
    services.issue_invoice(user=staff.head, invoice=invoice)
    records = list(invoice.history.order_by("history_id"))
    assert [r.history_user for r in records] == [staff.manager, staff.head]
    assert records[-1].status == InvoiceStatus.ISSUED


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_invoices_get_distinct_gap_free_numbers(staff, organisation, own_counterparty):
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(("file:memorydb", ":memory:")):
        pytest.skip("an in-memory SQLite database is not shared between threads")
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                make(staff, organisation, own_counterparty)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sequences = sorted(Invoice.objects.filter(organisation=organisation).values_list("sequence", flat=True))
    assert sequences == list(range(1, 13))
