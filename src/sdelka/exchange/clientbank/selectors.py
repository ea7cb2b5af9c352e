"""Reads of the bank-statement route: the payment queue and its candidate invoices, statement runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from sdelka.sales.models import Invoice

from ..models import BankDocument, BankDocumentStatus, ExchangeRun, Route


def payment_queue(*, user: Any) -> QuerySet[BankDocument]:
    """Incoming statement payments waiting for a person, oldest first, as `user` may see them."""
    return (
        BankDocument.objects.visible_to(user)
        .filter(status=BankDocumentStatus.QUEUED)
        .select_related("payment__counterparty", "organisation")
        .order_by("date", "pk")
    )


def candidate_invoices(*, user: Any, documents: Iterable[BankDocument]) -> dict[int, Invoice]:
    """The candidate invoices of a page of queued payments, in one query, only those `user` sees."""
    ids = {pk for document in documents for pk in document.candidates or []}
    if not ids:
        return {}
    return Invoice.objects.visible_to(user).select_related("counterparty").in_bulk(sorted(ids))


def statement_runs() -> QuerySet[ExchangeRun]:
    return ExchangeRun.objects.filter(route=Route.BANK).select_related("connection").order_by("-started_at", "-pk")
