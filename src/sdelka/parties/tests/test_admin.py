from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from sdelka.parties.models import Counterparty, CounterpartyBankAccount
from tests.factories import ContactPersonFactory, CounterpartyBankAccountFactory, CounterpartyFactory

from .helpers import SBER_BIK, SBER_CORR, account, inn10, ogrn

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/parties/counterparty/"
ADD = "/admin/parties/counterparty/add/"


def admin_client(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="parties"))
    client = Client()
    client.force_login(user)
    return client


def form_data(**overrides):
    inn = inn10()
    data = {
        "kind": "legal", "name": "ООО «Админка»", "inn": inn, "kpp": inn[:4] + "01001", "ogrn": ogrn(),
        "is_active": "on",
        "bank_accounts-TOTAL_FORMS": "0", "bank_accounts-INITIAL_FORMS": "0",
        "contacts-TOTAL_FORMS": "0", "contacts-INITIAL_FORMS": "0",
    }  # fmt: skip
    data.update(overrides)
    return data


@pytest.fixture
def rows(staff):
    return {
        "own": CounterpartyFactory(name="Свой", owner=staff.manager),
        "colleague": CounterpartyFactory(name="Коллеги", owner=staff.other_manager),
        "outside": CounterpartyFactory(name="Чужой", owner=staff.outsider),
        "vip": CounterpartyFactory(name="Важный", owner=staff.other_manager, is_vip=True),
    }


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        ("manager", {"Свой"}),
        ("head", {"Свой", "Коллеги"}),
        ("accountant", {"Свой", "Коллеги", "Чужой"}),
        ("director", {"Свой", "Коллеги", "Чужой", "Важный"}),
        ("admin", {"Свой", "Коллеги", "Чужой", "Важный"}),
    ],
)
def test_changelist_shows_only_visible_rows(staff, rows, role, visible):
    response = admin_client(getattr(staff, role)).get(CHANGELIST)
    assert response.status_code == 200
    assert {row.name for row in response.context["cl"].result_list} == visible


def test_manager_opening_anothers_counterparty_gets_doesnt_exist(staff, rows):
    client = admin_client(staff.manager)
    for key in ("colleague", "outside", "vip"):
        pk = rows[key].pk
        response = client.get(f"{CHANGELIST}{pk}/change/")
        assert response.status_code == 302
        assert response.url == "/admin/"
        assert client.get(f"{CHANGELIST}{pk}/history/").status_code == 404
    assert client.get(f"{CHANGELIST}{rows['own'].pk}/change/").status_code == 200
    assert client.get(f"{CHANGELIST}{rows['own'].pk}/history/").status_code == 200


def test_search_finds_phone_typed_differently(staff):
    CounterpartyFactory(name="Телефонный", owner=staff.manager, phones="8 495 123 45 67")
    response = admin_client(staff.manager).get(CHANGELIST, {"q": "+7 (495) 123-45-67"})
    assert [row.name for row in response.context["cl"].result_list] == ["Телефонный"]


def test_bad_inn_is_refused_with_the_service_message(staff):
    client = admin_client(staff.manager)
    response = client.post(ADD, form_data(inn="7707083894", kpp="770701001", owner=staff.manager.pk))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "check digit" in errors["inn"][0]
    assert not Counterparty.objects.exists()


def test_duplicate_is_refused_with_a_link(staff, rows):
    own = rows["own"]
    response = admin_client(staff.manager).post(ADD, form_data(inn=own.inn, kpp=own.kpp, owner=staff.manager.pk))
    assert own.get_absolute_url() in response.context["adminform"].form.errors["inn"][0]


def test_manager_cannot_give_a_counterparty_away(staff):
    response = admin_client(staff.manager).post(ADD, form_data(owner=staff.outsider.pk))
    assert "owner" in response.context["adminform"].form.errors
    assert not Counterparty.objects.exists()


def test_add_with_inline_rows_goes_through_the_services(staff):
    number = account()
    data = form_data(
        owner=staff.manager.pk,
        inn="",
        kpp="",
        **{
            "bank_accounts-TOTAL_FORMS": "1",
            "bank_accounts-0-bik": "0445 25 225",
            "bank_accounts-0-bank_name": "ПАО Сбербанк",
            "bank_accounts-0-correspondent_account": SBER_CORR,
            "bank_accounts-0-number": f"{number[:5]} {number[5:]}",
            "bank_accounts-0-currency": "RUB",
            "bank_accounts-0-is_main": "on",
            "contacts-TOTAL_FORMS": "1",
            "contacts-0-first_name": "Анна",
            "contacts-0-phones": "+7 916 000-00-00",
            "contacts-0-is_active": "on",
        },
    )
    response = admin_client(staff.manager).post(ADD, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    counterparty = Counterparty.objects.get()
    assert counterparty.bank_accounts.get().bik == SBER_BIK
    assert counterparty.bank_accounts.get().number == number
    assert counterparty.contacts.get().first_name == "Анна"
    assert counterparty.history.get().history_user == staff.manager


def test_inline_bad_account_key_is_refused(staff):
    data = form_data(
        owner=staff.manager.pk,
        **{
            "bank_accounts-TOTAL_FORMS": "1",
            "bank_accounts-0-bik": SBER_BIK,
            "bank_accounts-0-bank_name": "ПАО Сбербанк",
            "bank_accounts-0-number": "40702810138250123018",
            "bank_accounts-0-currency": "RUB",
        },
    )
    response = admin_client(staff.manager).post(ADD, data)
    assert response.status_code == 200
    (formset,) = [f for f in response.context["inline_admin_formsets"] if f.formset.prefix == "bank_accounts"]
    assert "control key" in formset.formset.forms[0].errors["number"][0]
    assert not Counterparty.objects.exists()
    assert not CounterpartyBankAccount.objects.exists()


def test_change_existing_counterparty_and_its_rows(staff, rows):
    own = rows["own"]
    bank_account = CounterpartyBankAccountFactory(counterparty=own, number=account(), is_main=True)
    contact = ContactPersonFactory(counterparty=own, first_name="Анна")
    data = form_data(
        name="Свой переименованный",
        inn=own.inn,
        kpp=own.kpp,
        owner=staff.manager.pk,
        **{
            "bank_accounts-TOTAL_FORMS": "1",
            "bank_accounts-INITIAL_FORMS": "1",
            "bank_accounts-0-id": str(bank_account.pk),
            "bank_accounts-0-counterparty": str(own.pk),
            "bank_accounts-0-bik": SBER_BIK,
            "bank_accounts-0-bank_name": "Сбербанк",
            "bank_accounts-0-correspondent_account": SBER_CORR,
            "bank_accounts-0-number": bank_account.number,
            "bank_accounts-0-currency": "RUB",
            "bank_accounts-0-is_main": "on",
            "contacts-TOTAL_FORMS": "1",
            "contacts-INITIAL_FORMS": "1",
            "contacts-0-id": str(contact.pk),
            "contacts-0-counterparty": str(own.pk),
            "contacts-0-first_name": "Анна",
            "contacts-0-DELETE": "on",
        },
    )
    response = admin_client(staff.manager).post(f"{CHANGELIST}{own.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    own.refresh_from_db()
    assert own.name == "Свой переименованный"
    assert own.bank_accounts.get().bank_name == "Сбербанк"
    assert not own.contacts.exists()


def test_group_and_tag_admin_pages(staff):
    client = admin_client(staff.admin)
    assert client.get("/admin/parties/counterpartygroup/").status_code == 200
    assert client.get("/admin/parties/tag/").status_code == 200
    assert client.get(ADD).status_code == 200
