from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, Sum
from django.utils import timezone

from sdelka.accounts.models import User
from sdelka.activities.models import Task
from sdelka.parties.models import Counterparty
from sdelka.sales.models import Deal, Invoice, InvoiceStatus, StageKind


@dataclass(frozen=True)
class DashboardSummary:
    counterparties: int
    open_deals: int
    unpaid_total: Decimal
    tasks_due: int


def dashboard_summary(*, user: User) -> DashboardSummary:
    unpaid = (
        Invoice.objects.visible_to(user)
        .filter(status__in=[InvoiceStatus.ISSUED, InvoiceStatus.PARTLY_PAID])
        .aggregate(total=Sum(F("total") - F("paid_amount")))["total"]
    )
    return DashboardSummary(
        counterparties=Counterparty.objects.visible_to(user).filter(is_active=True).count(),
        open_deals=Deal.objects.visible_to(user).filter(stage__kind=StageKind.OPEN).count(),
        unpaid_total=unpaid or Decimal("0.00"),
        tasks_due=Task.objects.filter(assignee=user, is_done=False, due_at__lte=timezone.now()).count(),
    )
