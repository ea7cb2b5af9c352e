"""Every read of counterparties, bank accounts and contact persons, always through `visible_to(user)`.

Search is case-insensitive, Cyrillic included, on both databases: the searched text and the query are
folded to upper case (`Fold`: PostgreSQL's UPPER, on SQLite a Python `str.upper` registered on every
connection, since SQLite's own UPPER folds ASCII only), then compared with one LIKE.

A counterparty is found by its search document (name, full name, e-mails and phone digits joined into one
string, `counterparty_document`), by a prefix of its ИНН, or by a contact's document (names, e-mails, phone
digits). On PostgreSQL each document has a trigram GIN index on exactly that expression (migrations
parties 0003), so a fragment anywhere in the text is an index scan; the ИНН prefix uses the ИНН index.
Phones are matched on their digits: the query and the stored phones both lose everything but digits, and an
11-digit Russian number loses its leading 7 or 8, so "+7 (495) 123-45-67" finds "8 495 1234567".
"""

from __future__ import annotations

import re
from typing import Any

from django.db.models import F, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import Replace
from django.db.models.lookups import Contains
from django.shortcuts import get_object_or_404

from sdelka.accounts.models import User

from .models import ContactPerson, Counterparty, CounterpartyBankAccount

PHONE_NOISE = (" ", "-", "(", ")", "+", ".", "\u00a0")
MIN_PHONE_QUERY_DIGITS = 4
SQLITE_FOLD = "sdelka_fold"
# Joins the fields of a search document; a query never contains it, so no match spans two fields.
DOCUMENT_SEPARATOR = "\u00a6"


class Fold(Func):
    """Text in upper case for case-insensitive comparison (see the module docstring for SQLite)."""

    function = "UPPER"
    output_field = TextField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return super().as_sql(compiler, connection, function=SQLITE_FOLD, **extra_context)


class Joined(Func):
    """Text expressions joined by `DOCUMENT_SEPARATOR` with `||` (immutable on PostgreSQL, so indexable)."""

    template = "(%(expressions)s)"
    arg_joiner = f" || '{DOCUMENT_SEPARATOR}' || "
    output_field = TextField()


def fold(text: str) -> str:
    """A query as `Fold` sees stored text; the separator dropped so a match stays inside one field."""
    return text.upper().replace(DOCUMENT_SEPARATOR, "")


def text_q(fields: tuple[str, ...], text: str) -> Q:
    """Any of `fields` contains `text`, case-insensitively (Cyrillic included on SQLite)."""
    needle = fold(text)
    query = Q(pk__in=[])
    for field in fields:
        query |= Q(Contains(Fold(F(field)), needle))
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


def phone_q(field: str, text: str) -> Q:
    """The phones in `field` contain the digits of `text`; nothing when it has too few digits for a phone."""
    digits = phone_query_digits(text)
    if len(digits) < MIN_PHONE_QUERY_DIGITS:
        return Q(pk__in=[])
    return Q(Contains(phone_digits(field), digits))


def counterparty_document() -> Fold:
    """What the counterparty search reads; the trigram index of migration parties 0003 is on exactly this."""
    return Fold(Joined(F("name"), F("full_name"), F("emails"), phone_digits("phones")))


def contact_document() -> Fold:
    """What the search reads of a contact person; indexed like `counterparty_document`."""
    return Fold(Joined(F("last_name"), F("first_name"), F("middle_name"), F("emails"), phone_digits("phones")))


def _needles(text: str) -> list[str]:
    """The folded query, and its phone digits when there are enough of them to mean a phone."""
    needles = [fold(text)]
    digits = phone_query_digits(text)
    if len(digits) >= MIN_PHONE_QUERY_DIGITS and digits not in needles:
        needles.append(digits)
    return needles


def _document_q(document: Fold, needles: list[str]) -> Q:
    query = Q(pk__in=[])
    for needle in needles:
        query |= Q(Contains(document, needle))
    return query


def counterparty_search_q(text: str) -> Q:
    """Counterparties whose name, full name, ИНН, phone or e-mail — or a contact's — match `text`.

    One `pk IN (… UNION ALL …)`: each branch is an index scan on PostgreSQL, where an OR of the
    counterparty's own conditions with a subquery on the contacts would read the whole table."""
    text = text.strip()
    needles = _needles(text)
    own = _document_q(counterparty_document(), needles)
    inn = re.sub(r"[\s\-]", "", text)
    if inn.isdigit():
        own |= Q(inn__startswith=inn)
    by_own = Counterparty.objects.order_by().filter(own).values("pk")
    by_contact = ContactPerson.objects.order_by().filter(_document_q(contact_document(), needles))
    return Q(pk__in=by_own.union(by_contact.values("counterparty_id"), all=True))


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
    return queryset.filter(counterparty_search_q(search))


def counterparty_get(*, user: User, pk: Any) -> Counterparty:
    """One visible counterparty; Http404 for one that does not exist or is outside the user's scope."""
    return get_object_or_404(counterparty_list(user=user), pk=pk)


def possible_duplicates(
    *, user: User, inn: str = "", name: str = "", phone: str = "", email: str = ""
) -> QuerySet[Counterparty]:
    """Visible counterparties sharing the ИНН, the name, a phone or an e-mail with what is being typed: the ИНН
    exactly, the rest anywhere in the search document (both indexed on PostgreSQL, asked on every keystroke)."""
    needles = [fold(text.strip()) for text in (name, email) if text.strip()]
    digits = phone_query_digits(phone)
    if len(digits) >= MIN_PHONE_QUERY_DIGITS:
        needles.append(digits)
    query = _document_q(counterparty_document(), needles)
    inn = re.sub(r"[\s\-]", "", inn)
    if inn:
        query |= Q(inn=inn)
    return Counterparty.objects.visible_to(user).select_related("owner").filter(query).order_by("name", "pk")


def contact_list(*, user: User, counterparty: Counterparty | None = None, search: str = "") -> QuerySet[ContactPerson]:
    queryset = ContactPerson.objects.visible_to(user).select_related("counterparty")
    if counterparty is not None:
        queryset = queryset.filter(counterparty=counterparty)
    if search.strip():
        names = text_q(("last_name", "first_name", "middle_name", "emails", "position"), search.strip())
        queryset = queryset.filter(names | phone_q("phones", search))
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
