from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True, db_index=True)

    class Meta:
        abstract = True


class Currency(models.Model):
    """An ISO 4217 currency; the code is the key 1C, banks and the API use."""

    code = models.CharField(
        _("code"),
        max_length=3,
        primary_key=True,
        validators=[RegexValidator(r"^[A-Z]{3}$", _("A currency code is three capital Latin letters."))],
    )
    numeric_code = models.CharField(
        _("numeric code"),
        max_length=3,
        unique=True,
        validators=[RegexValidator(r"^\d{3}$", _("A numeric currency code is three digits."))],
    )
    name = models.CharField(_("name"), max_length=100)
    symbol = models.CharField(_("symbol"), max_length=8, blank=True)
    # Amount-in-words forms for print: unit (one, few, many) and subunit (one, few, many).
    words_unit = models.CharField(_("unit in words"), max_length=100, blank=True)
    words_subunit = models.CharField(_("subunit in words"), max_length=100, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("currency")
        verbose_name_plural = _("currencies")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class ExchangeRate(models.Model):
    """Roubles per `nominal` units of the currency on a date, as the Bank of Russia quotes them."""

    currency = models.ForeignKey(Currency, verbose_name=_("currency"), on_delete=models.CASCADE, related_name="rates")
    date = models.DateField(_("date"))
    rate = models.DecimalField(_("rate"), max_digits=18, decimal_places=4, validators=[MinValueValidator(0)])
    nominal = models.PositiveIntegerField(_("nominal"), default=1)

    class Meta:
        verbose_name = _("exchange rate")
        verbose_name_plural = _("exchange rates")
        ordering = ["currency", "-date"]
        constraints = [
            models.UniqueConstraint(fields=["currency", "date"], name="exchange_rate_unique_per_day"),
            models.CheckConstraint(condition=models.Q(rate__gt=0), name="exchange_rate_positive"),
            models.CheckConstraint(condition=models.Q(nominal__gt=0), name="exchange_rate_nominal_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.currency_id} {self.date}: {self.rate}/{self.nominal}"
