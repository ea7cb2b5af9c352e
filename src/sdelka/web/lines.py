"""The invoice editor's lines: what the browser sends, parsed into rows, priced from the chosen price type
and computed by `sales.services.prepare_lines` (which calls `core.vat.line_amounts`). The browser does no
arithmetic: every change goes to the server and comes back with the sums."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.http import QueryDict

from sdelka.accounts.models import User
from sdelka.catalog.models import PriceType, Product
from sdelka.core.models import Currency
from sdelka.core.vat import VatRate
from sdelka.sales import services as sales_services
from sdelka.sales.models import Invoice

from . import selectors

LINE_FIELDS = ("key", "product", "prev_product", "description", "quantity", "price", "discount", "vat_rate")
ZERO = Decimal("0.00")


@dataclass
class Row:
    key: str
    product: str = ""
    prev_product: str = ""
    description: str = ""
    quantity: str = "1"
    price: str = ""
    discount: str = ""
    vat_rate: str = VatRate.VAT_22.value
    product_obj: Product | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    amount: Decimal | None = None
    vat_amount: Decimal | None = None
    total: Decimal | None = None

    @property
    def is_blank(self) -> bool:
        return not (self.product or self.description.strip() or self.price.strip())

    def as_line(self) -> dict[str, Any]:
        return {
            "product": self.product or None,
            "description": self.description,
            "quantity": self.quantity,
            "price": self.price.strip() or None,
            "discount": self.discount.strip() or "0",
            "vat_rate": self.vat_rate,
        }


@dataclass
class Totals:
    amount: Decimal = ZERO
    vat_amount: Decimal = ZERO
    total: Decimal = ZERO


def new_key() -> str:
    return uuid.uuid4().hex[:8]


def blank_row() -> Row:
    return Row(key=new_key())


def rows_from_post(data: QueryDict) -> list[Row]:
    columns = {name: data.getlist(f"line_{name}") for name in LINE_FIELDS}
    rows = []
    for index, key in enumerate(columns["key"]):
        value = {name: (columns[name][index] if index < len(columns[name]) else "") for name in LINE_FIELDS}
        rows.append(
            Row(
                key=key or new_key(),
                product=value["product"],
                prev_product=value["prev_product"],
                description=value["description"],
                quantity=value["quantity"],
                price=value["price"],
                discount=value["discount"],
                vat_rate=value["vat_rate"] or VatRate.VAT_22.value,
            )
        )
    return rows


def rows_from_invoice(invoice: Invoice) -> list[Row]:
    return [
        Row(
            key=new_key(),
            product=str(line.product_id or ""),
            prev_product=str(line.product_id or ""),
            description=line.description,
            quantity=f"{line.quantity.normalize():f}",
            price=f"{line.price:f}",
            discount="" if not line.discount else f"{line.discount:f}",
            vat_rate=line.vat_rate,
            amount=line.amount,
            vat_amount=line.vat_amount,
            total=line.total,
        )
        for line in invoice.lines.all()
    ]


def _price_in(product: Product, price_type: PriceType | None) -> str:
    if price_type is None:
        return ""
    for price in product.prices.all():
        if price.price_type_id == price_type.pk and price.variant_id is None:
            return f"{price.value:f}"
    return ""


def refresh(
    *,
    user: User,
    rows: list[Row],
    vat_mode: str,
    currency: Currency | None,
    price_type: PriceType | None,
    price_type_changed: bool = False,
) -> Totals:
    """Fill prices and VAT rates of newly chosen products, then compute every line that can be computed."""
    ids = [int(row.product) for row in rows if row.product.isdigit()]
    products = selectors.products_for_lines(user=user, ids=ids)
    for row in rows:
        row.product_obj = products.get(int(row.product)) if row.product.isdigit() else None
        if row.product_obj is None:
            row.product = ""
        elif row.product != row.prev_product or price_type_changed or not row.price.strip():
            row.price = _price_in(row.product_obj, price_type) or (row.price if row.product == row.prev_product else "")
            if row.product != row.prev_product:
                row.vat_rate = row.product_obj.vat_rate
                row.description = ""
        row.prev_product = row.product
    return compute(rows=rows, vat_mode=vat_mode, currency=currency, price_type=price_type)


def compute(*, rows: list[Row], vat_mode: str, currency: Currency | None, price_type: PriceType | None) -> Totals:
    """Sums of the filled rows by the service's own arithmetic; a row it refuses shows its errors."""
    filled = [row for row in rows if not row.is_blank]
    for row in rows:
        row.errors, row.amount, row.vat_amount, row.total = {}, None, None, None
    if currency is None or not filled:
        return Totals()
    attach_line_errors(filled, _prepare(filled, vat_mode, currency, price_type))
    good = [row for row in filled if not row.errors]
    if len(good) != len(filled):
        _prepare(good, vat_mode, currency, price_type)
    return Totals(
        amount=sum((row.amount or ZERO for row in good), ZERO),
        vat_amount=sum((row.vat_amount or ZERO for row in good), ZERO),
        total=sum((row.total or ZERO for row in good), ZERO),
    )


def _prepare(
    rows: list[Row], vat_mode: str, currency: Currency, price_type: PriceType | None
) -> ValidationError | None:
    if not rows:
        return None
    try:
        prepared = sales_services.prepare_lines(
            lines=[row.as_line() for row in rows], vat_mode=vat_mode, currency=currency, price_type=price_type
        )
    except ValidationError as error:
        return error
    for row, line in zip(rows, prepared, strict=True):
        row.amount, row.vat_amount, row.total = line.amount, line.vat_amount, line.total
    return None


def attach_line_errors(rows: list[Row], error: ValidationError | None) -> dict[str, list[str]]:
    """Put `lines.<i>.<field>` messages on the rows; return the errors that are not about one line."""
    rest: dict[str, list[str]] = {}
    if error is None:
        return rest
    for key, messages in error.message_dict.items():
        parts = key.split(".")
        if len(parts) == 3 and parts[0] == "lines" and parts[1].isdigit() and int(parts[1]) < len(rows):
            rows[int(parts[1])].errors.setdefault(parts[2], []).extend(messages)
        else:
            rest.setdefault(key, []).extend(messages)
    return rest
