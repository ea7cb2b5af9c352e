from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from sdelka.accounts.models import Role
from sdelka.accounts.visibility import VisibleQuerySet, counterparty_q, scope_user_ids
from sdelka.core.models import TimeStampedModel


class TaskQuerySet(VisibleQuerySet):
    def visible_to(self, user: Any) -> TaskQuerySet:
        """A task is seen by whoever sees its counterparty, and by its assignee's scope when it has none."""
        if not user.is_authenticated:
            return self.none()
        with_counterparty = Q(counterparty__isnull=False) & counterparty_q(user, "counterparty__")
        if user.sees_everything:
            return self.filter(with_counterparty | Q(counterparty__isnull=True))
        users = scope_user_ids(user)
        without_counterparty = Q(counterparty__isnull=True) & (Q(assignee__in=users) | Q(author=user))
        return self.filter(with_counterparty | without_counterparty)

    def assigned_to(self, user: Any) -> TaskQuerySet:
        return self.filter(assignee=user)

    def assigned_within_scope(self, user: Any) -> TaskQuerySet:
        """Tasks of the people this user answers for: himself, or his team subtree if he heads one."""
        if user.sees_everything:
            return self.all()
        return self.filter(assignee__in=scope_user_ids(user))

    def overdue(self, now: datetime) -> TaskQuerySet:
        return self.filter(is_done=False, due_at__lt=now)


class Task(TimeStampedModel):
    title = models.CharField(_("title"), max_length=255)
    description = models.TextField(_("description"), blank=True)
    due_at = models.DateTimeField(_("due"), null=True, blank=True, db_index=True)
    remind_at = models.DateTimeField(_("remind at"), null=True, blank=True, db_index=True)
    reminded_at = models.DateTimeField(_("reminded"), null=True, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("assignee"), on_delete=models.PROTECT, related_name="tasks"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="authored_tasks",
    )
    counterparty = models.ForeignKey(
        "parties.Counterparty",
        verbose_name=_("counterparty"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tasks",
    )
    deal = models.ForeignKey(
        "sales.Deal", verbose_name=_("deal"), null=True, blank=True, on_delete=models.CASCADE, related_name="tasks"
    )
    invoice = models.ForeignKey(
        "sales.Invoice",
        verbose_name=_("invoice"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="tasks",
    )
    is_done = models.BooleanField(_("done"), default=False, db_index=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("completed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = TaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["is_done", "due_at", "id"]
        indexes = [models.Index(fields=["assignee", "is_done", "due_at"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return f"/tasks/{self.pk}/"


class Note(TimeStampedModel):
    counterparty = models.ForeignKey(
        "parties.Counterparty", verbose_name=_("counterparty"), on_delete=models.CASCADE, related_name="notes"
    )
    deal = models.ForeignKey(
        "sales.Deal", verbose_name=_("deal"), null=True, blank=True, on_delete=models.CASCADE, related_name="notes"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("author"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="notes",
    )
    text = models.TextField(_("text"))

    objects = VisibleQuerySet.as_manager()

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.text[:60]


class NotificationQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> models.QuerySet:
        """Notifications are personal: each user sees his own; administrators see all of them."""
        if not user.is_authenticated:
            return self.none()
        if user.is_superuser or user.role == Role.ADMIN:
            return self.all()
        return self.filter(user=user)


class Notification(models.Model):
    """Something a user must see in the interface: a due reminder, a payment that arrived."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("user"), on_delete=models.CASCADE, related_name="notifications"
    )
    text = models.CharField(_("text"), max_length=500)
    url = models.CharField(_("link"), max_length=500, blank=True)
    task = models.ForeignKey(Task, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    created_at = models.DateTimeField(_("created"), auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(_("read"), null=True, blank=True)

    objects = NotificationQuerySet.as_manager()

    class Meta:
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        ordering = ["-created_at", "-id"]
        constraints = [
            # The reminder job may run on several consumers at once: one notification per task reminder.
            models.UniqueConstraint(
                fields=["task"], condition=Q(task__isnull=False), name="notification_once_per_task"
            ),
        ]

    def __str__(self) -> str:
        return self.text
