"""Receivables: what clients owe, per counterparty and per manager, with aging — each a single SQL query.

Open invoices are those in `OPEN_INVOICE_STATUSES` with money still owed (total − paid). An invoice is
due on its due date, or on its own date when it has none (payable on receipt). Aging buckets by days
past due: not due, 1–30, 31–60, 61–90, 90+. Amounts never mix currencies: every row is per currency.
Everything goes through `visible_to(user)`.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Case, DecimalField, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import OPEN_INVOICE_STATUSES, Invoice

ZERO = Decimal("0.00")
BUCKETS = ("not_due", "days_1_30", "days_31_60", "days_61_90", "days_90_plus")
MONEY_FIELD: DecimalField[Decimal, Decimal] = DecimalField(max_digits=18, decimal_places=2)


def open_invoices(*, user: Any, owner: Any = None) -> QuerySet[Invoice]:
    """Invoices `user` sees that still wait for money, annotated with `owed` and `due` (date); only those
    of manager `owner` when given."""
    invoices = Invoice.objects.visible_to(user)
    if owner is not None:
        invoices = invoices.filter(owner=owner)
    return invoices.filter(status__in=OPEN_INVOICE_STATUSES, total__gt=F("paid_amount")).annotate(
        owed=F("total") - F("paid_amount"), due=Coalesce("due_date", "date")
    )


def overdue_invoices(*, user: Any, today: datetime.date | None = None) -> QuerySet[Invoice]:
    return open_invoices(user=user).filter(Q(due__lt=today or timezone.localdate()))


def _sum_if(condition: Q) -> Any:
    return Coalesce(
        Sum(Case(When(condition, then=F("owed")), default=Value(ZERO), output_field=MONEY_FIELD)),
        Value(ZERO),
        output_field=MONEY_FIELD,
    )


def _aging(today: datetime.date) -> dict[str, Any]:
    def ago(days: int) -> datetime.date:
        return today - datetime.timedelta(days=days)

    return {
        "open": Coalesce(Sum("owed", output_field=MONEY_FIELD), Value(ZERO), output_field=MONEY_FIELD),
        "overdue": _sum_if(Q(due__lt=today)),
        "not_due": _sum_if(Q(due__gte=today)),
        "days_1_30": _sum_if(Q(due__lt=today, due__gte=ago(30))),
        "days_31_60": _sum_if(Q(due__lt=ago(30), due__gte=ago(60))),
        "days_61_90": _sum_if(Q(due__lt=ago(60), due__gte=ago(90))),
        "days_90_plus": _sum_if(Q(due__lt=ago(90))),
    }


def by_counterparty(*, user: Any, today: datetime.date | None = None) -> QuerySet[Any]:
    """Rows {counterparty_id, counterparty__name, currency_id, open, overdue, buckets…}, largest debt first."""
    return (
        open_invoices(user=user)
        .order_by()
        .values("counterparty_id", "counterparty__name", "currency_id")
        .annotate(**_aging(today or timezone.localdate()))
        .order_by("-open", "counterparty__name", "counterparty_id")
    )


def by_manager(*, user: Any, today: datetime.date | None = None) -> QuerySet[Any]:
    """Rows {owner_id, owner__username, currency_id, open, overdue, buckets…} for the invoices' managers."""
    return (
        open_invoices(user=user)
        .order_by()
        .values("owner_id", "owner__username", "owner__first_name", "owner__last_name", "currency_id")
        .annotate(**_aging(today or timezone.localdate()))
        .order_by("-open", "owner__username", "owner_id")
    )


def totals(*, user: Any, today: datetime.date | None = None, owner: Any = None) -> QuerySet[Any]:
    """One row per currency: the whole visible receivable (of manager `owner` when given) with its aging."""
    return (
        open_invoices(user=user, owner=owner)
        .order_by()
        .values("currency_id")
        .annotate(**_aging(today or timezone.localdate()))
        .order_by("currency_id")
    )
