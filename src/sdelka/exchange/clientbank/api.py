"""Bank statements API: upload a statement, list the payment queue, match a queued payment.

    POST /api/v1/bank-statements/                  multipart: file, organisation (optional id)
    GET  /api/v1/bank-statements/                  the last statement imports (runs)
    GET  /api/v1/payment-queue/                    incoming payments waiting for a person, with candidates
    POST /api/v1/payment-queue/{id}/match/         {"invoices": [{"invoice": 5, "amount": "100.00"}],
                                                    "create_counterparty": false, "keep_as_advance": false}

Importing is for those who see every payment (accountant, director, administrator); the queue shows
each user what `visible_to` lets him see. Writes go through the route's services.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from sdelka.api.errors import call_service
from sdelka.sales.models import Invoice, Organisation

from ..models import BankDocument, ExchangeRun
from . import selectors, services
from .importer import import_statement

MAX_STATEMENT_BYTES = 64 * 1024 * 1024


class SeesEverything(permissions.BasePermission):
    message = _("Only an accountant, a director or an administrator imports bank statements.")

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.sees_everything)


class StatementUploadSerializer(serializers.Serializer):
    file = serializers.FileField()
    organisation = serializers.PrimaryKeyRelatedField(queryset=Organisation.objects.all(), required=False)


class StatementRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExchangeRun
        fields = ["id", "status", "started_at", "finished_at", "total", "created", "unchanged", "skipped", "message"]


class StatementResultSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    ok = serializers.BooleanField()
    error = serializers.CharField()
    line = serializers.IntegerField()
    documents = serializers.IntegerField()
    incoming = serializers.IntegerField()
    outgoing = serializers.IntegerField()
    internal = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    skipped = serializers.IntegerField()
    matched = serializers.IntegerField()
    advance = serializers.IntegerField()
    queued = serializers.IntegerField()
    warnings = serializers.IntegerField()


class BankStatementViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [permissions.IsAuthenticated, SeesEverything]
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = StatementRunSerializer

    def get_queryset(self) -> Any:
        return selectors.statement_runs()

    @extend_schema(
        request=StatementUploadSerializer, responses={201: StatementResultSerializer, 400: StatementResultSerializer}
    )
    def create(self, request: Request) -> Response:
        upload = StatementUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        file = upload.validated_data["file"]
        if file.size > MAX_STATEMENT_BYTES:
            raise serializers.ValidationError({"file": _("The file is too large for a bank statement.")})
        result = call_service(
            import_statement,
            data=file.read(),
            user=request.user,
            filename=file.name or "",
            organisation=upload.validated_data.get("organisation"),
        )
        names = [str(name) for name in StatementResultSerializer().fields if name != "run"]
        payload: dict[str, Any] = {name: getattr(result, name) for name in names}
        payload["run"] = result.run.pk
        return Response(payload, status=status.HTTP_201_CREATED if result.ok else status.HTTP_400_BAD_REQUEST)


class CandidateSerializer(serializers.ModelSerializer):
    counterparty_name = serializers.CharField(source="counterparty.name")
    open_amount = serializers.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        model = Invoice
        fields = [
            "id",
            "number",
            "date",
            "total",
            "paid_amount",
            "open_amount",
            "status",
            "counterparty",
            "counterparty_name",
        ]


class QueuedPaymentSerializer(serializers.ModelSerializer):
    payment = serializers.IntegerField(source="payment_id")
    counterparty = serializers.SerializerMethodField()
    candidates = serializers.SerializerMethodField()
    counterparty_offer = serializers.SerializerMethodField()
    unallocated_amount = serializers.DecimalField(source="payment.unallocated_amount", max_digits=18, decimal_places=2)

    class Meta:
        model = BankDocument
        fields = [
            "id", "status", "kind", "number", "date", "amount", "unallocated_amount", "purpose", "account",
            "organisation", "payment", "party", "reason", "counterparty", "candidates", "counterparty_offer",
        ]  # fmt: skip

    @extend_schema(responses={"type": "object", "nullable": True})
    def get_counterparty(self, document: BankDocument) -> dict[str, Any] | None:
        counterparty = document.payment.counterparty if document.payment else None
        return None if counterparty is None else {"id": counterparty.pk, "name": counterparty.name}

    def get_candidates(self, document: BankDocument) -> list[dict[str, Any]]:
        found = self.context.get("candidates", {})
        invoices = [found[pk] for pk in document.candidates or [] if pk in found]
        return CandidateSerializer(invoices, many=True).data  # type: ignore[return-value]

    @extend_schema(responses={"type": "object", "nullable": True})
    def get_counterparty_offer(self, document: BankDocument) -> dict[str, Any] | None:
        """The counterparty to create from the statement when the payer is not in the CRM."""
        if document.payment is None or document.payment.counterparty_id is not None:
            return None
        return services.counterparty_offer(document)


class AllocationInputSerializer(serializers.Serializer):
    invoice = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=18, decimal_places=2, required=False)


class MatchSerializer(serializers.Serializer):
    invoices = AllocationInputSerializer(many=True, required=False, default=list)
    create_counterparty = serializers.BooleanField(required=False, default=False)
    keep_as_advance = serializers.BooleanField(required=False, default=False)


class PaymentQueueViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = QueuedPaymentSerializer

    def get_queryset(self) -> Any:
        return selectors.payment_queue(user=self.request.user)

    def _context(self, documents: list[BankDocument]) -> dict[str, Any]:
        return {
            **self.get_serializer_context(),
            "candidates": selectors.candidate_invoices(user=self.request.user, documents=documents),
        }

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = list(self.paginate_queryset(self.get_queryset()) or [])
        return self.get_paginated_response(QueuedPaymentSerializer(page, many=True, context=self._context(page)).data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        document = self.get_object()
        return Response(QueuedPaymentSerializer(document, context=self._context([document])).data)

    @extend_schema(request=MatchSerializer, responses=QueuedPaymentSerializer)
    @action(detail=True, methods=["post"])
    def match(self, request: Request, pk: str | None = None) -> Response:
        document = self.get_object()
        data = MatchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        document = call_service(
            services.match_queued_payment,
            user=request.user,
            document=document,
            invoices=data.validated_data["invoices"],
            create_counterparty=data.validated_data["create_counterparty"],
            keep_as_advance=data.validated_data["keep_as_advance"],
        )
        document = BankDocument.objects.select_related("payment__counterparty").get(pk=document.pk)
        return Response(QueuedPaymentSerializer(document, context=self._context([document])).data)


def register(router: BaseRouter) -> None:
    router.register("bank-statements", BankStatementViewSet, basename="bank-statement")
    router.register("payment-queue", PaymentQueueViewSet, basename="payment-queue")
