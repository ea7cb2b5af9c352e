"""Every write of the exchange hub outside the apply engine: connections, the journal, runs, old files."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.accounts.models import User

from .models import (
    EXCHANGE_USERNAME,
    Connection,
    ConnectionKind,
    EventLevel,
    ExchangeEvent,
    ExchangeRun,
    RunStatus,
    SaleEncoding,
)
from .storage import RunFolder

KNOWN_OPTIONS = {
    "match_counterparties_by_inn_kpp": bool,
    "match_products_by_article": bool,
    "deactivate_missing_products": bool,
    "order_status_map": dict,
    "sale_encoding": str,
    "file_limit": int,
    "keep_files_days": int,
    "max_upload_bytes": int,
    "max_unpacked_bytes": int,
    "max_zip_ratio": int,
}


def _clean_options(options: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for name, value in options.items():
        expected = KNOWN_OPTIONS.get(name)
        if expected is None:
            raise ValidationError({"options": _("Unknown option %(name)s.") % {"name": name}})
        if expected is int and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ValidationError({"options": _("Option %(name)s must be a positive integer.") % {"name": name}})
        if expected is not int and not isinstance(value, expected):
            raise ValidationError({"options": _("Option %(name)s has a wrong type.") % {"name": name}})
        if name == "sale_encoding" and value not in SaleEncoding.values:
            raise ValidationError({"options": _("sale_encoding is windows-1251 or utf-8.")})
        cleaned[name] = value
    return cleaned


@transaction.atomic
def create_connection(
    *,
    name: str,
    kind: str = ConnectionKind.SITE,
    login: str = "",
    password: str = "",
    prefix: str = "",
    options: dict[str, Any] | None = None,
) -> Connection:
    """A new connection to a 1C base. A site connection needs its own exchange login and password."""
    name = name.strip()
    login = login.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("Enter a name.")
    elif Connection.objects.filter(name=name).exists():
        errors["name"] = _("A connection with this name already exists.")
    if kind not in ConnectionKind.values:
        errors["kind"] = _("Unknown kind.")
    if kind == ConnectionKind.SITE:
        if not login:
            errors["login"] = _("A website exchange needs a login.")
        elif ":" in login:
            errors["login"] = _("A login cannot contain a colon.")
        elif Connection.objects.filter(login=login).exists():
            errors["login"] = _("This login is already used by another connection.")
        if len(password) < 8:
            errors["password"] = _("Use a password of at least 8 characters.")
    if len(prefix) > 10:
        errors["prefix"] = _("At most 10 characters.")
    if errors:
        raise ValidationError(errors)
    connection = Connection(
        name=name, kind=kind, login=login or None, prefix=prefix, options=_clean_options(options or {})
    )
    if password:
        connection.set_password(password)
    connection.full_clean(exclude=["password"])
    connection.save()
    return connection


@transaction.atomic
def set_connection_password(*, connection: Connection, password: str) -> Connection:
    if len(password) < 8:
        raise ValidationError({"password": _("Use a password of at least 8 characters.")})
    connection.set_password(password)
    connection.save(update_fields=["password"])
    return connection


@transaction.atomic
def set_counterparty_owner(*, connection: Connection, username: str) -> Connection:
    """Give the counterparties this base brings to an active user by login; an empty login gives them back to
    the exchange's own user."""
    owner = None
    if username.strip():
        owner = User.objects.filter(username=username.strip(), is_active=True).first()
        if owner is None or owner.username == EXCHANGE_USERNAME:
            raise ValidationError(
                {"counterparty_owner": _("No active user with the login %(login)s.") % {"login": username}}
            )
    connection.counterparty_owner = owner
    connection.save(update_fields=["counterparty_owner"])
    return connection


def printable(text: str, limit: int) -> str:
    """Text safe for any database column: no NUL (PostgreSQL refuses it), cut to `limit`."""
    return text.replace("\x00", "\\0")[:limit]


def journal_event(
    *,
    message: str,
    run: ExchangeRun | None = None,
    connection: Connection | None = None,
    level: str = EventLevel.INFO,
    external_id: str = "",
    object_repr: str = "",
    field: str = "",
    value: str = "",
) -> ExchangeEvent:
    """One line of a run's journal, not yet saved, every text cut to its column (routes batch them)."""
    if connection is None and run is not None:
        connection = run.connection
    return ExchangeEvent(
        run=run,
        connection=connection,
        level=level,
        message=printable(message, 10000),
        external_id=printable(external_id, 255),
        object_repr=printable(object_repr, 500),
        field=printable(field, 100),
        value=printable(value, 1000),
    )


def log_event(**kwargs: Any) -> ExchangeEvent:
    """Save one journal line now (also used for protocol refusals, so 1C's `failure` text is on record)."""
    event = journal_event(**kwargs)
    event.save()
    return event


def finish_run(*, run: ExchangeRun, status: str, message: str = "") -> ExchangeRun:
    """Close a run (success or failed); its files stay for the connection's `keep_files_days`."""
    ExchangeRun.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now(), message=printable(message, 2000)
    )
    run.refresh_from_db()
    return run


def remove_old_files(*, now: Any = None) -> int:
    """Delete raw files of finished runs older than their connection's `keep_files_days`; returns runs cleaned."""
    now = now or timezone.now()
    cleaned = 0
    runs = (
        ExchangeRun.objects.select_related("connection")
        .filter(files_removed=False, finished_at__isnull=False)
        .exclude(folder="")
        .exclude(status__in=[RunStatus.QUEUED, RunStatus.RUNNING])
    )
    for run in runs.iterator():
        if run.finished_at and run.finished_at < now - timedelta(days=run.connection.keep_files_days):
            RunFolder(run.folder).remove_all()
            ExchangeRun.objects.filter(pk=run.pk).update(files_removed=True)
            cleaned += 1
    return cleaned
