"""Row builders for the activities tests; behaviour itself is exercised through services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from sdelka.activities.models import Task


def make_task(**fields: Any) -> Task:
    """A task row as it could be stored; behaviour is tested through services."""
    fields.setdefault("title", "Позвонить")
    fields.setdefault("due_at", timezone.now() + timedelta(days=1))
    return Task.objects.create(**fields)
