"""Counterparties: the list, the card, the form with requisites checked as you type, contacts, notes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sdelka.activities import services as activity_services
from sdelka.core import requisites
from sdelka.parties import selectors as party_selectors
from sdelka.parties import services as party_services
from sdelka.parties.models import Counterparty, CounterpartyKind

from .. import selectors
from ..forms import AccessForm, ContactForm, ContractForm, CounterpartyWebForm, NoteForm, attach_errors
from .common import acting_user, int_param, query_without

COUNTERPARTY_CHECKED = ("inn", "kpp", "ogrn", "okpo")
BANK_CHECKED = ("bik", "number", "correspondent_account")
DUPLICATE_LIMIT = 5
MIN_NAME_FOR_DUPLICATES = 4


def _filters(request: HttpRequest) -> selectors.CounterpartyFilters:
    active = request.GET.get("active", "1")
    return selectors.CounterpartyFilters(
        search=request.GET.get("q", "").strip(),
        owner=int_param(request.GET.get("owner")),
        tag=int_param(request.GET.get("tag")),
        active=None if active == "" else active == "1",
        has_debt=request.GET.get("debt") == "1",
        sort=request.GET.get("sort", "name"),
    )


@login_required
def counterparty_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    filters = _filters(request)
    context = {
        "page": selectors.counterparty_page(
            user=user, filters=filters, after=request.GET.get("after", ""), before=request.GET.get("before", "")
        ),
        "filters": filters,
        "owners": selectors.owner_choices(user=user),
        "tags": selectors.tag_choices(),
        "query": query_without(request, "page", "after", "before"),
        "sort_query": query_without(request, "page", "after", "before", "sort"),
    }
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "web/counterparties/_table.html", context)
    return render(request, "web/counterparties/list.html", context)


@login_required
def counterparty_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    card = selectors.counterparty_card(user=user, pk=pk)
    return render(
        request,
        "web/counterparties/detail.html",
        {
            "card": card,
            "c": card.counterparty,
            "contact_form": ContactForm(),
            "contract_form": ContractForm(),
            "note_form": NoteForm(),
            "may_manage_access": party_services.may_manage_access(user, card.counterparty),
        },
    )


def _duplicates(request: HttpRequest, data: Any, exclude: int | None) -> list[Counterparty]:
    name = str(data.get("name", "")).strip()
    found = party_selectors.possible_duplicates(
        user=acting_user(request),
        inn=str(data.get("inn", "")),
        name=name if len(name) >= MIN_NAME_FOR_DUPLICATES else "",
        phone=str(data.get("phones", "")).split(",")[0],
        email=str(data.get("emails", "")).split(",")[0],
    )
    if exclude:
        found = found.exclude(pk=exclude)
    return list(found[:DUPLICATE_LIMIT])


def _counterparty_form(request: HttpRequest, instance: Counterparty | None) -> HttpResponse:
    user = acting_user(request)
    form = CounterpartyWebForm(request.POST or None, instance=instance, user=user)
    duplicates: list[Counterparty] = []
    if request.method == "POST" and form.is_valid():
        if instance is None and not request.POST.get("confirm_duplicates"):
            duplicates = _duplicates(request, request.POST, exclude=None)
        if not duplicates:
            try:
                if instance is None:
                    saved = party_services.create_counterparty(user=user, data=form.service_data())
                    messages.success(request, _("Counterparty “%(name)s” created.") % {"name": saved.name})
                else:
                    saved = party_services.update_counterparty(
                        user=user, counterparty=instance, data=form.service_data()
                    )
                    messages.success(request, _("Counterparty “%(name)s” saved.") % {"name": saved.name})
                return redirect("web:counterparty-detail", pk=saved.pk)
            except ValidationError as error:
                attach_errors(form, error)
    return render(
        request,
        "web/counterparties/form.html",
        {"form": form, "c": instance, "duplicates": duplicates, "kinds": CounterpartyKind},
    )


@login_required
def counterparty_create(request: HttpRequest) -> HttpResponse:
    return _counterparty_form(request, None)


@login_required
def counterparty_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _counterparty_form(request, party_selectors.counterparty_get(user=acting_user(request), pk=pk))


@login_required
def counterparty_access(request: HttpRequest, pk: int) -> HttpResponse:
    """Co-owners and VIP access of a counterparty: for its owner, his heads and the director (403 otherwise)."""
    user = acting_user(request)
    counterparty = party_selectors.counterparty_get(user=user, pk=pk)
    if not party_services.may_manage_access(user, counterparty):
        raise PermissionDenied(
            _("Only the owner of the counterparty, the head of his team or the director may change who shares it.")
        )
    # Unticking everyone posts no field at all, so the form is bound on POST, not on a non-empty POST.
    form = AccessForm(request.POST if request.method == "POST" else None, user=user, counterparty=counterparty)
    if form.is_bound and form.is_valid():
        data = dict(form.cleaned_data)
        if data["is_vip"] and not user.sees_all_vip and user not in data["vip_users"]:
            # Whoever marks a counterparty VIP keeps seeing it; otherwise he would lock himself out.
            data["vip_users"] = [*data["vip_users"], user]
        try:
            party_services.update_counterparty(user=user, counterparty=counterparty, data=data)
        except ValidationError as error:
            attach_errors(form, error)
        else:
            messages.success(request, _("Access to “%(name)s” saved.") % {"name": counterparty.name})
            return redirect("web:counterparty-detail", pk=pk)
    return render(request, "web/counterparties/access.html", {"form": form, "c": counterparty})


@login_required
def counterparty_check(request: HttpRequest) -> HttpResponse:
    """One requisite checked as it is typed: the messages the save would give for that field."""
    field = request.GET.get("field", "")
    data = request.GET
    errors: list[str] = []
    if field in COUNTERPARTY_CHECKED:
        values = party_services.normalise({name: data.get(name, "") for name in COUNTERPARTY_CHECKED})
        probe = Counterparty(
            kind=data.get("kind") or CounterpartyKind.LEGAL, name=data.get("name", "") or "-", **values
        )
        probe.pk = int_param(data.get("pk"))
        found = party_services.counterparty_errors(user=acting_user(request), counterparty=probe)
        if values.get(field) or field == "kpp":
            errors = [message for error in found.get(field, []) for message in error.messages]
    elif field in BANK_CHECKED:
        values = party_services.normalise({name: data.get(name, "") for name in BANK_CHECKED})
        if values.get(field):
            found_bank = requisites.bank_account_errors(
                bik=values["bik"], number=values["number"], correspondent_account=values["correspondent_account"]
            )
            errors = found_bank[field].messages if field in found_bank else []
    else:
        raise Http404
    return render(
        request,
        "web/counterparties/_check.html",
        {"field": field, "errors": errors, "value": data.get(field, "").strip()},
    )


@login_required
def counterparty_duplicates(request: HttpRequest) -> HttpResponse:
    duplicates = _duplicates(request, request.GET, exclude=int_param(request.GET.get("pk")))
    return render(request, "web/counterparties/_duplicates.html", {"duplicates": duplicates})


@login_required
def counterparty_options(request: HttpRequest) -> HttpResponse:
    """<option>s for a counterparty picker, found as the user types."""
    found = selectors.counterparty_options(user=acting_user(request), query=request.GET.get("q", ""))
    return render(
        request, "web/_options.html", {"options": [(c.pk, f"{c.name} · {c.inn}" if c.inn else c.name) for c in found]}
    )


@login_required
@require_POST
def contact_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    counterparty = party_selectors.counterparty_get(user=user, pk=pk)
    form = ContactForm(request.POST)
    if form.is_valid():
        try:
            party_services.add_contact(user=user, counterparty=counterparty, data=form.service_data())
        except ValidationError as error:
            attach_errors(form, error)
        except PermissionDenied as error:
            raise Http404 from error
        else:
            form = ContactForm()
    status = 422 if form.errors else 200
    contacts = list(party_selectors.contact_list(user=user, counterparty=counterparty))
    context = {"c": counterparty, "contacts": contacts, "contact_form": form}
    if not request.htmx:  # type: ignore[attr-defined]
        return (
            redirect("web:counterparty-detail", pk=pk)
            if status == 200
            else render(request, "web/counterparties/_contacts.html", context, status=status)
        )
    # htmx swaps only 2xx answers, so the form with its errors comes back as 200.
    return render(request, "web/counterparties/_contacts.html", context)


@login_required
@require_POST
def note_add(request: HttpRequest, pk: int) -> HttpResponse:
    user = acting_user(request)
    counterparty = party_selectors.counterparty_get(user=user, pk=pk)
    form = NoteForm(request.POST)
    if form.is_valid():
        try:
            activity_services.add_note(user=user, counterparty=counterparty, text=form.cleaned_data["text"])
            messages.success(request, _("Note added."))
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    else:
        messages.error(request, _("A note needs text."))
    return redirect("web:counterparty-detail", pk=pk)
