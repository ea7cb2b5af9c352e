"""Rows whose link has no database constraint and points at a row that is gone.

The links of rows the exchange writes by the hundred thousand (prices, stock levels, property values, 1C ids,
element digests) are declared `db_constraint=False`: PostgreSQL checks a constraint row by row at commit, which
was 40 % of a first catalogue upload (docs/decisions/0006-bulk-rows-without-database-foreign-keys.md). Django
applies on_delete itself, so a deletion through Django leaves nothing behind; only a deletion that races an
exchange writing new rows for the same object can (the exchange's rows are not visible to the deletion until
it commits). The nightly sweep removes such rows, or clears a nullable SET_NULL link.
"""

from __future__ import annotations

from typing import cast

from django.apps import apps
from django.db import models
from django.db.models import Exists, OuterRef


def unconstrained_links() -> list[models.ForeignKey]:
    """Every foreign key declared without a database constraint that must still point somewhere (history
    records' links are DO_NOTHING: they keep the id of what was deleted on purpose)."""
    return [
        field
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, models.ForeignKey)
        and not field.db_constraint  # type: ignore[attr-defined]  # an attribute the stubs leave out
        and field.remote_field.on_delete is not models.DO_NOTHING
    ]


def sweep_orphan_rows() -> dict[str, int]:
    """Fix every row whose unconstrained link points nowhere: one anti-join per link. Returns the rows fixed
    per `app.Model.field`."""
    fixed: dict[str, int] = {}
    for field in unconstrained_links():
        model = field.model
        target = cast(type[models.Model], field.related_model)  # resolved once the apps are loaded
        gone = model._base_manager.filter(**{f"{field.attname}__isnull": False}).exclude(
            Exists(target._base_manager.filter(pk=OuterRef(field.attname)))
        )
        if field.null and field.remote_field.on_delete is models.SET_NULL:
            count = gone.update(**{field.attname: None})
        else:
            count, _by_model = gone.delete()
        if count:
            fixed[f"{model._meta.label}.{field.name}"] = count
    return fixed
