from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from sdelka.parties.models import ContactPerson, Counterparty, CounterpartyBankAccount
from tests.factories import ContactPersonFactory, CounterpartyBankAccountFactory, CounterpartyFactory

from .helpers import account, bank_account_data, legal_data

pytestmark = pytest.mark.django_db

LIST = "/api/v1/counterparties/"


def token_client(user) -> APIClient:
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"username": user.username, "password": "secret-pass-123"})
    assert response.status_code == 200, response.content
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def test_anonymous_is_refused(staff):
    assert APIClient().get(LIST).status_code == 401


def test_create_with_nested_rows_and_read_back(staff):
    client = token_client(staff.manager)
    payload = {
        **legal_data(),
        "bank_accounts": [bank_account_data(is_main=True)],
        "contacts": [{"first_name": "Анна", "last_name": "Смирнова", "phones": "+7 495 123-45-67"}],
    }
    response = client.post(LIST, payload, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == staff.manager.pk
    assert body["bank_accounts"][0]["is_main"] is True
    assert body["bank_accounts"][0]["currency"] == "RUB"
    assert body["contacts"][0]["first_name"] == "Анна"
    detail = client.get(f"{LIST}{body['id']}/").json()
    assert detail["bank_accounts"] == body["bank_accounts"]
    counterparty = Counterparty.objects.get(pk=body["id"])
    assert counterparty.history.get().history_user == staff.manager


def test_invalid_nested_row_saves_nothing_and_names_the_field(staff):
    client = token_client(staff.manager)
    payload = {**legal_data(), "bank_accounts": [bank_account_data(number="40702810138250123018")]}
    response = client.post(LIST, payload, format="json")
    assert response.status_code == 400
    assert "control key" in response.json()["bank_accounts.0.number"][0]
    assert not Counterparty.objects.exists()
    assert not CounterpartyBankAccount.objects.exists()


def test_invalid_inn_names_the_field_and_rule(staff):
    response = token_client(staff.manager).post(LIST, legal_data(inn="7707083894"), format="json")
    assert response.status_code == 400
    assert "check digit" in response.json()["inn"][0]


def test_duplicate_is_refused_with_a_link(staff):
    client = token_client(staff.manager)
    first = client.post(LIST, legal_data(), format="json").json()
    response = client.post(LIST, legal_data(inn=first["inn"], kpp=first["kpp"]), format="json")
    assert response.status_code == 400
    assert f"/counterparties/{first['id']}/" in response.json()["inn"][0]
    assert Counterparty.objects.count() == 1


def test_manager_cannot_give_to_another_and_unknown_user_is_refused(staff):
    client = token_client(staff.manager)
    response = client.post(LIST, legal_data(owner=staff.outsider.pk), format="json")
    assert response.status_code == 400
    assert "owner" in response.json()
    response = client.post(LIST, legal_data(co_owners=[999999]), format="json")
    assert response.status_code == 400
    assert "co_owners" in response.json()


def test_update_and_partial_update_with_nested_rows(staff):
    client = token_client(staff.manager)
    created = client.post(LIST, {**legal_data(), "contacts": [{"first_name": "Анна"}]}, format="json").json()
    url = f"{LIST}{created['id']}/"
    contact_id = created["contacts"][0]["id"]
    response = client.patch(
        url,
        {"comment": "VIP soon", "contacts": [{"id": contact_id, "position": "Директор"}, {"first_name": "Олег"}]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert {c["first_name"]: c["position"] for c in response.json()["contacts"]} == {"Анна": "Директор", "Олег": ""}
    full = {**created, "name": "ООО «Новое»", "bank_accounts": [], "contacts": []}
    full.pop("group")
    response = client.put(url, full, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "ООО «Новое»"


def test_guessed_ids_outside_scope_answer_404(staff):
    hidden = CounterpartyFactory(owner=staff.outsider)
    contact = ContactPersonFactory(counterparty=hidden)
    bank_account = CounterpartyBankAccountFactory(counterparty=hidden, number=account())
    client = token_client(staff.manager)
    assert client.get(f"{LIST}{hidden.pk}/").status_code == 404
    assert client.patch(f"{LIST}{hidden.pk}/", {"name": "x"}, format="json").status_code == 404
    assert client.get(f"/api/v1/contacts/{contact.pk}/").status_code == 404
    assert client.get(f"/api/v1/counterparty-bank-accounts/{bank_account.pk}/").status_code == 404
    assert client.delete(f"/api/v1/contacts/{contact.pk}/").status_code == 404
    assert ContactPerson.objects.filter(pk=contact.pk).exists()
    # A reference to it is refused as if it did not exist.
    response = client.post("/api/v1/contacts/", {"counterparty": hidden.pk, "first_name": "Анна"}, format="json")
    assert response.status_code == 400
    assert "counterparty" in response.json()
    assert token_client(staff.director).get(f"{LIST}{hidden.pk}/").status_code == 200


def test_list_search_filters_and_visibility(staff):
    CounterpartyFactory(name="ООО «Ромашка»", owner=staff.manager, phones="8 495 123 45 67")
    CounterpartyFactory(name="ИП Лютиков", owner=staff.manager, kind="entrepreneur", kpp="", inn="123456789047")
    CounterpartyFactory(name="ООО «Ромашка-Чужая»", owner=staff.outsider)
    client = token_client(staff.manager)
    body = client.get(LIST).json()
    assert body["count"] == 2
    assert [row["name"] for row in body["results"]] == ["ИП Лютиков", "ООО «Ромашка»"]
    assert [r["name"] for r in client.get(LIST, {"search": "ромашка"}).json()["results"]] == ["ООО «Ромашка»"]
    assert client.get(LIST, {"search": "+7 (495) 123-45-67"}).json()["count"] == 1
    assert [r["name"] for r in client.get(LIST, {"kind": "entrepreneur"}).json()["results"]] == ["ИП Лютиков"]
    assert client.get(LIST, {"inn": "123456789047"}).json()["count"] == 1
    assert client.get(LIST, {"owner": staff.outsider.pk}).json()["count"] == 0
    assert client.get(LIST, {"ordering": "-name"}).json()["results"][0]["name"] == "ООО «Ромашка»"


def test_contacts_and_bank_accounts_endpoints(staff):
    client = token_client(staff.manager)
    counterparty = client.post(LIST, legal_data(), format="json").json()
    response = client.post(
        "/api/v1/counterparty-bank-accounts/",
        {"counterparty": counterparty["id"], **bank_account_data(number="4070281013825012301 8")},
        format="json",
    )
    assert response.status_code == 400
    assert "number" in response.json()
    response = client.post(
        "/api/v1/counterparty-bank-accounts/",
        {"counterparty": counterparty["id"], **bank_account_data()},
        format="json",
    )
    assert response.status_code == 201, response.json()
    response = client.post(
        "/api/v1/contacts/", {"counterparty": counterparty["id"], "first_name": "Анна"}, format="json"
    )
    assert response.status_code == 201
    contact_url = f"/api/v1/contacts/{response.json()['id']}/"
    assert client.patch(contact_url, {"emails": "anna@"}, format="json").json() == {
        "emails": ["“anna@” is not an e-mail address."]
    }
    listed = client.get("/api/v1/contacts/", {"counterparty": counterparty["id"]}).json()
    assert listed["count"] == 1
    assert client.delete(contact_url).status_code == 204


def test_list_query_count_is_constant(staff, django_assert_max_num_queries):
    client = token_client(staff.manager)

    def add_rows(n):
        for _ in range(n):
            counterparty = CounterpartyFactory(owner=staff.manager)
            counterparty.co_owners.add(staff.other_manager)
            ContactPersonFactory(counterparty=counterparty)
            CounterpartyBankAccountFactory(counterparty=counterparty, number=account())

    add_rows(2)
    with django_assert_max_num_queries(10) as few:
        assert client.get(LIST).json()["count"] == 2
    add_rows(20)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(LIST).json()["count"] == 22
