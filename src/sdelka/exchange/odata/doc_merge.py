"""Per-field ownership and conflicts for document rules (invoices, customer orders, payments), by the same
decisions as the catalogue rules (merge.py): each header field, and the tabular part as one field "rows", is
compared three ways — Sdelka's value, 1C's value and the value both sides agreed on at the last sync
(`ExternalRef.synced`) — and goes by its pair's ownership.

Values are compared as plain text (a date in ISO form, a pk, the rows as one line per row), which is also what
the base and a conflict keep. Fields in an open conflict move on neither side. A pair without an ownership is
"1C wins", as in the catalogue rules (the ready-made two-way document rules name "newest wins").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.db import models
from django.utils import timezone

from sdelka.exchange.models import Conflict, ConflictStatus, ExternalRef

from .fields import sdelka_field
from .merge import MISSING, Outcome, decide, onec_changed_at
from .models import MappingRule, Ownership

if TYPE_CHECKING:
    from .documents import DocumentRule
    from .sync import Change

ROWS = "rows"


def ownership_of(rule: MappingRule, name: str) -> str:
    """The owner of a header field, or of the rows (the first row pair that names one)."""
    default = Ownership.ONEC
    for pair in rule.fields:
        is_row = "/" in str(pair.get("onec", ""))
        if (name == ROWS and is_row) or (not is_row and sdelka_field(pair) == name):
            if "const" in pair:
                return Ownership.ONEC
            if name != ROWS or "ownership" in pair:
                return str(pair.get("ownership", default))
    return default


def onec_name(rule: MappingRule, name: str) -> str:
    for pair in rule.fields:
        onec = str(pair.get("onec", ""))
        if name == ROWS and "/" in onec:
            return onec.partition("/")[0]
        if name != ROWS and "/" not in onec and sdelka_field(pair) == name:
            return onec
    return name


@dataclass
class Merged:
    """What a linked document takes from 1C, what stays Sdelka's for 1C to receive, and what waits."""

    take: set[str] = field(default_factory=set)
    send: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)  # in conflict, new or open
    synced: dict[str, str] = field(default_factory=dict)


def merge_document(rule: DocumentRule, ref: ExternalRef, obj: models.Model, ours: dict[str, str],
                   theirs: dict[str, str], change: Change) -> Merged:  # fmt: skip
    """Decide every field of a linked document; raises (outside a dry run) the conflicts of fields owned "ask"
    that both sides changed, with a journal warning naming them."""
    base: dict[str, Any] = ref.synced or {}
    open_fields = set(
        Conflict.objects.filter(external_ref=ref, status=ConflictStatus.OPEN).values_list("field", flat=True)
    )
    ours_changed_at = getattr(obj, "updated_at", None)
    theirs_changed_at = onec_changed_at(ref.updated_at, timezone.now())
    merged = Merged()
    conflicts = []
    for name, value in theirs.items():
        mine = ours[name]
        if name in open_fields:
            merged.waiting.add(name)
            outcome = Outcome.CONFLICT
        else:
            outcome = decide(ownership_of(rule.rule, name), base.get(name, MISSING), mine, value,
                             ours_changed_at=ours_changed_at, theirs_changed_at=theirs_changed_at)  # fmt: skip
        if outcome in (Outcome.SAME, Outcome.TO_SDELKA):
            merged.synced[name] = value
            if outcome == Outcome.TO_SDELKA:
                merged.take.add(name)
        elif outcome == Outcome.TO_ONEC:
            merged.synced[name] = mine
            merged.send.add(name)
            change.to_onec[name] = mine
        else:
            if name in base:
                merged.synced[name] = base[name]
            if name in open_fields:
                continue
            merged.waiting.add(name)
            change.conflicts[name] = (mine, value)
            conflicts.append(
                Conflict(
                    connection=rule.syncer.connection,
                    external_ref=ref,
                    rule=rule.rule,
                    run=rule.syncer.run,
                    object_repr=change.label[:255],
                    field=name,
                    onec_field=onec_name(rule.rule, name)[:255],
                    base_value=base.get(name),
                    our_value=mine,
                    onec_value=value,
                    our_changed_at=ours_changed_at,
                    onec_changed_at=theirs_changed_at,
                )
            )
    if conflicts and not rule.syncer.dry_run:
        Conflict.objects.bulk_create(conflicts)
        rule.syncer.conflicts_event(conflicts, external_id=ref.external_id, obj=change.label)
    return merged
