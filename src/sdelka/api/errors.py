from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import ValidationError

T = TypeVar("T")


def call_service(service: Callable[..., T], /, **kwargs: Any) -> T:
    """Run a service; its Django ValidationError becomes DRF's 400 answer with the same fields."""
    try:
        return service(**kwargs)
    except DjangoValidationError as exc:
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        raise ValidationError(detail) from exc
