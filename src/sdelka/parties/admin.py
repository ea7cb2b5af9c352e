"""Admin of counterparties (with bank accounts and contacts inline), their groups and tags.

Lists, change pages, history pages and related choices go through `visible_to`: a counterparty outside
one's scope is simply not there. Every save goes through `parties.services`, and the forms ask the same
services in `clean()`, so the admin refuses what the API refuses, with the same message.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms import BaseInlineFormSet, ModelForm
from django.http import Http404, HttpRequest, HttpResponse
from simple_history.admin import SimpleHistoryAdmin

from sdelka.accounts.admin_mixins import VisibleAdminMixin
from sdelka.accounts.models import User

from . import selectors, services
from .forms import BankAccountForm, ContactForm, CounterpartyForm, RowFormSet
from .models import ContactPerson, Counterparty, CounterpartyBankAccount, CounterpartyGroup, Tag


def acting_user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


class BankAccountInline(admin.TabularInline):
    model = CounterpartyBankAccount
    form = BankAccountForm
    formset = RowFormSet
    extra = 0


class ContactInline(admin.StackedInline):
    model = ContactPerson
    form = ContactForm
    formset = RowFormSet
    extra = 0
    fields = [
        ("last_name", "first_name", "middle_name"), "position", ("phones", "emails"), "birthday", "notes", "is_active",
    ]  # fmt: skip


@admin.register(Counterparty)
class CounterpartyAdmin(VisibleAdminMixin, SimpleHistoryAdmin):
    form = CounterpartyForm
    inlines = [BankAccountInline, ContactInline]
    list_display = ["name", "kind", "inn", "kpp", "owner", "is_vip", "is_active", "updated_at"]
    list_select_related = ["owner"]
    list_filter = [
        "kind",
        "is_active",
        "is_vip",
        ("owner", admin.RelatedOnlyFieldListFilter),
        "tags",
        "group",
    ]
    search_fields = ["name", "full_name", "inn", "phones", "emails"]
    search_help_text = "Name, ИНН, phone (any format) or e-mail, the counterparty's or a contact's."
    filter_horizontal = ["co_owners", "tags", "vip_users"]
    fieldsets = [
        (None, {"fields": ["kind", "name", "full_name", "group", "is_active"]}),
        ("Requisites", {"fields": [("inn", "kpp"), ("ogrn", "okpo")]}),
        ("Addresses and channels", {"fields": ["legal_address", "postal_address", "phones", "emails", "site"]}),
        ("Access", {"fields": ["owner", "co_owners", "is_vip", "vip_users", "tags"]}),
        (None, {"fields": ["comment"]}),
    ]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request_user": acting_user(request)})

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"owner": request.user.pk, **super().get_changeform_initial_data(request)}

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        return selectors.search_counterparties(queryset, search_term), False

    def save_model(self, request: HttpRequest, obj: Counterparty, form: ModelForm, change: bool) -> None:
        assert isinstance(form, CounterpartyForm)
        user = acting_user(request)
        data = form.service_data()
        if change:
            saved = services.update_counterparty(user=user, counterparty=obj, data=data)
        else:
            saved = services.create_counterparty(user=user, data=data)
        obj.pk = saved.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request: HttpRequest, form: ModelForm, formsets: Any, change: bool) -> None:
        # Many-to-many fields were set by the service; rows go through the services one by one,
        # demoted main accounts first.
        for formset in formsets:
            self.save_rows(request, formset, form.instance)

    def save_rows(self, request: HttpRequest, formset: BaseInlineFormSet, counterparty: Counterparty) -> None:
        user = acting_user(request)
        deleted = [form for form in formset.deleted_forms if form.instance.pk]
        changed = [
            form
            for form in formset.forms
            if form.has_changed() and form not in formset.deleted_forms and hasattr(form, "service_data")
        ]
        changed.sort(key=lambda form: bool(form.cleaned_data.get("is_main")))
        for form in deleted:
            if formset.model is CounterpartyBankAccount:
                services.delete_bank_account(user=user, bank_account=form.instance)
            else:
                services.delete_contact(user=user, contact=form.instance)
        # What formset.save() would have recorded, for the admin's change message.
        formset.deleted_objects = [form.instance for form in deleted]
        formset.new_objects, formset.changed_objects = [], []
        for form in changed:
            data = form.service_data()
            if form.instance.pk:
                formset.changed_objects.append((self.update_row(user, form.instance, data), form.changed_data))
            else:
                formset.new_objects.append(self.add_row(user, counterparty, formset.model, data))

    @staticmethod
    def update_row(user: User, row: Any, data: dict[str, Any]) -> Any:
        if isinstance(row, CounterpartyBankAccount):
            return services.update_bank_account(user=user, bank_account=row, data=data)
        return services.update_contact(user=user, contact=row, data=data)

    @staticmethod
    def add_row(user: User, counterparty: Counterparty, model: Any, data: dict[str, Any]) -> Any:
        if model is CounterpartyBankAccount:
            return services.add_bank_account(user=user, counterparty=counterparty, data=data)
        return services.add_contact(user=user, counterparty=counterparty, data=data)

    def _visible_or_404(self, request: HttpRequest, object_id: str) -> None:
        if not self.get_queryset(request).filter(pk=object_id).exists():
            raise Http404

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        # simple_history falls back to the last historical record of an object it cannot find,
        # which would show the history of a counterparty outside the user's scope.
        self._visible_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        self._visible_or_404(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)


@admin.register(CounterpartyGroup)
class CounterpartyGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "parent"]
    list_select_related = ["parent"]
    search_fields = ["name"]
    autocomplete_fields = ["parent"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]
