"""Forms of counterparties and their rows. They hold no rules: `clean()` asks `parties.services`, so a
value refused by the API or a service is refused here with the same message, on the same field."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from sdelka.accounts.models import User

from . import services
from .models import ContactPerson, Counterparty, CounterpartyBankAccount

TYPED_NUMBER_LENGTH = 40  # typed with spaces and dashes; services strip them before the model sees them


def typed_number(label: Any) -> forms.CharField:
    return forms.CharField(label=label, max_length=TYPED_NUMBER_LENGTH, required=False)


def attach_errors(form: forms.BaseForm, error: ValidationError, prefix: str = "") -> None:
    """Put a service's {field: messages} on the form's fields; unknown keys become form-wide errors."""
    for key, messages in error.message_dict.items():
        field = key.removeprefix(prefix) if key.startswith(prefix) else key
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


class ServiceModelForm(forms.ModelForm):
    """A model form whose values are checked and normalised by the services.

    The service checks uniqueness with its own message (linking to the duplicate), so the form does not."""

    service_fields: ClassVar[frozenset[str]] = frozenset()
    request_user: ClassVar[User | None] = None

    def service_data(self) -> dict[str, Any]:
        return {field: value for field, value in self.cleaned_data.items() if field in self.service_fields}

    def use_normalised(self) -> None:
        self.cleaned_data.update(services.normalise(self.service_data()))
        self._validate_unique = False


class CounterpartyForm(ServiceModelForm):
    service_fields = services.COUNTERPARTY_FIELDS | services.COUNTERPARTY_M2M | services.VIP_FIELDS

    inn = typed_number(Counterparty._meta.get_field("inn").verbose_name)
    kpp = typed_number(Counterparty._meta.get_field("kpp").verbose_name)
    ogrn = typed_number(Counterparty._meta.get_field("ogrn").verbose_name)
    okpo = typed_number(Counterparty._meta.get_field("okpo").verbose_name)

    class Meta:
        model = Counterparty
        fields = [
            "kind", "name", "full_name", "group", "is_active", "inn", "kpp", "ogrn", "okpo", "legal_address",
            "postal_address", "phones", "emails", "site", "owner", "co_owners", "is_vip", "vip_users", "tags",
            "comment",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        super().clean()
        if self.errors or self.request_user is None:
            return self.cleaned_data
        try:
            services.validate_counterparty(
                user=self.request_user,
                counterparty=self.instance if self.instance.pk else None,
                data=self.service_data(),
            )
        except ValidationError as exc:
            attach_errors(self, exc)
        self.use_normalised()
        return self.cleaned_data


class RowFormSet(forms.BaseInlineFormSet):
    """Rows of one counterparty; a bank-account formset also keeps to one main account."""

    def clean(self) -> None:
        super().clean()
        if self.model is not CounterpartyBankAccount:
            return
        mains = [
            form
            for form in self.forms
            if form.cleaned_data.get("is_main") and not form.cleaned_data.get("DELETE", False)
        ]
        if len(mains) > 1:
            raise ValidationError(
                _("A counterparty has only one main bank account; %(count)d are marked main.") % {"count": len(mains)}
            )


class BankAccountForm(ServiceModelForm):
    service_fields = services.BANK_ACCOUNT_FIELDS

    bik = typed_number(CounterpartyBankAccount._meta.get_field("bik").verbose_name)
    number = typed_number(CounterpartyBankAccount._meta.get_field("number").verbose_name)
    correspondent_account = typed_number(CounterpartyBankAccount._meta.get_field("correspondent_account").verbose_name)

    class Meta:
        model = CounterpartyBankAccount
        fields = ["bik", "bank_name", "correspondent_account", "number", "currency", "is_main"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        if self.errors:
            return self.cleaned_data
        values = services.normalise(self.service_data())
        probe = CounterpartyBankAccount(**{k: v for k, v in values.items() if k != "currency"})
        for field, errors in services.bank_account_errors(account=probe).items():
            for error in errors:
                self.add_error(field, error)
        self.use_normalised()
        return self.cleaned_data


class ContactForm(ServiceModelForm):
    service_fields = services.CONTACT_FIELDS

    class Meta:
        model = ContactPerson
        fields = [
            "last_name", "first_name", "middle_name", "position", "phones", "emails", "birthday", "notes",
            "is_active",
        ]  # fmt: skip

    def clean(self) -> dict[str, Any]:
        super().clean()
        if self.errors:
            return self.cleaned_data
        probe = ContactPerson(**services.normalise(self.service_data()))
        for field, errors in services.contact_errors(contact=probe).items():
            for error in errors:
                self.add_error(field, error)
        self.use_normalised()
        return self.cleaned_data
