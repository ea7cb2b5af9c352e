"""Contracts with a counterparty: listed and added on its card, edited on a page of their own, offered in
the invoice editor for the chosen counterparty and organisation."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sdelka.parties import selectors as party_selectors
from sdelka.sales import selectors as sales_selectors
from sdelka.sales import services as sales_services
from sdelka.sales.models import Contract

from ..forms import ContractForm, attach_errors
from .common import acting_user, int_param


def _contract_data(form: ContractForm) -> dict[str, Any]:
    return {name: form.cleaned_data[name] for name in sales_services.CONTRACT_FIELDS}


@login_required
@require_POST
def contract_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    counterparty = party_selectors.counterparty_get(user=user, pk=pk)
    form = ContractForm(request.POST)
    if form.is_valid():
        try:
            sales_services.create_contract(user=user, counterparty=counterparty, **_contract_data(form))
        except ValidationError as error:
            attach_errors(form, error)
        else:
            form = ContractForm()
    if not request.htmx and not form.errors:  # type: ignore[attr-defined]
        return redirect("web:counterparty-detail", pk=pk)
    context = {
        "c": counterparty,
        "contracts": list(sales_selectors.contract_list(user=user, counterparty=counterparty)),
        "contract_form": form,
    }
    # htmx swaps only 2xx answers, so the form with its errors comes back as 200 to htmx.
    status = 422 if form.errors and not request.htmx else 200  # type: ignore[attr-defined]
    return render(request, "web/counterparties/_contracts.html", context, status=status)


@login_required
def contract_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    contract = Contract.objects.visible_to(user).select_related("counterparty").filter(pk=pk).first()
    if contract is None:
        raise Http404
    form = ContractForm(request.POST or None, contract=contract)
    if request.method == "POST" and form.is_valid():
        try:
            sales_services.update_contract(user=user, contract=contract, **_contract_data(form))
        except ValidationError as error:
            attach_errors(form, error)
        else:
            messages.success(request, _("Contract saved."))
            return redirect("web:counterparty-detail", pk=contract.counterparty_id)
    return render(request, "web/contracts/form.html", {"contract": contract, "form": form})


@login_required
def contract_options(request: HttpRequest) -> HttpResponse:
    """<option>s of the invoice editor's contract picker for the counterparty and organisation chosen."""
    user = acting_user(request)
    chosen = request.GET.get("contract", "")
    contracts = sales_selectors.contract_options(
        queryset=Contract.objects.visible_to(user).select_related("organisation"),
        counterparty=int_param(request.GET.get("counterparty")),
        organisation=int_param(request.GET.get("organisation")),
        chosen=int_param(chosen),
    )
    context = {"contracts": contracts, "selected": selected_contract(contracts, chosen)}
    return render(request, "web/contracts/_options.html", context)


def selected_contract(contracts: list[Contract], chosen: Any) -> Any:
    """The chosen contract if it is still offered, else the only one offered (as 1C fills the main contract)."""
    offered = {str(contract.pk) for contract in contracts}
    if str(chosen or "") in offered:
        return chosen
    return contracts[0].pk if len(contracts) == 1 else ""
