"""A head's day in a real browser: the dashboard's charts for himself and his team, a counterparty's 1C link
state and access, an invoice's status in 1C, and the payment that settled it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from sdelka.exchange.models import Connection, EventLevel, ExchangeEvent, ExternalRef, OrderState, RefKind
from sdelka.sales import services as sales_services
from sdelka.web.tests.world import build_shop
from tests.factories import CounterpartyFactory, DealFactory, InvoiceFactory, TeamFactory, UserFactory

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def test_a_head_reads_the_charts_and_follows_an_invoice_to_1c_and_its_payment(
    page: Any, live_server: Any, shot: Any
) -> None:
    shop = build_shop()
    sales = TeamFactory(name="Отдел продаж Москва")
    head = UserFactory(username="head", first_name="Ольга", last_name="Кравцова", role="head", team=sales)
    sales.head = head
    sales.save(update_fields=["head"])
    manager = UserFactory(username="manager", first_name="Иван", last_name="Петров", team=sales)
    colleague = UserFactory(username="colleague", first_name="Сергей", last_name="Лебедев", team=sales)
    client = CounterpartyFactory(owner=manager, name="ООО «Альфа-Трейд»")
    own = CounterpartyFactory(owner=head, name="АО «Балтийский берег»")
    for counterparty, amount in ((client, "420000"), (client, "180000"), (own, "95000")):
        DealFactory(counterparty=counterparty, amount=Decimal(amount))
    today = timezone.localdate()
    for weeks_back in range(12):
        for year_back in (0, 1):
            day = today - timedelta(weeks=weeks_back, days=364 * year_back)
            total = Decimal(50_000 + 9_000 * ((weeks_back * 7 + year_back * 3) % 11))
            InvoiceFactory(
                organisation=shop.organisation, counterparty=client, status="paid", total=total, paid_amount=total,
                date=day, sequence=1000 + weeks_back * 2 + year_back,
            )  # fmt: skip
    for n, (days, owed) in enumerate(((-10, "30000"), (20, "45000"), (50, "12000"), (120, "8000"))):
        InvoiceFactory(
            organisation=shop.organisation, counterparty=client, status="issued", total=Decimal(owed),
            due_date=today - timedelta(days=days), sequence=2000 + n,
        )  # fmt: skip
    invoice = sales_services.create_invoice(
        user=manager, organisation=shop.organisation, counterparty=client,
        lines=[{"product": shop.products[0].pk, "quantity": "10"}],
    )  # fmt: skip
    invoice = sales_services.issue_invoice(user=manager, invoice=invoice)
    payment = sales_services.register_payment(
        user=manager, organisation=shop.organisation, counterparty=client, amount=str(invoice.total),
        date=today, number="4512", purpose=f"Оплата по счёту № {invoice.number}", payer_name=client.name,
    )  # fmt: skip
    sales_services.allocate_payment(user=manager, payment=payment, invoice=invoice, amount=str(invoice.total))
    base_1c = Connection.objects.create(name="УТ 11 Москва")
    ExternalRef.objects.create(
        connection=base_1c, kind=RefKind.COUNTERPARTY, external_id="9f1c2a7e-0001", code="00-00000042",
        content_type=ContentType.objects.get_for_model(client), object_id=client.pk,
    )  # fmt: skip
    ExchangeEvent.objects.create(
        connection=base_1c, level=EventLevel.WARNING, external_id="9f1c2a7e-0001",
        message="КПП в 1С отличается от КПП в Сделке", field="КПП",
    )  # fmt: skip
    now = timezone.now()
    OrderState.objects.create(
        connection=base_1c, invoice=invoice, number_1c="УТ-000731", date_1c=today, sent_version=now,
        confirmed_version=now, posted=True, paid=True, payment_number="4512", payment_date=now,
    )  # fmt: skip
    base = live_server.url

    # The dashboard: three charts drawn by the page, each with its table; the team by default.
    log_in(page, base, "head")
    charts = page.locator("svg.chart-svg[role=img]")
    expect(charts).to_have_count(3)
    expect(page.locator("#funnel-chart-title")).to_have_text("Сделки в работе по этапам")
    expect(page.locator("svg .chart-bar.previous").first).to_be_attached()  # a year ago, beside this year
    team_funnel = page.locator("#funnel-h ~ .chart details table tbody").text_content().replace("\u00a0", " ")
    assert "695 000" in team_funnel  # the manager's two deals and the head's own, all at the first stage
    page.locator("#aging-h ~ .chart details summary").first.click()
    expect(page.locator("#aging-h ~ .chart details table").first).to_be_visible()
    expect(page.locator("#aging-h ~ .chart details table").first).to_contain_text("Просрочено более 90 дней")
    shot(page, "dashboard-head")

    page.click("nav.tabs >> text=Мои")
    expect(page.locator("nav.tabs a[aria-current=page]")).to_have_text("Мои")
    mine = page.locator("#funnel-h ~ .chart details table tbody").text_content().replace("\u00a0", " ")
    assert "95 000" in mine and "420 000" not in mine

    # The counterparty card: which base of 1C knows it, its code there, the warning the exchange left.
    page.goto(f"{base}/counterparties/{client.pk}/")
    expect(page.locator("#onec")).to_contain_text("УТ 11 Москва")
    expect(page.locator("#onec")).to_contain_text("00-00000042")
    expect(page.locator("#onec")).to_contain_text("КПП в 1С отличается от КПП в Сделке")
    shot(page, "counterparty-1c")

    # The head shares it with a colleague of the team.
    page.click("#access-edit")
    page.get_by_label("Сергей Лебедев").first.check()
    page.click("#access-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("ООО «Альфа-Трейд»")
    expect(page.locator(".props")).to_contain_text("Сергей Лебедев")
    assert list(client.co_owners.all()) == [colleague]

    # The invoice: its status as 1C reported it, then the payment that settled it.
    page.goto(f"{base}/invoices/{invoice.pk}/")
    status = page.locator("#onec-status-h ~ .onec-steps")
    expect(status).to_contain_text("Получен 1С")
    expect(status).to_contain_text("Проведён")
    expect(status).to_contain_text("№ 4512")
    shot(page, "invoice-1c")
    page.click(f"a[href='/payments/{payment.pk}/']")
    expect(page.locator("h1")).to_contain_text("4512")
    expect(page.locator("#alloc-h ~ table")).to_contain_text(f"№ {invoice.number}")
    shot(page, "payment")
