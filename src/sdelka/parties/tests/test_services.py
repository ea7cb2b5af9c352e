from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from sdelka.parties import services
from sdelka.parties.models import ContactPerson, Counterparty, CounterpartyBankAccount
from tests.factories import CounterpartyFactory

from .helpers import SBER_BIK, SBER_CORR, VTB_BIK, VTB_CORR, account, bank_account_data, inn10, inn12, legal_data
from .helpers import ogrn as make_ogrn
from .helpers import ogrnip as make_ogrnip

pytestmark = pytest.mark.django_db


def refused(call, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        call(**kwargs)
    return exc.value.message_dict


def create_refused(user, data, **kwargs) -> dict[str, list[str]]:
    return refused(services.create_counterparty, user=user, data=data, **kwargs)


# --- Normalisation and the happy path -------------------------------------------------------------------


def test_create_normalises_typed_requisites_and_owns_by_the_acting_user(staff):
    inn = inn10()
    ogrn = make_ogrn()
    spaced_account = account()
    counterparty = services.create_counterparty(
        user=staff.manager,
        data={
            "kind": "legal",
            "name": "  ООО «Ромашка»  ",
            "inn": f" {inn[:4]} {inn[4:7]}-{inn[7:]} ",
            "kpp": inn[:4] + "ab001",
            "ogrn": f"{ogrn[:1]}-{ogrn[1:]}",
        },
        bank_accounts=[
            {
                "bik": "04 45 25 225",
                "bank_name": "ПАО Сбербанк",
                "correspondent_account": "30101 810 4 0000 0000225",
                "number": f"{spaced_account[:5]} {spaced_account[5:8]}-{spaced_account[8:]}",
                "is_main": True,
            }
        ],
        contacts=[{"first_name": "Анна", "last_name": "Смирнова", "phones": "+7 495 123-45-67"}],
    )
    counterparty.refresh_from_db()
    assert counterparty.name == "ООО «Ромашка»"
    assert counterparty.inn == inn
    assert counterparty.kpp == inn[:4] + "AB001"
    assert counterparty.ogrn == ogrn
    assert counterparty.owner == staff.manager
    bank_account = counterparty.bank_accounts.get()
    assert (bank_account.bik, bank_account.number, bank_account.correspondent_account) == (
        SBER_BIK,
        spaced_account,
        SBER_CORR,
    )
    assert bank_account.currency_id == "RUB"
    assert counterparty.contacts.get().first_name == "Анна"


def test_entrepreneur_and_person_with_valid_requisites(staff):
    ip = services.create_counterparty(
        user=staff.manager,
        data={"kind": "entrepreneur", "name": "ИП Иванов", "inn": inn12(), "ogrn": make_ogrnip()},
    )
    person = services.create_counterparty(user=staff.manager, data={"kind": "person", "name": "Петров П. П."})
    assert ip.pk and person.pk
    assert person.inn == ""


def test_history_records_the_acting_user(staff):
    counterparty = services.create_counterparty(user=staff.manager, data=legal_data())
    services.update_counterparty(user=staff.head, counterparty=counterparty, data={"comment": "Звонил"})
    rows = list(Counterparty.history.filter(id=counterparty.pk).order_by("history_date"))
    assert [(row.history_type, row.history_user) for row in rows] == [("+", staff.manager), ("~", staff.head)]
    assert rows[-1].comment == "Звонил"


# --- Each rule refuses with the field named --------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"inn": "7707083894", "kpp": "770701001"}, "inn", "check digit"),
        ({"inn": "0000000000", "kpp": "000001001"}, "inn", "zeros"),
        ({"inn": "77070838"}, "inn", "10 digits"),
        ({"inn": "123456789047", "kpp": ""}, "inn", "10-digit ИНН"),
        ({"kpp": ""}, "kpp", "must have a КПП"),
        ({"kpp": "7707-01-0"}, "kpp", "9 characters"),
        ({"ogrn": "1027739609392"}, "ogrn", "check digit"),
        ({"ogrn": "304500116000157"}, "ogrn", "13-digit ОГРН"),
        ({"ogrn": "12345"}, "ogrn", "13 digits"),
        ({"okpo": "123"}, "okpo", "ОКПО"),
        ({"name": "  "}, "name", "short name"),
        ({"emails": "sales@romashka.ru, not-an-email"}, "emails", "not-an-email"),
        ({"phones": "+7 495 123-45-67, 12"}, "phones", "fewer than 5 digits"),
        ({"kind": "company"}, "kind", "company"),
    ],
)
def test_legal_entity_rule_refuses_naming_the_field(staff, overrides, field, words):
    errors = create_refused(staff.manager, legal_data(**overrides))
    assert field in errors, errors
    assert any(words in message for message in errors[field]), errors[field]
    assert not Counterparty.objects.exists()


@pytest.mark.parametrize(
    ("kind", "overrides", "field", "words"),
    [
        ("entrepreneur", {"inn": "7707083893"}, "inn", "12-digit ИНН"),
        ("entrepreneur", {"kpp": "770701001"}, "kpp", "no КПП"),
        ("entrepreneur", {"ogrn": "1027700132195"}, "ogrn", "15-digit ОГРНИП"),
        ("entrepreneur", {"ogrn": "313242342342332"}, "ogrn", "check digit"),
        ("person", {"inn": "7707083893"}, "inn", "12-digit ИНН"),
        ("person", {"inn": "123456789037"}, "inn", "check digit"),
        ("person", {"kpp": "770701001"}, "kpp", "no КПП"),
        ("person", {"ogrn": "304500116000157"}, "ogrn", "has no ОГРН"),
    ],
)
def test_entrepreneur_and_person_rules_refuse_naming_the_field(staff, kind, overrides, field, words):
    errors = create_refused(staff.manager, {"kind": kind, "name": "Иванов", "inn": inn12(), **overrides})
    assert any(words in message for message in errors[field]), errors


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"number": "40702810138250123018"}, "number", "control key"),
        ({"number": "4070281013825012301"}, "number", "20 digits"),
        ({"bik": "04452522"}, "bik", "9 digits"),
        ({"correspondent_account": VTB_CORR}, "correspondent_account", "БИК"),
        ({"correspondent_account": "40702810138250123017"}, "correspondent_account", "starts with 30101"),
        ({"bank_name": ""}, "bank_name", "bank"),
        ({"currency": "XYZ"}, "currency", "Unknown currency"),
    ],
)
def test_nested_bank_account_rule_refuses_naming_the_field_and_saves_nothing(staff, overrides, field, words):
    errors = create_refused(staff.manager, legal_data(), bank_accounts=[bank_account_data(**overrides)])
    key = f"bank_accounts.0.{field}"
    assert any(words in message for message in errors[key]), errors
    assert not Counterparty.objects.exists()
    assert not CounterpartyBankAccount.objects.exists()


def test_account_key_is_checked_against_its_own_bik(staff):
    vtb_account = account(VTB_BIK)
    errors = create_refused(staff.manager, legal_data(), bank_accounts=[bank_account_data(number=vtb_account)])
    assert "bank_accounts.0.number" in errors
    services.create_counterparty(
        user=staff.manager,
        data=legal_data(),
        bank_accounts=[bank_account_data(bik=VTB_BIK, correspondent_account=VTB_CORR, number=vtb_account)],
    )


def test_treasury_account_is_accepted_without_its_key(staff):
    counterparty = services.create_counterparty(
        user=staff.manager,
        data=legal_data(),
        bank_accounts=[
            bank_account_data(
                bik="017003983", number="03100643000000018500", correspondent_account="40102810445370000059"
            )
        ],
    )
    assert counterparty.bank_accounts.count() == 1


def test_only_one_main_bank_account(staff):
    errors = create_refused(
        staff.manager,
        legal_data(),
        bank_accounts=[bank_account_data(is_main=True), bank_account_data(is_main=True)],
    )
    assert any("only one main" in m for m in errors["bank_accounts.0.is_main"])
    counterparty = services.create_counterparty(
        user=staff.manager, data=legal_data(), bank_accounts=[bank_account_data(is_main=True)]
    )
    errors = refused(
        services.add_bank_account,
        user=staff.manager,
        counterparty=counterparty,
        data=bank_account_data(is_main=True),
    )
    assert any("only one main" in m for m in errors["is_main"])
    # Moving the flag in one request is fine: the old main is demoted before the new one is saved.
    old = counterparty.bank_accounts.get()
    services.update_counterparty(
        user=staff.manager,
        counterparty=counterparty,
        data={},
        bank_accounts=[bank_account_data(is_main=True), {"id": old.pk, "is_main": False}],
    )
    assert list(counterparty.bank_accounts.filter(is_main=True)) != [old]
    assert counterparty.bank_accounts.filter(is_main=True).count() == 1


def test_same_account_twice_is_refused(staff):
    number = account()
    errors = create_refused(
        staff.manager, legal_data(), bank_accounts=[bank_account_data(number=number), bank_account_data(number=number)]
    )
    assert "bank_accounts.1.number" in errors


def test_nested_contact_rules(staff):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)
    errors = create_refused(
        staff.manager,
        legal_data(),
        contacts=[{"first_name": "Анна"}, {"first_name": "", "birthday": tomorrow, "emails": "anna@"}],
    )
    assert set(errors) == {"contacts.1.first_name", "contacts.1.birthday", "contacts.1.emails"}
    assert not ContactPerson.objects.exists()


def test_errors_in_several_places_are_reported_together(staff):
    errors = create_refused(
        staff.manager,
        legal_data(inn="7707083894"),
        bank_accounts=[bank_account_data(bik="1")],
        contacts=[{"first_name": ""}],
    )
    assert {"inn", "bank_accounts.0.bik", "contacts.0.first_name"} <= set(errors)


# --- Duplicates ------------------------------------------------------------------------------------------


def test_duplicate_inn_kpp_is_refused_with_a_link_to_the_visible_one(staff):
    existing = services.create_counterparty(user=staff.manager, data=legal_data(name="ООО «Первая»"))
    data = legal_data(inn=existing.inn, kpp=existing.kpp, name="ООО «Вторая»")
    errors = create_refused(staff.manager, data)
    (message,) = errors["inn"]
    assert "ООО «Первая»" in message
    assert existing.get_absolute_url() in message
    assert Counterparty.objects.count() == 1


def test_duplicate_outside_scope_is_refused_without_naming_it(staff):
    hidden = CounterpartyFactory(owner=staff.outsider, name="ООО «Чужая»")
    errors = create_refused(staff.manager, legal_data(inn=hidden.inn, kpp=hidden.kpp))
    (message,) = errors["inn"]
    assert "already exists" in message
    assert "Чужая" not in message
    assert hidden.get_absolute_url() not in message
    assert Counterparty.objects.count() == 1


def test_same_inn_with_another_kpp_is_a_branch_not_a_duplicate(staff):
    head_office = services.create_counterparty(user=staff.manager, data=legal_data())
    branch = services.create_counterparty(
        user=staff.manager, data=legal_data(inn=head_office.inn, kpp=head_office.inn[:4] + "43001")
    )
    assert branch.pk != head_office.pk


def test_update_into_a_duplicate_is_refused_and_changes_nothing(staff):
    first = services.create_counterparty(user=staff.manager, data=legal_data())
    second = services.create_counterparty(user=staff.manager, data=legal_data())
    old_inn = second.inn
    errors = refused(
        services.update_counterparty,
        user=staff.manager,
        counterparty=second,
        data={"inn": first.inn, "kpp": first.kpp},
    )
    assert first.get_absolute_url() in errors["inn"][0]
    second.refresh_from_db()
    assert second.inn == old_inn


# --- Owners, co-owners, VIP --------------------------------------------------------------------------------


def test_manager_cannot_give_a_counterparty_to_someone_else(staff):
    errors = create_refused(staff.manager, legal_data(owner=staff.other_manager))
    assert "owner" in errors
    errors = create_refused(staff.manager, legal_data(co_owners=[staff.outsider]))
    assert "co_owners" in errors


def test_head_gives_within_his_subtree_only(staff):
    counterparty = services.create_counterparty(user=staff.head, data=legal_data(owner=staff.east_manager))
    assert counterparty.owner == staff.east_manager
    errors = create_refused(staff.head, legal_data(owner=staff.outsider))
    assert "owner" in errors


def test_director_and_admin_give_to_anyone(staff):
    for boss in (staff.director, staff.admin):
        counterparty = services.create_counterparty(
            user=boss, data=legal_data(owner=staff.outsider, co_owners=[staff.manager])
        )
        assert counterparty.owner == staff.outsider
        assert list(counterparty.co_owners.all()) == [staff.manager]


def test_existing_co_owners_stay_when_a_manager_edits(staff):
    counterparty = services.create_counterparty(user=staff.director, data=legal_data(owner=staff.manager))
    counterparty.co_owners.add(staff.outsider)
    updated = services.update_counterparty(
        user=staff.manager,
        counterparty=counterparty,
        data={"co_owners": [staff.outsider, staff.manager], "name": "ООО «Новое имя»"},
    )
    assert set(updated.co_owners.all()) == {staff.outsider, staff.manager}


def test_update_outside_scope_is_refused(staff):
    hidden = CounterpartyFactory(owner=staff.outsider)
    with pytest.raises(PermissionDenied):
        services.update_counterparty(user=staff.manager, counterparty=hidden, data={"name": "x"})
    with pytest.raises(PermissionDenied):
        services.add_contact(user=staff.manager, counterparty=hidden, data={"first_name": "Анна"})


def test_marking_vip_names_the_owner(staff):
    counterparty = services.create_counterparty(user=staff.director, data=legal_data(owner=staff.manager))
    services.set_vip(user=staff.director, counterparty=counterparty, is_vip=True, vip_users=[staff.accountant])
    counterparty.refresh_from_db()
    assert counterparty.is_vip
    assert set(counterparty.vip_users.all()) == {staff.manager, staff.accountant}
    assert Counterparty.objects.visible_to(staff.manager).filter(pk=counterparty.pk).exists()
    assert not Counterparty.objects.visible_to(staff.head).filter(pk=counterparty.pk).exists()


def test_vip_on_create_names_the_owner(staff):
    counterparty = services.create_counterparty(user=staff.manager, data=legal_data(is_vip=True))
    assert list(counterparty.vip_users.all()) == [staff.manager]


def test_manager_cannot_name_outsiders_as_vip_users(staff):
    counterparty = services.create_counterparty(user=staff.manager, data=legal_data())
    errors = refused(
        services.set_vip, user=staff.manager, counterparty=counterparty, is_vip=True, vip_users=[staff.outsider]
    )
    assert "vip_users" in errors
    counterparty.refresh_from_db()
    assert not counterparty.is_vip


# --- Single rows --------------------------------------------------------------------------------------------


def test_add_and_update_contact_and_bank_account(staff):
    counterparty = services.create_counterparty(user=staff.manager, data=legal_data())
    contact = services.add_contact(
        user=staff.manager, counterparty=counterparty, data={"first_name": "Анна", "phones": "8 495 1234567"}
    )
    contact = services.update_contact(user=staff.manager, contact=contact, data={"position": " Директор "})
    assert ContactPerson.objects.get(pk=contact.pk).position == "Директор"
    errors = refused(services.update_contact, user=staff.manager, contact=contact, data={"first_name": ""})
    assert "first_name" in errors

    bank_account = services.add_bank_account(user=staff.manager, counterparty=counterparty, data=bank_account_data())
    errors = refused(services.update_bank_account, user=staff.manager, bank_account=bank_account, data={"bik": VTB_BIK})
    assert "number" in errors  # the key no longer matches the new БИК
    services.update_bank_account(user=staff.manager, bank_account=bank_account, data={"is_main": True})
    assert CounterpartyBankAccount.objects.get(pk=bank_account.pk).is_main


def test_row_cannot_move_to_another_counterparty(staff):
    first = services.create_counterparty(user=staff.manager, data=legal_data())
    second = services.create_counterparty(user=staff.manager, data=legal_data())
    contact = services.add_contact(user=staff.manager, counterparty=first, data={"first_name": "Анна"})
    errors = refused(services.update_contact, user=staff.manager, contact=contact, data={"counterparty": second})
    assert "counterparty" in errors


def test_nested_update_of_a_row_of_another_counterparty_is_refused(staff):
    first = services.create_counterparty(user=staff.manager, data=legal_data())
    second = services.create_counterparty(user=staff.manager, data=legal_data())
    contact = services.add_contact(user=staff.manager, counterparty=first, data={"first_name": "Анна"})
    errors = refused(
        services.update_counterparty,
        user=staff.manager,
        counterparty=second,
        data={},
        contacts=[{"id": contact.pk, "first_name": "Мария"}],
    )
    assert "contacts.0.id" in errors
    assert ContactPerson.objects.get(pk=contact.pk).first_name == "Анна"
