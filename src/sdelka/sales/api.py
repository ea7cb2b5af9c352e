"""Sales API: organisations (read), deals, contracts, invoices with lines, payments with allocations.

Every queryset goes through `visible_to(request.user)` (VisibleQuerysetMixin), every reference to a
counterparty, contact, deal or invoice through VisiblePrimaryKeyRelatedField, and every write through
sales.services; a service's ValidationError comes back as a 400 naming the field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import django_filters
from django.db.models import F, QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import filters, mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from sdelka.accounts.models import User
from sdelka.api.errors import call_service
from sdelka.api.mixins import VisiblePrimaryKeyRelatedField, VisibleQuerysetMixin
from sdelka.catalog.models import PriceType, Product, Unit, Variant
from sdelka.core.models import Currency
from sdelka.core.vat import VatMode, VatRate
from sdelka.parties.models import ContactPerson, Counterparty

from . import mail, receivables, selectors, services
from .models import (
    Contract,
    Deal,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Organisation,
    OrganisationBankAccount,
    Payment,
    PaymentAllocation,
    PaymentDirection,
    Stage,
)
from .printing.views import pdf_response, wants_facsimile


class StableOrderingFilter(filters.OrderingFilter):
    """`?ordering=` that always ends on the primary key, so pages never overlap."""

    def get_ordering(self, request: Any, queryset: Any, view: Any) -> Any:
        ordering = super().get_ordering(request, queryset, view)
        if ordering and not {"id", "-id", "pk", "-pk"} & set(ordering):
            ordering = [*ordering, "-id"]
        return ordering


FILTER_BACKENDS = [django_filters.rest_framework.DjangoFilterBackend, filters.SearchFilter, StableOrderingFilter]


class CreateUpdateViewSet(  # type: ignore[misc]
    VisibleQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List, retrieve, create and update; nothing is deleted through the API."""

    filter_backends = FILTER_BACKENDS

    def reread(self, pk: int) -> Any:
        """The object as the list shows it (related rows fetched), after a service wrote it."""
        return self.get_queryset().get(pk=pk)

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = self.reread(serializer.save().pk)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = self.reread(serializer.save().pk)


# --- Organisations --------------------------------------------------------------------------------


class OrganisationBankAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrganisationBankAccount
        fields = ["id", "bik", "bank_name", "correspondent_account", "number", "currency", "is_main"]


class OrganisationSerializer(serializers.ModelSerializer):
    bank_accounts = OrganisationBankAccountSerializer(many=True, read_only=True)

    class Meta:
        model = Organisation
        fields = [
            "id",
            "name",
            "full_name",
            "is_entrepreneur",
            "inn",
            "kpp",
            "ogrn",
            "okpo",
            "legal_address",
            "postal_address",
            "phone",
            "email",
            "director_title",
            "director_name",
            "accountant_name",
            "vat_mode",
            "invoice_prefix",
            "is_active",
            "bank_accounts",
        ]


class OrganisationViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = OrganisationSerializer
    queryset = Organisation.objects.none()
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Organisation]:
        return selectors.organisation_list(user=self.request.user)


# --- Deals ----------------------------------------------------------------------------------------


class DealSerializer(serializers.ModelSerializer):
    counterparty = VisiblePrimaryKeyRelatedField(queryset=Counterparty.objects.all())
    contact = VisiblePrimaryKeyRelatedField(queryset=ContactPerson.objects.all(), allow_null=True, required=False)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)
    stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all(), required=False)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal(0), required=False)
    currency = serializers.PrimaryKeyRelatedField(queryset=Currency.objects.filter(is_active=True), required=False)
    stage_name = serializers.CharField(source="stage.name", read_only=True)
    counterparty_name = serializers.CharField(source="counterparty.name", read_only=True)

    class Meta:
        model = Deal
        fields = [
            "id",
            "title",
            "pipeline",
            "stage",
            "stage_name",
            "counterparty",
            "counterparty_name",
            "contact",
            "owner",
            "amount",
            "currency",
            "expected_close_date",
            "probability",
            "source",
            "lost_reason",
            "closed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["lost_reason", "closed_at", "created_at", "updated_at"]
        extra_kwargs = {"pipeline": {"required": False}}

    def create(self, validated_data: dict[str, Any]) -> Deal:
        return call_service(services.create_deal, user=self.context["request"].user, **validated_data)

    def update(self, instance: Deal, validated_data: dict[str, Any]) -> Deal:
        pipeline = validated_data.pop("pipeline", instance.pipeline)
        if pipeline != instance.pipeline:
            raise ValidationError({"pipeline": ["A deal stays in its pipeline."]})
        return call_service(services.update_deal, user=self.context["request"].user, deal=instance, **validated_data)


class DealMoveSerializer(serializers.Serializer):
    stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all())
    lost_reason = serializers.CharField(required=False, allow_blank=True, default="")


class DealFilter(django_filters.FilterSet):
    pipeline = django_filters.NumberFilter()
    stage = django_filters.NumberFilter()
    owner = django_filters.NumberFilter()
    counterparty = django_filters.NumberFilter()
    is_closed = django_filters.BooleanFilter(field_name="closed_at", lookup_expr="isnull", exclude=True)
    created_from = django_filters.DateFilter(field_name="created_at", lookup_expr="date__gte")
    created_to = django_filters.DateFilter(field_name="created_at", lookup_expr="date__lte")
    expected_close_from = django_filters.DateFilter(field_name="expected_close_date", lookup_expr="gte")
    expected_close_to = django_filters.DateFilter(field_name="expected_close_date", lookup_expr="lte")

    class Meta:
        model = Deal
        fields: list[str] = []


class DealViewSet(CreateUpdateViewSet):
    queryset = selectors.deals_with_related(Deal.objects.all())
    serializer_class = DealSerializer
    filterset_class = DealFilter
    search_fields = ["title", "counterparty__name", "counterparty__inn"]
    ordering_fields = ["created_at", "amount", "expected_close_date", "title"]

    @extend_schema(request=DealMoveSerializer, responses=DealSerializer)
    @action(detail=True, methods=["post"])
    def move(self, request: Request, pk: str | None = None) -> Response:
        """Move the deal to another stage of its pipeline (a lost stage needs `lost_reason`)."""
        deal = self.get_object()
        payload = DealMoveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        call_service(services.move_deal, deal=deal, user=request.user, **payload.validated_data)
        return Response(DealSerializer(self.reread(deal.pk), context=self.get_serializer_context()).data)


# --- Contracts ------------------------------------------------------------------------------------


class ContractSerializer(serializers.ModelSerializer):
    counterparty = VisiblePrimaryKeyRelatedField(queryset=Counterparty.objects.all())
    currency = serializers.PrimaryKeyRelatedField(queryset=Currency.objects.filter(is_active=True), required=False)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)

    class Meta:
        model = Contract
        fields = ["id", "counterparty", *services.CONTRACT_FIELDS, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def create(self, validated_data: dict[str, Any]) -> Contract:
        return call_service(services.create_contract, user=self.context["request"].user, **validated_data)

    def update(self, instance: Contract, validated_data: dict[str, Any]) -> Contract:
        counterparty = validated_data.pop("counterparty", instance.counterparty)
        if counterparty != instance.counterparty:
            raise ValidationError({"counterparty": ["A contract stays with its counterparty."]})
        return call_service(
            services.update_contract, user=self.context["request"].user, contract=instance, **validated_data
        )


class ContractViewSet(CreateUpdateViewSet):
    queryset = Contract.objects.select_related("counterparty", "organisation")
    serializer_class = ContractSerializer
    filterset_fields = ["counterparty", "organisation", "kind", "is_active"]
    search_fields = ["name", "number", "counterparty__name", "counterparty__inn"]
    ordering_fields = ["date", "created_at", "name"]


# --- Invoices -------------------------------------------------------------------------------------


class InvoiceLineSerializer(serializers.ModelSerializer):
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all(), allow_null=True, required=False)
    variant = serializers.PrimaryKeyRelatedField(queryset=Variant.objects.all(), allow_null=True, required=False)
    unit = serializers.PrimaryKeyRelatedField(queryset=Unit.objects.all(), allow_null=True, required=False)
    description = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    quantity = serializers.DecimalField(max_digits=15, decimal_places=3, min_value=Decimal("0.001"))
    price = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        min_value=Decimal(0),
        required=False,
        allow_null=True,
        help_text="Leave out to take the product's price in the price type.",
    )
    discount = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal(0), required=False)
    vat_rate = serializers.ChoiceField(choices=VatRate.choices, required=False)

    class Meta:
        model = InvoiceLine
        fields = [
            "position",
            "product",
            "variant",
            "description",
            "quantity",
            "unit",
            "price",
            "discount",
            "vat_rate",
            "amount",
            "vat_amount",
            "total",
        ]
        read_only_fields = ["position", "amount", "vat_amount", "total"]


class InvoiceSerializer(serializers.ModelSerializer):
    counterparty = VisiblePrimaryKeyRelatedField(queryset=Counterparty.objects.all())
    contact = VisiblePrimaryKeyRelatedField(queryset=ContactPerson.objects.all(), allow_null=True, required=False)
    deal = VisiblePrimaryKeyRelatedField(queryset=Deal.objects.all(), allow_null=True, required=False)
    contract = VisiblePrimaryKeyRelatedField(queryset=Contract.objects.all(), allow_null=True, required=False)
    owner = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True), required=False)
    currency = serializers.PrimaryKeyRelatedField(queryset=Currency.objects.filter(is_active=True), required=False)
    vat_mode = serializers.ChoiceField(choices=VatMode.choices, required=False)
    lines = InvoiceLineSerializer(many=True)
    price_type = serializers.PrimaryKeyRelatedField(
        queryset=PriceType.objects.filter(is_active=True),
        required=False,
        write_only=True,
        help_text="Where lines without a price take it from; the default price type otherwise.",
    )
    counterparty_name = serializers.CharField(source="counterparty.name", read_only=True)
    open_amount = serializers.DecimalField(max_digits=18, decimal_places=2, read_only=True)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "year",
            "sequence",
            "date",
            "organisation",
            "bank_account",
            "counterparty",
            "counterparty_name",
            "contact",
            "deal",
            "contract",
            "owner",
            "currency",
            "exchange_rate",
            "vat_mode",
            "due_date",
            "status",
            "basis",
            "comment",
            "shipped_date",
            "amount",
            "vat_amount",
            "total",
            "paid_amount",
            "open_amount",
            "lines",
            "price_type",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "number",
            "year",
            "sequence",
            "exchange_rate",
            "status",
            "amount",
            "vat_amount",
            "total",
            "paid_amount",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {"date": {"required": False}}

    def create(self, validated_data: dict[str, Any]) -> Invoice:
        return call_service(services.create_invoice, user=self.context["request"].user, **validated_data)

    def update(self, instance: Invoice, validated_data: dict[str, Any]) -> Invoice:
        organisation = validated_data.pop("organisation", instance.organisation)
        if organisation != instance.organisation:
            raise ValidationError({"organisation": ["The invoice number belongs to its organisation."]})
        return call_service(
            services.update_invoice, user=self.context["request"].user, invoice=instance, **validated_data
        )


class InvoiceFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=InvoiceStatus.choices)
    counterparty = django_filters.NumberFilter()
    organisation = django_filters.NumberFilter()
    owner = django_filters.NumberFilter()
    deal = django_filters.NumberFilter()
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")
    due_to = django_filters.DateFilter(field_name="due_date", lookup_expr="lte")

    class Meta:
        model = Invoice
        fields: list[str] = []


class InvoiceSendSerializer(serializers.Serializer):
    to = serializers.ListField(child=serializers.EmailField(), required=False, allow_empty=True)
    message = serializers.CharField(required=False, allow_blank=True, default="")
    facsimile = serializers.BooleanField(
        required=False, default=False, help_text="Print the organisation's facsimile signatures and stamp."
    )


class InvoiceViewSet(CreateUpdateViewSet):
    queryset = selectors.invoices_with_related(Invoice.objects.all())
    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter
    search_fields = ["number", "counterparty__name", "counterparty__inn"]
    ordering_fields = ["date", "total", "due_date", "number"]

    @extend_schema(request=None, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"])
    def issue(self, request: Request, pk: str | None = None) -> Response:
        """Issue a draft: its lines and money are fixed from now on."""
        invoice = call_service(services.issue_invoice, user=request.user, invoice=self.get_object())
        return Response(InvoiceSerializer(self.reread(invoice.pk), context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        """Cancel an invoice that has no payments allocated to it."""
        invoice = call_service(services.cancel_invoice, user=request.user, invoice=self.get_object())
        return Response(InvoiceSerializer(self.reread(invoice.pk), context=self.get_serializer_context()).data)

    @extend_schema(
        request=None,
        parameters=[
            OpenApiParameter(
                "facsimile", bool, description="With the organisation's facsimile signatures and stamp (1)."
            )
        ],
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def pdf(self, request: Request, pk: str | None = None) -> HttpResponse:
        """The printed invoice («Счет на оплату») as a PDF file."""
        return pdf_response(self.get_object(), facsimile=wants_facsimile(request.query_params))

    @extend_schema(request=InvoiceSendSerializer, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"])
    def send(self, request: Request, pk: str | None = None) -> Response:
        """E-mail the PDF to `to` (default: the contact's or counterparty's e-mail); issued → sent."""
        invoice = self.get_object()
        payload = InvoiceSendSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        call_service(mail.send_invoice, user=request.user, invoice=invoice, **payload.validated_data)
        return Response(InvoiceSerializer(self.reread(invoice.pk), context=self.get_serializer_context()).data)


# --- Payments -------------------------------------------------------------------------------------


class PaymentAllocationSerializer(serializers.ModelSerializer):
    invoice_number = serializers.CharField(source="invoice.number", read_only=True)

    class Meta:
        model = PaymentAllocation
        fields = ["id", "invoice", "invoice_number", "amount", "created_at"]


class PaymentSerializer(serializers.ModelSerializer):
    counterparty = VisiblePrimaryKeyRelatedField(queryset=Counterparty.objects.all(), allow_null=True, required=False)
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal("0.01"))
    currency = serializers.PrimaryKeyRelatedField(queryset=Currency.objects.filter(is_active=True), required=False)
    allocations = PaymentAllocationSerializer(many=True, read_only=True)
    unallocated_amount = serializers.DecimalField(max_digits=18, decimal_places=2, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "organisation",
            "bank_account",
            "counterparty",
            "direction",
            "source",
            "date",
            "number",
            "amount",
            "currency",
            "purpose",
            "payer_name",
            "payer_inn",
            "payer_kpp",
            "payer_account",
            "allocated_amount",
            "unallocated_amount",
            "cancelled",
            "cancel_reason",
            "allocations",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["allocated_amount", "cancelled", "cancel_reason", "created_by", "created_at", "updated_at"]

    def create(self, validated_data: dict[str, Any]) -> Payment:
        return call_service(services.register_payment, user=self.context["request"].user, **validated_data)

    def update(self, instance: Payment, validated_data: dict[str, Any]) -> Payment:
        for fixed in ("organisation", "currency"):
            value = validated_data.pop(fixed, getattr(instance, fixed))
            if value != getattr(instance, fixed):
                raise ValidationError({fixed: ["A payment keeps its organisation and currency."]})
        return call_service(
            services.update_payment, user=self.context["request"].user, payment=instance, **validated_data
        )


class AllocateSerializer(serializers.Serializer):
    invoice = VisiblePrimaryKeyRelatedField(queryset=Invoice.objects.all())
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, min_value=Decimal("0.01"))


class PaymentFilter(django_filters.FilterSet):
    counterparty = django_filters.NumberFilter()
    organisation = django_filters.NumberFilter()
    direction = django_filters.ChoiceFilter(choices=PaymentDirection.choices)
    date_from = django_filters.DateFilter(field_name="date", lookup_expr="gte")
    date_to = django_filters.DateFilter(field_name="date", lookup_expr="lte")
    has_unallocated = django_filters.BooleanFilter(method="filter_unallocated")

    class Meta:
        model = Payment
        fields: list[str] = []

    def filter_unallocated(self, queryset: QuerySet[Payment], name: str, value: bool | None) -> QuerySet[Payment]:
        if value is None:
            return queryset
        left = queryset.filter(allocated_amount__lt=F("amount"))
        return left if value else queryset.exclude(pk__in=left.values("pk"))


class PaymentViewSet(CreateUpdateViewSet):
    queryset = selectors.payments_with_related(Payment.objects.all())
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter
    search_fields = ["number", "payer_name", "payer_inn", "purpose", "counterparty__name"]
    ordering_fields = ["date", "amount"]

    @extend_schema(request=AllocateSerializer, responses=PaymentSerializer)
    @action(detail=True, methods=["post"])
    def allocate(self, request: Request, pk: str | None = None) -> Response:
        """Allocate part of the payment to an issued invoice of the same counterparty."""
        payment = self.get_object()
        payload = AllocateSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        call_service(services.allocate_payment, user=request.user, payment=payment, **payload.validated_data)
        return Response(PaymentSerializer(self.reread(payment.pk), context=self.get_serializer_context()).data)


# --- Receivables ----------------------------------------------------------------------------------

RECEIVABLE_GROUPS = {"counterparty": receivables.by_counterparty, "manager": receivables.by_manager}


class ReceivablesViewSet(viewsets.ViewSet):
    """What clients owe: open and overdue amounts with aging buckets (not due, 1–30, 31–60, 61–90, 90+ days
    past due), per currency; `?by=counterparty` (default), `?by=manager` or `?by=total`."""

    @extend_schema(
        parameters=[OpenApiParameter("by", str, enum=["counterparty", "manager", "total"])],
        responses={200: OpenApiTypes.OBJECT},
    )
    def list(self, request: Request) -> Response:
        group = request.query_params.get("by", "counterparty")
        if group == "total":
            rows = receivables.totals(user=request.user)
        elif group in RECEIVABLE_GROUPS:
            rows = RECEIVABLE_GROUPS[group](user=request.user)
        else:
            return Response({"by": [f"Unknown grouping {group!r}: counterparty, manager or total."]}, status=400)
        money = ("open", "overdue", *receivables.BUCKETS)
        return Response(
            {"by": group, "results": [{k: f"{v:.2f}" if k in money else v for k, v in row.items()} for row in rows]}
        )


def register(router: BaseRouter) -> None:
    """Register this app's API viewsets on the shared /api/v1/ router."""
    router.register("receivables", ReceivablesViewSet, basename="receivables")
    router.register("organisations", OrganisationViewSet, basename="organisation")
    router.register("deals", DealViewSet, basename="deal")
    router.register("contracts", ContractViewSet, basename="contract")
    router.register("invoices", InvoiceViewSet, basename="invoice")
    router.register("payments", PaymentViewSet, basename="payment")
