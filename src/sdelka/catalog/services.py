"""Every write to the catalogue: product groups, products, variants, price types, prices, warehouses, stock.

The catalogue belongs to nobody's scope: every authenticated user reads it. Writes record the acting user
in the history of products.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from sdelka.core.models import Currency
from sdelka.core.vat import VatRate

from .models import (
    Price,
    PriceType,
    Product,
    ProductGroup,
    ProductKind,
    ProductPropertyValue,
    Property,
    StockLevel,
    Unit,
    Variant,
    Warehouse,
)

PRODUCT_FIELDS = (
    "group",
    "article",
    "barcode",
    "name",
    "full_name",
    "description",
    "unit",
    "vat_rate",
    "kind",
    "manufacturer",
    "is_active",
)


# --- Shared checks --------------------------------------------------------------------------------


def as_decimal(
    value: Any, *, field: str, places: int, minimum: Decimal | None = None, strict_min: bool = False
) -> Decimal:
    """`value` as a Decimal with at most `places` decimals and not below `minimum`, or a ValidationError
    naming `field`. Floats are refused: money is never a float."""
    if isinstance(value, float):
        raise ValidationError({field: _("Pass a decimal string or Decimal, not a float.")}, code="float")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError({field: _("Enter a number.")}, code="invalid") from exc
    if not number.is_finite():
        raise ValidationError({field: _("Enter a number.")}, code="invalid")
    exponent = number.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places:
        raise ValidationError(
            {field: _("At most %(places)d digits after the decimal point.") % {"places": places}},
            code="max_decimal_places",
        )
    if minimum is not None and (number <= minimum if strict_min else number < minimum):
        message = _("Must be greater than %(min)s.") if strict_min else _("Must not be less than %(min)s.")
        raise ValidationError({field: message % {"min": minimum}}, code="min_value")
    return number.quantize(Decimal(1).scaleb(-places))


def _set_history_user(instance: Any, user: Any) -> None:
    if user is not None and getattr(user, "is_authenticated", False):
        instance._history_user = user


# --- Groups ---------------------------------------------------------------------------------------


def check_group_parent(*, group: ProductGroup | None, parent: ProductGroup | None) -> None:
    """A group may not be placed under itself or any of its descendants."""
    if group is None or group.pk is None or parent is None:
        return
    parents = dict(ProductGroup.objects.values_list("id", "parent_id"))
    node: int | None = parent.pk
    while node is not None:
        if node == group.pk:
            raise ValidationError(
                {"parent": _("A group cannot be placed inside itself or one of its subgroups.")}, code="cycle"
            )
        node = parents.get(node)


@transaction.atomic
def save_product_group(
    *, name: str, parent: ProductGroup | None = None, group: ProductGroup | None = None, is_active: bool = True
) -> ProductGroup:
    """Create a group, or update `group` when given."""
    if not name.strip():
        raise ValidationError({"name": _("Enter a name.")}, code="required")
    check_group_parent(group=group, parent=parent)
    group = group or ProductGroup()
    group.name = name.strip()
    group.parent = parent
    group.is_active = is_active
    group.full_clean()
    group.save()
    return group


# --- Products -------------------------------------------------------------------------------------


def _apply_product_fields(product: Product, fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - set(PRODUCT_FIELDS)
    if unknown:
        raise TypeError(f"unknown product fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(product, name, value)
    if product.vat_rate not in VatRate.values:
        raise ValidationError({"vat_rate": _("Unknown VAT rate.")}, code="invalid_choice")
    if product.kind not in ProductKind.values:
        raise ValidationError({"kind": _("Unknown product kind.")}, code="invalid_choice")
    if not (product.name or "").strip():
        raise ValidationError({"name": _("Enter a name.")}, code="required")
    if not product.unit_id:
        raise ValidationError({"unit": _("Choose a unit.")}, code="required")
    product.full_clean()


def _set_properties(product: Product, properties: Mapping[Property | str, str]) -> None:
    """Replace the product's property values; a property named by a string is created when missing."""
    wanted: dict[int, str] = {}
    for key, value in properties.items():
        prop = key if isinstance(key, Property) else Property.objects.get_or_create(name=key.strip())[0]
        wanted[prop.pk] = str(value)
    product.property_values.exclude(property_id__in=wanted).delete()
    existing = {pv.property_id: pv for pv in product.property_values.all()}
    to_create, to_update = [], []
    for property_id, value in wanted.items():
        if property_id in existing:
            if existing[property_id].value != value:
                existing[property_id].value = value
                to_update.append(existing[property_id])
        else:
            to_create.append(ProductPropertyValue(product=product, property_id=property_id, value=value))
    ProductPropertyValue.objects.bulk_create(to_create)
    ProductPropertyValue.objects.bulk_update(to_update, ["value"])


@transaction.atomic
def create_product(
    *, user: Any, name: str, unit: Unit, properties: Mapping[Property | str, str] | None = None, **fields: Any
) -> Product:
    product = Product()
    _apply_product_fields(product, {"name": name, "unit": unit, **fields})
    _set_history_user(product, user)
    product.save()
    if properties:
        _set_properties(product, properties)
    return product


@transaction.atomic
def update_product(
    *, user: Any, product: Product, properties: Mapping[Property | str, str] | None = None, **fields: Any
) -> Product:
    _apply_product_fields(product, fields)
    _set_history_user(product, user)
    product.save()
    if properties is not None:
        _set_properties(product, properties)
    return product


@transaction.atomic
def save_variant(
    *,
    product: Product,
    name: str,
    variant: Variant | None = None,
    article: str = "",
    barcode: str = "",
    characteristics: Mapping[str, str] | None = None,
    is_active: bool = True,
) -> Variant:
    if variant is not None and variant.product_id != product.pk:
        raise ValidationError({"product": _("The variant belongs to another product.")}, code="mismatch")
    if not name.strip():
        raise ValidationError({"name": _("Enter a name.")}, code="required")
    variant = variant or Variant(product=product)
    variant.name = name.strip()
    variant.article = article
    variant.barcode = barcode
    variant.characteristics = dict(characteristics or {})
    variant.is_active = is_active
    variant.full_clean()
    variant.save()
    return variant


# --- Price types and prices -----------------------------------------------------------------------


@transaction.atomic
def save_price_type(
    *,
    name: str,
    currency: Currency | str = "RUB",
    vat_included: bool = True,
    is_default: bool = False,
    is_active: bool = True,
    price_type: PriceType | None = None,
) -> PriceType:
    """Create or update a price type; making one the default takes the flag from every other."""
    code = currency.code if isinstance(currency, Currency) else currency
    if not Currency.objects.filter(code=code, is_active=True).exists():
        raise ValidationError({"currency": _("Unknown currency %(code)s.") % {"code": code}}, code="unknown")
    if not name.strip():
        raise ValidationError({"name": _("Enter a name.")}, code="required")
    price_type = price_type or PriceType()
    price_type.name = name.strip()
    price_type.currency_id = code
    price_type.vat_included = vat_included
    price_type.is_default = is_default
    price_type.is_active = is_active
    price_type.full_clean()
    if is_default:
        PriceType.objects.filter(is_default=True).exclude(pk=price_type.pk).update(is_default=False)
    price_type.save()
    return price_type


def default_price_type() -> PriceType | None:
    return PriceType.objects.filter(is_default=True, is_active=True).select_related("currency").first()


def _check_variant(product: Product, variant: Variant | None) -> None:
    if variant is not None and variant.product_id != product.pk:
        raise ValidationError({"variant": _("The variant belongs to another product.")}, code="mismatch")


@transaction.atomic
def set_price(*, price_type: PriceType, product: Product, value: Any, variant: Variant | None = None) -> Price:
    """The price of a product (or one of its variants) in a price type; its currency is the price type's."""
    amount = as_decimal(value, field="value", places=2, minimum=Decimal(0))
    _check_variant(product, variant)
    price, _created = Price.objects.update_or_create(
        price_type=price_type, product=product, variant=variant, defaults={"value": amount}
    )
    return price


@transaction.atomic
def save_warehouse(
    *, name: str, address: str = "", is_active: bool = True, warehouse: Warehouse | None = None
) -> Warehouse:
    if not name.strip():
        raise ValidationError({"name": _("Enter a name.")}, code="required")
    warehouse = warehouse or Warehouse()
    warehouse.name = name.strip()
    warehouse.address = address
    warehouse.is_active = is_active
    warehouse.full_clean()
    warehouse.save()
    return warehouse


@transaction.atomic
def set_stock(*, warehouse: Warehouse, product: Product, quantity: Any, variant: Variant | None = None) -> StockLevel:
    """The quantity on hand; negative stock is accepted because 1C reports it when documents are late."""
    amount = as_decimal(quantity, field="quantity", places=3)
    _check_variant(product, variant)
    stock, _created = StockLevel.objects.update_or_create(
        warehouse=warehouse, product=product, variant=variant, defaults={"quantity": amount}
    )
    return stock
