"""Activities API: tasks (with complete/reopen), notes and the timeline of a counterparty.

Reads go through `visible_to` (VisibleQuerysetMixin, selectors); writes through activities.services;
references to counterparties, deals and invoices only reach what the user can see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar, cast

import django_filters
import django_filters.rest_framework
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from sdelka.accounts.models import User
from sdelka.api.errors import call_service
from sdelka.api.mixins import VisiblePrimaryKeyRelatedField, VisibleQuerysetMixin
from sdelka.parties.models import Counterparty
from sdelka.sales.models import Deal, Invoice

from . import selectors, services
from .models import Note, Task

T = TypeVar("T")


class AwareDateTimeField(serializers.DateTimeField):
    """A date and time that must carry its offset: "10:00" alone is ambiguous across time zones."""

    default_error_messages = {
        "naive": _("Give the time with its time zone, e.g. 2026-03-02T10:00:00+03:00."),
    }

    def to_internal_value(self, value: Any) -> datetime:
        parsed = parse_datetime(value.strip()) if isinstance(value, str) else value
        if isinstance(parsed, datetime) and timezone.is_naive(parsed):
            self.fail("naive")
        return super().to_internal_value(value)


# --- Serializers ----------------------------------------------------------------------------------


class TaskSerializer(serializers.ModelSerializer):
    due_at = AwareDateTimeField(required=False, allow_null=True)
    remind_at = AwareDateTimeField(required=False, allow_null=True)
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True),
        required=False,
        help_text="Defaults to the requesting user.",
    )
    counterparty = VisiblePrimaryKeyRelatedField(
        queryset=Counterparty.objects.all(),
        required=False,
        allow_null=True,
        help_text="Taken from the deal or invoice when not given.",
    )
    deal = VisiblePrimaryKeyRelatedField(queryset=Deal.objects.all(), required=False, allow_null=True)
    invoice = VisiblePrimaryKeyRelatedField(queryset=Invoice.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Task
        fields = [
            "id",
            "title",
            "description",
            "due_at",
            "remind_at",
            "reminded_at",
            "assignee",
            "author",
            "counterparty",
            "deal",
            "invoice",
            "is_done",
            "done_at",
            "completed_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "reminded_at",
            "author",
            "is_done",
            "done_at",
            "completed_by",
            "created_at",
            "updated_at",
        ]

    def create(self, validated_data: dict[str, Any]) -> Task:
        user = self.context["request"].user
        validated_data.setdefault("assignee", user)
        return call_service(services.create_task, user=user, **validated_data)

    def update(self, instance: Task, validated_data: dict[str, Any]) -> Task:
        user = self.context["request"].user
        return call_service(services.update_task, user=user, task=instance, changes=validated_data)


class NoteSerializer(serializers.ModelSerializer):
    counterparty = VisiblePrimaryKeyRelatedField(queryset=Counterparty.objects.all())
    deal = VisiblePrimaryKeyRelatedField(queryset=Deal.objects.all(), required=False, allow_null=True)

    class Meta:
        model = Note
        fields = ["id", "counterparty", "deal", "text", "author", "created_at"]
        read_only_fields = ["author", "created_at"]

    def create(self, validated_data: dict[str, Any]) -> Note:
        return call_service(services.add_note, user=self.context["request"].user, **validated_data)


class TimelineItemSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["task", "task_done", "note", "deal", "invoice", "payment", "allocation"])
    when = serializers.DateTimeField()
    title = serializers.CharField()
    ref = serializers.CharField(help_text="kind:id of the record, e.g. invoice:17.")
    url = serializers.CharField()
    actor = serializers.IntegerField(source="actor.pk", allow_null=True, default=None)
    actor_name = serializers.CharField(source="actor", allow_null=True, default=None)


# --- Filters --------------------------------------------------------------------------------------


class FlagFilter(django_filters.TypedChoiceFilter):
    """A yes/no query parameter (1/true, 0/false); anything else is a 400 naming the parameter."""

    def __init__(self, **kwargs: Any) -> None:
        choices = [("1", "1"), ("true", "true"), ("0", "0"), ("false", "false")]
        super().__init__(choices=choices, coerce=lambda value: value in {"1", "true"}, **kwargs)


class TaskFilter(django_filters.rest_framework.FilterSet):
    mine = FlagFilter(method="filter_mine", label="Only tasks assigned to me")
    team = FlagFilter(method="filter_team", label="Only tasks of the people I answer for")
    overdue = FlagFilter(method="filter_overdue", label="Only open tasks past their due time")
    is_done = FlagFilter()
    assignee = django_filters.NumberFilter(field_name="assignee_id")
    counterparty = django_filters.NumberFilter(field_name="counterparty_id")
    deal = django_filters.NumberFilter(field_name="deal_id")
    invoice = django_filters.NumberFilter(field_name="invoice_id")

    class Meta:
        model = Task
        fields: list[str] = []

    def filter_mine(self, queryset: Any, name: str, value: bool | None) -> QuerySet[Task]:
        return queryset.assigned_to(self.request.user) if value else queryset

    def filter_team(self, queryset: Any, name: str, value: bool | None) -> QuerySet[Task]:
        return queryset.assigned_within_scope(self.request.user) if value else queryset

    def filter_overdue(self, queryset: Any, name: str, value: bool | None) -> QuerySet[Task]:
        return queryset.overdue(timezone.now()) if value else queryset


class NoteFilter(django_filters.rest_framework.FilterSet):
    counterparty = django_filters.NumberFilter(field_name="counterparty_id")
    deal = django_filters.NumberFilter(field_name="deal_id")

    class Meta:
        model = Note
        fields: list[str] = []


# --- Views ----------------------------------------------------------------------------------------


class TaskViewSet(
    VisibleQuerysetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Task.objects.all()
    serializer_class = TaskSerializer
    filterset_class = TaskFilter
    search_fields = ["title", "description"]
    ordering_fields = ["due_at", "remind_at", "created_at", "updated_at"]

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    def complete(self, request: Request, pk: str | None = None) -> Response:
        task = call_service(services.complete_task, user=request.user, task=self.get_object())
        return Response(self.get_serializer(task).data)

    @extend_schema(request=None, responses=TaskSerializer)
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str | None = None) -> Response:
        task = call_service(services.reopen_task, user=request.user, task=self.get_object())
        return Response(self.get_serializer(task).data)


class NoteViewSet(VisibleQuerysetMixin, mixins.ListModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet):
    queryset = Note.objects.all()
    serializer_class = NoteSerializer
    filterset_class = NoteFilter
    search_fields = ["text"]
    ordering_fields = ["created_at"]


class TimelineViewSet(viewsets.GenericViewSet):
    serializer_class = TimelineItemSerializer
    pagination_class = None
    filter_backends: list[Any] = []

    @extend_schema(
        parameters=[
            OpenApiParameter("counterparty", OpenApiTypes.INT, required=True),
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"At most this many newest items (1–{selectors.TIMELINE_LIMIT})."
            ),
        ],
        responses=TimelineItemSerializer(many=True),
    )
    def list(self, request: Request) -> Response:
        """Tasks, notes, deals, invoices, payments and allocations of one counterparty, newest first."""
        counterparty = request.query_params.get("counterparty", "")
        if not counterparty.isdigit():
            raise ValidationError({"counterparty": [_("Give the id of a counterparty.")]})
        limit = request.query_params.get("limit", str(selectors.TIMELINE_LIMIT))
        if not limit.isdigit() or not 1 <= int(limit) <= selectors.TIMELINE_LIMIT:
            raise ValidationError({"limit": [_("A number from 1 to %d.") % selectors.TIMELINE_LIMIT]})
        items = selectors.timeline(user=cast(User, request.user), counterparty_id=int(counterparty), limit=int(limit))
        return Response(self.get_serializer(items, many=True).data)


def register(router: BaseRouter) -> None:
    """Register this app's API viewsets on the shared /api/v1/ router."""
    router.register("tasks", TaskViewSet, basename="task")
    router.register("notes", NoteViewSet, basename="note")
    router.register("timeline", TimelineViewSet, basename="timeline")
