"""Admin of reference data: currencies and exchange rates."""

from __future__ import annotations

from django.contrib import admin

from .models import Currency, ExchangeRate


@admin.register(Currency)
class CurrencyAdmin(admin.ModelAdmin):
    list_display = ["code", "numeric_code", "name", "symbol", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["code", "numeric_code", "name"]


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ["currency", "date", "rate", "nominal"]
    list_filter = ["currency"]
    date_hierarchy = "date"
    search_fields = ["currency__code", "currency__name"]
    autocomplete_fields = ["currency"]
