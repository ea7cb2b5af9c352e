"""Every read of the sales domain, always through `visible_to(user)`, with the related rows a list
shows fetched up front (no query per row)."""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery

from sdelka.core.models import ExchangeRate

from .models import (
    Contract,
    ContractKind,
    Deal,
    Invoice,
    InvoiceLine,
    Organisation,
    OrganisationBankAccount,
    Payment,
    PaymentAllocation,
    Pipeline,
    Stage,
)

DEAL_ORDER = ("-created_at", "-id")
INVOICE_ORDER = PAYMENT_ORDER = ("-date", "-id")


def deals_with_related(queryset: QuerySet[Deal]) -> QuerySet[Deal]:
    return queryset.select_related("pipeline", "stage", "counterparty", "contact", "owner", "currency")


def invoices_with_related(queryset: QuerySet[Invoice]) -> QuerySet[Invoice]:
    return queryset.select_related(
        "organisation", "bank_account", "counterparty", "contact", "deal", "contract", "owner", "currency"
    ).prefetch_related(
        Prefetch(
            "lines", queryset=InvoiceLine.objects.select_related("product", "variant", "unit").order_by("position")
        )
    )


def payments_with_related(queryset: QuerySet[Payment]) -> QuerySet[Payment]:
    return queryset.select_related("organisation", "bank_account", "counterparty", "currency").prefetch_related(
        Prefetch("allocations", queryset=PaymentAllocation.objects.select_related("invoice").order_by("id"))
    )


def organisation_list(*, user: Any) -> QuerySet[Organisation]:
    """Our own organisations are not anybody's counterparties: every authenticated user sees them."""
    if not (user is not None and user.is_authenticated and user.is_active):
        return Organisation.objects.none()
    return Organisation.objects.prefetch_related(
        Prefetch("bank_accounts", queryset=OrganisationBankAccount.objects.select_related("currency"))
    ).order_by("name", "id")


def deal_list(
    *,
    user: Any,
    pipeline: Pipeline | int | None = None,
    stage: Stage | int | None = None,
    owner: Any = None,
    counterparty: Any = None,
    open_only: bool = False,
) -> QuerySet[Deal]:
    queryset = Deal.objects.visible_to(user)
    for field, value in (("pipeline", pipeline), ("stage", stage), ("owner", owner), ("counterparty", counterparty)):
        if value is not None:
            queryset = queryset.filter(**{f"{field}_id": getattr(value, "pk", value)})
    if open_only:
        queryset = queryset.filter(closed_at__isnull=True)
    return deals_with_related(queryset).order_by(*DEAL_ORDER)


def deals_by_stage(*, user: Any, pipeline: Pipeline) -> list[tuple[Stage, list[Deal]]]:
    """The board of a pipeline: each stage in order with the visible deals in it; two queries."""
    stages = list(pipeline.stages.order_by("order"))
    board: dict[int, list[Deal]] = {stage.pk: [] for stage in stages}
    for deal in deal_list(user=user, pipeline=pipeline):
        board[deal.stage_id].append(deal)
    return [(stage, board[stage.pk]) for stage in stages]


def invoice_list(
    *,
    user: Any,
    status: str | None = None,
    counterparty: Any = None,
    organisation: Any = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> QuerySet[Invoice]:
    queryset = Invoice.objects.visible_to(user)
    if status:
        queryset = queryset.filter(status=status)
    if counterparty is not None:
        queryset = queryset.filter(counterparty_id=getattr(counterparty, "pk", counterparty))
    if organisation is not None:
        queryset = queryset.filter(organisation_id=getattr(organisation, "pk", organisation))
    if date_from:
        queryset = queryset.filter(date__gte=date_from)
    if date_to:
        queryset = queryset.filter(date__lte=date_to)
    return invoices_with_related(queryset).order_by(*INVOICE_ORDER)


def invoice_get(*, user: Any, pk: int) -> Invoice:
    return invoice_list(user=user).get(pk=pk)


def payment_list(
    *,
    user: Any,
    counterparty: Any = None,
    date_from: datetime.date | None = None,
    date_to: datetime.date | None = None,
) -> QuerySet[Payment]:
    queryset = Payment.objects.visible_to(user)
    if counterparty is not None:
        queryset = queryset.filter(counterparty_id=getattr(counterparty, "pk", counterparty))
    if date_from:
        queryset = queryset.filter(date__gte=date_from)
    if date_to:
        queryset = queryset.filter(date__lte=date_to)
    return payments_with_related(queryset).order_by(*PAYMENT_ORDER)


def payment_get(*, user: Any, pk: int) -> Payment:
    return payment_list(user=user).get(pk=pk)


# A counterparty's deals, invoices and payments, for a caller that has found the counterparty visible: what hangs
# off it is visible too, so they are read by the counterparty alone, not filtered again by the user's whole scope.


def deals_of(counterparty: Any) -> QuerySet[Deal]:
    return deals_with_related(Deal.objects.filter(counterparty=counterparty)).order_by(*DEAL_ORDER)


def invoices_of(counterparty: Any) -> QuerySet[Invoice]:
    return invoices_with_related(Invoice.objects.filter(counterparty=counterparty)).order_by(*INVOICE_ORDER)


def payments_of(counterparty: Any) -> QuerySet[Payment]:
    return payments_with_related(Payment.objects.filter(counterparty=counterparty)).order_by(*PAYMENT_ORDER)


def contract_list(*, user: Any, counterparty: Any) -> QuerySet[Contract]:
    """A counterparty's contracts, those in force first, the newest first."""
    return (
        Contract.objects.visible_to(user)
        .filter(counterparty=counterparty)
        .select_related("organisation")
        .order_by("-is_active", "-date", "-id")
    )


def contract_options(
    *, queryset: QuerySet[Contract], counterparty: Any, organisation: Any, chosen: Any
) -> list[Contract]:
    """Contracts an invoice of `organisation` to `counterparty` may name: in force, with a buyer or other,
    signed by that organisation or by none in particular; `chosen` stays among them whatever it is."""
    if counterparty in (None, ""):
        return []
    offered = queryset.filter(counterparty=counterparty, is_active=True).exclude(kind=ContractKind.PURCHASE)
    if organisation not in (None, ""):
        offered = offered.filter(Q(organisation__isnull=True) | Q(organisation=organisation))
    if chosen not in (None, ""):
        offered = queryset.filter(Q(pk__in=offered.values("pk")) | Q(pk=chosen, counterparty=counterparty))
    return list(offered.order_by("-date", "-id"))


def latest_rates(codes: Iterable[str]) -> dict[str, Decimal]:
    """Roubles per unit of each currency at its latest known rate, in one query; RUB is 1, a currency with no
    rate yet is missing from the answer."""
    wanted = {code for code in codes if code != "RUB"}
    latest = ExchangeRate.objects.filter(currency_id=OuterRef("currency_id")).order_by("-date").values("pk")[:1]
    rates = ExchangeRate.objects.filter(currency_id__in=wanted, pk=Subquery(latest))
    return {"RUB": Decimal(1), **{rate.currency_id: rate.rate / rate.nominal for rate in rates}}
