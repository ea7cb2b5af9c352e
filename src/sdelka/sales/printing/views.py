"""The printed invoice on screen, as a PDF download, and sent by e-mail (sales:invoice-print / -pdf / -send).

An invoice outside the user's scope answers 404 like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from .. import mail, selectors, services
from ..models import Invoice
from .invoice_pdf import pdf_filename, render_html, render_pdf


def visible_invoice(user: Any, pk: int) -> Invoice:
    try:
        return selectors.invoice_get(user=user, pk=pk)
    except Invoice.DoesNotExist as exc:
        raise Http404 from exc


def wants_facsimile(params: Mapping[str, str]) -> bool:
    """`?facsimile=1` (or true/on): print with the organisation's facsimile signatures and stamp."""
    return params.get("facsimile", "").lower() in {"1", "true", "on", "yes"}


def pdf_response(invoice: Invoice, *, inline: bool = False, facsimile: bool = False) -> HttpResponse:
    """The invoice's PDF with a Cyrillic file name (RFC 6266 `filename*`, an ASCII fallback)."""
    filename = pdf_filename(invoice)
    fallback = f"invoice-{invoice.pk}.pdf"
    disposition = "inline" if inline else "attachment"
    response = HttpResponse(render_pdf(invoice, facsimile=facsimile), content_type="application/pdf")
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
    """The form on screen with its toolbar; `?facsimile=1` shows (and downloads, and sends) it signed and
    stamped with the organisation's facsimiles."""
    invoice = visible_invoice(request.user, pk)
    facsimile = wants_facsimile(request.GET) and invoice.organisation.has_facsimile
    extra = {
        "back_url": _card_url(invoice),
        "can_send": invoice.status in services.SENDABLE_STATUSES,
        "default_to": ", ".join(mail.default_recipients(invoice)),
        "has_facsimile": invoice.organisation.has_facsimile,
        "focus_send": request.GET.get("send") == "1",
    }
    return HttpResponse(render_html(invoice, facsimile=facsimile, extra=extra, request=request))


@require_GET
@login_required
def invoice_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    return pdf_response(
        visible_invoice(request.user, pk),
        inline=request.GET.get("inline") == "1",
        facsimile=wants_facsimile(request.GET),
    )


@require_http_methods(["GET", "POST"])
@login_required
def invoice_send(request: HttpRequest, pk: int) -> HttpResponse:
    """POST sends the e-mail; GET (the invoice card's "Send by e-mail" link) opens the form with the send
    box, where the address, the message and the facsimile option are chosen."""
    invoice = visible_invoice(request.user, pk)
    if request.method == "GET":
        return redirect(reverse("sales:invoice-print", args=[invoice.pk]) + "?send=1#send-to")
    facsimile = wants_facsimile(request.POST)
    try:
        sent = mail.send_invoice(
            user=request.user,
            invoice=invoice,
            to=request.POST.get("to"),
            message=request.POST.get("message", ""),
            facsimile=facsimile,
        )
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
    else:
        messages.success(
            request,
            _("Invoice № %(number)s sent to %(to)s.") % {"number": invoice.number, "to": ", ".join(sent.recipients)},
        )
    query = "?facsimile=1" if facsimile else ""
    return redirect(reverse("sales:invoice-print", args=[invoice.pk]) + query)
