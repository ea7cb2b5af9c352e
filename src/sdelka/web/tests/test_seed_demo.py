"""`sdelka seed_demo`: the demo company is complete, valid, consistent, deterministic and loads once."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Sum
from stdnum import ean

from sdelka.accounts.models import Role, Team, User
from sdelka.activities.models import Note, Task
from sdelka.catalog.models import Price, PriceType, Product, ProductGroup, ProductKind, StockLevel, Warehouse
from sdelka.core.models import ExchangeRate
from sdelka.core.requisites import (
    bank_account_errors,
    validate_inn,
    validate_inn_kpp_pair,
    validate_kpp,
    validate_ogrn,
    validate_okpo,
)
from sdelka.core.vat import VatRate, line_amounts
from sdelka.parties.models import ContactPerson, Counterparty, CounterpartyBankAccount, CounterpartyKind
from sdelka.sales.models import (
    Deal,
    Invoice,
    InvoiceLine,
    InvoiceNumberSeries,
    InvoiceStatus,
    Organisation,
    OrganisationBankAccount,
    Payment,
    PaymentAllocation,
    Stage,
    StageKind,
)
from sdelka.web import demo

pytestmark = pytest.mark.django_db

SMALL = ["--counterparties", "30", "--products", "20"]


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


class _Rollback(Exception):
    pass


def inns_of_a_run(*args: str) -> list[str]:
    """Load the demo inside a transaction that is then rolled back, and return the ИНН in creation order."""
    inns: list[str] = []
    try:
        with transaction.atomic():
            seed(*args)
            inns = list(Counterparty.objects.order_by("id").values_list("inn", flat=True))
            raise _Rollback
    except _Rollback:
        pass
    return inns


def assert_requisites_valid() -> None:
    """Every requisite of every generated row passes core.requisites, the checks people's input goes through."""
    for cp in Counterparty.objects.all():
        if cp.kind == CounterpartyKind.LEGAL:
            assert len(cp.inn) == 10 and len(cp.ogrn) == 13 and len(cp.okpo) == 8, cp
            validate_kpp(cp.kpp)
        elif cp.kind == CounterpartyKind.ENTREPRENEUR:
            assert len(cp.inn) == 12 and len(cp.ogrn) == 15 and not cp.kpp and len(cp.okpo) == 10, cp
        else:
            assert cp.inn == "" or len(cp.inn) == 12
            assert not cp.kpp and not cp.ogrn
        if cp.inn:
            validate_inn(cp.inn)
        if cp.ogrn:
            validate_ogrn(cp.ogrn)
        if cp.okpo:
            validate_okpo(cp.okpo)
        assert validate_inn_kpp_pair(cp.inn, cp.kpp) == {}, cp
        assert cp.phones.startswith("+7 (")
    for org in Organisation.objects.all():
        validate_inn(org.inn)
        validate_ogrn(org.ogrn)
        assert validate_inn_kpp_pair(org.inn, org.kpp) == {}
        assert (len(org.ogrn) == 15) == org.is_entrepreneur
    accounts = [*CounterpartyBankAccount.objects.all(), *OrganisationBankAccount.objects.all()]
    assert accounts
    for account in accounts:
        errors = bank_account_errors(
            bik=account.bik, number=account.number, correspondent_account=account.correspondent_account
        )
        assert errors == {}, (account.number, account.bik, errors)
    inns = list(Counterparty.objects.exclude(inn="").values_list("inn", flat=True))
    assert len(inns) == len(set(inns))
    for product in Product.objects.all():
        if product.kind == ProductKind.GOODS:
            assert ean.is_valid(product.barcode) and product.barcode[:3] in {f"46{d}" for d in range(10)}
        else:
            assert product.barcode == ""
        assert product.unit.okei, product


def assert_money_consistent() -> None:
    lines_of: dict[int, list[InvoiceLine]] = defaultdict(list)
    for line in InvoiceLine.objects.select_related("invoice"):
        lines_of[line.invoice_id].append(line)
    allocated = defaultdict(
        Decimal, PaymentAllocation.objects.values("invoice").annotate(s=Sum("amount")).values_list("invoice", "s")
    )
    for invoice in Invoice.objects.select_related("bank_account"):
        lines = lines_of[invoice.pk]
        assert 1 <= len(lines) <= 5
        assert sorted(line.position for line in lines) == list(range(1, len(lines) + 1))
        for line in lines:
            expected = line_amounts(
                quantity=line.quantity,
                price=line.price,
                discount=line.discount,
                rate=line.vat_rate,
                mode=invoice.vat_mode,
            )
            assert (line.amount, line.vat_amount, line.total) == (expected.amount, expected.vat, expected.total)
            # 22 % took over from 20 % on 1 January 2026.
            assert line.vat_rate != VatRate.VAT_22 or invoice.date >= date(2026, 1, 1)
            assert line.vat_rate != VatRate.VAT_20 or invoice.date < date(2026, 1, 1)
        assert invoice.bank_account is not None
        assert invoice.bank_account.organisation_id == invoice.organisation_id
        assert invoice.bank_account.currency_id == invoice.currency_id
        assert (invoice.currency_id == "RUB") == (invoice.exchange_rate == 1)
        assert invoice.due_date is not None and invoice.due_date >= invoice.date
        assert invoice.amount == sum(line.amount for line in lines)
        assert invoice.vat_amount == sum(line.vat_amount for line in lines)
        assert invoice.total == sum(line.total for line in lines)
        paid = allocated[invoice.pk]
        assert invoice.paid_amount == paid
        if invoice.status == InvoiceStatus.PAID:
            assert paid == invoice.total > 0
        elif invoice.status == InvoiceStatus.PARTLY_PAID:
            assert 0 < paid < invoice.total
        else:
            assert paid == 0, invoice.status
    for payment in Payment.objects.annotate(s=Sum("allocations__amount")):
        assert payment.allocated_amount == payment.s
        assert 0 < payment.allocated_amount <= payment.amount
        assert payment.counterparty_id is not None
    for allocation in PaymentAllocation.objects.select_related("payment", "invoice"):
        assert allocation.payment.counterparty_id == allocation.invoice.counterparty_id
        assert allocation.payment.date >= allocation.invoice.date
        assert allocation.payment.organisation_id == allocation.invoice.organisation_id
        assert allocation.payment.currency_id == allocation.invoice.currency_id


def assert_numbering_consistent() -> None:
    sequences: dict[tuple[int, int], list[int]] = defaultdict(list)
    for org_id, year, day, sequence, number, prefix in Invoice.objects.values_list(
        "organisation", "year", "date", "sequence", "number", "organisation__invoice_prefix"
    ):
        assert year == day.year
        sequences[org_id, year].append(sequence)
        assert number == f"{prefix}{sequence}"
    series = {(s.organisation_id, s.year): s.last_number for s in InvoiceNumberSeries.objects.all()}
    assert series == {key: len(values) for key, values in sequences.items()}
    for values in sequences.values():
        assert sorted(values) == list(range(1, len(values) + 1))


def assert_contracts_consistent() -> None:
    """Companies have supply contracts and their invoices name them; a contract is always the invoice's
    counterparty's own, and the printed basis falls back to it."""
    from sdelka.sales.models import Contract
    from sdelka.sales.printing.invoice_pdf import invoice_document

    contracts = Contract.objects.all()
    assert contracts.exists()
    assert not contracts.exclude(counterparty__kind="legal").exists()
    named = Invoice.objects.exclude(contract=None).select_related("contract")
    assert named.exists()
    assert all(invoice.contract.counterparty_id == invoice.counterparty_id for invoice in named)
    without_basis = named.filter(basis="").first()
    if without_basis is not None:
        assert invoice_document(without_basis).basis == without_basis.contract.basis


def assert_everything_consistent() -> None:
    assert_requisites_valid()
    assert_money_consistent()
    assert_numbering_consistent()
    assert_contracts_consistent()


def test_small_demo_has_the_whole_company():
    out = seed(*SMALL)

    assert "Demo data loaded" in out
    roles = defaultdict(list)
    for user in User.objects.all():
        roles[user.role].append(user)
    assert {role: len(users) for role, users in roles.items()} == {
        Role.DIRECTOR: 1,
        Role.ACCOUNTANT: 1,
        Role.HEAD: 2,
        Role.MANAGER: 6,
    }
    assert not User.objects.filter(role=Role.ADMIN).exists()  # bootstrap creates the administrator
    for team in Team.objects.all():
        assert team.name in {"Отдел продаж Москва", "Отдел продаж Регионы"}
        assert team.head is not None and team.head.team == team and team.head.role == Role.HEAD
        assert team.members.filter(role=Role.MANAGER).count() == 3
    for user in User.objects.all():
        assert user.username.isascii() and user.username in out
        assert user.check_password(demo.DEFAULT_PASSWORD)
        assert user.last_name and user.first_name and user.middle_name

    assert Organisation.objects.count() == 2
    assert Organisation.objects.filter(is_entrepreneur=True, kpp="").count() == 1
    assert OrganisationBankAccount.objects.filter(is_main=True).count() == 2

    assert Counterparty.objects.count() == 30
    assert set(Counterparty.objects.values_list("kind", flat=True)) == set(CounterpartyKind.values)
    assert Counterparty.objects.filter(is_vip=True).exists()
    assert not Counterparty.objects.filter(contacts__isnull=True).exists()
    assert not Counterparty.objects.filter(bank_accounts__isnull=True).exists()
    for cp in Counterparty.objects.prefetch_related("contacts", "bank_accounts"):
        assert 1 <= len(cp.contacts.all()) <= 3
        assert 1 <= len(cp.bank_accounts.all()) <= 2
        assert [a.is_main for a in cp.bank_accounts.all()].count(True) == 1
    assert ContactPerson.objects.exclude(birthday=None).exists()

    assert Product.objects.count() == 20
    assert Product.objects.filter(kind=ProductKind.SERVICE).exists()
    assert Product.objects.filter(vat_rate=VatRate.VAT_10).exists()
    assert ProductGroup.objects.filter(parent__isnull=False, products__isnull=False).exists()
    assert not ProductGroup.objects.filter(parent__parent__isnull=False).exists()  # two levels
    assert set(PriceType.objects.values_list("name", flat=True)) == {"Розничная", "Оптовая", "Дилерская"}
    assert Price.objects.count() == 3 * 20
    assert Warehouse.objects.count() == 2
    assert StockLevel.objects.filter(quantity__gt=0).exists()
    assert not StockLevel.objects.filter(product__kind=ProductKind.SERVICE).exists()
    assert set(ExchangeRate.objects.values_list("currency", flat=True)) == {"USD", "EUR"}

    stages = set(Stage.objects.filter(pipeline__is_default=True).values_list("pk", flat=True))
    assert set(Deal.objects.values_list("stage", flat=True)) == stages
    assert not Deal.objects.filter(stage__kind=StageKind.LOST, lost_reason="").exists()
    assert not Deal.objects.filter(stage__kind=StageKind.OPEN, closed_at__isnull=False).exists()
    assert not Deal.objects.exclude(stage__kind=StageKind.OPEN).filter(closed_at__isnull=True).exists()
    assert set(Invoice.objects.values_list("status", flat=True)) == set(InvoiceStatus.values)
    assert Task.objects.filter(is_done=False, due_at__lt=demo.timezone.now()).exists()
    assert Task.objects.filter(is_done=False, remind_at__gt=demo.timezone.now(), reminded_at=None).exists()
    assert Task.objects.filter(is_done=True).exists()
    assert Note.objects.exists()
    # History is recorded for the bulk-created rows too.
    assert Counterparty.history.count() == 30
    assert Invoice.history.count() == Invoice.objects.count()

    assert_everything_consistent()


def test_second_run_does_nothing():
    seed(*SMALL)
    counts = (Counterparty.objects.count(), Invoice.objects.count(), User.objects.count())

    out = seed(*SMALL)

    assert "already has counterparties" in out
    assert demo.load_demo() is None  # the check is repeated inside the loading transaction
    assert (Counterparty.objects.count(), Invoice.objects.count(), User.objects.count()) == counts


def test_same_seed_gives_same_data_and_another_seed_other_data():
    first = inns_of_a_run(*SMALL, "--seed", "7")
    again = inns_of_a_run(*SMALL, "--seed", "7")
    other = inns_of_a_run(*SMALL, "--seed", "8")

    assert len(first) == 30
    assert first == again
    assert first != other


def test_password_option_sets_every_demo_login():
    out = seed(*SMALL, "--password", "other-pass-77")

    assert "other-pass-77" in out
    assert all(u.check_password("other-pass-77") for u in User.objects.all())


def test_existing_staff_and_administrator_are_kept():
    admin = User.objects.create_superuser(username="admin", password="admin-pass-1", role=Role.ADMIN)
    seed(*SMALL)

    admin.refresh_from_db()
    assert admin.check_password("admin-pass-1")
    assert User.objects.count() == 11


def test_visibility_works_on_the_demo_data():
    seed(*SMALL, "--counterparties", "60")
    everyone = set(Counterparty.objects.values_list("pk", flat=True))

    for manager in User.objects.filter(role=Role.MANAGER):
        expected = {
            cp.pk
            for cp in Counterparty.objects.prefetch_related("co_owners", "vip_users")
            if (cp.owner_id == manager.pk or manager in cp.co_owners.all())
            and (not cp.is_vip or manager in cp.vip_users.all())
        }
        visible = set(Counterparty.objects.visible_to(manager).values_list("pk", flat=True))
        assert visible == expected
        assert visible  # every manager has clients
        visible_invoices = Invoice.objects.visible_to(manager)
        assert set(visible_invoices.values_list("counterparty", flat=True)) <= visible

    for head in User.objects.filter(role=Role.HEAD):
        team = set(User.objects.filter(team__head=head).values_list("pk", flat=True))
        seen = Counterparty.objects.visible_to(head)
        assert seen.exists()
        for cp in seen.prefetch_related("co_owners"):
            assert cp.owner_id in team or team & {u.pk for u in cp.co_owners.all()}
        assert set(seen.values_list("pk", flat=True)) < everyone

    director = User.objects.get(role=Role.DIRECTOR)
    assert set(Counterparty.objects.visible_to(director).values_list("pk", flat=True)) == everyone
    accountant = User.objects.get(role=Role.ACCOUNTANT)
    hidden_vip = set(Counterparty.objects.filter(is_vip=True).values_list("pk", flat=True))
    assert hidden_vip
    assert set(Counterparty.objects.visible_to(accountant).values_list("pk", flat=True)) == everyone - hidden_vip


def test_full_demo_is_valid_and_fast(django_assert_max_num_queries):
    """The default size, as `make run` loads it; bulk writes keep the query count flat."""
    started = time.monotonic()
    with django_assert_max_num_queries(300):
        seed()
    elapsed = time.monotonic() - started

    assert Counterparty.objects.count() == demo.DEFAULT_COUNTERPARTIES
    assert Product.objects.count() == demo.DEFAULT_PRODUCTS
    assert Product.objects.values("name").distinct().count() == demo.DEFAULT_PRODUCTS
    assert Invoice.objects.count() > 300 and Payment.objects.count() > 200 and Deal.objects.count() > 500
    assert elapsed < 60
    assert_everything_consistent()
