"""The printed invoice on screen, as a PDF download, and sent by e-mail (sales:invoice-print / -pdf / -send).

An invoice outside the user's scope answers 404 like one that does not exist.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import mail, selectors, services
from ..models import Invoice
from .invoice_pdf import pdf_filename, render_html, render_pdf


def visible_invoice(user: Any, pk: int) -> Invoice:
    try:
        return selectors.invoice_get(user=user, pk=pk)
    except Invoice.DoesNotExist as exc:
        raise Http404 from exc


def pdf_response(invoice: Invoice, *, inline: bool = False) -> HttpResponse:
    """The invoice's PDF with a Cyrillic file name (RFC 6266 `filename*`, an ASCII fallback)."""
    filename = pdf_filename(invoice)
    fallback = f"invoice-{invoice.pk}.pdf"
    disposition = "inline" if inline else "attachment"
    response = HttpResponse(render_pdf(invoice), content_type="application/pdf")
    response["Content-Disposition"] = f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"
    return response


def _card_url(invoice: Invoice) -> str:
    """The invoice's card in the web UI (its app may not be installed: then the usual address)."""
    try:
        return reverse("web:invoice-detail", args=[invoice.pk])
    except NoReverseMatch:
        return f"/invoices/{invoice.pk}/"


@require_GET
@login_required
def invoice_print(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = visible_invoice(request.user, pk)
    extra = {
        "back_url": _card_url(invoice),
        "can_send": invoice.status in services.SENDABLE_STATUSES,
        "default_to": ", ".join(mail.default_recipients(invoice)),
    }
    return HttpResponse(render_html(invoice, extra=extra, request=request))


@require_GET
@login_required
def invoice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    return pdf_response(visible_invoice(request.user, pk), inline=request.GET.get("inline") == "1")


@require_POST
@login_required
def invoice_send(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = visible_invoice(request.user, pk)
    try:
        sent = mail.send_invoice(
            user=request.user, invoice=invoice, to=request.POST.get("to"), message=request.POST.get("message", "")
        )
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
    else:
        messages.success(
            request,
            _("Invoice № %(number)s sent to %(to)s.") % {"number": invoice.number, "to": ", ".join(sent.recipients)},
        )
    return redirect(reverse("sales:invoice-print", args=[invoice.pk]))
