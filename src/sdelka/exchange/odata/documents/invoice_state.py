"""An invoice as both directions compare it: its lines as comparable tuples and, for doc_merge, Sdelka's side
of a linked invoice as plain text (the rows as one line per row)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sdelka.sales.models import Invoice

from ..doc_merge import ROWS
from .common import ZERO


def comparable_lines(lines: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (line.get("product"), Decimal(str(line.get("quantity") or 0)).normalize(),
         Decimal(str(line.get("price") or 0)).quantize(ZERO), line.get("vat_rate"))
        for line in lines
    ]  # fmt: skip


def rows_text(lines: list[dict[str, Any]]) -> str:
    """The rows as one comparable, readable value: a line per row (product id, quantity, price, VAT rate)."""
    return "\n".join(f"{product or '—'} × {quantity:f} × {price} ({vat or '—'})"
                     for product, quantity, price, vat in comparable_lines(lines))  # fmt: skip


def current_lines(invoice: Invoice) -> list[dict[str, Any]]:
    return [
        {"product": line.product_id, "description": line.description, "quantity": line.quantity,
         "price": line.price, "vat_rate": line.vat_rate}
        for line in invoice.lines.all()
    ]  # fmt: skip


def invoice_state(invoice: Invoice) -> dict[str, str]:
    """Sdelka's side of a linked invoice, as doc_merge compares it."""
    return {"date": invoice.date.isoformat(), "currency": str(invoice.currency_id), "vat_mode": str(invoice.vat_mode),
            "comment": invoice.comment, "contract": str(invoice.contract_id or ""),
            ROWS: rows_text(current_lines(invoice))}  # fmt: skip
