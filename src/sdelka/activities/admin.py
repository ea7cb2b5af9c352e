from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from sdelka.accounts.admin_mixins import VisibleAdminMixin

from . import services
from .models import Note, Notification, Task

TASK_FORM_FIELDS = ["title", "description", "due_at", "remind_at", "assignee", "counterparty", "deal", "invoice"]


class TaskAdminForm(forms.ModelForm):
    """Checks the task as activities.services will, so a refused value shows next to its field."""

    request: HttpRequest

    class Meta:
        model = Task
        fields = TASK_FORM_FIELDS

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors or data.get("assignee") is None:
            return data
        try:
            data["counterparty"] = services.validate_task(
                user=self.request.user,  # type: ignore[arg-type]
                title=data.get("title", ""),
                assignee=data["assignee"],
                due_at=data.get("due_at"),
                remind_at=data.get("remind_at"),
                counterparty=data.get("counterparty"),
                deal=data.get("deal"),
                invoice=data.get("invoice"),
            )
        except ValidationError as error:
            self.add_error(None, error)
        return data


@admin.register(Task)
class TaskAdmin(VisibleAdminMixin, admin.ModelAdmin):
    form = TaskAdminForm
    list_display = ["title", "assignee", "counterparty", "due_at", "remind_at", "is_done"]
    list_filter = ["is_done", "assignee", "due_at"]
    search_fields = ["title", "description", "counterparty__name", "counterparty__inn"]
    date_hierarchy = "due_at"
    list_select_related = ["assignee", "counterparty"]
    raw_id_fields = ["counterparty", "deal", "invoice"]
    readonly_fields = ["author", "is_done", "done_at", "completed_by", "reminded_at", "created_at", "updated_at"]
    actions = ["mark_done"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        form.request = request  # type: ignore[attr-defined]
        return form

    def save_model(self, request: HttpRequest, obj: Task, form: Any, change: bool) -> None:
        data = {field: form.cleaned_data.get(field) for field in TASK_FORM_FIELDS}
        data["description"] = data["description"] or ""
        if change:
            services.update_task(user=request.user, task=obj, changes=data)  # type: ignore[arg-type]
        else:
            obj.pk = services.create_task(user=request.user, **data).pk  # type: ignore[arg-type]

    @admin.action(description=_("Mark selected tasks done"))
    def mark_done(self, request: HttpRequest, queryset: QuerySet[Task]) -> None:
        for task in queryset:
            services.complete_task(user=request.user, task=task)  # type: ignore[arg-type]


@admin.register(Note)
class NoteAdmin(VisibleAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "counterparty", "author", "created_at"]
    list_filter = ["created_at"]
    search_fields = ["text", "counterparty__name"]
    list_select_related = ["counterparty", "author"]
    raw_id_fields = ["counterparty", "deal"]
    readonly_fields = ["author", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Note | None = None) -> list[str]:
        # Only the text of an existing note can change.
        return [*self.readonly_fields, "counterparty", "deal"] if obj is not None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Note, form: Any, change: bool) -> None:
        if change:
            services.update_note(user=request.user, note=obj, text=obj.text)  # type: ignore[arg-type]
            return
        note = services.add_note(
            user=request.user,  # type: ignore[arg-type]
            counterparty=obj.counterparty,
            deal=obj.deal,
            text=obj.text,
        )
        obj.pk = note.pk


@admin.register(Notification)
class NotificationAdmin(VisibleAdminMixin, admin.ModelAdmin):
    list_display = ["text", "user", "created_at", "read_at"]
    list_filter = ["read_at", "created_at"]
    search_fields = ["text", "user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["task"]
    readonly_fields = ["created_at"]
