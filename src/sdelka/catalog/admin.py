from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .models import (
    Price,
    PriceType,
    Product,
    ProductGroup,
    ProductPropertyValue,
    Property,
    PropertyOption,
    StockLevel,
    Unit,
    Variant,
    Warehouse,
)


class ProductGroupForm(forms.ModelForm):
    class Meta:
        model = ProductGroup
        fields = ["name", "parent", "is_active"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            services.check_group_parent(group=self.instance, parent=cleaned.get("parent"))
        except ValidationError as exc:
            self.add_error(None, exc)
        return cleaned


@admin.register(ProductGroup)
class ProductGroupAdmin(admin.ModelAdmin):
    form = ProductGroupForm
    list_display = ["name", "parent", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name"]
    autocomplete_fields = ["parent"]

    def save_model(self, request: HttpRequest, obj: ProductGroup, form: Any, change: bool) -> None:
        saved = services.save_product_group(
            group=obj if change else None, name=obj.name, parent=obj.parent, is_active=obj.is_active
        )
        obj.pk = saved.pk


@admin.register(Unit)
class UnitAdmin(admin.ModelAdmin):
    list_display = ["name", "okei", "full_name", "international"]
    search_fields = ["name", "okei", "full_name"]


class PriceTypeForm(forms.ModelForm):
    class Meta:
        model = PriceType
        fields = ["name", "currency", "vat_included", "is_default", "is_active"]


@admin.register(PriceType)
class PriceTypeAdmin(admin.ModelAdmin):
    form = PriceTypeForm
    list_display = ["name", "currency", "vat_included", "is_default", "is_active"]
    list_filter = ["is_default", "is_active", "currency"]
    search_fields = ["name"]

    def save_model(self, request: HttpRequest, obj: PriceType, form: Any, change: bool) -> None:
        saved = services.save_price_type(
            price_type=obj if change else None,
            name=obj.name,
            currency=obj.currency_id or "RUB",
            vat_included=obj.vat_included,
            is_default=obj.is_default,
            is_active=obj.is_active,
        )
        obj.pk = saved.pk


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["name", "address", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "address"]

    def save_model(self, request: HttpRequest, obj: Warehouse, form: Any, change: bool) -> None:
        saved = services.save_warehouse(
            warehouse=obj if change else None, name=obj.name, address=obj.address, is_active=obj.is_active
        )
        obj.pk = saved.pk


class PropertyOptionInline(admin.TabularInline):
    model = PropertyOption
    extra = 0


@admin.register(Property)
class PropertyAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]
    inlines = [PropertyOptionInline]


class PriceInline(admin.TabularInline):
    model = Price
    extra = 0
    fields = ["price_type", "variant", "value"]


class StockInline(admin.TabularInline):
    model = StockLevel
    extra = 0
    fields = ["warehouse", "variant", "quantity"]


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ["name", "article", "barcode", "characteristics", "is_active"]


class PropertyValueInline(admin.TabularInline):
    model = ProductPropertyValue
    extra = 0
    fields = ["property", "value"]
    autocomplete_fields = ["property"]


@admin.register(Product)
class ProductAdmin(SimpleHistoryAdmin):
    list_display = ["name", "article", "barcode", "group", "unit", "vat_rate", "kind", "is_active"]
    list_filter = ["group", "kind", "vat_rate", "is_active"]
    search_fields = ["name", "full_name", "article", "barcode"]
    list_select_related = ["group", "unit"]
    autocomplete_fields = ["group"]
    inlines = [PriceInline, StockInline, VariantInline, PropertyValueInline]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        fields = {name: getattr(obj, name) for name in services.PRODUCT_FIELDS if name not in {"name", "unit"}}
        if change:
            services.update_product(user=request.user, product=obj, name=obj.name, unit=obj.unit, **fields)
        else:
            saved = services.create_product(user=request.user, name=obj.name, unit=obj.unit, **fields)
            obj.pk = saved.pk
            obj._state.adding = False

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        """Prices and stock go through their services (decimals and variant checks); the rest as usual."""
        if formset.model not in (Price, StockLevel):
            super().save_formset(request, form, formset, change)
            return
        for deleted in formset.deleted_forms:
            if deleted.instance.pk:
                deleted.instance.delete()
        for inline_form in formset.forms:
            if inline_form in formset.deleted_forms or not inline_form.has_changed():
                continue
            data = inline_form.cleaned_data
            if formset.model is Price:
                if inline_form.instance.pk and inline_form.instance.price_type_id != data["price_type"].pk:
                    Price.objects.filter(pk=inline_form.instance.pk).delete()
                services.set_price(
                    price_type=data["price_type"],
                    product=form.instance,
                    variant=data.get("variant"),
                    value=data["value"],
                )
            else:
                if inline_form.instance.pk and inline_form.instance.warehouse_id != data["warehouse"].pk:
                    StockLevel.objects.filter(pk=inline_form.instance.pk).delete()
                services.set_stock(
                    warehouse=data["warehouse"],
                    product=form.instance,
                    variant=data.get("variant"),
                    quantity=data["quantity"],
                )
        # The rows were written by the services above; the admin's change message lists none of them.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
