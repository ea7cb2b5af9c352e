"""VAT rates and the arithmetic of a document line, exact to the kopeck.

Rates in force in 2026 (ru-requisites §8): 22 % general, 10 % reduced, 0 %, 5 % and 7 % for УСН
payers, and «Без НДС». 20 % stays for documents dated before 2026 that come from 1C.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.utils.translation import gettext_lazy as _

KOPECK = Decimal("0.01")


class VatRate(models.TextChoices):
    VAT_22 = "22", _("22%")
    VAT_10 = "10", _("10%")
    VAT_7 = "7", _("7%")
    VAT_5 = "5", _("5%")
    VAT_0 = "0", _("0%")
    VAT_20 = "20", _("20% (before 2026)")
    WITHOUT = "none", _("Without VAT")

    @property
    def percent(self) -> Decimal | None:
        return None if self is VatRate.WITHOUT else Decimal(self.value)


class VatMode(models.TextChoices):
    INCLUDED = "included", _("VAT included in price")
    ON_TOP = "on_top", _("VAT added on top of price")
    WITHOUT = "without", _("Without VAT")


def money(value: Decimal) -> Decimal:
    return value.quantize(KOPECK, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class LineAmounts:
    """`amount` is the line sum after discount as it stands in the document; `total` includes VAT."""

    amount: Decimal
    vat: Decimal
    total: Decimal


def line_amounts(*, quantity: Decimal, price: Decimal, discount: Decimal, rate: str, mode: str) -> LineAmounts:
    """Line sum = round(quantity × price) − discount, then VAT by the document's mode."""
    amount = money(quantity * price) - money(discount)
    percent = VatRate(rate).percent
    if mode == VatMode.WITHOUT or percent is None or percent == 0:
        return LineAmounts(amount=amount, vat=Decimal("0.00"), total=amount)
    if mode == VatMode.INCLUDED:
        vat = money(amount * percent / (100 + percent))
        return LineAmounts(amount=amount, vat=vat, total=amount)
    vat = money(amount * percent / 100)
    return LineAmounts(amount=amount, vat=vat, total=amount + vat)
