"""Bulk writes for the apply engine: COPY on PostgreSQL, executemany elsewhere; no model instance per row.

`insert_rows` and `update_rows` take plain tuples in the order of the column names given (attribute names
such as ``product_id``); values are prepared by the model's fields, so Decimal, JSON, aware datetimes and
booleans are stored exactly as the ORM would; `insert_values` takes rows as dicts, fills defaults as a model
instance would and returns the new primary keys. On PostgreSQL rows go through ``COPY … FROM STDIN`` (ids
reserved from the table's sequence first when the caller needs them; on SQLite the write lock the transaction
holds makes the next ids known); updates go through a temporary table and one ``UPDATE … FROM``.
Everything runs in the caller's transaction.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models import F
from django.db.models.lookups import In
from django.utils import timezone

M = TypeVar("M", bound=models.Model)
T = TypeVar("T")

# Below this many rows the ORM's statements are cheaper than a COPY round trip.
COPY_THRESHOLD = 50
_SQLITE_CHUNK = 500


# Joins text values into one parameter: a control character XML cannot carry, so no 1C id contains it.
_SEPARATOR = "\x1f"


class InIds(In):
    """`field__in=ids` that PostgreSQL receives as `= ANY(%s)` with one array instead of an IN list: psycopg binds
    client-side, and a statement with thousands of placeholders costs more to bind than to run. Text values go
    as one string split by the server (`string_to_array`): psycopg quotes an array of strings value by value in
    Python, one string at once."""

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = list(self.rhs)
        if values and all(type(value) is str for value in values):
            joined = _SEPARATOR.join(values)
            if joined and joined.count(_SEPARATOR) == len(values) - 1:  # '' would split into no value at all
                return f"{lhs} = ANY(string_to_array(%s, chr(31)))", [*lhs_params, joined]
        return f"{lhs} = ANY(%s)", [*lhs_params, values]


def one_of(name: str, values: Iterable[Any]) -> InIds:
    """A filter: field `name` is one of `values` (`name__in=values`, one array parameter on PostgreSQL)."""
    return InIds(F(name), list(values))


def uses_copy(count: int) -> bool:
    return connection.vendor == "postgresql" and count >= COPY_THRESHOLD


def _fields(model: type[models.Model], columns: Sequence[str]) -> list[models.Field[Any, Any]]:
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    return [by_attname[name] for name in columns]


# Values of these fields reach both drivers as they are (ints, str, bool, Decimal, None): no per-value prep.
_PASS_THROUGH = (
    models.AutoField,
    models.BigAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.PositiveSmallIntegerField,
    models.SmallIntegerField,
    models.CharField,
    models.TextField,
    models.BooleanField,
    models.DecimalField,
    models.ForeignKey,
)


class JsonText(str):
    """A JSON column's value serialised already (by a caller that needed the text anyway, to hash it): stored as it
    is, not serialised a second time (the JSON column of both databases takes the text)."""


def _prep_of(field: models.Field[Any, Any]) -> Callable[[Any, Any], Any]:
    if isinstance(field, models.DateField):
        return _memoised(field.get_db_prep_save)
    if isinstance(field, models.JSONField):
        return _json_prep(field.get_db_prep_save)
    return field.get_db_prep_save


def _json_prep(prep: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def prepared(value: Any, db: Any) -> Any:
        return str(value) if isinstance(value, JsonText) else prep(value, db)

    return prepared


def _prepare(fields: list[models.Field[Any, Any]], rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows as the driver takes them; only fields that need it (datetimes, JSON) go through the ORM's prep."""
    db = connections[DEFAULT_DB_ALIAS]  # resolved once: the `connection` proxy costs a lookup per access
    special = [
        (index, _prep_of(field))
        for index, field in enumerate(fields)
        if not isinstance(field, _PASS_THROUGH) or (isinstance(field, models.ForeignKey) and not _plain_key(field))
    ]
    if not special:
        return [tuple(row) for row in rows]
    prepared = []
    for row in rows:
        values = list(row)
        for index, prep in special:
            values[index] = prep(values[index], db)
        prepared.append(tuple(values))
    return prepared


def _memoised(prep: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Dates and time stamps repeat across the rows of one write (a day, the import's "now"): each distinct
    value is prepared once."""
    memo: dict[Any, Any] = {}

    def prepared(value: Any, db: Any) -> Any:
        if value not in memo:
            memo[value] = prep(value, db)
        return memo[value]

    return prepared


def _plain_key(field: models.ForeignKey[Any, Any]) -> bool:
    return isinstance(field.target_field, _PASS_THROUGH)


def _quoted(model: type[models.Model], fields: list[models.Field[Any, Any]]) -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields)


def _copy(table: str, columns: str, rows: list[tuple[Any, ...]]) -> None:
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def without_flush_on_commit() -> None:
    """PostgreSQL: the caller's transaction commits without waiting for its WAL to reach the disk. A database
    crash may then lose the last commits (never half of one): only for writes that carry their own checkpoint
    and are simply repeated by the next run."""
    if connection.vendor == "postgresql" and connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size` (a query each)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def analyze(tables: Mapping[type[models.Model], Sequence[str] | None]) -> None:
    """Refresh PostgreSQL's planner statistics of these models' tables, in one statement: of the named columns
    (attribute names) where given, else of the whole table. Nothing elsewhere (SQLite plans by its indexes)."""
    if connection.vendor != "postgresql":
        return
    targets = []
    for model, columns in tables.items():
        table = connection.ops.quote_name(model._meta.db_table)
        if columns:
            table += " (" + _quoted(model, _fields(model, columns))[1] + ")"
        targets.append(table)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE " + ", ".join(targets))


class Statistics:
    """The planner's statistics of the columns a long bulk write looks rows up by, kept fresh as the write fills
    the table. A table first filled by the write has none, and PostgreSQL then prices `column = ANY(page of
    values)` at the whole table and reads all of it for every page: a first pull of 100,000 objects spent more
    time in those lookups than in writing. So the looked-up columns are analysed (PostgreSQL only; a few tens of
    milliseconds) after the first rows, and again each time the rows written grew GROWTH-fold since; statistics
    of a unique-ish column stay right as the table grows, so a handful of passes do."""

    GROWTH = 8

    def __init__(self, model: type[models.Model], columns: Sequence[str]) -> None:
        self.model = model
        self.columns = list(dict.fromkeys(columns))
        self.written = 0
        self._next = 1

    def wrote(self, rows: int) -> None:
        """Count `rows` written (committed, or in the caller's transaction); analyse when due."""
        self.written += rows
        if self.written < self._next or connection.vendor != "postgresql":
            return
        self._next = self.written * self.GROWTH
        analyze({self.model: self.columns})


def reserve_ids(model: type[models.Model], count: int) -> list[int] | None:
    """`count` new primary keys: from the table's sequence on PostgreSQL; on SQLite the ones after the
    highest ever used (safe because the caller's transaction holds SQLite's write lock); None elsewhere."""
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)", [table, pk, count]
            )
            return [row[0] for row in cursor.fetchall()]
        if connection.vendor == "sqlite" and connection.in_atomic_block:
            quote = connection.ops.quote_name
            cursor.execute(
                f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "
                f"coalesce((SELECT max({quote(pk)}) FROM {quote(table)}), 0))",
                [table],
            )
            last = int(cursor.fetchone()[0])
            return list(range(last + 1, last + count + 1))
    return None


@dataclass(frozen=True)
class Insert:
    """An INSERT made ready by `prepare_insert`, possibly in another thread than the one that runs it
    (`run_insert`): the table, its columns and the rows as the driver takes them. (psycopg's COPY formats rows
    in C, twice as fast as Python could: that part stays with `run_insert`.)"""

    table: str
    names: str
    rows: list[tuple[Any, ...]]


def prepare_insert(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Insert:
    """`rows` (tuples in the order of `columns`) ready to INSERT; without the pk among them, the database picks it.
    Reads nothing from the database."""
    fields = _fields(model, columns)
    prepared = _prepare(fields, rows)
    table, names = _quoted(model, fields)
    return Insert(table, names, prepared)


def run_insert(insert: Insert) -> None:
    if not insert.rows:
        return
    if uses_copy(len(insert.rows)):
        _copy(insert.table, insert.names, insert.rows)
        return
    marks = ", ".join(["%s"] * len(insert.rows[0]))
    with connection.cursor() as cursor:
        for start in range(0, len(insert.rows), _SQLITE_CHUNK):
            cursor.executemany(
                f"INSERT INTO {insert.table} ({insert.names}) VALUES ({marks})",
                insert.rows[start : start + _SQLITE_CHUNK],
            )


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """INSERT `rows` (tuples in the order of `columns`); without the pk among them, the database picks it."""
    if rows:
        run_insert(prepare_insert(model, columns, rows))


def update_rows(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """UPDATE by primary key: each row is (pk, value of columns[0], value of columns[1], …)."""
    if not rows:
        return
    fields = _fields(model, [model._meta.pk.attname, *columns])
    prepared = _prepare(fields, rows)
    table, _names = _quoted(model, fields)
    quote = connection.ops.quote_name
    pk = quote(fields[0].column)
    targets = [quote(f.column) for f in fields[1:]]
    if uses_copy(len(prepared)):
        temp = quote(f"sdelka_upd_{model._meta.db_table}")
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {temp}")
            columns = ", ".join([pk, *targets])
            cursor.execute(f"CREATE TEMP TABLE {temp} ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA")
            _copy(temp, columns, prepared)
            assignments = ", ".join(f"{name} = s.{name}" for name in targets)
            cursor.execute(f"UPDATE {table} AS t SET {assignments} FROM {temp} AS s WHERE t.{pk} = s.{pk}")
            cursor.execute(f"DROP TABLE {temp}")
        return
    assignments = ", ".join(f"{name} = %s" for name in targets)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET {assignments} WHERE {pk} = %s", [(*row[1:], row[0]) for row in prepared]
        )


def set_column(model: type[models.Model], column: str, value: Any, ids: Sequence[int]) -> None:
    """UPDATE one column to one value on the rows with these primary keys: one statement with an array on
    PostgreSQL (no parameter per id to send and parse), chunks elsewhere."""
    if not ids:
        return
    field = _fields(model, [column])[0]
    table, name = _quoted(model, [field])
    pk = connection.ops.quote_name(model._meta.pk.column)
    prepared = field.get_db_prep_save(value, connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"UPDATE {table} SET {name} = %s WHERE {pk} = ANY(%s)", [prepared, list(ids)])
            return
        for start in range(0, len(ids), _SQLITE_CHUNK):
            part = list(ids[start : start + _SQLITE_CHUNK])
            cursor.execute(f"UPDATE {table} SET {name} = %s WHERE {pk} IN ({', '.join(['%s'] * len(part))})",
                           [prepared, *part])  # fmt: skip


def insert_returning_ids(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[int]:
    """INSERT `rows` (tuples in the order of `columns`, the pk not among them) and return their new primary
    keys in the same order, without a model instance per row where ids can be reserved."""
    if not rows:
        return []
    ids = reserve_ids(model, len(rows))
    if ids is None:
        objects = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        model._default_manager.bulk_create(objects)
        return [obj.pk for obj in objects]
    insert_rows(model, [model._meta.pk.attname, *columns], [(pk, *row) for pk, row in zip(ids, rows, strict=True)])
    return ids


def insert_values(model: type[models.Model], rows: Sequence[dict[str, Any]]) -> list[int]:
    """INSERT rows given as {attname: value} without a model instance each and return their new primary keys in
    order (see `value_rows`)."""
    if not rows:
        return []
    return insert_returning_ids(model, *value_rows(model, rows))


def value_rows(model: type[models.Model], rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns (all but the pk) and the tuples of rows given as {attname: value}. A field a row leaves out gets
    its default as an instance would; auto_now(_add) fields get one time stamp for the whole call (as `save()`
    would give them, whatever the row says)."""
    now = timezone.now()
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    stamped = {
        f.attname: now if isinstance(f, models.DateTimeField) else now.date()
        for f in fields
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    }
    per_row = {f.attname: f.get_default for f in fields if f.has_default() and callable(f.default)}
    constant = {f.attname: f.get_default() for f in fields if f.attname not in stamped and f.attname not in per_row}
    columns = [f.attname for f in fields]
    pick = operator.itemgetter(*columns, columns[0])  # a tuple even for one column; the extra one is cut off
    values = []
    for row in rows:
        merged = {**constant, **row, **stamped}
        for name, make in per_row.items():
            if name not in row:
                merged[name] = make()
        values.append(pick(merged)[:-1])
    return columns, values


_HISTORY_FIELDS = {"history_id", "history_date", "history_change_reason", "history_type", "history_user_id"}


def copy_to_history(
    model: type[models.Model], ids: Sequence[int], *, history_type: str, user_id: int | None, when: Any
) -> None:
    """simple_history's records ("+" created, "~" changed) of rows written in bulk, copied inside the database
    by one INSERT … SELECT per chunk: the current rows become the history rows, nothing passes through Python."""
    if not ids:
        return
    history = model.history.model  # type: ignore[attr-defined]
    own = {f.attname for f in model._meta.concrete_fields}
    copied = [f for f in history._meta.concrete_fields if f.attname in own]
    extra = {f.attname for f in history._meta.concrete_fields} - own - _HISTORY_FIELDS
    if extra:  # a history model with custom fields needs simple_history's own code, not a row copy
        raise ValueError(f"{history.__name__} has fields a row copy cannot fill: {sorted(extra)}")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in copied)
    stamp = history._meta.get_field("history_date").get_db_prep_save(when, connection)
    insert = (
        f"INSERT INTO {quote(history._meta.db_table)} ({columns}, history_date, history_change_reason, "
        f"history_type, history_user_id) SELECT {columns}, %s, NULL, %s, %s FROM {quote(model._meta.db_table)}"
    )
    pk = quote(model._meta.pk.column)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"{insert} WHERE {pk} = ANY(%s) ORDER BY {pk}", [stamp, history_type, user_id, list(ids)])
            return
        for start in range(0, len(ids), _SQLITE_CHUNK):
            part = list(ids[start : start + _SQLITE_CHUNK])
            marks = ", ".join(["%s"] * len(part))
            cursor.execute(f"{insert} WHERE {pk} IN ({marks}) ORDER BY {pk}", [stamp, history_type, user_id, *part])
