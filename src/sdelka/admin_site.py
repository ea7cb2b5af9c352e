from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _


class SdelkaAdminSite(admin.AdminSite):
    """The back office. Every active user with a role may enter; what he may do there comes from
    his role (accounts.permissions) and what he may see from visibility."""

    site_header = _("Sdelka")
    site_title = _("Sdelka")
    index_title = _("Back office")

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_authenticated and (user.is_staff or getattr(user, "role", "")))


class SdelkaAdminConfig(AdminConfig):
    default_site = "sdelka.admin_site.SdelkaAdminSite"
