"""factory-boy factories for the whole suite. Requisites are generated valid by construction."""

from __future__ import annotations

import random
from decimal import Decimal

import factory
from django.utils import timezone

from sdelka.accounts.models import Role, Team, User
from sdelka.catalog.models import Price, PriceType, Product, ProductGroup, StockLevel, Unit, Warehouse
from sdelka.parties.models import ContactPerson, Counterparty, CounterpartyBankAccount, CounterpartyKind
from sdelka.sales.models import Deal, Invoice, Organisation, OrganisationBankAccount, Pipeline

INN10_WEIGHTS = [2, 4, 10, 3, 5, 9, 4, 6, 8]
INN11_WEIGHTS = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
INN12_WEIGHTS = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]
ACCOUNT_WEIGHTS = [7, 1, 3] * 8


def _check(digits: str, weights: list[int]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10)


def make_inn10(rng: random.Random) -> str:
    base = f"{rng.randint(1, 99):02d}" + "".join(str(rng.randint(0, 9)) for _ in range(7))
    return base + _check(base, INN10_WEIGHTS)


def make_inn12(rng: random.Random) -> str:
    base = f"{rng.randint(1, 99):02d}" + "".join(str(rng.randint(0, 9)) for _ in range(8))
    base += _check(base, INN11_WEIGHTS)
    return base + _check(base, INN12_WEIGHTS)


def make_ogrn(rng: random.Random) -> str:
    base = "1" + "".join(str(rng.randint(0, 9)) for _ in range(11))
    return base + str(int(base) % 11 % 10)


def make_ogrnip(rng: random.Random) -> str:
    base = "3" + "".join(str(rng.randint(0, 9)) for _ in range(13))
    return base + str(int(base) % 13 % 10)


def make_account(rng: random.Random, bik: str, balance: str = "40702") -> str:
    """A 20-digit account whose control key (9th digit) matches the БИК."""
    for key in range(10):
        account = balance + "810" + str(key) + "".join(str(rng.randint(0, 9)) for _ in range(11))
        total = sum(int(c) * w for c, w in zip(bik[6:9] + account, ACCOUNT_WEIGHTS[:23], strict=True))
        if total % 10 == 0:
            return account
    # The key digit gets weight 3, coprime with 10, so exactly one of the ten digits fits.
    raise AssertionError("unreachable")


RNG = random.Random(20261127)
SBER_BIK = "044525225"
SBER_CORR = "30101810400000000225"


class TeamFactory(factory.django.DjangoModelFactory[Team]):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Отдел продаж {n}")


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = "Иван"
    last_name = factory.Sequence(lambda n: f"Петров{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.ru")
    role = Role.MANAGER
    password = factory.PostGenerationMethodCall("set_password", "secret-pass-123")

    @factory.post_generation
    def _save(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class CounterpartyFactory(factory.django.DjangoModelFactory[Counterparty]):
    class Meta:
        model = Counterparty

    kind = CounterpartyKind.LEGAL
    name = factory.Sequence(lambda n: f"ООО «Ромашка {n}»")
    full_name = factory.LazyAttribute(lambda c: f"Общество с ограниченной ответственностью {c.name[4:]}")
    inn = factory.LazyFunction(lambda: make_inn10(RNG))
    kpp = factory.LazyAttribute(lambda c: c.inn[:4] + "01001")
    ogrn = factory.LazyFunction(lambda: make_ogrn(RNG))
    owner = factory.SubFactory(UserFactory)


class ContactPersonFactory(factory.django.DjangoModelFactory[ContactPerson]):
    class Meta:
        model = ContactPerson

    counterparty = factory.SubFactory(CounterpartyFactory)
    first_name = "Анна"
    last_name = factory.Sequence(lambda n: f"Смирнова{n}")
    phones = "+7 495 123-45-67"


class CounterpartyBankAccountFactory(factory.django.DjangoModelFactory[CounterpartyBankAccount]):
    class Meta:
        model = CounterpartyBankAccount

    counterparty = factory.SubFactory(CounterpartyFactory)
    bik = SBER_BIK
    bank_name = "ПАО Сбербанк"
    correspondent_account = SBER_CORR
    number = factory.LazyFunction(lambda: make_account(RNG, SBER_BIK))


class OrganisationFactory(factory.django.DjangoModelFactory[Organisation]):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"ООО «Сделка {n}»")
    inn = factory.LazyFunction(lambda: make_inn10(RNG))
    kpp = factory.LazyAttribute(lambda o: o.inn[:4] + "01001")
    director_name = "Иванов И. И."
    accountant_name = "Сидорова А. А."


class OrganisationBankAccountFactory(factory.django.DjangoModelFactory[OrganisationBankAccount]):
    class Meta:
        model = OrganisationBankAccount

    organisation = factory.SubFactory(OrganisationFactory)
    bik = SBER_BIK
    bank_name = "ПАО Сбербанк"
    correspondent_account = SBER_CORR
    number = factory.LazyFunction(lambda: make_account(RNG, SBER_BIK))
    is_main = True


class ProductGroupFactory(factory.django.DjangoModelFactory[ProductGroup]):
    class Meta:
        model = ProductGroup

    name = factory.Sequence(lambda n: f"Группа {n}")


class ProductFactory(factory.django.DjangoModelFactory[Product]):
    class Meta:
        model = Product

    name = factory.Sequence(lambda n: f"Товар {n}")
    article = factory.Sequence(lambda n: f"ART-{n:05d}")
    barcode = factory.Sequence(lambda n: f"46{n:011d}")
    unit = factory.LazyFunction(lambda: Unit.objects.get(okei="796"))


class PriceTypeFactory(factory.django.DjangoModelFactory[PriceType]):
    class Meta:
        model = PriceType

    name = factory.Sequence(lambda n: f"Оптовая {n}")


class PriceFactory(factory.django.DjangoModelFactory[Price]):
    class Meta:
        model = Price

    price_type = factory.SubFactory(PriceTypeFactory)
    product = factory.SubFactory(ProductFactory)
    value = Decimal("100.00")


class WarehouseFactory(factory.django.DjangoModelFactory[Warehouse]):
    class Meta:
        model = Warehouse

    name = factory.Sequence(lambda n: f"Склад {n}")


class StockLevelFactory(factory.django.DjangoModelFactory[StockLevel]):
    class Meta:
        model = StockLevel

    warehouse = factory.SubFactory(WarehouseFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = Decimal("10.000")


def default_pipeline() -> Pipeline:
    return Pipeline.objects.get(is_default=True)


class DealFactory(factory.django.DjangoModelFactory[Deal]):
    class Meta:
        model = Deal

    title = factory.Sequence(lambda n: f"Поставка {n}")
    pipeline = factory.LazyFunction(default_pipeline)
    stage = factory.LazyAttribute(lambda d: d.pipeline.stages.order_by("order").first())
    counterparty = factory.SubFactory(CounterpartyFactory)
    owner = factory.LazyAttribute(lambda d: d.counterparty.owner)
    amount = Decimal("1000.00")


class InvoiceFactory(factory.django.DjangoModelFactory[Invoice]):
    """A bare invoice row; build invoices with lines through sales.services in tests of behaviour."""

    class Meta:
        model = Invoice

    organisation = factory.SubFactory(OrganisationFactory)
    year = factory.LazyFunction(lambda: timezone.localdate().year)
    sequence = factory.Sequence(lambda n: n + 1)
    number = factory.LazyAttribute(lambda i: str(i.sequence))
    date = factory.LazyFunction(timezone.localdate)
    counterparty = factory.SubFactory(CounterpartyFactory)
    owner = factory.LazyAttribute(lambda i: i.counterparty.owner)
