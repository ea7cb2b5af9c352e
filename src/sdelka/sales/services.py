"""Every write of the sales domain: organisations, exchange rates, pipelines, deals, invoices, payments.

Rules kept here and nowhere else:
- invoice numbers come from `InvoiceNumberSeries` per organisation and year, taken under
  `select_for_update` inside the invoice's own transaction, so they are gap-free and never repeat;
- invoice totals are the sums of the lines, each line computed by `core.vat.line_amounts`;
- whatever a user references (counterparty, contact, deal, invoice, payment) must be visible to him;
- the invoice status follows the money allocated to it; allocations never exceed what is open.
Every write records the acting user in the model's history.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.catalog.models import Price, PriceType, Product, Unit, Variant
from sdelka.catalog.services import as_decimal, default_price_type
from sdelka.core.models import Currency, ExchangeRate
from sdelka.core.requisites import (
    digits_only,
    validate_account_against_bik,
    validate_bik,
    validate_correspondent_account,
    validate_inn,
    validate_inn_kpp_pair,
    validate_kpp,
    validate_ogrn,
    validate_okpo,
)
from sdelka.core.vat import VatMode, VatRate, line_amounts, money
from sdelka.parties.models import ContactPerson, Counterparty

from .facsimile import FACSIMILE_FIELDS
from .models import (
    Contract,
    ContractKind,
    Deal,
    Invoice,
    InvoiceLine,
    InvoiceNumberSeries,
    InvoiceStatus,
    Organisation,
    OrganisationBankAccount,
    Payment,
    PaymentAllocation,
    PaymentDirection,
    PaymentSource,
    Pipeline,
    Stage,
    StageKind,
)

ZERO = Decimal("0.00")
RUB = "RUB"


def _by_user(instance: Any, user: Any) -> Any:
    """Mark `instance` so that simple_history records `user` as the author of the next save."""
    if user is not None and getattr(user, "is_authenticated", False):
        instance._history_user = user
    return instance


def _require_visible(model: Any, obj: Any, user: Any, field: str) -> Any:
    """`obj` re-read through visible_to(user); an object outside the scope reads as not existing."""
    if obj is None:
        return None
    pk = obj.pk if hasattr(obj, "pk") else obj
    found = model.objects.visible_to(user).filter(pk=pk).first()
    if found is None:
        raise ValidationError({field: _("Object with id %(pk)s does not exist.") % {"pk": pk}}, code="does_not_exist")
    return found


def _currency(code: Currency | str, field: str = "currency") -> Currency:
    key = code.code if isinstance(code, Currency) else str(code or "").upper()
    currency = Currency.objects.filter(code=key, is_active=True).first()
    if currency is None:
        raise ValidationError({field: _("Unknown currency %(code)s.") % {"code": key or "—"}}, code="unknown")
    return currency


# --- Organisations --------------------------------------------------------------------------------

ORGANISATION_FIELDS = (
    "name",
    "full_name",
    "is_entrepreneur",
    "inn",
    "kpp",
    "ogrn",
    "okpo",
    "legal_address",
    "postal_address",
    "phone",
    "email",
    "director_title",
    "director_name",
    "accountant_name",
    "vat_mode",
    "invoice_prefix",
    "is_active",
    *FACSIMILE_FIELDS,
)


def _validate_organisation(organisation: Organisation) -> None:
    errors: dict[str, list[ValidationError]] = {}
    checks = [("inn", validate_inn), ("kpp", validate_kpp), ("ogrn", validate_ogrn), ("okpo", validate_okpo)]
    for field, check in checks:
        value = getattr(organisation, field)
        if field == "inn" or value:
            try:
                check(value)
            except ValidationError as exc:
                errors.setdefault(field, []).append(exc)
    if "inn" not in errors:
        for field, error in validate_inn_kpp_pair(organisation.inn, organisation.kpp).items():
            errors.setdefault(field, []).append(error)
        if organisation.is_entrepreneur != (len(organisation.inn) == 12):
            errors.setdefault("is_entrepreneur", []).append(
                ValidationError(_("An entrepreneur has a 12-digit ИНН, an organisation a 10-digit one."))
            )
    if (
        organisation.ogrn
        and "ogrn" not in errors
        and len(organisation.ogrn) != (15 if organisation.is_entrepreneur else 13)
    ):
        errors.setdefault("ogrn", []).append(
            ValidationError(_("An entrepreneur has a 15-digit ОГРНИП, an organisation a 13-digit ОГРН."))
        )
    if errors:
        raise ValidationError(errors)
    organisation.full_clean()


@transaction.atomic
def save_organisation(*, user: Any, organisation: Organisation | None = None, **fields: Any) -> Organisation:
    """Create an organisation, or update `organisation` with `fields`; requisites are checked."""
    unknown = set(fields) - set(ORGANISATION_FIELDS)
    if unknown:
        raise TypeError(f"unknown organisation fields: {sorted(unknown)}")
    organisation = organisation or Organisation()
    stored = _stored_facsimiles(organisation)
    for name, value in fields.items():
        if name in FACSIMILE_FIELDS:
            # a new upload, the stored file, or False/"" to remove it (a form's "clear" box)
            setattr(organisation, name, value or "")
            continue
        if name in {"inn", "kpp", "ogrn", "okpo"}:
            value = digits_only(value).upper()
        setattr(organisation, name, value)
    _validate_organisation(organisation)
    _by_user(organisation, user).save()
    replaced = [old for name, old in stored.items() if old and old != getattr(organisation, name).name]
    if replaced:
        transaction.on_commit(lambda: _delete_files(replaced))
    return organisation


def _delete_files(names: Sequence[str]) -> None:
    storage = Organisation._meta.get_field("stamp").storage
    for name in names:
        storage.delete(name)


def _stored_facsimiles(organisation: Organisation) -> dict[str, str]:
    """The file names of the organisation's facsimiles as stored, to delete the ones an update replaces."""
    if organisation.pk is None:
        return {}
    row = Organisation.objects.filter(pk=organisation.pk).values(*FACSIMILE_FIELDS).first()
    return {name: str(value or "") for name, value in (row or {}).items()}


def validate_bank_account(
    *, bik: str, bank_name: str, number: str, correspondent_account: str = ""
) -> tuple[str, str, str]:
    """Check a bank account's requisites; returns БИК, account and correspondent account as digits."""
    bik, number, correspondent_account = digits_only(bik), digits_only(number), digits_only(correspondent_account)
    errors: dict[str, list[ValidationError]] = {}
    try:
        validate_bik(bik)
    except ValidationError as exc:
        errors["bik"] = [exc]
    if "bik" not in errors:
        try:
            validate_account_against_bik(number, bik)
        except ValidationError as exc:
            errors["number"] = [exc]
        if correspondent_account:
            try:
                validate_correspondent_account(correspondent_account, bik)
            except ValidationError as exc:
                errors["correspondent_account"] = [exc]
    if not bank_name.strip():
        errors["bank_name"] = [ValidationError(_("Enter the bank's name."))]
    if errors:
        raise ValidationError(errors)
    return bik, number, correspondent_account


@transaction.atomic
def save_organisation_bank_account(
    *,
    organisation: Organisation,
    bik: str,
    bank_name: str,
    number: str,
    correspondent_account: str = "",
    currency: Currency | str = RUB,
    is_main: bool = False,
    account: OrganisationBankAccount | None = None,
) -> OrganisationBankAccount:
    """A settlement account of our organisation; its control key must match the БИК."""
    if account is not None and account.organisation_id != organisation.pk:
        raise ValidationError({"organisation": _("The account belongs to another organisation.")})
    bik, number, correspondent_account = validate_bank_account(
        bik=bik, bank_name=bank_name, number=number, correspondent_account=correspondent_account
    )
    account = account or OrganisationBankAccount(organisation=organisation)
    account.bik, account.number, account.correspondent_account = bik, number, correspondent_account
    account.bank_name = bank_name.strip()
    account.currency = _currency(currency)
    account.is_main = is_main
    account.full_clean()
    if is_main:
        organisation.bank_accounts.exclude(pk=account.pk).update(is_main=False)
    account.save()
    return account


# --- Currencies and rates -------------------------------------------------------------------------


def rate_on(*, currency: Currency | str, date: datetime.date) -> Decimal:
    """Roubles for one unit of `currency` on `date`: the latest rate on or before that date (RUB is 1)."""
    code = currency.code if isinstance(currency, Currency) else str(currency).upper()
    if code == RUB:
        return Decimal(1)
    rate = ExchangeRate.objects.filter(currency_id=code, date__lte=date).order_by("-date").first()
    if rate is None:
        raise ValidationError(
            {"currency": _("No exchange rate of %(code)s on or before %(date)s.") % {"code": code, "date": date}},
            code="no_rate",
        )
    return rate.rate / rate.nominal


@transaction.atomic
def set_exchange_rate(*, currency: Currency | str, date: datetime.date, rate: Any, nominal: int = 1) -> ExchangeRate:
    found = _currency(currency)
    value = as_decimal(rate, field="rate", places=4, minimum=Decimal(0), strict_min=True)
    if nominal < 1:
        raise ValidationError({"nominal": _("The nominal is a positive whole number.")})
    saved, _created = ExchangeRate.objects.update_or_create(
        currency=found, date=date, defaults={"rate": value, "nominal": nominal}
    )
    return saved


# --- Pipelines and deals --------------------------------------------------------------------------


@transaction.atomic
def create_pipeline(*, name: str, stages: Sequence[tuple[str, str, int]], is_default: bool = False) -> Pipeline:
    """A pipeline with its stages given in order as (name, kind, probability)."""
    if not name.strip():
        raise ValidationError({"name": _("Enter a name.")})
    if not stages:
        raise ValidationError({"stages": _("A pipeline needs at least one stage.")})
    for stage_name, kind, probability in stages:
        if kind not in StageKind.values or not 0 <= probability <= 100 or not stage_name.strip():
            raise ValidationError({"stages": _("Stage %(name)s is not valid.") % {"name": stage_name}})
    if is_default:
        Pipeline.objects.filter(is_default=True).update(is_default=False)
    pipeline = Pipeline(name=name.strip(), is_default=is_default)
    pipeline.full_clean()
    pipeline.save()
    Stage.objects.bulk_create(
        Stage(pipeline=pipeline, name=stage_name.strip(), kind=kind, probability=probability, order=index)
        for index, (stage_name, kind, probability) in enumerate(stages, start=1)
    )
    return pipeline


def default_pipeline() -> Pipeline:
    pipeline = Pipeline.objects.filter(is_default=True).first() or Pipeline.objects.first()
    if pipeline is None:
        raise ValidationError({"pipeline": _("There is no pipeline yet.")})
    return pipeline


def _check_contact(contact: ContactPerson | None, counterparty: Counterparty, user: Any) -> ContactPerson | None:
    contact = _require_visible(ContactPerson, contact, user, "contact")
    if contact is not None and contact.counterparty_id != counterparty.pk:
        raise ValidationError({"contact": _("The contact person works for another counterparty.")})
    return contact


DEAL_FIELDS = (
    "title",
    "counterparty",
    "contact",
    "owner",
    "amount",
    "currency",
    "expected_close_date",
    "probability",
    "source",
)


def _validate_deal_fields(deal: Deal, user: Any) -> None:
    if not (deal.title or "").strip():
        raise ValidationError({"title": _("Enter a title.")})
    deal.counterparty = _require_visible(Counterparty, deal.counterparty, user, "counterparty")
    deal.contact = _check_contact(deal.contact, deal.counterparty, user)
    deal.amount = as_decimal(deal.amount, field="amount", places=2, minimum=ZERO)
    deal.currency = _currency(deal.currency_id if deal.currency_id else RUB)
    if deal.probability is not None and not 0 <= int(deal.probability) <= 100:
        raise ValidationError({"probability": _("Probability is between 0 and 100.")})


@transaction.atomic
def create_deal(
    *,
    user: Any,
    title: str,
    counterparty: Counterparty,
    pipeline: Pipeline | None = None,
    stage: Stage | None = None,
    owner: Any = None,
    contact: ContactPerson | None = None,
    amount: Any = ZERO,
    currency: Currency | str = RUB,
    expected_close_date: datetime.date | None = None,
    probability: int | None = None,
    source: str = "",
) -> Deal:
    pipeline = pipeline or (stage.pipeline if stage is not None else default_pipeline())
    if stage is None:
        stage = pipeline.stages.filter(kind=StageKind.OPEN).order_by("order").first()
        if stage is None:
            raise ValidationError({"stage": _("The pipeline has no open stage.")})
    if stage.pipeline_id != pipeline.pk:
        raise ValidationError({"stage": _("The stage belongs to another pipeline.")})
    deal = Deal(
        title=title,
        pipeline=pipeline,
        stage=stage,
        counterparty=counterparty,
        contact=contact,
        owner=owner or user,
        amount=amount,
        currency_id=currency.code if isinstance(currency, Currency) else currency,
        expected_close_date=expected_close_date,
        probability=stage.probability if probability is None else probability,
        source=source,
    )
    _validate_deal_fields(deal, user)
    if stage.kind != StageKind.OPEN:
        raise ValidationError({"stage": _("A new deal starts in an open stage.")})
    _by_user(deal, user).save()
    return deal


@transaction.atomic
def update_deal(*, user: Any, deal: Deal, stage: Stage | None = None, lost_reason: str = "", **fields: Any) -> Deal:
    """Change a deal's fields; a stage change goes through `move_deal` so it is recorded as a move."""
    unknown = set(fields) - set(DEAL_FIELDS)
    if unknown:
        raise TypeError(f"unknown deal fields: {sorted(unknown)}")
    deal = _require_visible(Deal, deal, user, "deal")
    for name, value in fields.items():
        if name == "currency":
            deal.currency_id = value.code if isinstance(value, Currency) else value
        else:
            setattr(deal, name, value)
    _validate_deal_fields(deal, user)
    _by_user(deal, user).save()
    if stage is not None and stage.pk != deal.stage_id:
        deal = move_deal(deal=deal, stage=stage, user=user, lost_reason=lost_reason)
    return deal


@transaction.atomic
def move_deal(*, deal: Deal, stage: Stage, user: Any, lost_reason: str = "") -> Deal:
    """Move a deal to another stage of its pipeline; closing stages set `closed_at`, a lost one needs
    a reason. The move is a history record carrying the user and the stage names."""
    deal = _require_visible(Deal, deal, user, "deal")
    deal = Deal.objects.select_for_update().select_related("stage").get(pk=deal.pk)
    if stage.pipeline_id != deal.pipeline_id:
        raise ValidationError({"stage": _("The stage belongs to another pipeline.")})
    if stage.kind == StageKind.LOST and not (lost_reason or deal.lost_reason).strip():
        raise ValidationError({"lost_reason": _("Say why the deal was lost.")})
    previous = deal.stage
    deal.stage = stage
    deal.probability = stage.probability
    if stage.kind == StageKind.OPEN:
        deal.closed_at = None
        deal.lost_reason = ""
    else:
        deal.closed_at = deal.closed_at if previous.kind == stage.kind and deal.closed_at else timezone.now()
        deal.lost_reason = (lost_reason or deal.lost_reason).strip() if stage.kind == StageKind.LOST else ""
    deal._change_reason = f"{previous.name} → {stage.name}"  # type: ignore[attr-defined]
    _by_user(deal, user).save()
    return deal


def _closing_stage(deal: Deal, kind: str) -> Stage:
    stage = deal.pipeline.stages.filter(kind=kind).order_by("order").first()
    if stage is None:
        raise ValidationError({"stage": _("The pipeline has no stage of kind %(kind)s.") % {"kind": kind}})
    return stage


def close_deal_won(*, deal: Deal, user: Any) -> Deal:
    return move_deal(deal=deal, stage=_closing_stage(deal, StageKind.WON), user=user)


def close_deal_lost(*, deal: Deal, user: Any, reason: str) -> Deal:
    if not reason.strip():
        raise ValidationError({"lost_reason": _("Say why the deal was lost.")})
    return move_deal(deal=deal, stage=_closing_stage(deal, StageKind.LOST), user=user, lost_reason=reason)


# --- Invoices -------------------------------------------------------------------------------------


@dataclass
class PreparedLine:
    product: Product | None
    variant: Variant | None
    description: str
    quantity: Decimal
    unit: Unit | None
    price: Decimal
    discount: Decimal
    vat_rate: str
    amount: Decimal
    vat_amount: Decimal
    total: Decimal


def _pk(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(value.pk if hasattr(value, "pk") else value)


@dataclass
class _LineCatalogue:
    """The products, variants, units and prices invoice lines name, each kind read once for all the lines."""

    products: dict[int, Product]
    variants: dict[int, Variant]
    units: dict[int, Unit]
    price_type: PriceType | None
    prices: dict[tuple[int, int | None], Decimal]  # (product, variant or None) → price in `price_type`

    @classmethod
    def read(cls, lines: Sequence[Mapping[str, Any]], price_type: PriceType | None) -> _LineCatalogue:
        product_ids = {_pk(line.get("product")) for line in lines} - {None}
        variant_ids = {_pk(line.get("variant")) for line in lines} - {None}
        unit_ids = {_pk(line.get("unit")) for line in lines} - {None}
        products = Product.objects.select_related("unit").in_bulk(product_ids)
        variants = Variant.objects.in_bulk(variant_ids)
        units = Unit.objects.in_bulk(unit_ids)
        need_price = [line for line in lines if line.get("price") in (None, "") and line.get("product")]
        price_type = price_type or (default_price_type() if need_price else None)
        prices: dict[tuple[int, int | None], Decimal] = {}
        if need_price and price_type is not None:
            for product_id, variant_id, value in Price.objects.filter(
                price_type=price_type, product_id__in=product_ids
            ).values_list("product_id", "variant_id", "value"):
                prices[(product_id, variant_id)] = value
        return cls(products, variants, units, price_type, prices)


_Fail = Callable[[str, str], None]


def prepare_lines(
    *, lines: Sequence[Mapping[str, Any]], vat_mode: str, currency: Currency, price_type: PriceType | None = None
) -> list[PreparedLine]:
    """Validate and compute invoice lines without writing. A line with a product takes its description,
    unit, VAT rate and (when no price is given) its price in `price_type` or the default price type.
    Errors name the field as `lines.<index>.<field>`."""
    if not lines:
        raise ValidationError({"lines": _("An invoice needs at least one line.")}, code="required")
    catalogue = _LineCatalogue.read(lines, price_type)
    errors: dict[str, list[ValidationError]] = {}
    prepared: list[PreparedLine] = []
    for index, line in enumerate(lines):
        fail = functools.partial(_line_error, errors, index)
        ready = _prepare_line(line, catalogue, vat_mode=vat_mode, currency=currency, fail=fail)
        if ready is not None:
            prepared.append(ready)
    if errors:
        raise ValidationError(errors)
    return prepared


def _line_error(errors: dict[str, list[ValidationError]], index: int, field: str, message: str) -> None:
    errors.setdefault(f"lines.{index}.{field}", []).append(ValidationError(message))


def _prepare_line(line: Mapping[str, Any], catalogue: _LineCatalogue, *, vat_mode: str, currency: Currency,
                  fail: _Fail) -> PreparedLine | None:  # fmt: skip
    """One line computed, or None when a reason stops it (told to `fail`; others may follow it)."""
    product = catalogue.products.get(_pk(line.get("product")) or 0)
    if line.get("product") not in (None, "") and product is None:
        fail("product", _("Unknown product."))
        return None
    variant = catalogue.variants.get(_pk(line.get("variant")) or 0)
    if line.get("variant") not in (None, "") and (
        variant is None or product is None or variant.product_id != product.pk
    ):
        fail("variant", _("The variant does not belong to the line's product."))
        return None
    unit = catalogue.units.get(_pk(line.get("unit")) or 0) or (product.unit if product else None)
    description = _line_description(line, product, variant)
    if not description:
        fail("description", _("Describe the goods or services, or choose a product."))  # and the line goes on
    vat_rate = str(line.get("vat_rate") or (product.vat_rate if product else "") or VatRate.VAT_22)
    if vat_rate not in VatRate.values:
        fail("vat_rate", _("Unknown VAT rate."))
        return None
    try:
        quantity = as_decimal(line.get("quantity", ""), field="quantity", places=3, minimum=Decimal(0), strict_min=True)
    except ValidationError as exc:
        fail("quantity", exc.message_dict["quantity"][0])
        return None
    raw_price = _line_raw_price(line, product, variant, catalogue, currency, fail)
    if raw_price is None:
        return None
    price_and_discount = _line_price_and_discount(line, raw_price, quantity, fail)
    if price_and_discount is None:
        return None
    price, discount = price_and_discount
    sums = line_amounts(quantity=quantity, price=price, discount=discount, rate=vat_rate, mode=vat_mode)
    return PreparedLine(
        product=product,
        variant=variant,
        description=description[:1000],
        quantity=quantity,
        unit=unit,
        price=price,
        discount=discount,
        vat_rate=vat_rate,
        amount=sums.amount,
        vat_amount=sums.vat,
        total=sums.total,
    )


def _line_description(line: Mapping[str, Any], product: Product | None, variant: Variant | None) -> str:
    description = str(line.get("description") or "").strip()
    if not description and product is not None:
        description = product.full_name or product.name
        if variant is not None:
            description = f"{description} ({variant.name})"
    return description


def _line_raw_price(line: Mapping[str, Any], product: Product | None, variant: Variant | None,
                    catalogue: _LineCatalogue, currency: Currency, fail: _Fail) -> Any:  # fmt: skip
    """The price as given, else the product's in the catalogue's price type; None (told to `fail`) if neither."""
    raw_price = line.get("price")
    if raw_price not in (None, ""):
        return raw_price
    if product is None:
        fail("price", _("Enter a price."))
        return None
    prices, price_type = catalogue.prices, catalogue.price_type
    found = prices.get((product.pk, variant.pk if variant else None), prices.get((product.pk, None)))
    if found is None or price_type is None or price_type.currency_id != currency.code:
        fail("price", _("The product has no price in %(currency)s; enter one.") % {"currency": currency.code})
        return None
    return found


def _line_price_and_discount(line: Mapping[str, Any], raw_price: Any, quantity: Decimal,
                             fail: _Fail) -> tuple[Decimal, Decimal] | None:  # fmt: skip
    try:
        price = as_decimal(raw_price, field="price", places=2, minimum=ZERO)
        discount = as_decimal(line.get("discount") or ZERO, field="discount", places=2, minimum=ZERO)
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            fail(field, messages[0])
        return None
    if discount > money(quantity * price):
        fail("discount", _("The discount cannot exceed the line sum."))
        return None
    return price, discount


def _write_lines(invoice: Invoice, prepared: Sequence[PreparedLine]) -> None:
    invoice.lines.all().delete()
    rows = [
        InvoiceLine(
            invoice=invoice,
            position=position,
            product=line.product,
            variant=line.variant,
            description=line.description,
            quantity=line.quantity,
            unit=line.unit,
            price=line.price,
            discount=line.discount,
            vat_rate=line.vat_rate,
            amount=line.amount,
            vat_amount=line.vat_amount,
            total=line.total,
        )
        for position, line in enumerate(prepared, start=1)
    ]
    InvoiceLine.objects.bulk_create(rows)


def _apply_totals(invoice: Invoice, prepared: Sequence[PreparedLine]) -> None:
    """The invoice's sums are the sums of its lines, exact to the kopeck."""
    invoice.amount = sum((line.amount for line in prepared), ZERO)
    invoice.vat_amount = sum((line.vat_amount for line in prepared), ZERO)
    invoice.total = sum((line.total for line in prepared), ZERO)


def _check_invoice_header(invoice: Invoice, user: Any) -> None:
    """Everything of an invoice except its lines and number; normalises the references in place."""
    errors: dict[str, list[ValidationError]] = {}

    def collect(call: Any) -> Any:
        try:
            return call()
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(ValidationError(m) for m in messages)
        return None

    counterparty = collect(lambda: _require_visible(Counterparty, invoice.counterparty_id, user, "counterparty"))
    if invoice.counterparty_id is None:
        errors.setdefault("counterparty", []).append(ValidationError(_("Choose a counterparty.")))
    if counterparty is not None:
        invoice.counterparty = counterparty
        invoice.contact = collect(lambda: _check_contact(invoice.contact, counterparty, user))
        deal = collect(lambda: _require_visible(Deal, invoice.deal, user, "deal"))
        if deal is not None and deal.counterparty_id != counterparty.pk:
            errors.setdefault("deal", []).append(ValidationError(_("The deal is with another counterparty.")))
        invoice.deal = deal
        invoice.contract = collect(lambda: _check_contract(invoice, counterparty))
    currency = collect(lambda: _currency(invoice.currency_id or ""))
    if invoice.date is None:
        errors.setdefault("date", []).append(ValidationError(_("Enter the invoice date.")))
    elif currency is not None and invoice.status == InvoiceStatus.DRAFT:
        rate = collect(lambda: rate_on(currency=currency, date=invoice.date))
        if rate is not None:
            invoice.exchange_rate = rate.quantize(Decimal("0.0001"))
    if invoice.bank_account is not None and invoice.bank_account.organisation_id != invoice.organisation_id:
        errors.setdefault("bank_account", []).append(
            ValidationError(_("The bank account belongs to another organisation."))
        )
    if invoice.vat_mode not in VatMode.values:
        errors.setdefault("vat_mode", []).append(ValidationError(_("Unknown VAT mode.")))
    if invoice.due_date and invoice.date and invoice.due_date < invoice.date:
        errors.setdefault("due_date", []).append(ValidationError(_("The due date is before the invoice date.")))
    if errors:
        raise ValidationError(errors)


def _check_contract(invoice: Invoice, counterparty: Counterparty) -> Contract | None:
    """The invoice's contract must be the counterparty's own, a sale contract, of the invoice's organisation."""
    if invoice.contract_id is None:
        return None
    contract = Contract.objects.filter(pk=invoice.contract_id).first()
    if contract is None or contract.counterparty_id != counterparty.pk:
        raise ValidationError({"contract": _("The contract is with another counterparty.")})
    if contract.kind == ContractKind.PURCHASE:
        raise ValidationError({"contract": _("This is a contract with a supplier; choose a contract with a buyer.")})
    if contract.organisation_id is not None and contract.organisation_id != invoice.organisation_id:
        raise ValidationError({"contract": _("The contract is signed by another of our organisations.")})
    if not contract.is_active and _differs_stored(invoice, "contract_id"):
        raise ValidationError({"contract": _("The contract is closed.")})
    return contract


def _differs_stored(invoice: Invoice, attname: str) -> bool:
    """Whether an attribute is about to change from what the database holds (always for a new invoice)."""
    if invoice.pk is None:
        return True
    stored = Invoice.objects.filter(pk=invoice.pk).values_list(attname, flat=True).first()
    return bool(stored != getattr(invoice, attname))


def _next_number(organisation: Organisation, year: int) -> int:
    """The next number of the series, locked until the caller's transaction ends."""
    InvoiceNumberSeries.objects.get_or_create(organisation=organisation, year=year)
    series = InvoiceNumberSeries.objects.select_for_update().get(organisation=organisation, year=year)
    series.last_number += 1
    series.save(update_fields=["last_number"])
    return series.last_number


INVOICE_HEADER_FIELDS = (
    "date",
    "bank_account",
    "counterparty",
    "contact",
    "deal",
    "contract",
    "owner",
    "currency",
    "vat_mode",
    "due_date",
    "basis",
    "comment",
    "shipped_date",
)
# Fields that may change after an invoice is issued: they do not touch its money.
INVOICE_FREE_FIELDS = {"contact", "due_date", "contract", "basis", "comment", "shipped_date", "owner"}


def _apply_header(invoice: Invoice, fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - set(INVOICE_HEADER_FIELDS)
    if unknown:
        raise TypeError(f"unknown invoice fields: {sorted(unknown)}")
    for name, value in fields.items():
        if name == "currency":
            invoice.currency_id = value.code if isinstance(value, Currency) else str(value or "").upper()
        elif name == "counterparty":
            invoice.counterparty_id = _pk(value)  # type: ignore[assignment]
        elif name == "contract":
            invoice.contract_id = _pk(value)
        else:
            setattr(invoice, name, value)


def validate_invoice(
    *, user: Any, invoice: Invoice, lines: Sequence[Mapping[str, Any]] | None, price_type: PriceType | None = None
) -> list[PreparedLine] | None:
    """Check an unsaved invoice and its lines as create/update would, collecting every error at once."""
    errors: dict[str, list[str]] = {}
    try:
        _check_invoice_header(invoice, user)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    prepared = None
    if lines is not None:
        try:
            currency = _currency(invoice.currency_id or "")
            prepared = prepare_lines(lines=lines, vat_mode=invoice.vat_mode, currency=currency, price_type=price_type)
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    return prepared


@transaction.atomic
def create_invoice(
    *,
    user: Any,
    organisation: Organisation,
    counterparty: Counterparty,
    lines: Sequence[Mapping[str, Any]],
    date: datetime.date | None = None,
    price_type: PriceType | None = None,
    vat_mode: str | None = None,
    **fields: Any,
) -> Invoice:
    """A draft invoice with its lines and the next number of the organisation's series for the year."""
    invoice = Invoice(
        organisation=organisation,
        date=date or timezone.localdate(),
        owner=fields.pop("owner", None) or user,
        vat_mode=vat_mode or organisation.vat_mode,
        status=InvoiceStatus.DRAFT,
    )
    _apply_header(invoice, {"counterparty": counterparty, "currency": fields.pop("currency", RUB), **fields})
    if invoice.bank_account is None:
        invoice.bank_account = organisation.bank_accounts.filter(currency_id=invoice.currency_id).first()
    prepared = validate_invoice(user=user, invoice=invoice, lines=lines, price_type=price_type)
    assert prepared is not None
    invoice.year = invoice.date.year
    invoice.sequence = _next_number(organisation, invoice.year)
    invoice.number = f"{organisation.invoice_prefix}{invoice.sequence}"
    _apply_totals(invoice, prepared)
    _by_user(invoice, user).save()
    _write_lines(invoice, prepared)
    return invoice


def _locked_invoice(invoice: Invoice | int, user: Any) -> Invoice:
    found = _require_visible(Invoice, invoice, user, "invoice")
    return Invoice.objects.select_for_update().select_related("organisation").get(pk=found.pk)


@transaction.atomic
def update_invoice(
    *,
    user: Any,
    invoice: Invoice,
    lines: Sequence[Mapping[str, Any]] | None = None,
    price_type: PriceType | None = None,
    **fields: Any,
) -> Invoice:
    """Change an invoice. Lines and money fields change only on drafts; a few descriptive fields also
    later; a cancelled invoice does not change."""
    invoice = _locked_invoice(invoice, user)
    if invoice.status == InvoiceStatus.CANCELLED:
        raise ValidationError({"status": _("A cancelled invoice cannot be changed.")})
    if invoice.status != InvoiceStatus.DRAFT:
        locked = sorted(
            name for name, value in fields.items() if name not in INVOICE_FREE_FIELDS and _differs(invoice, name, value)
        )
        if lines is not None and [_line_as_input(line) for line in invoice.lines.all()] != [
            _line_as_input_from(line) for line in lines
        ]:
            locked.append("lines")
        if locked:
            raise ValidationError(
                {name: _("Only a draft invoice can change this.") for name in locked}, code="not_draft"
            )
    new_date = fields.get("date")
    if new_date is not None and new_date.year != invoice.year:
        raise ValidationError({"date": _("The invoice number belongs to %(year)s.") % {"year": invoice.year}})
    _apply_header(invoice, fields)
    if lines is None and {"vat_mode"} & set(fields):
        lines = [_line_as_input(line) for line in invoice.lines.all()]
    prepared = validate_invoice(user=user, invoice=invoice, lines=lines, price_type=price_type)
    if prepared is not None:
        _apply_totals(invoice, prepared)
        _write_lines(invoice, prepared)
    _by_user(invoice, user).save()
    return invoice


def _differs(invoice: Invoice, name: str, value: Any) -> bool:
    current = (
        getattr(invoice, f"{name}_id")
        if name in {"bank_account", "counterparty", "deal", "contract", "currency"}
        else getattr(invoice, name)
    )
    given = value.pk if hasattr(value, "pk") else value
    return bool(current != given)


def _line_as_input_from(line: Mapping[str, Any]) -> dict[str, Any]:
    """A line as given by a caller, in the shape `_line_as_input` gives a stored line, to compare them."""
    return {
        "product": _pk(line.get("product")),
        "variant": _pk(line.get("variant")),
        "description": line.get("description"),
        "quantity": line.get("quantity"),
        "unit": _pk(line.get("unit")),
        "price": line.get("price"),
        "discount": line.get("discount") or ZERO,
        "vat_rate": line.get("vat_rate"),
    }


def _line_as_input(line: InvoiceLine) -> dict[str, Any]:
    return {
        "product": line.product_id,
        "variant": line.variant_id,
        "description": line.description,
        "quantity": line.quantity,
        "unit": line.unit_id,
        "price": line.price,
        "discount": line.discount,
        "vat_rate": line.vat_rate,
    }


@transaction.atomic
def issue_invoice(*, user: Any, invoice: Invoice) -> Invoice:
    invoice = _locked_invoice(invoice, user)
    if invoice.status != InvoiceStatus.DRAFT:
        raise ValidationError({"status": _("Only a draft can be issued.")})
    if not invoice.lines.exists():
        raise ValidationError({"lines": _("An invoice needs at least one line.")})
    invoice.status = InvoiceStatus.ISSUED
    _by_user(invoice, user).save()
    return invoice


# Statuses in which an invoice may be (re)sent to the client.
SENDABLE_STATUSES = {InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTLY_PAID, InvoiceStatus.PAID}


@transaction.atomic
def mark_invoice_sent(*, user: Any, invoice: Invoice) -> Invoice:
    """The invoice went to the client: issued → sent; a sent or (partly) paid one keeps its status."""
    invoice = _locked_invoice(invoice, user)
    if invoice.status not in SENDABLE_STATUSES:
        raise ValidationError({"status": _("Only an issued invoice can be sent to the client.")}, code="not_issued")
    if invoice.status == InvoiceStatus.ISSUED:
        invoice.status = InvoiceStatus.SENT
        _by_user(invoice, user).save()
    return invoice


@transaction.atomic
def cancel_invoice(*, user: Any, invoice: Invoice) -> Invoice:
    invoice = _locked_invoice(invoice, user)
    if invoice.status == InvoiceStatus.CANCELLED:
        raise ValidationError({"status": _("The invoice is already cancelled.")})
    if invoice.paid_amount > 0 or invoice.allocations.exists():
        raise ValidationError({"status": _("Remove the payments allocated to the invoice before cancelling it.")})
    invoice.status = InvoiceStatus.CANCELLED
    _by_user(invoice, user).save()
    return invoice


# --- Payments -------------------------------------------------------------------------------------

PAYMENT_FIELDS = (
    "bank_account",
    "direction",
    "source",
    "number",
    "purpose",
    "payer_name",
    "payer_inn",
    "payer_kpp",
    "payer_account",
)


@transaction.atomic
def register_payment(
    *,
    user: Any,
    organisation: Organisation,
    date: datetime.date,
    amount: Any,
    counterparty: Counterparty | None = None,
    currency: Currency | str = RUB,
    **fields: Any,
) -> Payment:
    """A payment received (or sent); allocate it to invoices with `allocate_payment`."""
    unknown = set(fields) - set(PAYMENT_FIELDS)
    if unknown:
        raise TypeError(f"unknown payment fields: {sorted(unknown)}")
    payment = Payment(
        organisation=organisation,
        date=date,
        currency=_currency(currency),
        created_by=user,
        counterparty=_require_visible(Counterparty, counterparty, user, "counterparty"),
        amount=as_decimal(amount, field="amount", places=2, minimum=ZERO, strict_min=True),
        **fields,
    )
    if payment.direction not in PaymentDirection.values:
        raise ValidationError({"direction": _("Unknown direction.")})
    if payment.source not in PaymentSource.values:
        raise ValidationError({"source": _("Unknown source.")})
    if payment.bank_account is not None and payment.bank_account.organisation_id != organisation.pk:
        raise ValidationError({"bank_account": _("The bank account belongs to another organisation.")})
    _by_user(payment, user).save()
    return payment


def _status_for(invoice: Invoice) -> str:
    if invoice.paid_amount <= 0:
        # Unpaid again (an allocation removed): back to sent if the client ever got it, else issued.
        was_sent = invoice.status == InvoiceStatus.SENT or invoice.history.filter(status=InvoiceStatus.SENT).exists()
        return InvoiceStatus.SENT if was_sent else InvoiceStatus.ISSUED
    if invoice.paid_amount < invoice.total:
        return InvoiceStatus.PARTLY_PAID
    return InvoiceStatus.PAID


def _locked_payment(payment: Payment | int, user: Any) -> Payment:
    found = _require_visible(Payment, payment, user, "payment")
    return Payment.objects.select_for_update().get(pk=found.pk)


@transaction.atomic
def allocate_payment(*, user: Any, payment: Payment, invoice: Invoice, amount: Any) -> PaymentAllocation:
    """Settle `amount` of an issued invoice from a payment: never more than the payment has left nor
    more than the invoice still owes. The invoice status follows: issued → partly paid → paid."""
    value = as_decimal(amount, field="amount", places=2, minimum=ZERO, strict_min=True)
    payment = _locked_payment(payment, user)
    invoice = _locked_invoice(invoice, user)
    if invoice.status not in {InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTLY_PAID, InvoiceStatus.PAID}:
        raise ValidationError({"invoice": _("Only an issued invoice can be paid.")})
    if payment.direction != PaymentDirection.INCOMING:
        raise ValidationError({"payment": _("Only an incoming payment pays an invoice.")})
    if payment.cancelled:
        reason = payment.cancel_reason
        raise ValidationError({"payment": _("The payment is cancelled: %(reason)s") % {"reason": reason}})
    if payment.organisation_id != invoice.organisation_id:
        raise ValidationError({"invoice": _("The invoice is issued by another organisation.")})
    if payment.currency_id != invoice.currency_id:
        raise ValidationError({"invoice": _("The invoice is in another currency.")})
    if payment.counterparty_id is not None and payment.counterparty_id != invoice.counterparty_id:
        raise ValidationError({"invoice": _("The invoice is of another counterparty than the payment.")})
    if value > payment.unallocated_amount:
        raise ValidationError(
            {"amount": _("The payment has only %(left)s left to allocate.") % {"left": payment.unallocated_amount}}
        )
    if value > invoice.open_amount:
        raise ValidationError(
            {"amount": _("The invoice has only %(open)s left to pay.") % {"open": invoice.open_amount}}
        )
    allocation = PaymentAllocation.objects.filter(payment=payment, invoice=invoice).first()
    if allocation is None:
        allocation = PaymentAllocation.objects.create(payment=payment, invoice=invoice, amount=value)
    else:
        allocation.amount += value
        allocation.save(update_fields=["amount"])
    if payment.counterparty_id is None:
        payment.counterparty_id = invoice.counterparty_id
    _refresh_money(payment=payment, invoice=invoice, user=user)
    return allocation


def _refresh_money(*, payment: Payment, invoice: Invoice, user: Any) -> None:
    """Recompute paid and allocated amounts from the allocations themselves, then the status."""
    invoice.paid_amount = invoice.allocations.aggregate(total=Sum("amount"))["total"] or ZERO
    invoice.status = _status_for(invoice)
    _by_user(invoice, user).save()
    payment.allocated_amount = payment.allocations.aggregate(total=Sum("amount"))["total"] or ZERO
    _by_user(payment, user).save()


@transaction.atomic
def remove_allocation(*, user: Any, allocation: PaymentAllocation) -> None:
    """Undo an allocation; the invoice goes back to partly paid or issued."""
    payment = _locked_payment(allocation.payment_id, user)
    invoice = _locked_invoice(allocation.invoice_id, user)
    PaymentAllocation.objects.filter(pk=allocation.pk).delete()
    _refresh_money(payment=payment, invoice=invoice, user=user)


@transaction.atomic
def cancel_payment(*, user: Any, payment: Payment, reason: str) -> Payment:
    """Withdraw a payment its source no longer stands by (1C unposted or deleted it): it stays, marked, with the
    reason; its allocations are released and each invoice's money and status recomputed."""
    payment = _locked_payment(payment, user)
    for allocation in payment.allocations.order_by("pk"):
        invoice = _locked_invoice(allocation.invoice_id, user)
        allocation.delete()
        _refresh_money(payment=payment, invoice=invoice, user=user)
    payment.cancelled, payment.cancel_reason = True, reason[:255]
    _by_user(payment, user).save()
    return payment


@transaction.atomic
def restore_payment(*, user: Any, payment: Payment) -> Payment:
    """A cancelled payment valid again (1C posted the document again); allocate it anew."""
    payment = _locked_payment(payment, user)
    payment.cancelled, payment.cancel_reason = False, ""
    _by_user(payment, user).save()
    return payment


PAYMENT_EDITABLE = (*PAYMENT_FIELDS, "date", "amount", "counterparty")


@transaction.atomic
def update_payment(*, user: Any, payment: Payment, **fields: Any) -> Payment:
    """Change a payment; its amount never drops below what is allocated, and an allocated payment
    keeps its counterparty."""
    unknown = set(fields) - set(PAYMENT_EDITABLE)
    if unknown:
        raise TypeError(f"unknown payment fields: {sorted(unknown)}")
    payment = _locked_payment(payment, user)
    if "amount" in fields:
        fields["amount"] = as_decimal(fields["amount"], field="amount", places=2, minimum=ZERO, strict_min=True)
        if fields["amount"] < payment.allocated_amount:
            raise ValidationError(
                {
                    "amount": _("%(allocated)s of the payment is already allocated.")
                    % {"allocated": payment.allocated_amount}
                }
            )
    if "counterparty" in fields:
        counterparty = _require_visible(Counterparty, fields["counterparty"], user, "counterparty")
        if payment.allocated_amount > 0 and _pk(counterparty) != payment.counterparty_id:
            raise ValidationError({"counterparty": _("Remove the allocations before changing the payer.")})
        fields["counterparty"] = counterparty
    bank_account = fields.get("bank_account")
    if bank_account is not None and bank_account.organisation_id != payment.organisation_id:
        raise ValidationError({"bank_account": _("The bank account belongs to another organisation.")})
    for name, value in fields.items():
        setattr(payment, name, value)
    if payment.direction not in PaymentDirection.values:
        raise ValidationError({"direction": _("Unknown direction.")})
    _by_user(payment, user).save()
    return payment


# --- contracts ------------------------------------------------------------------------------------

CONTRACT_FIELDS = ("organisation", "kind", "name", "number", "date", "valid_until", "currency", "comment", "is_active")


def _check_contract_fields(contract: Contract) -> None:
    errors: dict[str, str] = {}
    contract.name = contract.name.strip() or contract.basis.strip()
    if not contract.name:
        errors["name"] = _("Enter the contract's number or name.")
    if contract.kind not in ContractKind.values:
        errors["kind"] = _("Unknown contract kind.")
    if contract.date and contract.valid_until and contract.valid_until < contract.date:
        errors["valid_until"] = _("The contract ends before it is signed.")
    if contract.organisation_id is not None and not Organisation.objects.filter(pk=contract.organisation_id).exists():
        errors["organisation"] = _("No such organisation.")
    try:
        _currency(contract.currency_id or "")
    except ValidationError as exc:
        errors.update({field: " ".join(messages) for field, messages in exc.message_dict.items()})
    if errors:
        raise ValidationError(errors)


def _apply_contract_fields(contract: Contract, fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - set(CONTRACT_FIELDS)
    if unknown:
        raise TypeError(f"unknown contract fields: {sorted(unknown)}")
    for name, value in fields.items():
        if name == "organisation":
            contract.organisation_id = _pk(value)
        elif name == "currency":
            contract.currency_id = value.code if isinstance(value, Currency) else str(value or RUB).upper()
        else:
            setattr(contract, name, "" if value is None and name in {"name", "number", "comment"} else value)


@transaction.atomic
def create_contract(*, user: Any, counterparty: Counterparty | int, **fields: Any) -> Contract:
    """A contract with a counterparty the user may see; its name defaults to «Договор № … от …»."""
    found = _require_visible(Counterparty, counterparty, user, "counterparty")
    contract = Contract(counterparty=found)
    _apply_contract_fields(contract, fields)
    _check_contract_fields(contract)
    _by_user(contract, user).save()
    return contract


@transaction.atomic
def update_contract(*, user: Any, contract: Contract | int, **fields: Any) -> Contract:
    found = _require_visible(Contract, contract, user, "contract")
    locked = Contract.objects.select_for_update().get(pk=found.pk)
    _apply_contract_fields(locked, fields)
    _check_contract_fields(locked)
    _by_user(locked, user).save()
    return locked
