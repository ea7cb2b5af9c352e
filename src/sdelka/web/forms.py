"""Forms of the workspace. They hold no rules: they parse what was typed and hand it to the services,
whose ValidationError dicts are put back on the fields (`attach_errors`)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from sdelka.accounts.models import User
from sdelka.activities.services import assignable_users
from sdelka.catalog.models import PriceType
from sdelka.core.models import Currency
from sdelka.core.vat import VatMode
from sdelka.parties.forms import ContactForm, CounterpartyForm, attach_errors
from sdelka.parties.models import Counterparty
from sdelka.sales import selectors as sales_selectors
from sdelka.sales.models import Contract, ContractKind, Deal, Organisation, Stage, StageKind

from . import selectors

__all__ = ["ContactForm", "attach_errors"]

DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
DATETIME_INPUT = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class CounterpartyWebForm(CounterpartyForm):
    """The counterparty form of the workspace: what a manager fills in; VIP and co-owners stay in the
    back office. `clean()` (inherited) asks `parties.services.validate_counterparty`."""

    class Meta(CounterpartyForm.Meta):
        fields = [
            "kind", "name", "full_name", "inn", "kpp", "ogrn", "okpo", "legal_address", "postal_address",
            "phones", "emails", "site", "owner", "tags", "is_active", "comment",
        ]  # fmt: skip
        widgets = {
            "legal_address": forms.Textarea(attrs={"rows": 2}),
            "postal_address": forms.Textarea(attrs={"rows": 2}),
            "comment": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_user = user  # type: ignore[misc]
        owner = self.fields["owner"]
        assert isinstance(owner, forms.ModelChoiceField)
        owner.queryset = selectors.owner_choices(user=user)
        owner.required = False
        owner.empty_label = _("Me")
        self.fields["tags"].required = False
        check_url = reverse("web:counterparty-check")
        for name in ("inn", "kpp", "ogrn", "okpo"):
            self.fields[name].widget.attrs.update(
                {
                    "hx-get": check_url,
                    "hx-trigger": "input changed delay:400ms, change",
                    "hx-target": f"#check-{name}",
                    "hx-include": "#id_kind, #id_name, #id_inn, #id_kpp, #id_ogrn, #id_okpo, [name=pk]",
                    "hx-vals": json.dumps({"field": name}),
                    "hx-sync": "this:replace",
                    "aria-describedby": f"check-{name}",
                    "inputmode": "numeric" if name != "kpp" else "text",
                    "autocomplete": "off",
                }
            )

    def service_data(self) -> dict[str, Any]:
        data = super().service_data()
        if not data.get("owner"):
            data.pop("owner", None)
        return data


class CounterpartyChoiceField(forms.ModelChoiceField):
    """A counterparty chosen with a search box; only visible counterparties are accepted."""

    def __init__(self, *, user: User, **kwargs: Any) -> None:
        super().__init__(queryset=Counterparty.objects.visible_to(user), **kwargs)


class DealForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=255)
    counterparty = forms.ModelChoiceField(label=_("Counterparty"), queryset=Counterparty.objects.none())
    stage = forms.ModelChoiceField(label=_("Stage"), queryset=Stage.objects.none())
    amount = forms.DecimalField(label=_("Amount"), max_digits=18, decimal_places=2, min_value=0, required=False)
    currency = forms.ModelChoiceField(label=_("Currency"), queryset=Currency.objects.filter(is_active=True))
    expected_close_date = forms.DateField(label=_("Expected close date"), required=False, widget=DATE_INPUT)
    source = forms.CharField(label=_("Source"), max_length=100, required=False)
    owner = forms.ModelChoiceField(label=_("Owner"), queryset=User.objects.none(), required=False, empty_label=_("Me"))

    def __init__(self, *args: Any, user: User, pipeline: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["counterparty"].queryset = Counterparty.objects.visible_to(user)  # type: ignore[attr-defined]
        stages = pipeline.stages.filter(kind=StageKind.OPEN).order_by("order")
        self.fields["stage"].queryset = stages  # type: ignore[attr-defined]
        self.fields["stage"].empty_label = None  # type: ignore[attr-defined]
        self.fields["stage"].initial = getattr(stages.first(), "pk", None)
        self.fields["owner"].queryset = assignable_users(user).order_by("last_name", "first_name")  # type: ignore[attr-defined]
        self.fields["currency"].initial = "RUB"
        self.fields["currency"].empty_label = None  # type: ignore[attr-defined]


class LostForm(forms.Form):
    lost_reason = forms.CharField(label=_("Why was it lost?"), max_length=255)


class InvoiceHeaderForm(forms.Form):
    organisation = forms.ModelChoiceField(label=_("Organisation"), queryset=Organisation.objects.none())
    counterparty = forms.ModelChoiceField(label=_("Counterparty"), queryset=Counterparty.objects.none())
    deal = forms.ModelChoiceField(label=_("Deal"), queryset=Deal.objects.none(), required=False)
    date = forms.DateField(label=_("Date"), widget=DATE_INPUT)
    due_date = forms.DateField(label=_("Pay by"), required=False, widget=DATE_INPUT)
    currency = forms.ModelChoiceField(label=_("Currency"), queryset=Currency.objects.filter(is_active=True))
    vat_mode = forms.ChoiceField(label=_("VAT"), choices=VatMode.choices)
    price_type = forms.ModelChoiceField(
        label=_("Price type"), queryset=PriceType.objects.filter(is_active=True), required=False
    )
    contract = forms.ModelChoiceField(
        label=_("Contract"), queryset=Contract.objects.none(), required=False, empty_label=_("Without a contract")
    )
    basis = forms.CharField(
        label=_("Basis"), max_length=255, required=False, help_text=_("Empty: the contract, or else the deal.")
    )
    comment = forms.CharField(label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = Organisation.objects.filter(is_active=True)  # type: ignore[attr-defined]
        self.fields["counterparty"].queryset = Counterparty.objects.visible_to(user)  # type: ignore[attr-defined]
        self.fields["deal"].queryset = Deal.objects.visible_to(user)  # type: ignore[attr-defined]
        self.fields["contract"].queryset = Contract.objects.visible_to(user)  # type: ignore[attr-defined]

    def contract_choices(self) -> list[Contract]:
        """The chosen counterparty's contracts with a buyer for the chosen organisation (and the one chosen)."""
        return sales_selectors.contract_options(
            queryset=self.fields["contract"].queryset,  # type: ignore[attr-defined]
            counterparty=self["counterparty"].value(),
            organisation=self["organisation"].value(),
            chosen=self["contract"].value(),
        )


class ContractForm(forms.Form):
    organisation = forms.ModelChoiceField(
        label=_("Our organisation"), queryset=Organisation.objects.none(), required=False, empty_label=_("Any")
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=ContractKind.choices, initial=ContractKind.SALE)
    number = forms.CharField(label=_("Number"), max_length=50, required=False)
    date = forms.DateField(label=_("Date"), required=False, widget=DATE_INPUT)
    name = forms.CharField(label=_("Name"), max_length=255, required=False, help_text=_("Empty: «Договор № … от …»."))
    valid_until = forms.DateField(label=_("Valid until"), required=False, widget=DATE_INPUT)
    currency = forms.ModelChoiceField(
        label=_("Currency"), queryset=Currency.objects.filter(is_active=True), initial="RUB", empty_label=None
    )
    is_active = forms.BooleanField(label=_("In force"), required=False, initial=True)
    comment = forms.CharField(label=_("Comment"), required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, contract: Contract | None = None, **kwargs: Any) -> None:
        if contract is not None:
            kwargs.setdefault("initial", {name: getattr(contract, name) for name in self.base_fields})
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = Organisation.objects.filter(is_active=True)  # type: ignore[attr-defined]


class TaskForm(forms.Form):
    title = forms.CharField(label=_("Task"), max_length=255)
    due_at = forms.DateTimeField(label=_("Due"), required=False, widget=DATETIME_INPUT)
    remind_at = forms.DateTimeField(label=_("Remind at"), required=False, widget=DATETIME_INPUT)
    assignee = forms.ModelChoiceField(
        label=_("Assignee"), queryset=User.objects.none(), required=False, empty_label=_("Me")
    )
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 3}))
    counterparty = forms.ModelChoiceField(
        queryset=Counterparty.objects.none(), required=False, widget=forms.HiddenInput
    )
    deal = forms.ModelChoiceField(queryset=Deal.objects.none(), required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignable_users(user).order_by("last_name", "first_name")  # type: ignore[attr-defined]
        self.fields["counterparty"].queryset = Counterparty.objects.visible_to(user)  # type: ignore[attr-defined]
        self.fields["deal"].queryset = Deal.objects.visible_to(user)  # type: ignore[attr-defined]


class NoteForm(forms.Form):
    text = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3}))


class AccessForm(forms.Form):
    """Who shares a counterparty and who sees it when it is VIP. The users offered are those the editor may
    hand it to, plus whoever is already named (they stay unless unticked)."""

    co_owners = forms.ModelMultipleChoiceField(
        label=_("Co-owners"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Co-owners see the counterparty and work with it like its owner."),
    )
    is_vip = forms.BooleanField(label=_("VIP: only the people named below and the director see it"), required=False)
    vip_users = forms.ModelMultipleChoiceField(
        label=_("Who sees this VIP"),
        queryset=User.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The owner is always among them."),
    )

    def __init__(self, *args: Any, user: User, counterparty: Counterparty, **kwargs: Any) -> None:
        kwargs.setdefault(
            "initial",
            {
                "co_owners": list(counterparty.co_owners.all()),
                "is_vip": counterparty.is_vip,
                "vip_users": list(counterparty.vip_users.all()),
            },
        )
        super().__init__(*args, **kwargs)
        named = counterparty.co_owners.through.objects.filter(counterparty=counterparty).values("user_id")
        seeing = counterparty.vip_users.through.objects.filter(counterparty=counterparty).values("user_id")
        offered = selectors.owner_choices(user=user).values("pk")
        candidates = User.objects.filter(Q(pk__in=offered) | Q(pk__in=named) | Q(pk__in=seeing))
        candidates = candidates.order_by("last_name", "first_name", "username")
        self.fields["co_owners"].queryset = candidates.exclude(pk=counterparty.owner_id)  # type: ignore[attr-defined]
        self.fields["vip_users"].queryset = candidates  # type: ignore[attr-defined]
