from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from sdelka.sales import selectors, services
from sdelka.sales.models import Deal, InvoiceStatus, Pipeline, StageKind
from sdelka.sales.tests.conftest import DATE, line
from tests.factories import ContactPersonFactory, CounterpartyFactory, DealFactory, OrganisationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued(staff, organisation, own_counterparty):
    invoice = services.create_invoice(
        user=staff.manager,
        organisation=organisation,
        counterparty=own_counterparty,
        date=DATE,
        lines=[line(price="1000.00")],
    )
    return services.issue_invoice(user=staff.manager, invoice=invoice)


def pay(staff, organisation, amount, counterparty=None):
    return services.register_payment(
        user=staff.accountant,
        organisation=organisation,
        date=DATE,
        amount=amount,
        counterparty=counterparty,
        number="15",
        purpose="Оплата по счёту",
    )


def test_status_follows_money(staff, organisation, issued, own_counterparty):
    payment = pay(staff, organisation, "600.00")
    assert payment.counterparty is None
    services.allocate_payment(user=staff.accountant, payment=payment, invoice=issued, amount="400.00")
    issued.refresh_from_db()
    payment.refresh_from_db()
    assert (issued.status, issued.paid_amount, issued.open_amount) == (
        InvoiceStatus.PARTLY_PAID,
        Decimal("400.00"),
        Decimal("600.00"),
    )
    assert payment.allocated_amount == Decimal("400.00") and payment.counterparty == own_counterparty

    with pytest.raises(ValidationError) as caught:  # more than the payment has left
        services.allocate_payment(user=staff.accountant, payment=payment, invoice=issued, amount="200.01")
    assert "amount" in caught.value.message_dict

    second = pay(staff, organisation, "900.00", counterparty=own_counterparty)
    with pytest.raises(ValidationError) as caught:  # more than the invoice owes: overpayment
        services.allocate_payment(user=staff.accountant, payment=second, invoice=issued, amount="800.00")
    assert "amount" in caught.value.message_dict
    services.allocate_payment(user=staff.accountant, payment=second, invoice=issued, amount="600.00")
    issued.refresh_from_db()
    assert (issued.status, issued.paid_amount, issued.open_amount) == (InvoiceStatus.PAID, Decimal("1000.00"), 0)

    allocation = second.allocations.get()
    services.remove_allocation(user=staff.accountant, allocation=allocation)
    issued.refresh_from_db()
    second.refresh_from_db()
    assert issued.status == InvoiceStatus.PARTLY_PAID and issued.paid_amount == Decimal("400.00")
    assert second.allocated_amount == 0
    services.remove_allocation(user=staff.accountant, allocation=payment.allocations.get())
    issued.refresh_from_db()
    assert issued.status == InvoiceStatus.ISSUED and issued.paid_amount == 0
    assert [r.history_user for r in issued.history.order_by("-history_id")[:1]] == [staff.accountant]


def test_allocation_checks(staff, organisation, issued, own_counterparty):
    other_party = CounterpartyFactory(owner=staff.manager)
    with pytest.raises(ValidationError) as caught:
        services.allocate_payment(
            user=staff.accountant, payment=pay(staff, organisation, "10.00", other_party), invoice=issued, amount="10"
        )
    assert "invoice" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.allocate_payment(
            user=staff.accountant, payment=pay(staff, OrganisationFactory(), "10.00"), invoice=issued, amount="10"
        )
    assert "invoice" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.allocate_payment(
            user=staff.accountant, payment=pay(staff, organisation, "10.00"), invoice=issued, amount="1.001"
        )
    assert "amount" in caught.value.message_dict
    draft = services.create_invoice(
        user=staff.manager, organisation=organisation, counterparty=own_counterparty, date=DATE, lines=[line()]
    )
    with pytest.raises(ValidationError) as caught:
        services.allocate_payment(
            user=staff.accountant, payment=pay(staff, organisation, "10.00"), invoice=draft, amount="10"
        )
    assert "invoice" in caught.value.message_dict
    # A manager cannot reach an invoice outside his scope even with the object in hand.
    with pytest.raises(ValidationError) as caught:
        services.allocate_payment(
            user=staff.outsider, payment=pay(staff, organisation, "10.00"), invoice=issued, amount="10"
        )
    assert {"payment"} <= set(caught.value.message_dict) or {"invoice"} <= set(caught.value.message_dict)


def test_cancel_refused_while_paid(staff, organisation, issued):
    services.allocate_payment(
        user=staff.accountant, payment=pay(staff, organisation, "10.00"), invoice=issued, amount="10"
    )
    with pytest.raises(ValidationError) as caught:
        services.cancel_invoice(user=staff.accountant, invoice=issued)
    assert "status" in caught.value.message_dict


def test_register_payment_refuses_bad_amounts_and_foreign_counterparty(staff, organisation, foreign_counterparty):
    for amount in ("0", "-5", "1.234"):
        with pytest.raises(ValidationError) as caught:
            pay(staff, organisation, amount)
        assert "amount" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.register_payment(
            user=staff.manager, organisation=organisation, date=DATE, amount="1", counterparty=foreign_counterparty
        )
    assert "counterparty" in caught.value.message_dict


# --- Deals ----------------------------------------------------------------------------------------


def test_deal_defaults_and_moves_are_recorded_with_the_user(staff, own_counterparty):
    pipeline = Pipeline.objects.get(is_default=True)
    deal = services.create_deal(
        user=staff.manager, title="Поставка бумаги", counterparty=own_counterparty, amount="15000.50"
    )
    first = pipeline.stages.order_by("order").first()
    assert deal.stage == first and deal.probability == first.probability and deal.owner == staff.manager
    offer = pipeline.stages.get(order=3)
    services.move_deal(deal=deal, stage=offer, user=staff.head)
    deal.refresh_from_db()
    assert deal.stage == offer and deal.probability == offer.probability and deal.closed_at is None
    moves = list(deal.history.order_by("history_id"))
    assert [(m.history_user, m.stage_id) for m in moves] == [(staff.manager, first.pk), (staff.head, offer.pk)]
    assert moves[-1].history_change_reason == f"{first.name} → {offer.name}"

    with pytest.raises(ValidationError) as caught:
        services.close_deal_lost(deal=deal, user=staff.manager, reason="  ")
    assert "lost_reason" in caught.value.message_dict
    lost_stage = pipeline.stages.get(kind=StageKind.LOST)
    with pytest.raises(ValidationError) as caught:
        services.move_deal(deal=deal, stage=lost_stage, user=staff.manager)
    assert "lost_reason" in caught.value.message_dict
    deal = services.close_deal_lost(deal=deal, user=staff.manager, reason="Дорого")
    assert deal.closed_at is not None and deal.lost_reason == "Дорого" and deal.probability == 0
    deal = services.close_deal_won(deal=deal, user=staff.manager)
    assert deal.stage.kind == StageKind.WON and deal.lost_reason == "" and deal.closed_at is not None
    deal = services.move_deal(deal=deal, stage=first, user=staff.manager)
    assert deal.closed_at is None


def test_deal_rules(staff, own_counterparty, foreign_counterparty):
    other = services.create_pipeline(name="Тендеры", stages=[("Заявка", "open", 10), ("Выигран", "won", 100)])
    default = Pipeline.objects.get(is_default=True)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"stage": other.stages.first(), "pipeline": default}, "stage"),
        ({"amount": "-1"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"counterparty": foreign_counterparty}, "counterparty"),
        ({"contact": ContactPersonFactory(counterparty=foreign_counterparty)}, "contact"),
    ]
    for overrides, field in cases:
        data = {"title": "Сделка", "counterparty": own_counterparty, **overrides}
        with pytest.raises(ValidationError) as caught:
            services.create_deal(user=staff.manager, **data)
        assert field in caught.value.message_dict, overrides
    assert not Deal.objects.exists()
    deal = services.create_deal(user=staff.manager, title="Тендер", counterparty=own_counterparty, pipeline=other)
    with pytest.raises(ValidationError) as caught:
        services.move_deal(deal=deal, stage=default.stages.first(), user=staff.manager)
    assert "stage" in caught.value.message_dict


def test_deal_selectors_respect_visibility_and_group_by_stage(
    staff, own_counterparty, foreign_counterparty, django_assert_max_num_queries
):
    pipeline = Pipeline.objects.get(is_default=True)
    mine = [DealFactory(counterparty=own_counterparty) for _ in range(3)]
    DealFactory(counterparty=foreign_counterparty)
    services.move_deal(deal=mine[0], stage=pipeline.stages.get(order=2), user=staff.manager)
    assert set(selectors.deal_list(user=staff.manager)) == set(mine)
    assert selectors.deal_list(user=staff.director).count() == 4
    with django_assert_max_num_queries(4):
        board = selectors.deals_by_stage(user=staff.manager, pipeline=pipeline)
        counts = [(stage.order, len(deals), [d.counterparty.name for d in deals]) for stage, deals in board]
    assert [(order, n) for order, n, _ in counts][:2] == [(1, 2), (2, 1)]


def test_organisation_requisites_and_bank_accounts(staff):
    organisation = services.save_organisation(
        user=staff.admin, name="ООО «Сделка»", inn="7707083893", kpp="773601001", ogrn="1027700132195"
    )
    assert organisation.pk
    with pytest.raises(ValidationError) as caught:
        services.save_organisation(user=staff.admin, name="X", inn="7707083894", kpp="773601001")
    assert "inn" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.save_organisation(user=staff.admin, name="X", inn="7702070139")
    assert "kpp" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.save_organisation(user=staff.admin, name="X", inn="7702070139", kpp="770201001", ogrn="1027739609392")
    assert "ogrn" in caught.value.message_dict

    account = services.save_organisation_bank_account(
        organisation=organisation,
        bik="044525225",
        bank_name="ПАО Сбербанк",
        correspondent_account="30101810400000000225",
        number="40702810138250123017",
        is_main=True,
    )
    assert account.is_main
    with pytest.raises(ValidationError) as caught:
        services.save_organisation_bank_account(
            organisation=organisation, bik="044525225", bank_name="ПАО Сбербанк", number="40702810138250123018"
        )
    assert "number" in caught.value.message_dict
    with pytest.raises(ValidationError) as caught:
        services.save_organisation_bank_account(
            organisation=organisation, bik="04452522", bank_name="ПАО Сбербанк", number="40702810138250123017"
        )
    assert "bik" in caught.value.message_dict
    second = services.save_organisation_bank_account(
        organisation=organisation,
        bik="044525225",
        bank_name="ПАО Сбербанк",
        number="40702810938120061991",
        is_main=True,
    )
    account.refresh_from_db()
    assert second.is_main and not account.is_main
