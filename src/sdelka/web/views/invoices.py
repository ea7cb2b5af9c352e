"""Invoices: the list, the editor of a draft with live sums, issuing, links to printing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sdelka.catalog.models import PriceType
from sdelka.catalog.services import default_price_type
from sdelka.core.models import Currency
from sdelka.core.vat import VatMode, VatRate
from sdelka.sales import services as sales_services
from sdelka.sales.models import Invoice, InvoiceStatus, Organisation

from .. import lines, selectors
from ..forms import InvoiceHeaderForm, attach_errors
from .common import acting_user, int_param, optional_url, page_param, query_without
from .contracts import selected_contract

HEADER_FIELDS = ("date", "due_date", "counterparty", "deal", "contract", "currency", "basis", "comment")


@login_required
def invoice_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    status = request.GET.get("status", "")
    page = selectors.invoice_page(user=user, status=status, search=request.GET.get("q", ""), page=page_param(request))
    return render(
        request,
        "web/invoices/list.html",
        {"page": page, "status": status, "statuses": InvoiceStatus.choices, "query": query_without(request, "page")},
    )


@login_required
def invoice_detail(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = selectors.invoice_get(user=acting_user(request), pk=pk)
    links = {name: optional_url(f"sales:invoice-{name}", invoice.pk) for name in ("print", "pdf", "send")}
    allocations = invoice.allocations.select_related("payment").order_by("payment__date", "pk")
    return render(
        request,
        "web/invoices/detail.html",
        {"invoice": invoice, "links": links, "allocations": list(allocations), "onec": selectors.onec_state(invoice)},
    )


def _lookup(model: Any, value: Any) -> Any:
    return model.objects.filter(pk=value).first() if value not in (None, "") else None


def _editor_context(
    request: HttpRequest, form: InvoiceHeaderForm, rows: list[lines.Row], **extra: Any
) -> dict[str, Any]:
    user = acting_user(request)
    chosen = form["counterparty"].value()
    counterparties = selectors.counterparty_options(user=user, query="", limit=20)
    if chosen and int_param(chosen) not in {c.pk for c in counterparties}:
        counterparties = list(form.fields["counterparty"].queryset.filter(pk=int_param(chosen))) + counterparties  # type: ignore[attr-defined]
    contracts = form.contract_choices()
    return {
        "form": form,
        "rows": rows,
        "counterparties": counterparties,
        "contracts": contracts,
        "selected": selected_contract(contracts, form["contract"].value())
        if not form.is_bound
        else form["contract"].value(),
        "vat_rates": VatRate.choices,
        "price_type_id": form["price_type"].value() or "",
        **extra,
    }


def _contract_selected(form: InvoiceHeaderForm, contracts: list[Any], invoice: Invoice | None) -> Any:
    """What the user chose, or what the invoice has; a new invoice takes the counterparty's only contract."""
    if form.is_bound or invoice is not None:
        return form["contract"].value()
    return selected_contract(contracts, form["contract"].value())


def _recompute(request: HttpRequest, rows: list[lines.Row], data: Any) -> lines.Totals:
    price_type = _lookup(PriceType, data.get("price_type"))
    return lines.refresh(
        user=acting_user(request),
        rows=rows,
        vat_mode=data.get("vat_mode") or VatMode.INCLUDED,
        currency=_lookup(Currency, data.get("currency")),
        price_type=price_type,
        price_type_changed=str(data.get("prev_price_type", "")) != str(data.get("price_type", "")),
    )


@login_required
@require_POST
def invoice_recalc(request: HttpRequest) -> HttpResponse:
    """The lines block again, with prices of newly chosen products and the sums computed by the server."""
    rows = lines.rows_from_post(request.POST)
    if request.GET.get("add"):
        rows.append(lines.blank_row())
    remove = request.GET.get("remove")
    if remove:
        rows = [row for row in rows if row.key != remove] or [lines.blank_row()]
    totals = _recompute(request, rows, request.POST)
    return render(
        request,
        "web/invoices/_lines.html",
        {
            "rows": rows,
            "totals": totals,
            "vat_rates": VatRate.choices,
            "price_type_id": request.POST.get("price_type", ""),
        },
    )


def _save(
    request: HttpRequest, form: InvoiceHeaderForm, rows: list[lines.Row], invoice: Invoice | None
) -> Invoice | None:
    user = acting_user(request)
    data = form.cleaned_data
    filled = [row for row in rows if not row.is_blank]
    header = {name: data[name] for name in HEADER_FIELDS}
    try:
        if invoice is None:
            return sales_services.create_invoice(
                user=user,
                organisation=data["organisation"],
                lines=[row.as_line() for row in filled],
                price_type=data["price_type"],
                vat_mode=data["vat_mode"],
                **header,
            )
        return sales_services.update_invoice(
            user=user,
            invoice=invoice,
            lines=[row.as_line() for row in filled],
            price_type=data["price_type"],
            vat_mode=data["vat_mode"],
            **header,
        )
    except ValidationError as error:
        rest = lines.attach_line_errors(filled, error)
        if rest:
            attach_errors(form, ValidationError(rest))
        return None


def _editor(request: HttpRequest, invoice: Invoice | None) -> HttpResponse:
    user = acting_user(request)
    if request.method == "POST":
        form = InvoiceHeaderForm(request.POST, user=user)
        rows = lines.rows_from_post(request.POST)
        totals = _recompute(request, rows, request.POST)
        if form.is_valid():
            saved = _save(request, form, rows, invoice)
            if saved is not None:
                messages.success(request, _("Invoice № %(number)s saved.") % {"number": saved.number})
                return redirect("web:invoice-detail", pk=saved.pk)
        if not any(row.errors for row in rows) and not form.errors:
            form.add_error(None, _("The invoice was not saved; check the lines."))
    else:
        initial = _initial(request, invoice)
        form = InvoiceHeaderForm(initial=initial, user=user)
        rows = lines.rows_from_invoice(invoice) if invoice else [lines.blank_row()]
        totals = lines.compute(
            rows=rows,
            vat_mode=initial["vat_mode"],
            currency=_lookup(Currency, initial["currency"]),
            price_type=_lookup(PriceType, initial.get("price_type")),
        )
    return render(
        request, "web/invoices/form.html", _editor_context(request, form, rows, invoice=invoice, totals=totals)
    )


def _initial(request: HttpRequest, invoice: Invoice | None) -> dict[str, Any]:
    if invoice is not None:
        return {
            "organisation": invoice.organisation_id,
            "counterparty": invoice.counterparty_id,
            "deal": invoice.deal_id,
            "date": invoice.date,
            "due_date": invoice.due_date,
            "currency": invoice.currency_id,
            "vat_mode": invoice.vat_mode,
            "price_type": getattr(default_price_type(), "pk", None),
            "contract": invoice.contract_id,
            "basis": invoice.basis,
            "comment": invoice.comment,
        }
    organisation = Organisation.objects.filter(is_active=True).order_by("name", "pk").first()
    deal = None
    if request.GET.get("deal"):
        deal = selectors.deal_get(user=acting_user(request), pk=request.GET["deal"])
    counterparty = deal.counterparty_id if deal else int_param(request.GET.get("counterparty"))
    today = timezone.localdate()
    return {
        "organisation": getattr(organisation, "pk", None),
        "counterparty": counterparty,
        "deal": getattr(deal, "pk", None),
        "date": today,
        "due_date": today + timedelta(days=5),
        "currency": "RUB",
        "vat_mode": getattr(organisation, "vat_mode", VatMode.INCLUDED),
        "price_type": getattr(default_price_type(), "pk", None),
    }


@login_required
def invoice_create(request: HttpRequest) -> HttpResponse:
    return _editor(request, None)


@login_required
def invoice_edit(request: HttpRequest, pk: int) -> HttpResponse:
    invoice = selectors.invoice_get(user=acting_user(request), pk=pk)
    if invoice.status != InvoiceStatus.DRAFT:
        messages.error(request, _("Only a draft invoice can be edited."))
        return redirect("web:invoice-detail", pk=pk)
    return _editor(request, invoice)


@login_required
@require_POST
def invoice_issue(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    invoice = selectors.invoice_get(user=user, pk=pk)
    try:
        sales_services.issue_invoice(user=user, invoice=invoice)
        messages.success(request, _("Invoice № %(number)s issued.") % {"number": invoice.number})
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("web:invoice-detail", pk=pk)


@login_required
def product_options(request: HttpRequest) -> HttpResponse:
    """<option>s for a line's product picker, found by name, article or barcode as the user types."""
    found = selectors.product_options(user=acting_user(request), query=request.GET.get("q", ""))
    options = [(p.pk, f"{p.article} · {p.name}" if p.article else p.name) for p in found]
    return render(request, "web/_options.html", {"options": options, "blank": True})
