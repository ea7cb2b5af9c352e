"""Secrets at rest for outbound connections (OData passwords, bank tokens): Fernet with settings.FERNET_KEY.

Inbound site-protocol passwords are never stored recoverably: they are hashed (Django's make_password).
Outbound secrets must be sent to 1C, so they are encrypted; without a valid key nothing is stored in clear.
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.translation import gettext_lazy as _

PREFIX = "fernet:"


class SecretKeyError(ImproperlyConfigured):
    """SDELKA_FERNET_KEY is missing or is not a Fernet key."""


class SecretDecryptError(ValueError):
    """A stored secret cannot be decrypted with the current key (the key changed or the value is damaged)."""


def fernet() -> Fernet:
    key = getattr(settings, "FERNET_KEY", "") or ""
    if not key:
        raise SecretKeyError(
            "SDELKA_FERNET_KEY is not set: outbound 1C passwords cannot be stored. Generate one with "
            '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
        )
    try:
        return Fernet(key.encode() if isinstance(key, str) else key)
    except (ValueError, TypeError) as exc:
        raise SecretKeyError("SDELKA_FERNET_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes).") from exc


def encrypt(value: str) -> str:
    return PREFIX + fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(value: str) -> str:
    if not value.startswith(PREFIX):
        raise SecretDecryptError("The stored secret is not encrypted by Sdelka.")
    try:
        return fernet().decrypt(value[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise SecretDecryptError("The stored secret cannot be decrypted with the current SDELKA_FERNET_KEY.") from exc


class EncryptedTextField(models.TextField):
    """A text field stored Fernet-encrypted; Python code sees clear text. Empty stays empty (no key needed)."""

    description = _("Encrypted text")

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str:
        if value is None or value == "":
            return value or ""
        return decrypt(value)

    def to_python(self, value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, str) and value.startswith(PREFIX):
            return decrypt(value)
        return str(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))
