"""Payments: the list and the payment card (payer, allocations to invoices, the statement it came from)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from sdelka.sales.models import PaymentDirection

from .. import selectors
from .common import acting_user, int_param, optional_url, page_param, query_without


@login_required
def payment_list(request: HttpRequest) -> HttpResponse:
    direction = request.GET.get("direction", "")
    page = selectors.payment_page(
        user=acting_user(request),
        direction=direction,
        search=request.GET.get("q", ""),
        counterparty=int_param(request.GET.get("counterparty")),
        page=page_param(request),
    )
    return render(
        request,
        "web/payments/list.html",
        {
            "page": page,
            "direction": direction,
            "directions": PaymentDirection.choices,
            "query": query_without(request, "page"),
        },
    )


@login_required
def payment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    card = selectors.payment_card(user=acting_user(request), pk=pk)
    run = card.bank_document.run if card.bank_document else None
    return render(
        request,
        "web/payments/detail.html",
        {
            "card": card,
            "p": card.payment,
            "run": run,
            # The exchange screens belong to the exchange part of the workspace; link to them once they exist.
            "run_url": optional_url("web:exchange-run", run.pk) if run else None,
        },
    )
