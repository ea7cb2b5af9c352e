"""Payment pages, the 1C link state on counterparty and invoice cards, and editing co-owners and VIP."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from sdelka.exchange.models import (
    BankDocument,
    BankDocumentStatus,
    Connection,
    EventLevel,
    ExchangeEvent,
    ExchangeRun,
    ExternalRef,
    OrderState,
    RefKind,
    Route,
)
from sdelka.exchange.odata.models import CounterpartyDebt
from sdelka.parties.models import Counterparty
from sdelka.sales import services as sales_services
from sdelka.sales.models import Invoice
from tests.factories import CounterpartyFactory

from .world import Shop, build_shop

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(db: None) -> Shop:
    return build_shop()


def issued_invoice(staff, shop, counterparty):
    invoice = sales_services.create_invoice(
        user=staff.manager, organisation=shop.organisation, counterparty=counterparty,
        lines=[{"product": shop.products[0].pk, "quantity": "2"}],
    )  # fmt: skip
    return sales_services.issue_invoice(user=staff.manager, invoice=invoice)


def paid_from_statement(staff, shop, counterparty, invoice):
    payment = sales_services.register_payment(
        user=staff.manager, organisation=shop.organisation, counterparty=counterparty, amount="500.00",
        date=timezone.localdate(), number="314", purpose="Оплата по счёту", payer_name="ООО «Плательщик»",
        payer_inn=counterparty.inn,
    )  # fmt: skip
    sales_services.allocate_payment(user=staff.manager, payment=payment, invoice=invoice, amount="300.00")
    connection = Connection.objects.create(name="Банк-клиент")
    run = ExchangeRun.objects.create(connection=connection, route=Route.CATALOG)
    BankDocument.objects.create(
        run=run, organisation=shop.organisation, account="40702810000000000001", direction="in",
        kind="Платежное поручение", number="314", date=payment.date, amount=payment.amount,
        payment=payment, status=BankDocumentStatus.MATCHED,
    )  # fmt: skip
    return payment


# --- Payments -------------------------------------------------------------------------------------


def test_payment_page_shows_payer_allocations_and_statement(client, staff, shop, django_assert_max_num_queries):
    own = CounterpartyFactory(owner=staff.manager)
    invoice = issued_invoice(staff, shop, own)
    payment = paid_from_statement(staff, shop, own, invoice)
    client.force_login(staff.manager)

    with django_assert_max_num_queries(12):
        page = client.get(reverse("web:payment-detail", args=[payment.pk])).content.decode()

    assert "ООО «Плательщик»" in page and "Оплата по счёту" in page
    assert reverse("web:invoice-detail", args=[invoice.pk]) in page
    assert "Платежное поручение № 314" in page and "Банк-клиент" in page
    assert "200.00" in page  # left unallocated (pages of the test client are in English)
    card = client.get(reverse("web:counterparty-detail", args=[own.pk])).content.decode()
    assert reverse("web:payment-detail", args=[payment.pk]) in card
    invoice_page = client.get(reverse("web:invoice-detail", args=[invoice.pk])).content.decode()
    assert reverse("web:payment-detail", args=[payment.pk]) in invoice_page


def test_cancelled_payment_is_marked_with_its_reason(client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    invoice = issued_invoice(staff, shop, own)
    payment = paid_from_statement(staff, shop, own, invoice)
    sales_services.cancel_payment(user=staff.manager, payment=payment, reason="1C unposted the document")
    client.force_login(staff.manager)
    page = client.get(reverse("web:payment-detail", args=[payment.pk])).content.decode()
    assert "cancelled" in page and "1C unposted the document" in page
    assert "Not allocated to any invoice." in page  # its allocation was released
    listing = client.get(reverse("web:payment-list")).content.decode()
    assert "cancelled" in listing


def test_payment_of_another_managers_counterparty_is_not_found(client, staff, shop):
    foreign = CounterpartyFactory(owner=staff.outsider)
    payment = sales_services.register_payment(
        user=staff.director, organisation=shop.organisation, counterparty=foreign, amount="10.00",
        date=timezone.localdate(),
    )  # fmt: skip
    client.force_login(staff.manager)
    assert client.get(reverse("web:payment-detail", args=[payment.pk])).status_code == 404
    assert payment not in client.get(reverse("web:payment-list")).context["page"].items
    client.force_login(staff.director)
    assert client.get(reverse("web:payment-detail", args=[payment.pk])).status_code == 200


def test_payment_list_filters_and_constant_queries(client, staff, shop, django_assert_max_num_queries):
    own = CounterpartyFactory(owner=staff.manager, name="ООО «Ромашка»")
    other = CounterpartyFactory(owner=staff.manager, name="ООО «Лютик»")
    for index in range(5):
        sales_services.register_payment(
            user=staff.manager, organisation=shop.organisation, counterparty=own if index % 2 else other,
            amount=f"{index + 1}.00", date=timezone.localdate() - timedelta(days=index), number=f"П-{index}",
        )  # fmt: skip
    client.force_login(staff.manager)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("web:payment-list"))
    assert [p.number for p in response.context["page"].items] == [f"П-{i}" for i in range(5)]
    by_name = client.get(reverse("web:payment-list"), {"q": "Ромашка"}).context["page"].items
    assert {p.number for p in by_name} == {"П-1", "П-3"}
    by_card = client.get(reverse("web:payment-list"), {"counterparty": other.pk}).context["page"].items
    assert {p.number for p in by_card} == {"П-0", "П-2", "П-4"}
    assert client.get(reverse("web:payment-list"), {"direction": "out"}).context["page"].items == []


# --- 1C link state --------------------------------------------------------------------------------


def link(obj, connection, kind, external_id, code=""):
    return ExternalRef.objects.create(
        connection=connection, kind=kind, external_id=external_id, code=code,
        content_type=ContentType.objects.get_for_model(obj), object_id=obj.pk,
    )  # fmt: skip


def test_counterparty_card_shows_which_bases_know_it_and_its_problems(client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    neighbour = CounterpartyFactory(owner=staff.manager)
    ut = Connection.objects.create(name="УТ 11")
    bp = Connection.objects.create(name="БП 3.0")
    link(own, ut, RefKind.COUNTERPARTY, "a1b2-c3d4", code="00-000123")
    link(own, bp, RefKind.COUNTERPARTY, "ffff-0001")
    link(neighbour, ut, RefKind.COUNTERPARTY, "other-id")
    run = ExchangeRun.objects.create(connection=ut, route=Route.CATALOG)
    ExchangeEvent.objects.create(
        run=run, connection=ut, level=EventLevel.ERROR, external_id="a1b2-c3d4", message="Неверный ИНН в 1С"
    )
    ExchangeEvent.objects.create(connection=ut, level=EventLevel.INFO, external_id="a1b2-c3d4", message="Обновлён")
    # The same 1C id in another base is another record; and an old error is no longer news.
    ExchangeEvent.objects.create(connection=bp, level=EventLevel.ERROR, external_id="a1b2-c3d4", message="Чужое")
    old = ExchangeEvent.objects.create(connection=ut, level=EventLevel.ERROR, external_id="a1b2-c3d4", message="Давно")
    ExchangeEvent.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    ExchangeEvent.objects.create(connection=ut, level=EventLevel.ERROR, external_id="other-id", message="Сосед")
    client.force_login(staff.manager)

    onec = client.get(reverse("web:counterparty-detail", args=[own.pk])).context["card"].onec

    assert [(r.connection.name, r.code) for r in onec.refs] == [("БП 3.0", ""), ("УТ 11", "00-000123")]
    assert [e.message for e in onec.problems] == ["Неверный ИНН в 1С"]
    page = client.get(reverse("web:counterparty-detail", args=[own.pk])).content.decode()
    assert "00-000123" in page and "Неверный ИНН в 1С" in page
    lonely = client.get(reverse("web:counterparty-detail", args=[CounterpartyFactory(owner=staff.manager).pk]))
    assert not lonely.context["card"].onec.linked


def test_counterparty_card_shows_the_debt_according_to_1c_next_to_open_invoices(client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    issued_invoice(staff, shop, own)
    bp = Connection.objects.create(name="БП 3.0")
    link(own, bp, RefKind.COUNTERPARTY, "ffff-0002")
    as_of = timezone.now() - timedelta(hours=2)
    CounterpartyDebt.objects.create(
        connection=bp, counterparty_id=own.pk, amount=Decimal("1500.00"), as_of=as_of, register="AccountingRegister_Х"
    )
    client.force_login(staff.manager)
    response = client.get(reverse("web:counterparty-detail", args=[own.pk]))
    onec = response.context["card"].onec
    assert [(d.connection.name, d.amount) for d in onec.debts] == [("БП 3.0", Decimal("1500.00"))]
    assert onec.open_amount == Invoice.objects.get(counterparty_id=own.pk).total
    page = response.content.decode()
    assert "Debt according to 1C" in page and "1500.00 RUB" in page
    assert (
        "Debt according to 1C"
        not in client.get(
            reverse("web:counterparty-detail", args=[CounterpartyFactory(owner=staff.manager).pk])
        ).content.decode()
    )


def test_invoice_card_shows_the_status_1c_reported(client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    invoice = issued_invoice(staff, shop, own)
    ut = Connection.objects.create(name="УТ 11")
    now = timezone.now()
    OrderState.objects.create(
        connection=ut, invoice=invoice, number_1c="УТ-000045", date_1c=timezone.localdate(), sent_version=now,
        confirmed_version=now, posted=True, paid=True, payment_number="991", payment_date=now, shipped=False,
        status_name="В работе",
    )  # fmt: skip
    link(invoice, ut, RefKind.ORDER, "order-1")
    client.force_login(staff.manager)

    response = client.get(reverse("web:invoice-detail", args=[invoice.pk]))
    page = response.content.decode()

    assert [o.number_1c for o in response.context["onec"].orders] == ["УТ-000045"]
    for text in ("УТ-000045", "Received by 1C", "Posted", "Paid", "№ 991", "Not shipped", "В работе"):
        assert text in page, text


# --- Co-owners and VIP ----------------------------------------------------------------------------


def test_head_adds_a_co_owner_who_then_sees_the_counterparty(client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    client.force_login(staff.head)
    assert reverse("web:counterparty-access", args=[own.pk]) in client.get(own.get_absolute_url()).content.decode()

    response = client.post(reverse("web:counterparty-access", args=[own.pk]), {"co_owners": [staff.east_manager.pk]})

    assert response.status_code == 302
    assert list(own.co_owners.all()) == [staff.east_manager]
    assert Counterparty.objects.visible_to(staff.east_manager).filter(pk=own.pk).exists()


def test_owner_removes_a_co_owner_but_gives_only_within_what_he_may(client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    own.co_owners.add(staff.outsider)
    client.force_login(staff.manager)
    form = client.get(reverse("web:counterparty-access", args=[own.pk])).context["form"]
    assert set(form.fields["co_owners"].queryset) == {staff.outsider}  # himself is the owner; the named one stays

    response = client.post(reverse("web:counterparty-access", args=[own.pk]), {"co_owners": []})

    assert response.status_code == 302, response.context["form"].errors
    assert not own.co_owners.exists()


def test_co_owner_sees_but_may_not_change_access(client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    own.co_owners.add(staff.other_manager)
    client.force_login(staff.other_manager)
    card = client.get(own.get_absolute_url())
    assert card.status_code == 200 and not card.context["may_manage_access"]
    url = reverse("web:counterparty-access", args=[own.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"co_owners": []}).status_code == 403
    assert list(own.co_owners.all()) == [staff.other_manager]


def test_manager_cannot_give_a_co_ownership_outside_his_team(client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    client.force_login(staff.manager)
    response = client.post(reverse("web:counterparty-access", args=[own.pk]), {"co_owners": [staff.outsider.pk]})
    assert response.status_code == 200
    assert response.context["form"].errors["co_owners"]
    assert not own.co_owners.exists()


def test_head_marks_vip_and_keeps_seeing_it_while_the_team_does_not(client, staff):
    member = CounterpartyFactory(owner=staff.manager)
    client.force_login(staff.head)

    response = client.post(reverse("web:counterparty-access", args=[member.pk]), {"is_vip": "on"})

    assert response.status_code == 302, response.context["form"].errors
    member.refresh_from_db()
    assert member.is_vip and set(member.vip_users.all()) == {staff.manager, staff.head}
    assert client.get(member.get_absolute_url()).status_code == 200
    client.force_login(staff.other_manager)
    member.co_owners.add(staff.other_manager)
    assert client.get(member.get_absolute_url()).status_code == 404  # a co-owner not named on the VIP


def test_director_names_who_sees_a_vip(client, staff):
    member = CounterpartyFactory(owner=staff.manager)
    client.force_login(staff.director)
    client.post(
        reverse("web:counterparty-access", args=[member.pk]), {"is_vip": "on", "vip_users": [staff.accountant.pk]}
    )
    member.refresh_from_db()
    assert set(member.vip_users.all()) == {staff.manager, staff.accountant}
    assert not Counterparty.objects.visible_to(staff.head).filter(pk=member.pk).exists()


def test_service_refuses_access_changes_by_a_co_owner(staff):
    from django.core.exceptions import ValidationError

    from sdelka.parties import services

    own = CounterpartyFactory(owner=staff.manager)
    own.co_owners.add(staff.other_manager)
    with pytest.raises(ValidationError) as refused:
        services.update_counterparty(user=staff.other_manager, counterparty=own, data={"co_owners": []})
    assert "co_owners" in refused.value.message_dict
    # Editing other fields while leaving access as it is stays allowed.
    unchanged = {"comment": "звонить до 12", "co_owners": [staff.other_manager]}
    services.update_counterparty(user=staff.other_manager, counterparty=own, data=unchanged)
    own.refresh_from_db()
    assert own.comment == "звонить до 12"


def test_invoice_page_title_is_the_invoice_alone(client, staff, shop):
    invoice = issued_invoice(staff, shop, CounterpartyFactory(owner=staff.manager))
    client.force_login(staff.manager)
    page = client.get(reverse("web:invoice-detail", args=[invoice.pk])).content.decode()
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert f"Invoice № {invoice.number}" in title
    assert "<" not in title
    assert page.count('id="inv-pay-h"') == 1
