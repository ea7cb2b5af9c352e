from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest


class VisibleAdminMixin:
    """Admin lists, change forms and related choices go through `visible_to`, as every other read does.

    Staff who open an object outside their scope by URL get Django admin's "doesn't exist" answer.
    """

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)  # type: ignore[misc]
        return queryset.visible_to(request.user)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.remote_field.model
        if hasattr(related.objects.all(), "visible_to"):
            kwargs.setdefault("queryset", related.objects.visible_to(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]
