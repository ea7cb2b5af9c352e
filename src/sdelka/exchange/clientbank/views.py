"""The payment queue on screen: statement payments Sdelka could not match with confidence, each with its
reason and candidate invoices; a person resolves one in two clicks (open the queue, press the invoice),
or creates the payer from the statement's requisites, or keeps the money as the client's advance."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import selectors, services

PAGE = 50


@require_GET
@login_required
def payment_queue(request: HttpRequest) -> HttpResponse:
    queue = selectors.payment_queue(user=request.user)
    documents = list(queue[:PAGE])
    invoices = selectors.candidate_invoices(user=request.user, documents=documents)
    rows = [
        {
            "document": document,
            "candidates": [invoices[pk] for pk in document.candidates or [] if pk in invoices],
            "unknown_payer": document.payment is not None and document.payment.counterparty_id is None,
        }
        for document in documents
    ]
    return render(request, "exchange/payment_queue.html", {"rows": rows, "total": queue.count(), "page": PAGE})


@require_POST
@login_required
def match_payment(request: HttpRequest, pk: int) -> HttpResponse:
    action = request.POST.get("action", "")
    invoice = request.POST.get("invoice", "")
    try:
        services.match_queued_payment(
            user=request.user,
            document=pk,
            invoices=[{"invoice": invoice}] if invoice else [],
            create_counterparty=action in {"create", "create_and_match"},
            keep_as_advance=action == "advance",
        )
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
    else:
        messages.success(request, _("The payment is matched."))
    return redirect(reverse("exchange:payment-queue"))
