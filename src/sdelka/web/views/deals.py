"""Deals: the board by stage with drag and drop, the list, the card, won and lost."""

from __future__ import annotations

import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sdelka.activities import services as activity_services
from sdelka.sales import services as sales_services
from sdelka.sales.models import Stage

from .. import selectors
from ..forms import DealForm, LostForm, NoteForm, attach_errors
from .common import acting_user, int_param, page_param, query_without

logger = logging.getLogger(__name__)


@login_required
def deal_board(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    pipeline = selectors.pipeline_for(request.GET.get("pipeline"))
    mine = request.GET.get("mine") == "1"
    return render(
        request,
        "web/deals/board.html",
        {
            "pipeline": pipeline,
            "pipelines": selectors.pipelines(),
            "columns": selectors.deal_board(user=user, pipeline=pipeline, team=not mine),
            "mine": mine,
        },
    )


@login_required
def deal_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    open_only = request.GET.get("open") == "1"
    page = selectors.deal_page(user=user, page=page_param(request), open_only=open_only)
    return render(
        request, "web/deals/list.html", {"page": page, "open_only": open_only, "query": query_without(request, "page")}
    )


@login_required
def deal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    card = selectors.deal_card(user=acting_user(request), pk=pk)
    stages = list(card.deal.pipeline.stages.order_by("order"))
    return render(
        request,
        "web/deals/detail.html",
        {"card": card, "deal": card.deal, "stages": stages, "lost_form": LostForm(), "note_form": NoteForm()},
    )


@login_required
def deal_create(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    pipeline = selectors.pipeline_for(request.GET.get("pipeline"))
    initial = {"counterparty": int_param(request.GET.get("counterparty"))}
    form = DealForm(request.POST or None, user=user, pipeline=pipeline, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            deal = sales_services.create_deal(
                user=user,
                title=data["title"],
                counterparty=data["counterparty"],
                pipeline=pipeline,
                stage=data["stage"],
                owner=data["owner"],
                amount=data["amount"] or 0,
                currency=data["currency"],
                expected_close_date=data["expected_close_date"],
                source=data["source"],
            )
        except ValidationError as error:
            attach_errors(form, error)
        else:
            messages.success(request, _("Deal “%(title)s” created.") % {"title": deal.title})
            return redirect("web:deal-detail", pk=deal.pk)
    chosen = form["counterparty"].value()
    picked = selectors.counterparty_options(user=user, query="", limit=20)
    if chosen and int_param(chosen) not in {c.pk for c in picked}:
        picked = list(form.fields["counterparty"].queryset.filter(pk=int_param(chosen) or 0)) + picked  # type: ignore[attr-defined]
    return render(request, "web/deals/form.html", {"form": form, "pipeline": pipeline, "counterparties": picked})


@login_required
@require_POST
def deal_move(request: HttpRequest, pk: int) -> HttpResponse:
    """A card dropped on another column: the move goes through `sales.services.move_deal` (history records
    who moved it and from which stage to which)."""
    user = acting_user(request)
    deal = selectors.deal_get(user=user, pk=pk)
    stage = Stage.objects.filter(pk=int_param(request.POST.get("stage")) or 0, pipeline_id=deal.pipeline_id).first()
    if stage is None:
        return HttpResponse(_("Unknown stage."), status=400)
    try:
        deal = sales_services.move_deal(
            deal=deal, stage=stage, user=user, lost_reason=request.POST.get("lost_reason", "")
        )
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages), status=400)
    logger.info("deal %s moved to stage %s by %s", deal.pk, stage.pk, user.pk)
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "web/deals/_card.html", {"deal": deal})
    messages.success(request, _("Deal moved to “%(stage)s”.") % {"stage": stage.name})
    return redirect("web:deal-detail", pk=deal.pk)


@login_required
@require_POST
def deal_won(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    deal = selectors.deal_get(user=user, pk=pk)
    try:
        sales_services.close_deal_won(deal=deal, user=user)
        messages.success(request, _("The deal is won."))
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("web:deal-detail", pk=pk)


@login_required
@require_POST
def deal_lost(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    card = selectors.deal_card(user=user, pk=pk)
    form = LostForm(request.POST)
    if form.is_valid():
        try:
            sales_services.close_deal_lost(deal=card.deal, user=user, reason=form.cleaned_data["lost_reason"])
        except ValidationError as error:
            attach_errors(form, error)
        else:
            messages.success(request, _("The deal is lost."))
            return redirect("web:deal-detail", pk=pk)
    stages = list(card.deal.pipeline.stages.order_by("order"))
    return render(
        request,
        "web/deals/detail.html",
        {"card": card, "deal": card.deal, "stages": stages, "lost_form": form, "note_form": NoteForm()},
    )


@login_required
@require_POST
def deal_note_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    deal = selectors.deal_get(user=user, pk=pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            activity_services.add_note(
                user=user, counterparty=deal.counterparty, deal=deal, text=form.cleaned_data["text"]
            )
            messages.success(request, _("Note added."))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    return redirect("web:deal-detail", pk=pk)
