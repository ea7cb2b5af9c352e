"""What a mapping rule can write on Sdelka's side: per entity, the model, its fields with their kinds, the
`ExternalRef` kind, the natural key that links an object already in Sdelka, and the checks a value must pass
(the same requisite checks the counterparty service applies)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _

from sdelka.catalog import models as catalog
from sdelka.core import requisites
from sdelka.core.vat import VatMode, VatRate
from sdelka.exchange.models import RefKind
from sdelka.parties.models import ContactPerson, Counterparty, CounterpartyBankAccount, CounterpartyKind
from sdelka.sales.models import Contract, ContractKind, Invoice, Organisation, Payment

from .models import CounterpartyDebt, SdelkaEntity

DEFAULT_UNIT_OKEI = "796"
_OKEI = re.compile(r"\d{3,4}")


@dataclass(frozen=True)
class FieldSpec:
    """kind: "str", "bool", "choice" (needs a value map from an enum), "ref" (a reference through ExternalRef),
    "decimal" (money, quantities), "date", "currency" (1C's currency code → Sdelka's currency). A name
    "lines.price" is a field of a document's rows, mapped from a tabular part ("Товары/Цена")."""

    kind: str
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    ref: str = ""  # the SdelkaEntity a "ref" points to
    column: str = ""  # the model attribute written ("unit_id" for the "unit" ref)
    required: bool = False

    def attname(self, name: str) -> str:
        return self.column or name


@dataclass(frozen=True)
class Target:
    entity: str
    model: type[models.Model]
    ref_kind: str
    fields: dict[str, FieldSpec]
    natural_key: tuple[str, ...] = ()
    check: Callable[[dict[str, Any]], dict[str, str]] = field(default=lambda values: {})
    defaults: Callable[[], dict[str, Any]] = field(default=dict)
    virtual: str = ""  # a register's virtual table the rule reads ("Balance", "SliceLast")

    def label(self, values: dict[str, Any]) -> str:
        return str(values.get("name") or values.get("okei") or "")


def _counterparty_errors(values: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    inn, kpp, kind = values.get("inn", ""), values.get("kpp", ""), values.get("kind", CounterpartyKind.LEGAL)
    if inn:
        try:
            requisites.validate_inn(inn)
        except ValidationError as exc:
            errors["inn"] = " ".join(exc.messages)
        else:
            if kind == CounterpartyKind.LEGAL and len(inn) != 10:
                errors["inn"] = _("A legal entity has a 10-digit ИНН; 12 digits belong to a person.")
            elif kind != CounterpartyKind.LEGAL and len(inn) != 12:
                errors["inn"] = _(
                    "An entrepreneur or a person has a 12-digit ИНН; 10 digits belong to an organisation."
                )
    if kpp:
        if kind != CounterpartyKind.LEGAL:
            values["kpp"] = ""  # 1C keeps a КПП on persons sometimes; Sdelka does not
        else:
            try:
                requisites.validate_kpp(kpp)
            except ValidationError as exc:
                errors["kpp"] = " ".join(exc.messages)
    if not values.get("name"):
        errors["name"] = _("The name is empty.")
    return errors


def _unit_errors(values: dict[str, Any]) -> dict[str, str]:
    if not _OKEI.fullmatch(values.get("okei") or ""):
        values["okei"] = None  # 1C's own units without an ОКЕИ code are linked by their id only
    return {} if values.get("name") else {"name": _("The name is empty.")}


def _product_defaults() -> dict[str, Any]:
    unit = catalog.Unit.objects.filter(okei=DEFAULT_UNIT_OKEI).values_list("pk", flat=True).first()
    return {"unit_id": unit}


def _organisation_errors(values: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    try:
        requisites.validate_inn(values.get("inn") or "")
    except ValidationError as exc:
        errors["inn"] = " ".join(exc.messages)
    if values.get("kpp"):
        try:
            requisites.validate_kpp(values["kpp"])
        except ValidationError as exc:
            errors["kpp"] = " ".join(exc.messages)
    if not values.get("name"):
        errors["name"] = _("The name is empty.")
    return errors


_VAT_RATES = tuple(VatRate.values)
_LINE_FIELDS = {
    "lines.product": FieldSpec("ref", ref=SdelkaEntity.PRODUCT),
    "lines.description": FieldSpec("str", 1000),
    "lines.quantity": FieldSpec("decimal"),
    "lines.price": FieldSpec("decimal"),
    "lines.amount": FieldSpec("decimal"),
    "lines.vat_rate": FieldSpec("choice", choices=_VAT_RATES),
    "lines.vat_amount": FieldSpec("decimal"),
}

TARGETS: dict[str, Target] = {
    SdelkaEntity.COUNTERPARTY: Target(
        SdelkaEntity.COUNTERPARTY,
        Counterparty,
        RefKind.COUNTERPARTY,
        {
            "name": FieldSpec("str", 255, required=True),
            "full_name": FieldSpec("str", 500),
            "inn": FieldSpec("str", 12),
            "kpp": FieldSpec("str", 9),
            "okpo": FieldSpec("str", 14),
            "ogrn": FieldSpec("str", 15),
            "kind": FieldSpec("choice", choices=tuple(CounterpartyKind.values)),
            "comment": FieldSpec("str"),
            "is_active": FieldSpec("bool"),
        },
        natural_key=("inn", "kpp"),
        check=_counterparty_errors,
    ),
    SdelkaEntity.PRODUCT: Target(
        SdelkaEntity.PRODUCT,
        catalog.Product,
        RefKind.PRODUCT,
        {
            "name": FieldSpec("str", 500, required=True),
            "full_name": FieldSpec("str", 1000),
            "article": FieldSpec("str", 100),
            "barcode": FieldSpec("str", 64),
            "description": FieldSpec("str"),
            "unit": FieldSpec("ref", ref=SdelkaEntity.UNIT, column="unit_id"),
            "vat_rate": FieldSpec("choice", choices=tuple(VatRate.values)),
            "kind": FieldSpec("choice", choices=tuple(catalog.ProductKind.values)),
            "is_active": FieldSpec("bool"),
        },
        defaults=_product_defaults,
        check=lambda values: {} if values.get("name") else {"name": _("The name is empty.")},
    ),
    SdelkaEntity.UNIT: Target(
        SdelkaEntity.UNIT,
        catalog.Unit,
        RefKind.UNIT,
        {
            "okei": FieldSpec("str", 4),
            "name": FieldSpec("str", 30, required=True),
            "full_name": FieldSpec("str", 100),
            "international": FieldSpec("str", 10),
        },
        natural_key=("okei",),
        check=lambda values: _unit_errors(values),
    ),
    SdelkaEntity.ORGANISATION: Target(
        SdelkaEntity.ORGANISATION,
        Organisation,
        RefKind.ORGANISATION,
        {
            "name": FieldSpec("str", 255, required=True),
            "full_name": FieldSpec("str", 500),
            "inn": FieldSpec("str", 12, required=True),
            "kpp": FieldSpec("str", 9),
            "is_active": FieldSpec("bool"),
        },
        natural_key=("inn",),
        check=_organisation_errors,
    ),
    SdelkaEntity.PRICE_TYPE: Target(
        SdelkaEntity.PRICE_TYPE,
        catalog.PriceType,
        RefKind.PRICE_TYPE,
        {
            "name": FieldSpec("str", 150, required=True),
            "vat_included": FieldSpec("bool"),
            "is_active": FieldSpec("bool"),
        },
        natural_key=("name",),
        check=lambda values: {} if values.get("name") else {"name": _("The name is empty.")},
    ),
    SdelkaEntity.PRICE: Target(
        SdelkaEntity.PRICE,
        catalog.Price,
        "",
        {
            "price_type": FieldSpec("ref", ref=SdelkaEntity.PRICE_TYPE, required=True),
            "product": FieldSpec("ref", ref=SdelkaEntity.PRODUCT, required=True),
            "value": FieldSpec("decimal", required=True),
        },
        virtual="SliceLast",
    ),
    SdelkaEntity.INVOICE: Target(
        SdelkaEntity.INVOICE,
        Invoice,
        RefKind.INVOICE,
        {
            "number": FieldSpec("str", 30),
            "date": FieldSpec("date", required=True),
            "organisation": FieldSpec("ref", ref=SdelkaEntity.ORGANISATION, required=True),
            "counterparty": FieldSpec("ref", ref=SdelkaEntity.COUNTERPARTY, required=True),
            "contract": FieldSpec("ref", ref=SdelkaEntity.CONTRACT),
            "currency": FieldSpec("currency"),
            "vat_mode": FieldSpec("choice", choices=tuple(VatMode.values)),
            "comment": FieldSpec("str"),
            "is_active": FieldSpec("bool"),
            **_LINE_FIELDS,
        },
    ),
    SdelkaEntity.PAYMENT: Target(
        SdelkaEntity.PAYMENT,
        Payment,
        RefKind.PAYMENT,
        {
            "number": FieldSpec("str", 30),
            "date": FieldSpec("date", required=True),
            "organisation": FieldSpec("ref", ref=SdelkaEntity.ORGANISATION, required=True),
            "counterparty": FieldSpec("ref", ref=SdelkaEntity.COUNTERPARTY),
            "amount": FieldSpec("decimal", required=True),
            "currency": FieldSpec("currency"),
            "purpose": FieldSpec("str"),
            "allocations.invoice": FieldSpec("ref", ref=SdelkaEntity.INVOICE),
            "allocations.amount": FieldSpec("decimal"),
        },
    ),
    SdelkaEntity.DEBT: Target(
        SdelkaEntity.DEBT,
        CounterpartyDebt,
        "",
        {
            "counterparty": FieldSpec("ref", ref=SdelkaEntity.COUNTERPARTY, required=True),
            "amount": FieldSpec("decimal", required=True),
            "currency": FieldSpec("currency"),
            "account": FieldSpec("str", 20),  # a constant: the chart-of-accounts code of customer settlements
        },
        virtual="Balance",
    ),
    SdelkaEntity.BANK_ACCOUNT: Target(
        SdelkaEntity.BANK_ACCOUNT,
        CounterpartyBankAccount,
        RefKind.BANK_ACCOUNT,
        {
            "counterparty": FieldSpec("ref", ref=SdelkaEntity.COUNTERPARTY, required=True),
            "number": FieldSpec("str", 20, required=True),
            "bik": FieldSpec("str", 9, required=True),
            "bank_name": FieldSpec("str", 255),
            "correspondent_account": FieldSpec("str", 20),
            "is_active": FieldSpec("bool"),
        },
    ),
    SdelkaEntity.CONTACT: Target(
        SdelkaEntity.CONTACT,
        ContactPerson,
        RefKind.CONTACT,
        {
            "counterparty": FieldSpec("ref", ref=SdelkaEntity.COUNTERPARTY, required=True),
            "last_name": FieldSpec("str", 100),
            "first_name": FieldSpec("str", 100, required=True),
            "middle_name": FieldSpec("str", 100),
            "position": FieldSpec("str", 150),
            "birthday": FieldSpec("date"),
            "is_active": FieldSpec("bool"),
        },
    ),
    SdelkaEntity.CONTRACT: Target(
        SdelkaEntity.CONTRACT,
        Contract,
        RefKind.CONTRACT,
        {
            "counterparty": FieldSpec("ref", ref=SdelkaEntity.COUNTERPARTY, required=True),
            "organisation": FieldSpec("ref", ref=SdelkaEntity.ORGANISATION),
            "name": FieldSpec("str", 255),
            "number": FieldSpec("str", 50),
            "date": FieldSpec("date"),
            "valid_until": FieldSpec("date"),
            "kind": FieldSpec("choice", choices=tuple(ContractKind.values)),
            "currency": FieldSpec("currency"),
            "comment": FieldSpec("str"),
            "is_active": FieldSpec("bool"),
        },
    ),
}
