"""Trigram indexes for substring search on PostgreSQL (pg_trgm), created by migrations on PostgreSQL only.

A GIN trigram index on an expression serves `expression LIKE '%fragment%'` when the query spells the very
same expression: the search code builds it with the same function the migration passes here. SQLite gets
no index and scans, which is fine for the small databases it serves.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Expression


def _postgres(schema_editor: Any) -> bool:
    return bool(schema_editor.connection.vendor == "postgresql")


def add_trigram_index(schema_editor: Any, model: Any, name: str, expression: Expression) -> None:
    """Create the pg_trgm extension if needed (the role must be allowed to) and the index."""
    if not _postgres(schema_editor):
        return
    from django.contrib.postgres.indexes import GinIndex, OpClass
    from django.db.models import OrderBy
    from django.db.models.functions import Collate
    from django.db.models.indexes import IndexExpression

    # What django.contrib.postgres does when installed (it is not): put the operator class after the
    # parenthesised expression, not inside the parentheses.
    IndexExpression.register_wrappers(OrderBy, OpClass, Collate)  # type: ignore[arg-type]  # the stubs want instances
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.add_index(model, GinIndex(OpClass(expression, name="gin_trgm_ops"), name=name))


def remove_trigram_index(schema_editor: Any, name: str) -> None:
    if _postgres(schema_editor):
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")
