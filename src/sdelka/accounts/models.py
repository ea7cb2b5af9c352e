from __future__ import annotations

from typing import ClassVar

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    MANAGER = "manager", _("Manager")
    HEAD = "head", _("Head of sales")
    DIRECTOR = "director", _("Director")
    ACCOUNTANT = "accountant", _("Accountant")
    ADMIN = "admin", _("Administrator")
    INTEGRATOR = "integrator", _("Integrator")


class Team(models.Model):
    """A sales team; teams form a tree, and a head sees his team and every team below it."""

    name = models.CharField(_("name"), max_length=150)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent team"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    head = models.ForeignKey(
        "accounts.User",
        verbose_name=_("head"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="headed_teams",
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["parent", "name"], name="team_unique_name_in_parent")]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.MANAGER)
    team = models.ForeignKey(
        Team,
        verbose_name=_("team"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="members",
    )
    middle_name = models.CharField(_("middle name"), max_length=150, blank=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)

    objects: ClassVar[UserManager[User]] = UserManager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["last_name", "first_name", "username"]

    def __str__(self) -> str:
        return self.get_full_name() or self.username

    @property
    def sees_everything(self) -> bool:
        """Directors, accountants and administrators see every non-VIP record."""
        return self.is_superuser or self.role in {Role.DIRECTOR, Role.ACCOUNTANT, Role.ADMIN}

    @property
    def manages_exchange(self) -> bool:
        """Administrators and integrators connect 1C bases, edit mapping rules and read the exchange journal."""
        return self.is_active and (self.is_superuser or self.role in {Role.ADMIN, Role.INTEGRATOR})

    @property
    def sees_all_vip(self) -> bool:
        return self.is_superuser or self.role in {Role.DIRECTOR, Role.ADMIN}
