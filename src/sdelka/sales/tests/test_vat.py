"""VAT arithmetic of invoice lines and invoices: for every rate and mode the amounts agree to the kopeck."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdelka.core.vat import VatMode, VatRate, line_amounts, money
from sdelka.sales import services
from sdelka.sales.models import InvoiceStatus
from sdelka.sales.tests.conftest import DATE

quantities = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("99999.999"), places=3)
prices = st.decimals(min_value=Decimal("0.00"), max_value=Decimal("9999999.99"), places=2)
rates = st.sampled_from(VatRate.values)
modes = st.sampled_from(VatMode.values)


@st.composite
def lines(draw: st.DrawFn) -> dict[str, Decimal | str]:
    quantity, price = draw(quantities), draw(prices)
    gross = money(quantity * price)
    discount = draw(st.decimals(min_value=Decimal("0.00"), max_value=gross, places=2))
    return {"quantity": quantity, "price": price, "discount": discount, "rate": draw(rates)}


@given(line=lines(), mode=modes)
def test_line_amount_vat_and_total_agree(line: dict, mode: str) -> None:
    sums = line_amounts(mode=mode, **line)
    for value in (sums.amount, sums.vat, sums.total):
        assert value == value.quantize(Decimal("0.01")), "every sum is whole kopecks"
        assert value >= 0
    assert sums.amount == money(line["quantity"] * line["price"]) - line["discount"]
    percent = VatRate(line["rate"]).percent
    if mode == VatMode.WITHOUT or not percent:
        assert sums.vat == 0 and sums.total == sums.amount
    elif mode == VatMode.INCLUDED:
        assert sums.total == sums.amount
        # The VAT inside the sum is the sum's share rate/(100+rate), rounded to the kopeck.
        assert abs(sums.vat - sums.amount * percent / (100 + percent)) <= Decimal("0.005")
    else:
        assert sums.total == sums.amount + sums.vat
        assert abs(sums.vat - sums.amount * percent / 100) <= Decimal("0.005")


@pytest.mark.parametrize(
    ("amount", "rate", "mode", "vat", "total"),
    [
        ("1000.00", "22", VatMode.INCLUDED, "180.33", "1000.00"),
        ("1000.00", "22", VatMode.ON_TOP, "220.00", "1220.00"),
        ("1000.00", "10", VatMode.INCLUDED, "90.91", "1000.00"),
        ("1000.00", "5", VatMode.INCLUDED, "47.62", "1000.00"),
        ("1000.00", "7", VatMode.ON_TOP, "70.00", "1070.00"),
        ("1000.00", "0", VatMode.INCLUDED, "0.00", "1000.00"),
        ("1000.00", "none", VatMode.ON_TOP, "0.00", "1000.00"),
        ("1000.00", "22", VatMode.WITHOUT, "0.00", "1000.00"),
        ("0.01", "22", VatMode.INCLUDED, "0.00", "0.01"),
        ("0.03", "22", VatMode.ON_TOP, "0.01", "0.04"),
    ],
)
def test_known_values(amount: str, rate: str, mode: str, vat: str, total: str) -> None:
    sums = line_amounts(quantity=Decimal(1), price=Decimal(amount), discount=Decimal(0), rate=rate, mode=mode)
    assert (sums.vat, sums.total) == (Decimal(vat), Decimal(total))


@pytest.mark.django_db
@settings(max_examples=25, deadline=None)
@given(items=st.lists(lines(), min_size=1, max_size=6), mode=modes)
def test_invoice_totals_are_the_sums_of_its_lines(items: list[dict], mode: str) -> None:
    # Hypothesis reruns the body inside one test transaction, so the objects are built here each time.
    from tests.factories import CounterpartyFactory, OrganisationFactory, UserFactory

    user = UserFactory(role="director")
    invoice = services.create_invoice(
        user=user,
        organisation=OrganisationFactory(),
        counterparty=CounterpartyFactory(owner=user),
        date=DATE,
        vat_mode=mode,
        lines=[
            {
                "description": f"Позиция {i}",
                "quantity": it["quantity"],
                "price": it["price"],
                "discount": it["discount"],
                "vat_rate": it["rate"],
            }
            for i, it in enumerate(items)
        ],
    )
    stored = list(invoice.lines.order_by("position"))
    assert [line.position for line in stored] == list(range(1, len(items) + 1))
    assert invoice.amount == sum(line.amount for line in stored)
    assert invoice.vat_amount == sum(line.vat_amount for line in stored)
    assert invoice.total == sum(line.total for line in stored)
    for line, item in zip(stored, items, strict=True):
        expected = line_amounts(mode=mode, **item)
        assert (line.amount, line.vat_amount, line.total) == (expected.amount, expected.vat, expected.total)
    invoice.refresh_from_db()
    assert invoice.total == sum(line.total for line in stored)
    assert invoice.status == InvoiceStatus.DRAFT
