from __future__ import annotations

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from sdelka.core.models import TimeStampedModel
from sdelka.core.vat import VatRate


class ProductGroup(models.Model):
    name = models.CharField(_("name"), max_length=255)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent group"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product group")
        verbose_name_plural = _("product groups")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Unit(models.Model):
    """A unit of measure; `okei` is its code in the all-Russian classifier (796 = шт)."""

    okei = models.CharField(
        _("ОКЕИ code"),
        max_length=4,
        unique=True,
        null=True,
        blank=True,
        validators=[RegexValidator(r"^\d{3,4}$", _("An ОКЕИ code is 3 or 4 digits."))],
    )
    name = models.CharField(_("short name"), max_length=30)
    full_name = models.CharField(_("full name"), max_length=100, blank=True)
    international = models.CharField(_("international code"), max_length=10, blank=True)

    class Meta:
        verbose_name = _("unit")
        verbose_name_plural = _("units")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProductKind(models.TextChoices):
    GOODS = "goods", _("Goods")
    SERVICE = "service", _("Service")


class Product(TimeStampedModel):
    group = models.ForeignKey(
        ProductGroup,
        verbose_name=_("group"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="products",
    )
    article = models.CharField(_("article"), max_length=100, blank=True, db_index=True)
    barcode = models.CharField(_("barcode"), max_length=64, blank=True, db_index=True)
    name = models.CharField(_("name"), max_length=500, db_index=True)
    full_name = models.CharField(_("full name"), max_length=1000, blank=True)
    description = models.TextField(_("description"), blank=True)
    unit = models.ForeignKey(Unit, verbose_name=_("unit"), on_delete=models.PROTECT, related_name="products")
    vat_rate = models.CharField(_("VAT rate"), max_length=4, choices=VatRate.choices, default=VatRate.VAT_22)
    kind = models.CharField(_("kind"), max_length=10, choices=ProductKind.choices, default=ProductKind.GOODS)
    manufacturer = models.CharField(_("manufacturer"), max_length=255, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} [{self.article}]" if self.article else self.name


class Property(models.Model):
    """A product property; with options it is a reference list (like 1C «Справочник» values)."""

    name = models.CharField(_("name"), max_length=255, unique=True)

    class Meta:
        verbose_name = _("property")
        verbose_name_plural = _("properties")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PropertyOption(models.Model):
    property = models.ForeignKey(Property, verbose_name=_("property"), on_delete=models.CASCADE, related_name="options")
    value = models.CharField(_("value"), max_length=255)

    class Meta:
        verbose_name = _("property option")
        verbose_name_plural = _("property options")
        ordering = ["property", "value"]
        constraints = [models.UniqueConstraint(fields=["property", "value"], name="property_option_unique")]

    def __str__(self) -> str:
        return self.value


class ProductPropertyValue(models.Model):
    # The catalogue exchange writes these rows by the million: no database foreign keys (docs/decisions/0006), and
    # no index of the product's own (the unique (product, property) leads with it).
    product = models.ForeignKey(
        Product,
        verbose_name=_("product"),
        on_delete=models.CASCADE,
        related_name="property_values",
        db_index=False,
        db_constraint=False,
    )
    # No index of the property's own either: nothing looks values up by property but the (rare) deletion of a
    # property by hand, and it would cost an index write per value of every catalogue upload.
    property = models.ForeignKey(
        Property,
        verbose_name=_("property"),
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    value = models.CharField(_("value"), max_length=1000)

    class Meta:
        verbose_name = _("property value")
        verbose_name_plural = _("property values")
        constraints = [models.UniqueConstraint(fields=["product", "property"], name="product_property_unique")]

    def __str__(self) -> str:
        return f"{self.property}: {self.value}"


class Variant(models.Model):
    """A characteristic of a product (size, colour…): 1C's «ХарактеристикаНоменклатуры»."""

    product = models.ForeignKey(Product, verbose_name=_("product"), on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(_("name"), max_length=500)
    article = models.CharField(_("article"), max_length=100, blank=True)
    barcode = models.CharField(_("barcode"), max_length=64, blank=True, db_index=True)
    characteristics = models.JSONField(_("characteristics"), default=dict, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["product", "name"]

    def __str__(self) -> str:
        return f"{self.product.name} ({self.name})"


class PriceType(models.Model):
    name = models.CharField(_("name"), max_length=150, unique=True)
    currency = models.ForeignKey("core.Currency", verbose_name=_("currency"), on_delete=models.PROTECT, default="RUB")
    vat_included = models.BooleanField(_("VAT included"), default=True)
    is_default = models.BooleanField(_("default for invoices"), default=False)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("price type")
        verbose_name_plural = _("price types")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Price(models.Model):
    # Written in bulk by the catalogue exchange: no database foreign keys (docs/decisions/0006). No index of the
    # price type's own: the unique (price type, product[, variant]) lead with it, and a price type is only ever
    # deleted by hand.
    price_type = models.ForeignKey(
        PriceType,
        verbose_name=_("price type"),
        on_delete=models.CASCADE,
        related_name="prices",
        db_constraint=False,
        db_index=False,
    )
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.CASCADE, related_name="prices", db_constraint=False
    )
    variant = models.ForeignKey(
        Variant,
        verbose_name=_("variant"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="prices",
        db_constraint=False,
    )
    value = models.DecimalField(_("price"), max_digits=18, decimal_places=2, validators=[MinValueValidator(0)])
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("price")
        verbose_name_plural = _("prices")
        constraints = [
            models.UniqueConstraint(
                fields=["price_type", "product"], condition=Q(variant__isnull=True), name="price_unique_product"
            ),
            models.UniqueConstraint(
                fields=["price_type", "product", "variant"],
                condition=Q(variant__isnull=False),
                name="price_unique_variant",
            ),
            models.CheckConstraint(condition=Q(value__gte=0), name="price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product}: {self.value} ({self.price_type})"


class Warehouse(models.Model):
    name = models.CharField(_("name"), max_length=255, unique=True)
    address = models.TextField(_("address"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("warehouse")
        verbose_name_plural = _("warehouses")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StockLevel(models.Model):
    # Written in bulk by the catalogue exchange: no database foreign keys (docs/decisions/0006). No index of the
    # warehouse's own: the unique (warehouse, product[, variant]) lead with it, and a warehouse is only ever
    # deleted by hand.
    warehouse = models.ForeignKey(
        Warehouse,
        verbose_name=_("warehouse"),
        on_delete=models.CASCADE,
        related_name="stock",
        db_constraint=False,
        db_index=False,
    )
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.CASCADE, related_name="stock", db_constraint=False
    )
    variant = models.ForeignKey(
        Variant,
        verbose_name=_("variant"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="stock",
        db_constraint=False,
    )
    # 1C reports negative stock when documents are posted out of order, so it is not refused here.
    quantity = models.DecimalField(_("quantity"), max_digits=15, decimal_places=3)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("stock level")
        verbose_name_plural = _("stock levels")
        constraints = [
            models.UniqueConstraint(
                fields=["warehouse", "product"], condition=Q(variant__isnull=True), name="stock_unique_product"
            ),
            models.UniqueConstraint(
                fields=["warehouse", "product", "variant"],
                condition=Q(variant__isnull=False),
                name="stock_unique_variant",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.product} @ {self.warehouse}: {self.quantity}"
