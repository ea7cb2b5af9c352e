"""Views of the manager's workspace. They parse the request, call selectors and services, render."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from sdelka.activities.models import Notification

from .. import selectors, services
from .common import acting_user


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    return render(
        request,
        "web/dashboard.html",
        {
            "summary": selectors.dashboard_summary(user=user),
            "tasks": selectors.my_open_tasks(user=user),
            "funnel": selectors.deal_funnel(user=user),
            "awaiting": selectors.awaiting_payment(user=user),
            "payments": selectors.payments_today(user=user),
            "today": timezone.localdate(),
            "now": timezone.now(),
        },
    )


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
