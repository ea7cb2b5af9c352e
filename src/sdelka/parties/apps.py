from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PartiesConfig(AppConfig):
    name = "sdelka.parties"
    verbose_name = _("Parties")

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        connection_created.connect(register_sqlite_fold, dispatch_uid="sdelka.parties.sqlite_fold")


def register_sqlite_fold(sender: object, connection: Any, **kwargs: Any) -> None:
    """SQLite's UPPER folds ASCII only: the search's `Fold` calls this Unicode-aware one instead."""
    if connection.vendor != "sqlite":
        return
    from .selectors import SQLITE_FOLD

    connection.connection.create_function(SQLITE_FOLD, 1, _upper, deterministic=True)


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value
