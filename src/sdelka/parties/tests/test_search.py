"""Counterparty search on whichever database the suite runs on (SQLite or PostgreSQL): one folded document
per counterparty and per contact, the ИНН by prefix; on PostgreSQL the plan must use the trigram indexes."""

from __future__ import annotations

import pytest
from django.db import connection

from sdelka.parties import selectors
from sdelka.parties.models import Counterparty
from tests.factories import ContactPersonFactory, CounterpartyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def book(staff):
    omega = CounterpartyFactory(
        name="ООО «Омега Центр»",
        full_name="Общество с ограниченной ответственностью «Омега-Центр Ёлки»",
        inn="7704123456",
        phones="+7 (495) 765-43-21",
        emails="Sales@Omega-Center.ru",
        owner=staff.manager,
    )
    ContactPersonFactory(
        counterparty=omega,
        last_name="Щукина",
        first_name="Дарья",
        phones="8 916 111 22 33",
        emails="d.shchukina@mail.ru",
    )
    colleague = CounterpartyFactory(name="АО «Омега Юг»", inn="7704999999", owner=staff.other_manager)
    outside = CounterpartyFactory(name="ЗАО «Омега Север»", inn="7704555555", owner=staff.outsider)
    ContactPersonFactory(counterparty=outside, last_name="Щукин", phones="8 916 111 22 44")
    return {"omega": omega, "colleague": colleague, "outside": outside}


def found(user, text):
    return set(selectors.counterparty_list(user=user, search=text).values_list("name", flat=True))


@pytest.mark.parametrize(
    "text",
    [
        "омега центр",  # a fragment of the name, in another case
        "ОМЕГА ЦЕНТР",
        "оМеГа ЦеНтР",  # mixed case: no list of spellings covers it, folding does
        "ёлки",  # ё in the full name
        "ЁЛКИ",
        "sales@omega",  # e-mail, any case
        "OMEGA-CENTER.RU",
        "7704123456",  # ИНН, whole
        "770412",  # ИНН prefix
        "+7 495 765-43-21",  # phone as typed differently
        "84957654321",
        "765 43 21",
        "щукина",  # a contact's last name, any case
        "ДАРЬЯ",  # a contact's first name
        "D.SHCHUKINA@",  # a contact's e-mail
        "+7 (916) 111-22-33",  # a contact's phone
    ],
)
def test_search_finds_by_every_kind_of_fragment_case_insensitively(staff, book, text):
    assert found(staff.director, text) == {"ООО «Омега Центр»"}


def test_a_match_never_spans_two_fields(staff, book):
    # "…Центр»" ends the name and "Общество…" starts the full name: together they are no fragment of either.
    assert found(staff.director, "Центр»Общество") == set()
    assert found(staff.director, "Центр» Общество") == set()


def test_search_keeps_to_the_scope(staff, book):
    assert found(staff.manager, "омега") == {"ООО «Омега Центр»"}
    assert found(staff.head, "омега") == {"ООО «Омега Центр»", "АО «Омега Юг»"}
    assert found(staff.director, "омега") == {"ООО «Омега Центр»", "АО «Омега Юг»", "ЗАО «Омега Север»"}
    assert found(staff.manager, "7704555555") == set()
    assert found(staff.manager, "щукин") == {"ООО «Омега Центр»"}  # the outsider's Щукин stays hidden
    assert found(staff.manager, "916 111 22 44") == set()


def test_a_blank_query_keeps_everything_in_scope(staff, book):
    assert len(found(staff.director, "  ")) == 3
    assert len(found(staff.head, "")) == 2


def test_possible_duplicates_and_contacts_fold_case_too(staff, book):
    duplicates = selectors.possible_duplicates(user=staff.manager, name="оМЕГА цЕНТР", email="SALES@omega-center.RU")
    assert {c.name for c in duplicates} == {"ООО «Омега Центр»"}
    assert [c.last_name for c in selectors.contact_list(user=staff.manager, search="ЩУКИНА")] == ["Щукина"]
    assert [c.last_name for c in selectors.contact_list(user=staff.manager, search="916-111-22-33")] == ["Щукина"]


postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL query plans")


def plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # A tiny table would be read whole, or along the name index: may a condition use an index instead?
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@postgres_only
def test_the_search_query_spells_the_indexed_expressions(staff, book):
    by_text = plan(selectors.counterparty_list(user=staff.director, search="омега"))
    assert "counterparty_search_trgm" in by_text
    assert "contact_search_trgm" in by_text
    by_digits = plan(selectors.search_counterparties(Counterparty.objects.all(), "770412"))
    assert "counterparty_search_trgm" in by_digits  # the phone digits
    assert "parties_counterparty_inn" in by_digits  # the ИНН prefix, on its own index
    duplicates = plan(selectors.possible_duplicates(user=staff.director, name="омега", phone="+7 495 765-43-21"))
    assert "counterparty_search_trgm" in duplicates
