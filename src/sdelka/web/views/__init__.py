"""Views of the manager's workspace. They parse the request, call selectors and services, render."""

from __future__ import annotations

from decimal import Decimal

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from sdelka.activities.models import Notification
from sdelka.exchange.selectors import runnable_tasks

from .. import charts, selectors, services
from .common import acting_user

AGING_LABELS = {
    "not_due": gettext_lazy("Not yet due"),
    "days_1_30": gettext_lazy("1–30 days overdue"),
    "days_31_60": gettext_lazy("31–60 days overdue"),
    "days_61_90": gettext_lazy("61–90 days overdue"),
    "days_90_plus": gettext_lazy("Over 90 days overdue"),
}


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    scope = selectors.dashboard_scope(user=user, requested=request.GET.get("scope", ""))
    deals = selectors.deal_figures(user=user, scope=scope)
    funnel = deals.funnel
    weeks = selectors.weekly_sales(user=user, scope=scope)
    aging = selectors.receivables_aging(user=user, scope=scope)
    return render(
        request,
        "web/dashboard.html",
        {
            "scope": scope,
            "summary": selectors.dashboard_summary(user=user, scope=scope, open_deals=deals.open_deals, aging=aging),
            "tasks": selectors.dashboard_tasks(user=user, scope=scope),
            "funnel": funnel,
            "unrated": deals.unrated,
            "funnel_chart": charts.bar_chart([(stage.name, stage.total, stage.count) for stage in funnel]),
            "weeks": weeks,
            "sales_chart": charts.column_chart([_week_row(week) for week in weeks]),
            "aging": [
                (row, charts.bar_chart([(str(AGING_LABELS[b.key]), b.amount, None) for b in row.buckets]))
                for row in aging
            ],
            "awaiting": selectors.awaiting_payment(user=user, scope=scope),
            "payments": selectors.payments_today(user=user, scope=scope),
            "today": timezone.localdate(),
            "now": timezone.now(),
            # The exchange menu is closed to them, so members of a team a sync task names find it here.
            "runs_sync_tasks": not user.manages_exchange and runnable_tasks(user=user).exists(),
        },
    )


def _week_row(week: selectors.WeekSales) -> tuple[str, str, Decimal, Decimal | None]:
    title = _("Week %(week)s from %(monday)s") % {
        "week": week.week,
        "monday": date_format(week.monday, "SHORT_DATE_FORMAT"),
    }
    return (str(week.week), title, week.current, week.previous)


@login_required
def search(request: HttpRequest) -> HttpResponse:
    """Global search: a dropdown fragment while typing (htmx), a page when the form is submitted."""
    results = selectors.global_search(user=acting_user(request), query=request.GET.get("q", ""))
    template = "web/search/_results.html" if request.htmx else "web/search/page.html"  # type: ignore[attr-defined]
    return render(request, template, {"results": results})


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    return render(request, "web/_notifications.html", {"alerts": selectors.alerts(user=acting_user(request))})


@login_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    notification = get_object_or_404(Notification.objects.visible_to(user).filter(user=user), pk=pk)
    services.mark_notification_read(user=user, notification=notification)
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "web/_notifications.html", {"alerts": selectors.alerts(user=user)})
    return redirect(notification.url or "web:dashboard")
