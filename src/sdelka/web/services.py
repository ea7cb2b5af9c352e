"""Writes that belong to the workspace itself rather than to a domain app."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from sdelka.accounts.models import User
from sdelka.activities.models import Notification


@transaction.atomic
def mark_notification_read(*, user: User, notification: Notification) -> Notification:
    """Mark one of the user's own notifications read; someone else's is left alone."""
    if notification.user_id == user.pk and notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
    return notification
