"""The conflict queue of the 1C sync: fields both Sdelka and 1C changed, each with both values side by side and
"keep Sdelka's" / "take 1C's". For administrators and integrators (who set up the exchange) only."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sdelka.accounts.models import User
from sdelka.exchange.conflicts import resolve_conflict
from sdelka.exchange.models import Conflict, ConflictStatus

from ..selectors import page_of
from .common import acting_user, page_param, query_without


def _integrator(request: HttpRequest) -> User:
    user = acting_user(request)
    if not user.manages_exchange:
        raise PermissionDenied(_("The conflict queue is open to administrators and integrators only."))
    return user


@dataclass
class ConflictRow:
    conflict: Conflict
    field_label: str
    url: str


def _rows(conflicts: list[Conflict]) -> list[ConflictRow]:
    """Each conflict with its field's name in Sdelka and a link to the object (one query per object type)."""
    wanted: dict[Any, set[int]] = {}
    for conflict in conflicts:
        wanted.setdefault(conflict.external_ref.content_type, set()).add(conflict.external_ref.object_id)
    objects: dict[tuple[int, int], Any] = {}
    for content_type, ids in wanted.items():
        model = content_type.model_class()
        if model is not None:
            for pk, obj in model._default_manager.in_bulk(list(ids)).items():
                objects[(content_type.pk, pk)] = obj
    rows = []
    for conflict in conflicts:
        ref = conflict.external_ref
        obj = objects.get((ref.content_type_id, ref.object_id))
        label = conflict.field
        if obj is not None:
            with contextlib.suppress(FieldDoesNotExist):
                label = str(obj._meta.get_field(conflict.field.removesuffix("_id")).verbose_name)
        url = obj.get_absolute_url() if obj is not None and hasattr(obj, "get_absolute_url") else ""
        rows.append(ConflictRow(conflict, label, url))
    return rows


@login_required
def conflict_list(request: HttpRequest) -> HttpResponse:
    _integrator(request)
    resolved = request.GET.get("status") == ConflictStatus.RESOLVED
    conflicts = Conflict.objects.select_related(
        "connection", "rule", "resolved_by", "external_ref__content_type"
    ).filter(status=ConflictStatus.RESOLVED if resolved else ConflictStatus.OPEN)
    order = ("-resolved_at", "-pk") if resolved else ("created_at", "pk")
    page = page_of(conflicts.order_by(*order), page_param(request))
    return render(
        request,
        "web/exchange/conflicts.html",
        {
            "page": page,
            "rows": _rows(page.items),
            "resolved": resolved,
            "query": query_without(request, "page"),
        },
    )


@login_required
@require_POST
def conflict_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    user = _integrator(request)
    conflict = get_object_or_404(Conflict, pk=pk)
    try:
        resolve_conflict(conflict=conflict, resolution=request.POST.get("resolution", ""), user=user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Conflict on %(object)s resolved.") % {"object": conflict.object_repr})
    return redirect(reverse("web:exchange-conflicts"))
