"""Every read of counterparties, bank accounts and contact persons, always through `visible_to(user)`.

Search is case-insensitive for Cyrillic on both databases: SQLite's LIKE folds ASCII only, so the text
is matched in the casings people use (as typed, lower, upper, capitalised, title case). Phones are
matched on their digits: the query and the stored phones both lose everything but digits, and an
11-digit Russian number loses its leading 7 or 8, so "+7 (495) 123-45-67" finds "8 495 1234567".
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Replace
from django.shortcuts import get_object_or_404

from sdelka.accounts.models import User

from .models import ContactPerson, Counterparty, CounterpartyBankAccount

PHONE_NOISE = (" ", "-", "(", ")", "+", ".", "\u00a0")
MIN_PHONE_QUERY_DIGITS = 4


def _casings(text: str) -> set[str]:
    return {text, text.lower(), text.upper(), text.capitalize(), text.title()}


def text_q(fields: tuple[str, ...], text: str) -> Q:
    """`field icontains text` for any of `fields`, Cyrillic included on SQLite."""
    query = Q()
    for field in fields:
        for variant in _casings(text):
            query |= Q(**{f"{field}__icontains": variant})
    return query


def phone_query_digits(text: str) -> str:
    """The digits of a phone as typed, without the country code of an 11-digit Russian number."""
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and digits[0] in "78":
        digits = digits[1:]
    return digits


def phone_digits(field: str) -> Any:
    """A database expression: the field with the usual phone punctuation removed."""
    expression: Any = F(field)
    for char in PHONE_NOISE:
        expression = Replace(expression, Value(char), Value(""))
    return expression


def _with_phone_search(queryset: QuerySet[Any], text: str, field: str = "phones") -> tuple[QuerySet[Any], Q]:
    digits = phone_query_digits(text)
    if len(digits) < MIN_PHONE_QUERY_DIGITS:
        return queryset, Q(pk__in=[])
    return queryset.annotate(_phone_digits=phone_digits(field)), Q(_phone_digits__contains=digits)


def counterparty_search_q(text: str) -> Q:
    """Counterparties whose name, full name, ИНН, phone or e-mail — or a contact's — match `text`."""
    text = text.strip()
    query = text_q(("name", "full_name", "emails"), text) | Q(inn__startswith=re.sub(r"[\s\-]", "", text))
    contacts, phone_q = _with_phone_search(ContactPerson.objects.all(), text)
    contact_matches = contacts.filter(phone_q | text_q(("emails", "last_name"), text)).values("counterparty_id")
    return query | Q(pk__in=contact_matches)


def counterparty_list(*, user: User, search: str = "", filters: dict[str, Any] | None = None) -> QuerySet[Counterparty]:
    """Visible counterparties, with what a list shows fetched in a constant number of queries."""
    queryset = Counterparty.objects.visible_to(user).select_related("owner", "group")
    queryset = queryset.prefetch_related("tags", "co_owners", "vip_users", "bank_accounts", "contacts")
    if filters:
        queryset = queryset.filter(**filters)
    return search_counterparties(queryset, search).order_by("name", "pk")


def search_counterparties(queryset: QuerySet[Counterparty], search: str) -> QuerySet[Counterparty]:
    """Narrow `queryset` (already visible) to the counterparties matching `search`; blank keeps all."""
    if not search.strip():
        return queryset
    queryset, phone_q = _with_phone_search(queryset, search)
    return queryset.filter(counterparty_search_q(search) | phone_q)


def counterparty_get(*, user: User, pk: Any) -> Counterparty:
    """One visible counterparty; Http404 for one that does not exist or is outside the user's scope."""
    return get_object_or_404(counterparty_list(user=user), pk=pk)


def possible_duplicates(
    *, user: User, inn: str = "", name: str = "", phone: str = "", email: str = ""
) -> QuerySet[Counterparty]:
    """Visible counterparties sharing the ИНН, the name, a phone or an e-mail with what is being typed."""
    query = Q(pk__in=[])
    inn = re.sub(r"[\s\-]", "", inn)
    if inn:
        query |= Q(inn=inn)
    if name.strip():
        query |= text_q(("name", "full_name"), name.strip())
    if email.strip():
        query |= text_q(("emails",), email.strip())
    queryset = Counterparty.objects.visible_to(user).select_related("owner")
    if phone.strip():
        queryset, phone_q = _with_phone_search(queryset, phone)
        query |= phone_q
    return queryset.filter(query).order_by("name", "pk")


def contact_list(*, user: User, counterparty: Counterparty | None = None, search: str = "") -> QuerySet[ContactPerson]:
    queryset = ContactPerson.objects.visible_to(user).select_related("counterparty")
    if counterparty is not None:
        queryset = queryset.filter(counterparty=counterparty)
    if search.strip():
        queryset, phone_q = _with_phone_search(queryset, search)
        names = text_q(("last_name", "first_name", "middle_name", "emails", "position"), search.strip())
        queryset = queryset.filter(names | phone_q)
    return queryset.order_by("last_name", "first_name", "pk")


def contact_get(*, user: User, pk: Any) -> ContactPerson:
    return get_object_or_404(contact_list(user=user), pk=pk)


def bank_account_list(*, user: User, counterparty: Counterparty | None = None) -> QuerySet[CounterpartyBankAccount]:
    queryset = CounterpartyBankAccount.objects.visible_to(user).select_related("counterparty", "currency")
    if counterparty is not None:
        queryset = queryset.filter(counterparty=counterparty)
    return queryset.order_by("counterparty_id", "-is_main", "pk")


def bank_account_get(*, user: User, pk: Any) -> CounterpartyBankAccount:
    return get_object_or_404(bank_account_list(user=user), pk=pk)
