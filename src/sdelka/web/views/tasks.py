"""Tasks: mine and my team's, created from any card, marked done."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sdelka.activities import services as activity_services

from .. import selectors
from ..forms import TaskForm, attach_errors
from .common import acting_user, int_param, page_param, query_without


@login_required
def task_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    scope = "team" if request.GET.get("scope") == "team" else "mine"
    done = request.GET.get("done") == "1"
    page = selectors.task_page(user=user, scope=scope, done=done, page=page_param(request))
    return render(
        request,
        "web/tasks/list.html",
        {"page": page, "scope": scope, "done": done, "query": query_without(request, "page"), "now": _now()},
    )


def _now() -> datetime:
    return timezone.now()


@login_required
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "web/tasks/detail.html", {"task": selectors.task_get(user=acting_user(request), pk=pk)})


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


@login_required
def task_create(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    initial = {"counterparty": int_param(request.GET.get("counterparty")), "deal": int_param(request.GET.get("deal"))}
    form = TaskForm(request.POST or None, user=user, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            task = activity_services.create_task(
                user=user,
                title=data["title"],
                assignee=data["assignee"] or user,
                due_at=data["due_at"],
                remind_at=data["remind_at"] or data["due_at"],
                description=data["description"],
                counterparty=data["counterparty"],
                deal=data["deal"],
            )
        except ValidationError as error:
            attach_errors(form, error)
        else:
            messages.success(request, _("Task “%(title)s” created.") % {"title": task.title})
            return redirect(_back(request, task.get_absolute_url()))
    return render(request, "web/tasks/form.html", {"form": form, "next": _back(request, "")})


@login_required
@require_POST
def task_done(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    task = selectors.task_get(user=user, pk=pk)
    activity_services.complete_task(user=user, task=task)
    if request.htmx:  # type: ignore[attr-defined]
        task.refresh_from_db()
        return render(request, "web/tasks/_row.html", {"task": task})
    messages.success(request, _("Task “%(title)s” done.") % {"title": task.title})
    return redirect(_back(request, task.get_absolute_url()))
