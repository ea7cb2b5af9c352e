from __future__ import annotations

import pytest
from django.http import Http404

from sdelka.parties import selectors
from tests.factories import ContactPersonFactory, CounterpartyBankAccountFactory, CounterpartyFactory

from .helpers import account

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(staff):
    own = CounterpartyFactory(
        name="ООО «Ромашка»", owner=staff.manager, phones="8 (495) 123-45-67", emails="info@romashka.ru"
    )
    colleague = CounterpartyFactory(name="АО «Лютик»", owner=staff.other_manager)
    outside = CounterpartyFactory(name="ЗАО «Чужие»", owner=staff.outsider)
    vip = CounterpartyFactory(name="ПАО «Важный»", owner=staff.manager, is_vip=True)
    for counterparty in (own, colleague, outside, vip):
        ContactPersonFactory(counterparty=counterparty, phones="+7 916 000-00-0" + str(counterparty.pk % 10))
        CounterpartyBankAccountFactory(counterparty=counterparty, number=account())
    return {"own": own, "colleague": colleague, "outside": outside, "vip": vip}


def names(queryset):
    return {row.name for row in queryset}


def test_lists_keep_to_the_scope(staff, world):
    assert names(selectors.counterparty_list(user=staff.manager)) == {"ООО «Ромашка»"}
    assert names(selectors.counterparty_list(user=staff.head)) == {"ООО «Ромашка»", "АО «Лютик»"}
    assert len(selectors.counterparty_list(user=staff.director)) == 4
    assert len(selectors.counterparty_list(user=staff.accountant)) == 3  # not the VIP
    own_ids = {world["own"].pk}
    assert {c.counterparty_id for c in selectors.contact_list(user=staff.manager)} == own_ids
    assert {b.counterparty_id for b in selectors.bank_account_list(user=staff.manager)} == own_ids
    assert len(selectors.contact_list(user=staff.head)) == 2
    assert len(selectors.bank_account_list(user=staff.admin)) == 4


def test_get_outside_scope_is_404(staff, world):
    assert selectors.counterparty_get(user=staff.manager, pk=world["own"].pk) == world["own"]
    for key in ("colleague", "outside", "vip"):
        with pytest.raises(Http404):
            selectors.counterparty_get(user=staff.manager, pk=world[key].pk)
    hidden_contact = world["outside"].contacts.get()
    with pytest.raises(Http404):
        selectors.contact_get(user=staff.manager, pk=hidden_contact.pk)
    with pytest.raises(Http404):
        selectors.bank_account_get(user=staff.manager, pk=world["outside"].bank_accounts.get().pk)
    assert selectors.contact_get(user=staff.director, pk=hidden_contact.pk) == hidden_contact


@pytest.mark.parametrize(
    "search",
    [
        "ромашка",
        "РОМАШКА",
        "Ромашка",
        "+7 (495) 123-45-67",
        "84951234567",
        "123-45-67",
        "info@romashka",
        "INFO@ROMASHKA.RU",
    ],
)
def test_search_by_name_phone_and_email(staff, world, search):
    assert names(selectors.counterparty_list(user=staff.director, search=search)) == {"ООО «Ромашка»"}


def test_search_by_inn_and_by_a_contacts_phone(staff, world):
    own = world["own"]
    assert names(selectors.counterparty_list(user=staff.director, search=own.inn)) == {own.name}
    contact_phone = own.contacts.get().phones
    assert names(selectors.counterparty_list(user=staff.director, search=contact_phone)) == {own.name}


def test_search_never_leaves_the_scope(staff, world):
    assert not selectors.counterparty_list(user=staff.manager, search="Чужие").exists()
    assert not selectors.counterparty_list(user=staff.manager, search=world["outside"].inn).exists()


def test_possible_duplicates(staff, world):
    own = world["own"]
    assert names(selectors.possible_duplicates(user=staff.manager, inn=own.inn)) == {own.name}
    assert names(selectors.possible_duplicates(user=staff.manager, name="ромашка")) == {own.name}
    assert names(selectors.possible_duplicates(user=staff.manager, phone="+74951234567")) == {own.name}
    assert names(selectors.possible_duplicates(user=staff.manager, email="INFO@romashka.ru")) == {own.name}
    assert not selectors.possible_duplicates(user=staff.manager, inn=world["outside"].inn).exists()
    assert not selectors.possible_duplicates(user=staff.manager).exists()
