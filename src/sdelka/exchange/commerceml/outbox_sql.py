"""Set-based SQL for the order outbox (`writer_orders`): hundreds of rows per statement, each constant
prepared once. On PostgreSQL lists travel as one array parameter: psycopg binds client-side, and a
statement with thousands of placeholders costs more to bind than to run.
"""

from __future__ import annotations

from typing import Any

from django.db import connections, models, router


def column_of(model: type[models.Model], name: str, db: Any) -> str:
    """The quoted column of field `name` ("pk" for the primary key)."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return str(db.ops.quote_name(field.column))  # type: ignore[union-attr]


def id_condition(column: str, ids: list[int], vendor: str) -> tuple[str, list[Any]]:
    """SQL for "`column` is one of `ids`" and its parameters."""
    if vendor == "postgresql":
        return f"{column} = ANY(%s)", [ids]
    return f"{column} IN ({', '.join(['%s'] * len(ids))})", list(ids)


def prepared_columns(
    model: type[models.Model], values: dict[str, Any], db: Any, *, skip: tuple[str, ...]
) -> tuple[list[str], list[Any]]:
    """Quoted columns and prepared values of every concrete field of `model` but the primary key and
    `skip`: the value given in `values`, else the field's default."""
    columns, params = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in skip:
            continue
        value = values[field.name] if field.name in values else field.get_default()
        columns.append(db.ops.quote_name(field.column))
        params.append(field.get_db_prep_save(value, db))
    return columns, params


def insert_rows(
    model: type[models.Model], common: dict[str, Any], varying: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """One INSERT of `rows`, tuples of values of the `varying` fields; every other field takes its value in
    `common` or its default, sent once for all rows."""
    if not rows:
        return
    db = connections[router.db_for_write(model)]
    fields = [model._meta.get_field(name) for name in varying]
    columns, constants = prepared_columns(model, common, db, skip=varying)
    columns += [column_of(model, name, db) for name in varying]
    by_column = [
        [field.get_db_prep_save(value, db) for value in values]  # type: ignore[union-attr]
        for field, values in zip(fields, zip(*rows, strict=True), strict=True)
    ]
    names = [f"column{index}" for index in range(1, len(fields) + 1)]  # what VALUES calls its columns
    if db.vendor == "postgresql":
        arrays = ", ".join(f"%s::{field.db_type(db)}[]" for field in fields)  # type: ignore[union-attr]
        source, params = f"unnest({arrays}) AS v({', '.join(names)})", by_column
    else:
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        source = f"(VALUES {', '.join([row] * len(rows))}) AS v"
        params = [value for values in zip(*by_column, strict=True) for value in values]
    sql = (
        f"INSERT INTO {db.ops.quote_name(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT {', '.join(['%s'] * len(constants))}, {', '.join(f'v.{name}' for name in names)} FROM {source}"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, [*constants, *params])


def refresh_statistics(model: type[models.Model]) -> None:
    """ANALYZE the table of `model` on PostgreSQL, whose planner otherwise goes on believing the table holds
    what it held at the last automatic analysis (SQLite plans by its indexes and needs nothing)."""
    db = connections[router.db_for_write(model)]
    if db.vendor == "postgresql":
        with db.cursor() as cursor:
            cursor.execute(f"ANALYZE {db.ops.quote_name(model._meta.db_table)}")
