"""Every read of the catalogue. The catalogue is visible to every authenticated user (no counterparty
scope), so `user` only decides whether anything is returned at all."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import DecimalField, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from .models import Price, PriceType, Product, ProductGroup, ProductPropertyValue, StockLevel, Unit, Variant, Warehouse


def _allowed(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def group_subtree_ids(root_id: int) -> set[int]:
    """The group and every group below it, in one query whatever the depth."""
    children: dict[int | None, list[int]] = {}
    for group_id, parent_id in ProductGroup.objects.values_list("id", "parent_id"):
        children.setdefault(parent_id, []).append(group_id)
    found: set[int] = set()
    stack = [root_id]
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(children.get(node, []))
    return found


def with_prices_and_stock(queryset: QuerySet[Product]) -> QuerySet[Product]:
    """Prices by price type and stock by warehouse in two extra queries for the whole page, and the
    total stock of each product as `total_stock`."""
    stock_sum = (
        StockLevel.objects.filter(product=OuterRef("pk")).values("product").annotate(sum=Sum("quantity")).values("sum")
    )
    quantity: DecimalField[Decimal, Decimal] = DecimalField(max_digits=18, decimal_places=3)
    total = Coalesce(Subquery(stock_sum, output_field=quantity), Value(Decimal("0.000")), output_field=quantity)
    return (
        queryset.annotate(total_stock=total)
        .select_related("unit", "group")
        .prefetch_related(
            Prefetch("prices", queryset=Price.objects.select_related("price_type").order_by("price_type__name", "id")),
            Prefetch(
                "stock", queryset=StockLevel.objects.select_related("warehouse").order_by("warehouse__name", "id")
            ),
            Prefetch("property_values", queryset=ProductPropertyValue.objects.select_related("property")),
        )
    )


def product_list(
    *,
    user: Any,
    search: str | None = None,
    group: ProductGroup | int | None = None,
    active: bool | None = None,
    kind: str | None = None,
) -> QuerySet[Product]:
    """Products matching `search` in name, full name, article or barcode (the variants' barcodes too),
    inside `group` and its subgroups."""
    if not _allowed(user):
        return Product.objects.none()
    queryset = Product.objects.all()
    if search and search.strip():
        term = search.strip()
        queryset = queryset.filter(
            Q(name__icontains=term)
            | Q(full_name__icontains=term)
            | Q(article__icontains=term)
            | Q(barcode=term)
            | Q(pk__in=Variant.objects.filter(Q(barcode=term) | Q(article__iexact=term)).values("product_id"))
        )
    if group is not None:
        group_id = group.pk if isinstance(group, ProductGroup) else int(group)
        queryset = queryset.filter(group_id__in=group_subtree_ids(group_id))
    if active is not None:
        queryset = queryset.filter(is_active=active)
    if kind:
        queryset = queryset.filter(kind=kind)
    return with_prices_and_stock(queryset).order_by("name", "id")


def product_get(*, user: Any, pk: int) -> Product:
    return product_list(user=user).get(pk=pk)


def price_type_list(*, user: Any) -> QuerySet[PriceType]:
    if not _allowed(user):
        return PriceType.objects.none()
    return PriceType.objects.select_related("currency").order_by("name", "id")


def warehouse_list(*, user: Any) -> QuerySet[Warehouse]:
    if not _allowed(user):
        return Warehouse.objects.none()
    return Warehouse.objects.order_by("name", "id")


def product_group_list(*, user: Any) -> QuerySet[ProductGroup]:
    if not _allowed(user):
        return ProductGroup.objects.none()
    return ProductGroup.objects.order_by("name", "id")


def unit_list(*, user: Any) -> QuerySet[Unit]:
    if not _allowed(user):
        return Unit.objects.none()
    return Unit.objects.order_by("name", "id")
