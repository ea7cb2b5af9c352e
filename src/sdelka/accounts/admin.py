"""Admin of users (with their role and team) and of the team tree."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import Team, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "last_name", "first_name", "email", "role", "team", "is_staff", "is_active"]
    list_select_related = ["team"]
    list_filter = ["role", "team", "is_staff", "is_superuser", "is_active"]
    search_fields = ["username", "last_name", "first_name", "middle_name", "email", "phone"]
    autocomplete_fields = ["team"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Personal info"), {"fields": ["last_name", "first_name", "middle_name", "email", "phone"]}),
        (_("Role and team"), {"fields": ["role", "team"]}),
        (
            _("Permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["username", "usable_password", "password1", "password2"]}),
        (_("Role and team"), {"fields": ["role", "team", "last_name", "first_name", "email"]}),
    ]


class MemberInline(admin.TabularInline):
    model = User
    fk_name = "team"
    fields = ["username", "last_name", "first_name", "role"]
    readonly_fields = ["username", "last_name", "first_name", "role"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "head"]
    list_select_related = ["parent", "head"]
    list_filter = [("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "head__last_name", "head__username"]
    autocomplete_fields = ["parent", "head"]
    inlines = [MemberInline]
