"""Admin of the exchange hub: connections (password set through a form field, never shown), runs with their
journal inline, and read-only id maps, sessions and files."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .conflicts import resolve_conflict
from .models import (
    EXCHANGE_USERNAME,
    Conflict,
    ConflictResolution,
    ConflictStatus,
    Connection,
    ExchangeEvent,
    ExchangeFile,
    ExchangeRun,
    ExchangeSession,
    ExternalRef,
    LoginFailure,
)


class ConnectionForm(forms.ModelForm):
    new_password = forms.CharField(
        label=_("new exchange password"),
        required=False,
        min_length=8,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Leave empty to keep the current password."),
    )
    url = forms.URLField(label=_("1C address"), required=False, max_length=500, assume_scheme="https")

    class Meta:
        model = Connection
        fields = ["name", "kind", "is_active", "login", "prefix", "url", "remote_user", "counterparty_owner", "options"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owners = self.fields["counterparty_owner"]
        owners.queryset = owners.queryset.filter(is_active=True).exclude(username=EXCHANGE_USERNAME)  # type: ignore[attr-defined]

    def save(self, commit: bool = True) -> Any:
        connection = super().save(commit=False)
        if self.cleaned_data.get("new_password"):
            connection.set_password(self.cleaned_data["new_password"])
        if commit:
            connection.save()
        return connection


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionForm
    list_display = ["name", "kind", "login", "prefix", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "login"]


class EventInline(ReadOnlyMixin, admin.TabularInline):
    model = ExchangeEvent
    fk_name = "run"
    fields = ["created_at", "level", "external_id", "object_repr", "message", "field", "value"]
    readonly_fields = ["created_at", "level", "external_id", "object_repr", "message", "field", "value"]
    extra = 0
    can_delete = False


class FileInline(ReadOnlyMixin, admin.TabularInline):
    model = ExchangeFile
    fields = ["name", "size", "chunks", "from_zip", "import_status", "import_message", "done", "total"]
    readonly_fields = ["name", "size", "chunks", "from_zip", "import_status", "import_message", "done", "total"]
    extra = 0
    can_delete = False


@admin.register(ExchangeRun)
class ExchangeRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "connection",
        "route",
        "direction",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "created",
        "updated",
        "unchanged",
        "skipped",
        "failed",
    ]
    list_filter = ["status", "route", "connection"]
    list_select_related = ["connection"]
    readonly_fields = [field.name for field in ExchangeRun._meta.fields]
    inlines = [FileInline, EventInline]


@admin.register(ExchangeEvent)
class ExchangeEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "level", "connection", "run", "external_id", "message"]
    list_filter = ["level", "connection"]
    list_select_related = ["connection", "run__connection"]
    search_fields = ["external_id", "message", "object_repr"]
    readonly_fields = [field.name for field in ExchangeEvent._meta.fields]


@admin.register(ExternalRef)
class ExternalRefAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["connection", "kind", "external_id", "content_type", "object_id", "updated_at"]
    list_filter = ["kind", "connection"]
    list_select_related = ["connection", "content_type"]
    search_fields = ["external_id", "code"]
    readonly_fields = [field.name for field in ExternalRef._meta.fields]


@admin.register(ExchangeSession)
class ExchangeSessionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["connection", "mode", "run", "ip", "created_at", "last_seen_at", "closed_at"]
    list_select_related = ["connection", "run__connection"]
    exclude = ["token", "sessid"]
    readonly_fields = ["connection", "mode", "run", "version", "ip", "created_at", "last_seen_at", "closed_at"]


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ["login", "ip", "failures", "last_failure_at", "locked_until"]
    readonly_fields = ["login", "ip", "failures", "last_failure_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Conflict)
class ConflictAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The conflict queue: both values side by side; deciding goes through `resolve_conflict` (the actions)."""

    list_display = [
        "created_at",
        "connection",
        "rule",
        "object_repr",
        "onec_field",
        "our_value",
        "onec_value",
        "status",
        "resolution",
        "resolved_by",
    ]
    list_filter = ["status", "connection", "resolution"]
    list_select_related = ["connection", "rule", "resolved_by"]
    search_fields = ["object_repr", "field", "onec_field", "external_ref__external_id"]
    readonly_fields = [field.name for field in Conflict._meta.fields]
    actions = ["keep_sdelka", "take_onec"]

    def _resolve(self, request: HttpRequest, queryset: QuerySet[Conflict], resolution: str) -> None:
        done = 0
        for conflict in queryset.filter(status=ConflictStatus.OPEN):
            try:
                resolve_conflict(conflict=conflict, resolution=resolution, user=request.user)  # type: ignore[arg-type]
            except ValidationError as exc:
                self.message_user(request, f"{conflict}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, _("%(count)d conflicts resolved.") % {"count": done}, messages.SUCCESS)

    @admin.action(description=_("Keep Sdelka's value (sent to 1C on the next run)"))
    def keep_sdelka(self, request: HttpRequest, queryset: QuerySet[Conflict]) -> None:
        self._resolve(request, queryset, ConflictResolution.SDELKA)

    @admin.action(description=_("Take 1C's value"))
    def take_onec(self, request: HttpRequest, queryset: QuerySet[Conflict]) -> None:
        self._resolve(request, queryset, ConflictResolution.ONEC)
