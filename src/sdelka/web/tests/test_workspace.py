"""The manager's workspace through Django's test client: every screen, the visibility rules, forms that
keep what was typed, live checks, and query counts that do not grow with the rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import escape

from sdelka.activities.models import Notification, Task
from sdelka.activities.services import create_task
from sdelka.core import requisites
from sdelka.parties.models import Counterparty, Tag
from sdelka.sales import services as sales_services
from sdelka.sales.models import Deal, Invoice, InvoiceStatus, Stage, StageKind
from tests.factories import ContactPersonFactory, CounterpartyFactory, DealFactory, InvoiceFactory, make_inn10

from .world import Shop, build_shop

pytestmark = pytest.mark.django_db

BAD_INN = "7707083890"  # the real Sberbank ИНН is 7707083893: the last digit is off


@pytest.fixture
def shop(db: None) -> Shop:
    return build_shop()


@pytest.fixture
def manager_client(client, staff):
    client.force_login(staff.manager)
    return client


def refusal(check: Callable[..., None], *args: str) -> str:
    """The message a requisite check gives, in the language pages are rendered in, as HTML shows it."""
    with translation.override(settings.LANGUAGE_CODE):
        try:
            check(*args)
        except ValidationError as error:
            return escape(error.messages[0])
    raise AssertionError(f"{check.__name__}{args} passed")


def valid_inn() -> str:
    import random

    return make_inn10(random.Random())


# --- Pages and navigation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "web:dashboard",
        "web:counterparty-list",
        "web:counterparty-create",
        "web:deal-board",
        "web:deal-list",
        "web:deal-create",
        "web:invoice-list",
        "web:invoice-create",
        "web:payment-list",
        "web:task-list",
        "web:task-create",
        "web:product-list",
        "web:password-change",
    ],
)
def test_every_screen_answers_with_a_title_and_the_user_in_the_header(manager_client, staff, shop, name):
    response = manager_client.get(reverse(name))
    body = response.content.decode()
    assert response.status_code == 200
    assert "<title>" in body and "· " in body
    assert str(staff.manager) in body
    assert staff.manager.get_role_display() in body
    assert "web/vendor/htmx.min.js" in body


def test_every_post_form_carries_a_csrf_token(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    deal = DealFactory(counterparty=own)
    for url in (
        reverse("web:counterparty-create"),
        reverse("web:counterparty-detail", args=[own.pk]),
        reverse("web:deal-detail", args=[deal.pk]),
        reverse("web:invoice-create"),
        reverse("web:task-create"),
    ):
        body = manager_client.get(url).content.decode()
        assert body.count('method="post"') <= body.count("csrfmiddlewaretoken"), url


def test_administration_link_only_for_staff(client, staff):
    client.force_login(staff.manager)
    assert reverse("admin:index") not in client.get(reverse("web:dashboard")).content.decode()
    client.force_login(staff.admin)
    assert reverse("admin:index") in client.get(reverse("web:dashboard")).content.decode()


def test_pages_require_login(client):
    for name in ("web:counterparty-list", "web:deal-board", "web:invoice-list", "web:task-list", "web:product-list"):
        response = client.get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


# --- Global search ----------------------------------------------------------------------------------


def test_search_finds_only_what_the_user_sees(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager, name="ООО «Северный ветер»", emails="info@sever.ru")
    foreign = CounterpartyFactory(owner=staff.outsider, name="ООО «Северное сияние»")
    ContactPersonFactory(counterparty=own, phones="+7 (812) 555-12-34")

    by_name = manager_client.get(reverse("web:search"), {"q": "северн"}, HTTP_HX_REQUEST="true")
    assert own.name in by_name.content.decode()
    assert foreign.name not in by_name.content.decode()
    assert own.name in manager_client.get(reverse("web:search"), {"q": own.inn}).content.decode()
    assert own.name in manager_client.get(reverse("web:search"), {"q": "8 812 5551234"}).content.decode()
    assert own.name in manager_client.get(reverse("web:search"), {"q": "info@sever"}).content.decode()
    assert foreign.name not in manager_client.get(reverse("web:search"), {"q": foreign.inn}).content.decode()


def test_search_finds_invoices_by_number_and_products_by_article(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    invoice = sales_services.create_invoice(
        user=staff.manager,
        organisation=shop.organisation,
        counterparty=own,
        lines=[{"product": shop.products[0].pk, "quantity": "1"}],
    )
    body = manager_client.get(reverse("web:search"), {"q": invoice.number}, HTTP_HX_REQUEST="true").content.decode()
    assert reverse("web:invoice-detail", args=[invoice.pk]) in body
    body = manager_client.get(reverse("web:search"), {"q": "РУЧ-СИН"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Ручка шариковая синяя" in body


# --- Counterparties ---------------------------------------------------------------------------------


def test_list_shows_own_counterparties_and_filters_by_tag_and_debt(manager_client, staff, shop):
    tag = Tag.objects.create(name="Опт")
    tagged = CounterpartyFactory(owner=staff.manager, name="ООО «Альфа»")
    tagged.tags.add(tag)
    plain = CounterpartyFactory(owner=staff.manager, name="ООО «Бета»")
    foreign = CounterpartyFactory(owner=staff.outsider, name="ООО «Гамма»")
    invoice = sales_services.create_invoice(
        user=staff.manager, organisation=shop.organisation, counterparty=plain,
        lines=[{"product": shop.products[0].pk, "quantity": "2"}],
    )  # fmt: skip
    sales_services.issue_invoice(user=staff.manager, invoice=invoice)

    body = manager_client.get(reverse("web:counterparty-list")).content.decode()
    assert tagged.name in body and plain.name in body and foreign.name not in body
    body = manager_client.get(reverse("web:counterparty-list"), {"tag": tag.pk}).content.decode()
    assert tagged.name in body and plain.name not in body
    body = manager_client.get(reverse("web:counterparty-list"), {"debt": "1"}).content.decode()
    assert plain.name in body and tagged.name not in body


def test_list_sorts_and_pages_by_keyset_without_counting(manager_client, staff):
    for index in range(55):
        CounterpartyFactory(owner=staff.manager, name=f"ООО «Контора {index:02d}»")
    url = reverse("web:counterparty-list")
    first = manager_client.get(url, {"sort": "-name"}).context["page"]
    names = [c.name for c in first.items]
    assert names[0] == "ООО «Контора 54»" and len(names) == 50
    assert first.has_next and not first.has_previous
    second = manager_client.get(url, {"sort": "-name", "after": first.next_cursor}).context["page"]
    assert [c.name for c in second.items] == [f"ООО «Контора {i:02d}»" for i in range(4, -1, -1)]
    assert not second.has_next and second.has_previous
    back = manager_client.get(url, {"sort": "-name", "before": second.previous_cursor}).context["page"]
    assert [c.name for c in back.items] == names and back.has_next and not back.has_previous


@pytest.mark.parametrize("sort", ["name", "-name", "inn", "-inn", "created", "-created"])
def test_keyset_pages_cover_every_row_once_whatever_the_sort_and_ties(manager_client, staff, sort):
    from sdelka.web import selectors

    for index in range(23):  # several rows share a name, so the pk settles the order
        CounterpartyFactory(owner=staff.manager, name=f"ООО «Двойник {index % 4}»")
    visible = Counterparty.objects.visible_to(staff.manager)
    order = selectors.COUNTERPARTY_SORTS[sort]
    pages = [selectors.keyset_page(visible, order=order, per_page=5)]
    while pages[-1].has_next and len(pages) < 10:
        pages.append(selectors.keyset_page(visible, order=order, after=pages[-1].next_cursor, per_page=5))
    seen = [c.pk for page in pages for c in page.items]
    backwards = [pages[-1]]
    while backwards[-1].has_previous and len(backwards) < 10:
        backwards.append(selectors.keyset_page(visible, order=order, before=backwards[-1].previous_cursor, per_page=5))
    assert [c.pk for page in reversed(backwards) for c in page.items] == seen
    expected = Counterparty.objects.visible_to(staff.manager).order_by(*selectors.COUNTERPARTY_SORTS[sort])
    assert seen == [c.pk for c in expected]


def test_a_forged_cursor_shows_the_first_page(manager_client, staff):
    CounterpartyFactory(owner=staff.manager, name="ООО «Единственный»")
    for cursor in ("garbage", "W10", "WyJhIiwgImIiXQ"):  # not base64 JSON; []; ["a", "b"]
        page = manager_client.get(reverse("web:counterparty-list"), {"after": cursor}).context["page"]
        assert [c.name for c in page.items] == ["ООО «Единственный»"]


def test_list_query_count_does_not_grow_with_rows(manager_client, staff, django_assert_max_num_queries):
    tag = Tag.objects.create(name="VIP-клиенты")
    for _ in range(40):
        CounterpartyFactory(owner=staff.manager).tags.add(tag)
    with django_assert_max_num_queries(8):
        response = manager_client.get(reverse("web:counterparty-list"))
    assert len(response.context["page"].items) == 40


def test_manager_opening_another_managers_counterparty_gets_404(manager_client, staff):
    foreign = CounterpartyFactory(owner=staff.other_manager)
    for name in ("web:counterparty-detail", "web:counterparty-edit"):
        assert manager_client.get(reverse(name, args=[foreign.pk])).status_code == 404
    response = manager_client.post(reverse("web:counterparty-contact-add", args=[foreign.pk]), {"first_name": "Пётр"})
    assert response.status_code == 404
    assert not foreign.contacts.exists()


def test_head_opens_his_team_members_counterparty(client, staff):
    theirs = CounterpartyFactory(owner=staff.east_manager)
    client.force_login(staff.head)
    assert client.get(reverse("web:counterparty-detail", args=[theirs.pk])).status_code == 200


def test_card_shows_requisites_contacts_deals_invoices_and_timeline(
    manager_client, staff, shop, django_assert_max_num_queries
):
    own = CounterpartyFactory(owner=staff.manager)
    ContactPersonFactory(counterparty=own, first_name="Анна", last_name="Смирнова")
    DealFactory(counterparty=own, title="Поставка бумаги")
    invoice = sales_services.create_invoice(
        user=staff.manager, organisation=shop.organisation, counterparty=own,
        lines=[{"product": shop.products[0].pk, "quantity": "1"}],
    )  # fmt: skip
    with django_assert_max_num_queries(40):
        body = manager_client.get(reverse("web:counterparty-detail", args=[own.pk])).content.decode()
    for text in (own.inn, own.kpp, "Смирнова Анна", "Поставка бумаги", f"№ {invoice.number}"):
        assert text in body
    assert 'class="timeline"' in body and "tl-invoice" in body


def test_wrong_inn_is_refused_next_to_the_field_and_the_typed_values_stay(manager_client, staff):
    response = manager_client.post(
        reverse("web:counterparty-create"),
        {
            "kind": "legal",
            "name": "ООО «Опечатка»",
            "inn": BAD_INN,
            "kpp": "770701001",
            "phones": "+7 495 111-22-33",
            "is_active": "on",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert escape(form.errors["inn"][0]) == refusal(requisites.validate_inn, BAD_INN)
    body = response.content.decode()
    assert 'value="ООО «Опечатка»"' in body and f'value="{BAD_INN}"' in body and 'value="+7 495 111-22-33"' in body
    assert 'id="id_inn_error"' in body
    assert not Counterparty.objects.filter(name="ООО «Опечатка»").exists()


def test_a_valid_counterparty_is_created_for_the_manager(manager_client, staff):
    inn = valid_inn()
    response = manager_client.post(
        reverse("web:counterparty-create"),
        {"kind": "legal", "name": "ООО «Верный ИНН»", "inn": inn, "kpp": inn[:4] + "01001", "is_active": "on"},
    )
    created = Counterparty.objects.get(inn=inn)
    assert response.status_code == 302
    assert response["Location"] == reverse("web:counterparty-detail", args=[created.pk])
    assert created.owner == staff.manager


def test_requisites_are_checked_as_they_are_typed(manager_client):
    url = reverse("web:counterparty-check")
    wrong = manager_client.get(url, {"field": "inn", "inn": BAD_INN, "kind": "legal"}).content.decode()
    assert refusal(requisites.validate_inn, BAD_INN) in wrong
    inn = valid_inn()
    right = manager_client.get(url, {"field": "inn", "inn": inn, "kpp": inn[:4] + "01001", "kind": "legal"})
    assert "error" not in right.content.decode() and "✓" in right.content.decode()
    kpp = manager_client.get(url, {"field": "kpp", "inn": inn, "kpp": "12", "kind": "legal"}).content.decode()
    assert refusal(requisites.validate_kpp, "12") in kpp
    bik = manager_client.get(url, {"field": "bik", "bik": "04452"}).content.decode()
    assert refusal(requisites.validate_bik, "04452") in bik
    account = manager_client.get(url, {"field": "number", "bik": "044525225", "number": "40702810000000000001"})
    expected = refusal(requisites.validate_account_against_bik, "40702810000000000001", "044525225")
    assert expected in account.content.decode()
    assert manager_client.get(url, {"field": "owner"}).status_code == 404


def test_possible_duplicates_warned_before_saving(manager_client, staff):
    existing = CounterpartyFactory(owner=staff.manager, name="ООО «Ромашка и партнёры»", phones="+7 495 765-43-21")
    hint = manager_client.get(reverse("web:counterparty-duplicates"), {"name": "", "phones": "8 (495) 7654321"})
    assert existing.name in hint.content.decode()

    data = {"kind": "person", "name": "Ромашка и партнёры", "is_active": "on"}
    response = manager_client.post(reverse("web:counterparty-create"), data)
    assert response.status_code == 200
    assert response.context["duplicates"] == [existing]
    assert not Counterparty.objects.filter(kind="person").exists()

    response = manager_client.post(reverse("web:counterparty-create"), {**data, "confirm_duplicates": "1"})
    assert response.status_code == 302
    assert Counterparty.objects.filter(kind="person", name="Ромашка и партнёры").exists()


def test_contact_added_from_the_card_and_errors_shown_in_place(manager_client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    url = reverse("web:counterparty-contact-add", args=[own.pk])
    bad = manager_client.post(url, {"last_name": "Иванова", "emails": "not-an-email"}, HTTP_HX_REQUEST="true")
    body = bad.content.decode()
    assert bad.status_code == 200
    assert "first_name" in bad.context["contact_form"].errors
    assert 'value="Иванова"' in body
    assert not own.contacts.exists()
    good = manager_client.post(
        url,
        {"last_name": "Иванова", "first_name": "Мария", "position": "Бухгалтер", "emails": "m@ex.ru"},
        HTTP_HX_REQUEST="true",
    )
    assert "Иванова Мария" in good.content.decode()
    assert own.contacts.get().position == "Бухгалтер"


# --- Deals ------------------------------------------------------------------------------------------


def test_board_shows_deals_by_stage_with_constant_queries(manager_client, staff, django_assert_max_num_queries):
    own = CounterpartyFactory(owner=staff.manager)
    for _ in range(25):
        DealFactory(counterparty=own)
    with django_assert_max_num_queries(10):
        response = manager_client.get(reverse("web:deal-board"))
    columns = response.context["columns"]
    assert sum(len(column.deals) for column in columns) == 25
    assert [c.stage.order for c in columns] == sorted(c.stage.order for c in columns)


def test_head_sees_his_teams_deals_and_a_manager_only_his(client, staff):
    east = DealFactory(counterparty=CounterpartyFactory(owner=staff.east_manager), title="Сделка Востока")
    mine = DealFactory(counterparty=CounterpartyFactory(owner=staff.manager), title="Моя сделка")
    outsider = DealFactory(counterparty=CounterpartyFactory(owner=staff.outsider), title="Чужая сделка")
    client.force_login(staff.head)
    body = client.get(reverse("web:deal-board")).content.decode()
    assert east.title in body and mine.title in body and outsider.title not in body
    client.force_login(staff.manager)
    body = client.get(reverse("web:deal-list")).content.decode()
    assert mine.title in body and east.title not in body
    assert client.get(reverse("web:deal-detail", args=[east.pk])).status_code == 404


def test_moving_a_deal_goes_through_the_service_and_is_recorded(manager_client, staff):
    deal = DealFactory(counterparty=CounterpartyFactory(owner=staff.manager))
    stages = list(deal.pipeline.stages.order_by("order"))
    target = next(s for s in stages if s.kind == StageKind.OPEN and s.pk != deal.stage_id)
    response = manager_client.post(
        reverse("web:deal-move", args=[deal.pk]), {"stage": target.pk}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and f'id="deal-{deal.pk}"' in response.content.decode()
    deal.refresh_from_db()
    assert deal.stage == target
    last = deal.history.order_by("-history_date").first()
    assert last.history_user == staff.manager and last.history_change_reason.endswith(target.name)

    lost = next(s for s in stages if s.kind == StageKind.LOST)
    refused = manager_client.post(reverse("web:deal-move", args=[deal.pk]), {"stage": lost.pk})
    assert refused.status_code == 400
    deal.refresh_from_db()
    assert deal.stage == target


def test_deal_of_another_manager_cannot_be_moved(manager_client, staff):
    deal = DealFactory(counterparty=CounterpartyFactory(owner=staff.other_manager))
    stage = Stage.objects.filter(pipeline_id=deal.pipeline_id).exclude(pk=deal.stage_id).first()
    assert manager_client.post(reverse("web:deal-move", args=[deal.pk]), {"stage": stage.pk}).status_code == 404


def test_won_and_lost_with_reason(manager_client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    won, lost = DealFactory(counterparty=own), DealFactory(counterparty=own)
    manager_client.post(reverse("web:deal-won", args=[won.pk]))
    won.refresh_from_db()
    assert won.stage.kind == StageKind.WON and won.closed_at is not None
    refused = manager_client.post(reverse("web:deal-lost", args=[lost.pk]), {"lost_reason": ""})
    assert refused.status_code == 200 and "lost_reason" in refused.context["lost_form"].errors
    manager_client.post(reverse("web:deal-lost", args=[lost.pk]), {"lost_reason": "Дорого"})
    lost.refresh_from_db()
    assert lost.stage.kind == StageKind.LOST and lost.lost_reason == "Дорого"


def test_deal_created_from_the_form(manager_client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    foreign = CounterpartyFactory(owner=staff.outsider)
    stage = Stage.objects.filter(pipeline__is_default=True, kind=StageKind.OPEN).order_by("order").first()
    data = {"title": "Поставка ручек", "stage": stage.pk, "amount": "1500.50", "currency": "RUB"}
    refused = manager_client.post(reverse("web:deal-create"), {**data, "counterparty": foreign.pk})
    assert refused.status_code == 200 and "counterparty" in refused.context["form"].errors
    response = manager_client.post(reverse("web:deal-create"), {**data, "counterparty": own.pk})
    deal = Deal.objects.get(title="Поставка ручек")
    assert response.status_code == 302 and deal.amount == Decimal("1500.50") and deal.owner == staff.manager


# --- Invoices ---------------------------------------------------------------------------------------


def line_post(shop: Shop, counterparty: Counterparty, lines: list[dict[str, str]], **header: str) -> dict[str, object]:
    data: dict[str, object] = {
        "organisation": shop.organisation.pk,
        "counterparty": counterparty.pk,
        "date": timezone.localdate().isoformat(),
        "currency": "RUB",
        "vat_mode": "included",
        "price_type": shop.retail.pk,
        "prev_price_type": shop.retail.pk,
        **header,
    }
    for field in ("key", "product", "prev_product", "description", "quantity", "price", "discount", "vat_rate"):
        data[f"line_{field}"] = [line.get(field, "") for line in lines]
    return data


def test_recalc_fills_prices_from_the_price_type_and_computes_vat_on_the_server(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    paper, pen = shop.products[0], shop.products[1]
    lines = [
        {"key": "a", "product": str(paper.pk), "quantity": "2", "vat_rate": "22"},
        {"key": "b", "product": str(pen.pk), "quantity": "3", "vat_rate": "22"},
    ]
    response = manager_client.post(reverse("web:invoice-recalc"), line_post(shop, own, lines), HTTP_HX_REQUEST="true")
    rows, totals = response.context["rows"], response.context["totals"]
    assert [row.price for row in rows] == ["450.00", "35.50"]
    assert totals.total == Decimal("1006.50")
    assert totals.vat_amount == Decimal("162.30") + Decimal("19.20")  # 900×22/122, 106.50×22/122
    body = response.content.decode()
    assert "Основной склад: 10" in body and "Склад в Казани: 3" in body

    wholesale = line_post(shop, own, lines, price_type=str(shop.wholesale.pk))
    response = manager_client.post(reverse("web:invoice-recalc"), wholesale, HTTP_HX_REQUEST="true")
    assert [row.price for row in response.context["rows"]] == ["405.00", "31.95"]


def test_recalc_adds_and_removes_lines_and_shows_line_errors(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    lines = [{"key": "a", "description": "Доставка", "quantity": "-1", "price": "100"}]
    response = manager_client.post(reverse("web:invoice-recalc") + "?add=1", line_post(shop, own, lines))
    rows = response.context["rows"]
    assert len(rows) == 2 and rows[0].errors["quantity"]
    response = manager_client.post(reverse("web:invoice-recalc") + "?remove=a", line_post(shop, own, lines))
    assert [row.key for row in response.context["rows"]] != ["a"]


def test_invoice_created_with_two_products_then_issued(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    lines = [
        {
            "key": "a",
            "product": str(shop.products[0].pk),
            "prev_product": str(shop.products[0].pk),
            "quantity": "2",
            "price": "450.00",
            "vat_rate": "22",
        },
        {
            "key": "b",
            "product": str(shop.products[2].pk),
            "prev_product": str(shop.products[2].pk),
            "quantity": "1",
            "price": "600",
            "vat_rate": "22",
        },
        {"key": "c"},
    ]
    response = manager_client.post(reverse("web:invoice-create"), line_post(shop, own, lines))
    invoice = Invoice.objects.get()
    assert response.status_code == 302
    assert invoice.lines.count() == 2 and invoice.total == Decimal("1500.00") and invoice.owner == staff.manager
    detail = manager_client.get(reverse("web:invoice-detail", args=[invoice.pk]))
    assert detail.context["invoice"] == invoice and "Степлер № 24" in detail.content.decode()
    manager_client.post(reverse("web:invoice-issue", args=[invoice.pk]))
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED
    assert manager_client.get(reverse("web:invoice-edit", args=[invoice.pk])).status_code == 302


def test_invoice_errors_keep_the_lines_as_typed(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    lines = [{"key": "a", "description": "Услуга", "quantity": "1,5", "price": "10.005"}]
    response = manager_client.post(reverse("web:invoice-create"), line_post(shop, own, lines))
    assert response.status_code == 200
    assert response.context["rows"][0].errors["price"]
    assert 'value="10.005"' in response.content.decode() and 'value="Услуга"' in response.content.decode()
    assert not Invoice.objects.exists()


def test_invoice_for_a_counterparty_outside_scope_is_refused(manager_client, staff, shop):
    foreign = CounterpartyFactory(owner=staff.outsider)
    lines = [{"key": "a", "product": str(shop.products[0].pk), "quantity": "1"}]
    response = manager_client.post(reverse("web:invoice-create"), line_post(shop, foreign, lines))
    assert response.status_code == 200 and "counterparty" in response.context["form"].errors
    assert not Invoice.objects.exists()


def test_invoice_list_constant_queries_and_visibility(manager_client, staff, shop, django_assert_max_num_queries):
    own, foreign = CounterpartyFactory(owner=staff.manager), CounterpartyFactory(owner=staff.outsider)
    for counterparty in [own] * 12 + [foreign]:
        sales_services.create_invoice(
            user=staff.director, organisation=shop.organisation, counterparty=counterparty,
            lines=[{"product": shop.products[1].pk, "quantity": "1"}],
        )  # fmt: skip
    with django_assert_max_num_queries(6):
        response = manager_client.get(reverse("web:invoice-list"))
    assert {i.counterparty_id for i in response.context["page"].items} == {own.pk}
    foreign_invoice = Invoice.objects.get(counterparty_id=foreign.pk)
    assert manager_client.get(reverse("web:invoice-detail", args=[foreign_invoice.pk])).status_code == 404


# --- Tasks and reminders ----------------------------------------------------------------------------


def test_task_created_from_a_card_and_marked_done(manager_client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    card = reverse("web:counterparty-detail", args=[own.pk])
    due = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = manager_client.post(
        reverse("web:task-create"), {"title": "Позвонить", "due_at": due, "counterparty": own.pk, "next": card}
    )
    assert response.status_code == 302 and response["Location"] == card
    task = Task.objects.get(title="Позвонить")
    assert task.counterparty == own and task.assignee == staff.manager and task.remind_at == task.due_at
    response = manager_client.post(reverse("web:task-done", args=[task.pk]), HTTP_HX_REQUEST="true")
    task.refresh_from_db()
    assert task.is_done and task.completed_by == staff.manager
    assert "done" in response.content.decode()


def test_task_lists_mine_and_team_with_constant_queries(client, staff, django_assert_max_num_queries):
    for _ in range(10):
        create_task(user=staff.head, title="Команде", assignee=staff.east_manager,
                    counterparty=CounterpartyFactory(owner=staff.east_manager))  # fmt: skip
    create_task(user=staff.head, title="Себе", assignee=staff.head)
    client.force_login(staff.head)
    assert [t.title for t in client.get(reverse("web:task-list")).context["page"].items] == ["Себе"]
    with django_assert_max_num_queries(10):
        team = client.get(reverse("web:task-list"), {"scope": "team"}).context["page"].items
    assert len(team) == 11


def test_due_tasks_and_unread_notifications_appear_in_the_header(manager_client, staff):
    task = create_task(user=staff.manager, title="Отправить договор", assignee=staff.manager,
                       due_at=timezone.now() - timedelta(minutes=5))  # fmt: skip
    note = Notification.objects.create(user=staff.manager, text="Оплата по счёту 15", url="/invoices/")
    Notification.objects.create(user=staff.other_manager, text="Чужое напоминание")
    body = manager_client.get(reverse("web:notifications")).content.decode()
    assert task.title in body and note.text in body and "Чужое" not in body
    assert 'class="badge">2<' in body
    manager_client.post(reverse("web:notification-read", args=[note.pk]), HTTP_HX_REQUEST="true")
    note.refresh_from_db()
    assert note.read_at is not None


# --- Catalogue --------------------------------------------------------------------------------------


def test_catalogue_tree_products_prices_and_stock(manager_client, shop, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        response = manager_client.get(reverse("web:product-list"))
    body = response.content.decode()
    assert "Канцтовары" in body and "Бумага" in body and "Степлер № 24" in body
    assert "Розничная" in body
    assert "612.00" in body  # English in tests (settings_test)
    in_group = manager_client.get(reverse("web:product-list"), {"group": shop.group.pk}).context["page"].items
    assert [p.article for p in in_group] == ["БУМ-А4"]
    card = manager_client.get(reverse("web:product-detail", args=[shop.products[0].pk])).content.decode()
    assert "Склад в Казани: 2" in card and "Оптовая" in card


# --- Dashboard --------------------------------------------------------------------------------------


def _dashboard_world(staff, shop, deals: int) -> None:
    own = CounterpartyFactory(owner=staff.manager)
    for index in range(deals):
        DealFactory(counterparty=own, amount=Decimal(100 + index))
        InvoiceFactory(counterparty=own, status="issued", total=Decimal("10.00"), due_date=timezone.localdate())
        sales_services.register_payment(
            user=staff.manager, organisation=shop.organisation, counterparty=own, amount="1.00",
            date=timezone.localdate(), number=f"{deals}-{index}",
        )  # fmt: skip


# The session, the user, the team tree (and a head's users) read once per request, one query per card and
# panel, and the menu's check for sync tasks the user's team may run (none without a team): a regression (a
# query per row, or per visibility check) fails these bounds.
DASHBOARD_QUERIES = {"manager": 13, "head": 14, "director": 11}


@pytest.mark.parametrize("role", sorted(DASHBOARD_QUERIES))
def test_dashboard_query_count_does_not_grow_with_rows(client, staff, shop, role):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(getattr(staff, role))

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse("web:dashboard")).status_code == 200
        return [query["sql"] for query in captured.captured_queries]

    _dashboard_world(staff, shop, deals=2)
    few = queries()
    _dashboard_world(staff, shop, deals=6)
    assert len(queries()) == len(few)
    assert len(few) <= DASHBOARD_QUERIES[role]
    assert len([sql for sql in few if "accounts_team" in sql]) <= 1  # the visibility scope read once


def test_open_deals_of_every_pipeline_counted_with_the_funnel_of_the_default_one(manager_client, staff):
    from sdelka.sales.models import Pipeline

    own = CounterpartyFactory(owner=staff.manager)
    DealFactory(counterparty=own, amount=Decimal("100.00"))
    DealFactory(counterparty=own, amount=Decimal("50.00"))
    other = Pipeline.objects.create(name="Тендеры")
    Stage.objects.create(pipeline=other, name="Заявка", order=1, kind=StageKind.OPEN)
    DealFactory(counterparty=own, pipeline=other, amount=Decimal("7.00"))
    won = Stage.objects.filter(pipeline__is_default=True, kind=StageKind.WON).first()
    DealFactory(counterparty=own, stage=won, closed_at=timezone.now(), amount=Decimal("900.00"))
    DealFactory(counterparty=CounterpartyFactory(owner=staff.outsider), amount=Decimal("400.00"))

    response = manager_client.get(reverse("web:dashboard"))

    assert response.context["summary"].open_deals == 3  # two in the default pipeline, one in the other
    funnel = response.context["funnel"]
    assert [stage.name for stage in funnel] == list(
        Stage.objects.filter(pipeline__is_default=True, kind=StageKind.OPEN)
        .order_by("order")
        .values_list("name", flat=True)
    )
    assert funnel[0].count == 2 and funnel[0].total == Decimal("150.00")
    assert sum(stage.count for stage in funnel[1:]) == 0


def test_funnel_and_board_sum_deals_in_roubles_at_the_latest_rates(manager_client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    sales_services.set_exchange_rate(currency="USD", date=date(2026, 1, 1), rate="70.0000")
    sales_services.set_exchange_rate(currency="USD", date=date(2026, 3, 1), rate="80.0000")  # the latest counts
    sales_services.set_exchange_rate(currency="EUR", date=date(2026, 3, 1), rate="9000.0000", nominal=100)
    DealFactory(counterparty=own, amount=Decimal("100.00"))
    DealFactory(counterparty=own, amount=Decimal("10.00"), currency_id="USD")
    DealFactory(counterparty=own, amount=Decimal("2.00"), currency_id="EUR")
    DealFactory(counterparty=own, amount=Decimal("5.00"), currency_id="CNY")  # no rate: counted, not summed

    response = manager_client.get(reverse("web:dashboard"))
    first = response.context["funnel"][0]
    assert first.count == 4 and first.total == Decimal("1080.00")  # 100 + 10 × 80 + 2 × 90
    assert response.context["unrated"] == ["CNY"]
    assert "CNY" in response.content.decode()

    board = manager_client.get(reverse("web:deal-board"))
    column = board.context["columns"][0]
    assert column.total == Decimal("1080.00") and column.unrated == ["CNY"]


def test_dashboard_funnel_receivables_and_payments(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    for amount in ("100.00", "250.00"):
        DealFactory(counterparty=own, amount=Decimal(amount))
    DealFactory(counterparty=CounterpartyFactory(owner=staff.outsider), amount=Decimal("999.00"))
    invoice = sales_services.create_invoice(
        user=staff.manager, organisation=shop.organisation, counterparty=own,
        lines=[{"product": shop.products[0].pk, "quantity": "1"}], due_date=timezone.localdate(),
    )  # fmt: skip
    sales_services.issue_invoice(user=staff.manager, invoice=invoice)
    sales_services.register_payment(
        user=staff.manager, organisation=shop.organisation, counterparty=own, amount="100.00",
        date=timezone.localdate(), number="77",
    )  # fmt: skip
    response = manager_client.get(reverse("web:dashboard"))
    first = response.context["funnel"][0]
    assert (first.count, first.total) == (2, Decimal("350.00"))
    bars = response.context["funnel_chart"].bars
    assert bars[0].length == max(bar.length for bar in bars) > 0
    assert response.context["awaiting"] == [invoice]
    assert [p.number for p in response.context["payments"]] == ["77"]
    assert not response.context["scope"].has_team


def test_unpaid_total_adds_currencies_in_roubles_at_the_latest_rates(manager_client, staff):
    own = CounterpartyFactory(owner=staff.manager)
    sales_services.set_exchange_rate(currency="USD", date=date(2026, 3, 1), rate="80.0000")
    InvoiceFactory(counterparty=own, status="issued", total=Decimal("40.00"))
    InvoiceFactory(counterparty=own, status="issued", total=Decimal("10.00"), currency_id="USD")
    InvoiceFactory(counterparty=own, status="issued", total=Decimal("3.00"), currency_id="CNY")
    summary = manager_client.get(reverse("web:dashboard")).context["summary"]
    assert summary.unpaid_total == Decimal("840.00") and summary.unpaid_unrated == ["CNY"]


def test_dashboard_charts_are_accessible_svg_with_a_table(manager_client, staff, shop):
    own = CounterpartyFactory(owner=staff.manager)
    DealFactory(counterparty=own, amount=Decimal("300.00"))
    InvoiceFactory(counterparty=own, status="issued", total=Decimal("40.00"), due_date=timezone.localdate())
    page = manager_client.get(reverse("web:dashboard")).content.decode()
    for chart in ("funnel-chart", "sales-chart", "aging-chart-RUB"):
        assert f'aria-labelledby="{chart}-title {chart}-desc"' in page
        assert f'<title id="{chart}-title">' in page
    assert page.count('role="img"') == 3
    assert page.count('<details class="chart-table">') == 3
    assert "<script" not in page.split("<main", 1)[1]  # drawn by the server, no chart script


def test_weekly_sales_compare_the_same_iso_weeks_a_year_ago(manager_client, staff):
    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    year, week, _ = monday.isocalendar()
    twin = date.fromisocalendar(year - 1, min(week, 52), 1)
    own = CounterpartyFactory(owner=staff.manager)
    InvoiceFactory(counterparty=own, status="issued", total=Decimal("100.00"), date=monday)
    InvoiceFactory(counterparty=own, status="paid", total=Decimal("10.00"), exchange_rate=Decimal("90.5"), date=monday)
    InvoiceFactory(counterparty=own, status="draft", total=Decimal("5000.00"), date=monday)
    InvoiceFactory(counterparty=own, status="cancelled", total=Decimal("7000.00"), date=monday)
    InvoiceFactory(counterparty=own, status="issued", total=Decimal("300.00"), date=twin + timedelta(days=6))
    InvoiceFactory(counterparty=own, status="issued", total=Decimal("1.00"), date=twin - timedelta(days=1))
    InvoiceFactory(counterparty=CounterpartyFactory(owner=staff.outsider), status="issued", total=Decimal("9"))

    weeks = manager_client.get(reverse("web:dashboard")).context["weeks"]

    assert len(weeks) == 12 and weeks[-1].monday == monday
    assert [w.monday for w in weeks] == sorted(w.monday for w in weeks)
    latest = weeks[-1]
    assert latest.current == Decimal("1005.00")
    if week <= 52:
        assert latest.previous_monday == twin
        assert latest.previous == Decimal("300.00")
    assert sum(w.current for w in weeks) == Decimal("1005.00")


def test_same_iso_week_a_year_ago_skips_week_53():
    from sdelka.web.selectors import _same_iso_week_a_year_ago

    assert _same_iso_week_a_year_ago(date(2026, 12, 21)) == date(2025, 12, 22)  # week 52 of both years
    assert _same_iso_week_a_year_ago(date(2021, 1, 4)) == date(2019, 12, 30)  # week 1 of 2020 began in 2019
    assert _same_iso_week_a_year_ago(date(2026, 12, 28)) is None  # 2026 has a week 53, 2025 has not


def test_receivables_by_age_bucket_on_the_dashboard(manager_client, staff):
    today = timezone.localdate()
    own = CounterpartyFactory(owner=staff.manager)
    for days, total in ((-5, "10.00"), (10, "20.00"), (45, "30.00"), (75, "40.00"), (200, "50.00")):
        InvoiceFactory(counterparty=own, status="issued", total=Decimal(total), due_date=today - timedelta(days=days))
    InvoiceFactory(counterparty=CounterpartyFactory(owner=staff.outsider), status="issued", total=Decimal("999"))

    [(row, chart)] = manager_client.get(reverse("web:dashboard")).context["aging"]

    assert row.currency == "RUB" and row.open == Decimal("150.00") and row.overdue == Decimal("140.00")
    assert [bar.value for bar in chart.bars] == [Decimal(v) for v in ("10.00", "20.00", "30.00", "40.00", "50.00")]
    assert chart.bars[-1].length == max(bar.length for bar in chart.bars)


def test_head_switches_between_his_own_figures_and_his_teams(client, staff):
    mine = CounterpartyFactory(owner=staff.head)
    DealFactory(counterparty=mine, amount=Decimal("10.00"))
    DealFactory(counterparty=CounterpartyFactory(owner=staff.east_manager), amount=Decimal("20.00"))
    DealFactory(counterparty=CounterpartyFactory(owner=staff.outsider), amount=Decimal("40.00"))
    client.force_login(staff.head)

    def funnel_sum(scope: str) -> Decimal:
        response = client.get(reverse("web:dashboard"), {"scope": scope})
        return sum((stage.total for stage in response.context["funnel"]), Decimal(0))

    assert funnel_sum("") == Decimal("30.00")  # the team by default
    assert funnel_sum("team") == Decimal("30.00")
    assert funnel_sum("mine") == Decimal("10.00")
    client.force_login(staff.director)
    assert funnel_sum("team") == Decimal("70.00")
    client.force_login(staff.manager)
    response = client.get(reverse("web:dashboard"), {"scope": "team"})
    assert response.context["scope"].name == "mine" and 'href="?scope=team"' not in response.content.decode()
