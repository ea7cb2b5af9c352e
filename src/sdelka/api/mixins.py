from __future__ import annotations

from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import serializers


class VisibleQuerysetMixin:
    """A viewset whose queryset is the model's `visible_to(request.user)`: objects outside the
    user's scope are simply not there, so guessing an id answers 404."""

    queryset: QuerySet[Any]
    request: Any

    def get_queryset(self) -> QuerySet[Any]:
        return self.queryset.visible_to(self.request.user).order_by(*self.stable_ordering())  # type: ignore[attr-defined]

    def stable_ordering(self) -> list[str]:
        ordering = list(self.queryset.model._meta.ordering or [])
        return [*ordering, "pk"] if "pk" not in ordering and "id" not in ordering else ordering


class VisiblePrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A reference that may only point at objects the requesting user can see; anything else is
    reported as "does not exist", exactly like an id that does not exist at all."""

    def get_queryset(self) -> QuerySet[Model]:
        queryset: Any = super().get_queryset()
        request = self.context.get("request")
        if request is None:
            return queryset.none()
        return queryset.visible_to(request.user)
