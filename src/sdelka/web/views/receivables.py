"""Receivables: what clients owe, by counterparty or by manager, with aging per currency."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from sdelka.sales import receivables

from ..selectors import Page, page_of
from . import AGING_LABELS
from .common import acting_user, page_param, query_without

GROUPINGS = ("counterparty", "manager")


@dataclass(frozen=True)
class ReceivableRow:
    name: str
    url: str
    currency: str
    open: Decimal
    overdue: Decimal
    buckets: list[Decimal]


def _row(values: dict[str, Any], name: str, url: str = "") -> ReceivableRow:
    return ReceivableRow(
        name=name,
        url=url,
        currency=values["currency_id"],
        open=values["open"],
        overdue=values["overdue"],
        buckets=[values[key] for key in receivables.BUCKETS],
    )


def _manager_name(values: dict[str, Any]) -> str:
    full = f"{values['owner__last_name']} {values['owner__first_name']}".strip()
    return full or values["owner__username"] or "—"


def _card_url(values: dict[str, Any]) -> str:
    return reverse("web:counterparty-detail", args=[values["counterparty_id"]])


def _page(by: str, user: Any, number: int) -> Page[ReceivableRow]:
    today = timezone.localdate()
    if by == "manager":
        page = page_of(receivables.by_manager(user=user, today=today), number)
        rows = [_row(values, _manager_name(values)) for values in page.items]
    else:
        page = page_of(receivables.by_counterparty(user=user, today=today), number)
        rows = [_row(values, values["counterparty__name"], _card_url(values)) for values in page.items]
    return Page(items=rows, number=page.number, has_next=page.has_next)


@login_required
def receivables_report(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    by = request.GET.get("by", "")
    by = by if by in GROUPINGS else "counterparty"
    totals = receivables.totals(user=user, today=timezone.localdate())
    return render(
        request,
        "web/receivables.html",
        {
            "by": by,
            "page": _page(by, user, page_param(request)),
            "totals": [_row(values, "") for values in totals],
            "bucket_labels": [AGING_LABELS[key] for key in receivables.BUCKETS],
            "today": timezone.localdate(),
            "query": query_without(request, "page"),
        },
    )
