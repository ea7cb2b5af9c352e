"""Catalogue API: products with prices by price type and stock by warehouse, price types, warehouses,
product groups and units. Every authenticated user reads the catalogue; writes go through services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.routers import BaseRouter

from sdelka.api.errors import call_service
from sdelka.core.vat import VatRate

from . import selectors, services
from .models import Price, PriceType, Product, ProductGroup, ProductKind, StockLevel, Unit, Warehouse

T = TypeVar("T")


# --- Serializers ----------------------------------------------------------------------------------


class UnitSerializer(serializers.ModelSerializer):
    class Meta:
        model = Unit
        fields = ["id", "okei", "name", "full_name", "international"]


class ProductGroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProductGroup
        fields = ["id", "name", "parent", "is_active"]


class PriceTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = PriceType
        fields = ["id", "name", "currency", "vat_included", "is_default", "is_active"]


class WarehouseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Warehouse
        fields = ["id", "name", "address", "is_active"]


class ProductPriceSerializer(serializers.ModelSerializer):
    currency = serializers.CharField(source="price_type.currency_id", read_only=True)

    class Meta:
        model = Price
        fields = ["price_type", "variant", "value", "currency"]


class ProductStockSerializer(serializers.ModelSerializer):
    class Meta:
        model = StockLevel
        fields = ["warehouse", "variant", "quantity"]


class ProductSerializer(serializers.ModelSerializer):
    prices = ProductPriceSerializer(many=True, read_only=True)
    stock = ProductStockSerializer(many=True, read_only=True)
    total_stock = serializers.DecimalField(max_digits=18, decimal_places=3, read_only=True)
    properties = serializers.DictField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        write_only=True,
        help_text="Property name → value; replaces the product's property values.",
    )
    property_values = serializers.SerializerMethodField()
    vat_rate = serializers.ChoiceField(choices=VatRate.choices, default=VatRate.VAT_22)
    kind = serializers.ChoiceField(choices=ProductKind.choices, default=ProductKind.GOODS)

    class Meta:
        model = Product
        fields = [
            "id",
            *services.PRODUCT_FIELDS,
            "properties",
            "property_values",
            "prices",
            "stock",
            "total_stock",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def get_property_values(self, product: Product) -> dict[str, str]:
        return {value.property.name: value.value for value in product.property_values.all()}

    def create(self, validated_data: dict[str, Any]) -> Product:
        request = self.context["request"]
        return call_service(services.create_product, user=request.user, **validated_data)

    def update(self, instance: Product, validated_data: dict[str, Any]) -> Product:
        request = self.context["request"]
        return call_service(services.update_product, user=request.user, product=instance, **validated_data)


# --- Views ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("search", OpenApiTypes.STR, description="Part of a name or article, or a barcode."),
            OpenApiParameter("group", OpenApiTypes.INT, description="A product group; its subgroups are included."),
            OpenApiParameter("is_active", OpenApiTypes.BOOL),
            OpenApiParameter("kind", OpenApiTypes.STR, enum=ProductKind.values),
        ]
    )
)
class ProductViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProductSerializer
    queryset = Product.objects.none()
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        params = self.request.query_params
        group = params.get("group")
        active = params.get("is_active")
        if group is not None and not group.isdigit():
            raise ValidationError({"group": [_("A product group id is a number.")]})
        return selectors.product_list(
            user=self.request.user,
            search=params.get("search"),
            group=int(group) if group else None,
            active=None if active is None else active.lower() in {"1", "true", "yes"},
            kind=params.get("kind") or None,
        )

    def perform_create(self, serializer: Any) -> None:
        product = serializer.save()
        serializer.instance = selectors.product_get(user=self.request.user, pk=product.pk)

    def perform_update(self, serializer: Any) -> None:
        product = serializer.save()
        serializer.instance = selectors.product_get(user=self.request.user, pk=product.pk)


class ReferenceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """A catalogue reference read through `selector` and written through `save`, a service that takes
    every field and, when updating, the instance as `instance_kwarg`."""

    filter_backends: list[Any] = []
    selector: Callable[..., Any]
    save: Callable[..., Any]
    instance_kwarg: str

    def get_queryset(self) -> Any:
        return type(self).selector(user=self.request.user)

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = call_service(type(self).save, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        instance = serializer.instance
        data = {name: getattr(instance, name) for name in serializer.Meta.fields if name != "id"}
        data.update(serializer.validated_data)
        serializer.instance = call_service(type(self).save, **{self.instance_kwarg: instance}, **data)


class PriceTypeViewSet(ReferenceViewSet):
    serializer_class = PriceTypeSerializer
    queryset = PriceType.objects.none()
    selector = selectors.price_type_list
    save = services.save_price_type
    instance_kwarg = "price_type"


class WarehouseViewSet(ReferenceViewSet):
    serializer_class = WarehouseSerializer
    queryset = Warehouse.objects.none()
    selector = selectors.warehouse_list
    save = services.save_warehouse
    instance_kwarg = "warehouse"


class ProductGroupViewSet(ReferenceViewSet):
    serializer_class = ProductGroupSerializer
    queryset = ProductGroup.objects.none()
    selector = selectors.product_group_list
    save = services.save_product_group
    instance_kwarg = "group"


class UnitViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = UnitSerializer
    queryset = Unit.objects.none()
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        return selectors.unit_list(user=self.request.user)


def register(router: BaseRouter) -> None:
    """Register this app's API viewsets on the shared /api/v1/ router."""
    router.register("products", ProductViewSet, basename="product")
    router.register("price-types", PriceTypeViewSet, basename="price-type")
    router.register("warehouses", WarehouseViewSet, basename="warehouse")
    router.register("product-groups", ProductGroupViewSet, basename="product-group")
    router.register("units", UnitViewSet, basename="unit")
