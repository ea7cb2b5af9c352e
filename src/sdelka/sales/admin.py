"""Admin screens of the sales domain. Lists go through `visible_to` (VisibleAdminMixin) and every save
through sales.services, so the admin keeps the same rules as the API; a rule broken is shown on the form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from sdelka.accounts.admin_mixins import VisibleAdminMixin

from . import services
from .facsimile import FACSIMILE_FIELDS, data_uri
from .models import (
    Contract,
    Deal,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Organisation,
    OrganisationBankAccount,
    Payment,
    PaymentAllocation,
    Pipeline,
    Stage,
)

SERVICE_ERRORS = "_sdelka_service_errors"


class ServiceSaveMixin:
    """Saves go through a service. Should the service still refuse (a rule the form cannot see, a race),
    the whole save is rolled back and the form shows again with the message naming the field."""

    def run_service(self, request: HttpRequest, call: Any) -> Any:
        try:
            with transaction.atomic():
                return call()
        except ValidationError as exc:
            transaction.set_rollback(True)
            setattr(request, SERVICE_ERRORS, exc)
            return None

    def _service_failed(self, request: HttpRequest) -> HttpResponse | None:
        exc = getattr(request, SERVICE_ERRORS, None)
        if exc is None:
            return None
        details = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        for field, field_messages in details.items():
            for message in field_messages:
                label = self._field_label(field)
                self.message_user(request, f"{label}: {message}" if label else message, messages.ERROR)  # type: ignore[attr-defined]
        return HttpResponseRedirect(request.get_full_path())

    def _field_label(self, field: str) -> str:
        """The field's name as the form shows it; a key without a model field (lines.0.price) as is."""
        try:
            return str(self.model._meta.get_field(field).verbose_name) if field else ""  # type: ignore[attr-defined]
        except FieldDoesNotExist:
            return field

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> HttpResponse:
        return self._service_failed(request) or super().response_add(request, obj, post_url_continue)  # type: ignore[misc]

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        return self._service_failed(request) or super().response_change(request, obj)  # type: ignore[misc]

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if getattr(request, SERVICE_ERRORS, None) is None:
            super().save_related(request, form, formsets, change)  # type: ignore[misc]
        saved_by_service(formsets)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, SERVICE_ERRORS, None) is None:
            return super().log_addition(request, obj, message)  # type: ignore[misc]
        return None

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, SERVICE_ERRORS, None) is None:
            return super().log_change(request, obj, message)  # type: ignore[misc]
        return None


def saved_by_service(formsets: Any) -> None:
    """Formsets whose rows a service wrote report no changes of their own to the admin's log."""
    for formset in formsets:
        for name in ("new_objects", "changed_objects", "deleted_objects"):
            if not hasattr(formset, name):
                setattr(formset, name, [])


def adopt(obj: Any, saved: Any) -> None:
    """Let the admin carry on with the object the service saved (for its message and redirect)."""
    if saved is not None:
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()


def errors_to_form(exc: ValidationError, form: forms.BaseForm) -> None:
    for field, field_messages in exc.message_dict.items():
        target = field if field in form.fields else None
        for message in field_messages:
            form.add_error(target, message if target else f"{field}: {message}")


# --- Organisations --------------------------------------------------------------------------------


class FacsimileInput(forms.ClearableFileInput):
    """A facsimile upload showing the stored picture itself (embedded: facsimiles are never served by URL)
    and offering only PNG and JPEG files in the browser's file dialog."""

    template_name = "sales/widgets/facsimile_input.html"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"accept": "image/png,image/jpeg", **(attrs or {})})

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        context["widget"]["preview"] = data_uri(value) if self.is_initial(value) else ""
        return context


class OrganisationForm(forms.ModelForm):
    class Meta:
        model = Organisation
        fields = services.ORGANISATION_FIELDS
        widgets = dict.fromkeys(FACSIMILE_FIELDS, FacsimileInput)

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self.errors:
            return
        try:
            services._validate_organisation(self.instance)
        except ValidationError as exc:
            errors_to_form(exc, self)


class BankAccountForm(forms.ModelForm):
    class Meta:
        model = OrganisationBankAccount
        fields = ["bik", "bank_name", "correspondent_account", "number", "currency", "is_main"]


class BankAccountFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        for form in self.forms:
            if not form.cleaned_data or form.cleaned_data.get("DELETE") or form.errors:
                continue
            data = form.cleaned_data
            try:
                services.validate_bank_account(
                    bik=data["bik"],
                    bank_name=data["bank_name"],
                    number=data["number"],
                    correspondent_account=data.get("correspondent_account", ""),
                )
            except ValidationError as exc:
                errors_to_form(exc, form)


class OrganisationBankAccountInline(admin.TabularInline):
    model = OrganisationBankAccount
    form = BankAccountForm
    formset = BankAccountFormSet
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(ServiceSaveMixin, SimpleHistoryAdmin):
    form = OrganisationForm
    list_display = ["name", "inn", "kpp", "invoice_prefix", "vat_mode", "is_active"]
    list_filter = ["is_active", "vat_mode"]
    search_fields = ["name", "full_name", "inn"]
    inlines = [OrganisationBankAccountInline]

    def save_model(self, request: HttpRequest, obj: Organisation, form: Any, change: bool) -> None:
        fields = {name: form.cleaned_data[name] for name in services.ORGANISATION_FIELDS if name in form.cleaned_data}
        saved = self.run_service(
            request,
            lambda: services.save_organisation(user=request.user, organisation=obj if change else None, **fields),
        )
        adopt(obj, saved)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        organisation = form.instance

        def save() -> None:
            for deleted in formset.deleted_forms:
                if deleted.instance.pk:
                    deleted.instance.delete()
            for inline in formset.forms:
                if inline in formset.deleted_forms or not inline.has_changed():
                    continue
                data = inline.cleaned_data
                services.save_organisation_bank_account(
                    organisation=organisation,
                    bik=data["bik"],
                    bank_name=data["bank_name"],
                    number=data["number"],
                    correspondent_account=data.get("correspondent_account", ""),
                    currency=data["currency"],
                    is_main=data.get("is_main", False),
                    account=inline.instance if inline.instance.pk else None,
                )

        self.run_service(request, save)


# --- Pipelines ------------------------------------------------------------------------------------


class StageInline(admin.TabularInline):
    model = Stage
    extra = 0
    fields = ["order", "name", "kind", "probability"]


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ["name", "is_default"]
    inlines = [StageInline]


# --- Deals ----------------------------------------------------------------------------------------


class DealForm(forms.ModelForm):
    class Meta:
        model = Deal
        fields = [
            "title",
            "pipeline",
            "stage",
            "counterparty",
            "contact",
            "owner",
            "amount",
            "currency",
            "expected_close_date",
            "probability",
            "source",
            "lost_reason",
        ]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        stage, pipeline = cleaned.get("stage"), cleaned.get("pipeline")
        if stage is not None and pipeline is not None and stage.pipeline_id != pipeline.pk:
            self.add_error("stage", _("The stage belongs to another pipeline."))
        return cleaned


@admin.register(Deal)
class DealAdmin(ServiceSaveMixin, VisibleAdminMixin, SimpleHistoryAdmin):
    form = DealForm
    list_display = ["title", "counterparty", "pipeline", "stage", "owner", "amount", "currency", "expected_close_date"]
    list_filter = ["pipeline", "stage", "owner"]
    search_fields = ["title", "counterparty__name", "counterparty__inn"]
    list_select_related = ["counterparty", "pipeline", "stage", "owner", "currency"]
    readonly_fields = ["closed_at", "created_at", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Deal, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        stage = data.pop("stage")
        pipeline = data.pop("pipeline")
        lost_reason = data.pop("lost_reason", "") or ""
        if change:
            original = Deal.objects.get(pk=obj.pk)
            saved = self.run_service(
                request,
                lambda: services.update_deal(
                    user=request.user, deal=original, stage=stage, lost_reason=lost_reason, **data
                ),
            )
        else:
            saved = self.run_service(
                request,
                lambda: services.create_deal(user=request.user, pipeline=pipeline, stage=stage, **data),
            )
        adopt(obj, saved)


# --- Contracts ------------------------------------------------------------------------------------


class ContractForm(forms.ModelForm):
    class Meta:
        model = Contract
        fields = ["counterparty", *services.CONTRACT_FIELDS]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].required = False
        self.fields["name"].help_text = _("Empty: «Договор № … от …».")


@admin.register(Contract)
class ContractAdmin(ServiceSaveMixin, VisibleAdminMixin, SimpleHistoryAdmin):
    form = ContractForm
    list_display = ["name", "counterparty", "organisation", "kind", "date", "valid_until", "is_active"]
    list_filter = ["kind", "is_active", "organisation"]
    search_fields = ["name", "number", "counterparty__name", "counterparty__inn"]
    list_select_related = ["counterparty", "organisation"]
    autocomplete_fields = ["counterparty"]

    def save_model(self, request: HttpRequest, obj: Contract, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        counterparty = data.pop("counterparty")
        if change:
            saved = self.run_service(
                request, lambda: services.update_contract(user=request.user, contract=obj.pk, **data)
            )
        else:
            saved = self.run_service(
                request, lambda: services.create_contract(user=request.user, counterparty=counterparty, **data)
            )
        adopt(obj, saved)


# --- Invoices -------------------------------------------------------------------------------------

LINE_INPUT_FIELDS = ["product", "variant", "description", "quantity", "unit", "price", "discount", "vat_rate"]


class InvoiceForm(forms.ModelForm):
    class Meta:
        model = Invoice
        fields = ["organisation", *services.INVOICE_HEADER_FIELDS]


class InvoiceLineFormSet(BaseInlineFormSet):
    """Checks the lines together with the invoice's header exactly as the service will."""

    request: HttpRequest | None = None

    def line_inputs(self) -> list[dict[str, Any]]:
        return [
            {name: form.cleaned_data.get(name) for name in LINE_INPUT_FIELDS}
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms) or self.instance.status != InvoiceStatus.DRAFT:
            return
        if self.instance.organisation_id is None or self.instance.counterparty_id is None:
            return
        try:
            services.validate_invoice(
                user=self.request.user if self.request else None, invoice=self.instance, lines=self.line_inputs()
            )
        except ValidationError as exc:
            kept = [form for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
            problems: list[str] = []
            for key, key_messages in exc.message_dict.items():
                parts = key.split(".")
                if len(parts) == 3 and parts[0] == "lines" and int(parts[1]) < len(kept):
                    form = kept[int(parts[1])]
                    for message in key_messages:
                        form.add_error(parts[2] if parts[2] in form.fields else None, message)
                else:
                    problems.extend(f"{key}: {message}" for message in key_messages)
            if problems:
                raise ValidationError(problems) from exc


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    formset = InvoiceLineFormSet
    extra = 1
    fields = [*LINE_INPUT_FIELDS, "amount", "vat_amount", "total"]
    readonly_fields = ["amount", "vat_amount", "total"]
    autocomplete_fields = ["product"]

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        setattr(formset, "request", request)  # noqa: B010
        return formset

    def _editable(self, obj: Invoice | None) -> bool:
        return obj is None or obj.status == InvoiceStatus.DRAFT

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._editable(obj) and super().has_delete_permission(request, obj)


@admin.register(Invoice)
class InvoiceAdmin(ServiceSaveMixin, VisibleAdminMixin, SimpleHistoryAdmin):
    form = InvoiceForm
    list_display = ["number", "date", "organisation", "counterparty", "total", "paid_amount", "status", "owner"]
    list_filter = ["status", "organisation"]
    search_fields = ["number", "counterparty__name", "counterparty__inn"]
    list_select_related = ["organisation", "counterparty", "owner"]
    date_hierarchy = "date"
    readonly_fields = ["number", "status", "exchange_rate", "amount", "vat_amount", "total", "paid_amount"]
    inlines = [InvoiceLineInline]
    actions = ["issue_selected", "cancel_selected"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fixed = list(self.readonly_fields)
        if obj is not None and obj.status != InvoiceStatus.DRAFT:
            fixed += [name for name in InvoiceForm.Meta.fields if name not in services.INVOICE_FREE_FIELDS]
        elif obj is not None:
            fixed.append("organisation")
        return fixed

    def save_model(self, request: HttpRequest, obj: Invoice, form: Any, change: bool) -> None:
        """The invoice is written together with its lines in save_related."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        line_formsets = [formset for formset in formsets if isinstance(formset, InvoiceLineFormSet)]
        header = {name: form.cleaned_data[name] for name in InvoiceForm.Meta.fields if name in form.cleaned_data}
        lines = (
            line_formsets[0].line_inputs() if line_formsets and form.instance.status == InvoiceStatus.DRAFT else None
        )
        obj = form.instance
        if change:
            header.pop("organisation", None)
            original = Invoice.objects.get(pk=obj.pk)
            saved = self.run_service(
                request, lambda: services.update_invoice(user=request.user, invoice=original, lines=lines, **header)
            )
        else:
            organisation = header.pop("organisation")
            counterparty = header.pop("counterparty")
            saved = self.run_service(
                request,
                lambda: services.create_invoice(
                    user=request.user,
                    organisation=organisation,
                    counterparty=counterparty,
                    lines=lines or [],
                    **header,
                ),
            )
        adopt(obj, saved)
        saved_by_service(formsets)

    @admin.action(description=_("Issue the selected drafts"))
    def issue_selected(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._bulk(request, queryset, services.issue_invoice)

    @admin.action(description=_("Cancel the selected invoices"))
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        self._bulk(request, queryset, services.cancel_invoice)

    def _bulk(self, request: HttpRequest, queryset: QuerySet[Invoice], service: Any) -> None:
        done = 0
        for invoice in queryset:
            try:
                service(user=request.user, invoice=invoice)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"{invoice}: {'; '.join(exc.messages)}", messages.ERROR)
        if done:
            self.message_user(request, _("Invoices changed: %(count)d.") % {"count": done}, messages.SUCCESS)


# --- Payments -------------------------------------------------------------------------------------


class PaymentAllocationInline(admin.TabularInline):
    """Allocations are shown here; they are made and undone through sales.services (API or the
    actions below), which keep the invoice's status and the payment's allocated amount in step."""

    model = PaymentAllocation
    extra = 0
    fields = ["invoice", "amount", "created_at"]
    readonly_fields = ["invoice", "amount", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class PaymentForm(forms.ModelForm):
    class Meta:
        model = Payment
        fields = ["organisation", "currency", *services.PAYMENT_EDITABLE]


@admin.register(Payment)
class PaymentAdmin(ServiceSaveMixin, VisibleAdminMixin, SimpleHistoryAdmin):
    form = PaymentForm
    list_display = [
        "date",
        "number",
        "organisation",
        "counterparty",
        "amount",
        "allocated_amount",
        "direction",
        "source",
    ]
    list_filter = ["direction", "source", "organisation"]
    search_fields = ["number", "payer_name", "payer_inn", "purpose", "counterparty__name"]
    list_select_related = ["organisation", "counterparty"]
    date_hierarchy = "date"
    readonly_fields = ["allocated_amount", "created_by"]
    inlines = [PaymentAllocationInline]

    def save_model(self, request: HttpRequest, obj: Payment, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        if change:
            data.pop("organisation", None)
            data.pop("currency", None)
            original = Payment.objects.get(pk=obj.pk)
            saved = self.run_service(
                request, lambda: services.update_payment(user=request.user, payment=original, **data)
            )
        else:
            saved = self.run_service(request, lambda: services.register_payment(user=request.user, **data))
        adopt(obj, saved)
