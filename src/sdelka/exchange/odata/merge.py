"""Per-field decisions of a two-way rule: which side's value a field takes, from three values — the base both
sides agreed on at the last sync (`ExternalRef.synced`), Sdelka's value now, and 1C's value now — and the
field's ownership.

* 1C wins: 1C's value always (a Sdelka edit is reverted); the field is never written to 1C.
* Sdelka wins: Sdelka's value always (a 1C edit is overwritten); the field is never read from 1C.
* Newest wins / ask: the side that changed the field since the last sync wins. When both changed it (or there is
  no base yet: the first two-way sync of a linked object), "newest" takes the later change and "ask" raises a
  `Conflict` and leaves both sides as they are until someone decides.

1C keeps no modification time (`DataVersion` is a counter), so a 1C change is dated by the window it happened
in: after the last sync of the object and before this run saw it. "Newest" takes the middle of that window as
1C's time and compares it with the Sdelka object's `updated_at`; the more often the task runs, the narrower the
window.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from .models import Ownership


class Outcome(StrEnum):
    SAME = "same"  # both sides hold the same value
    TO_SDELKA = "to_sdelka"  # 1C's value is written into Sdelka
    TO_ONEC = "to_onec"  # Sdelka's value is written into 1C
    CONFLICT = "conflict"  # nobody may decide but a person


MISSING = object()  # no base: the field was never synced


def onec_changed_at(last_sync: datetime | None, seen_at: datetime) -> datetime:
    """1C's estimated change time: the middle of the window between the last sync and the run that saw it."""
    if last_sync is None or last_sync >= seen_at:
        return seen_at
    return last_sync + (seen_at - last_sync) / 2


def decide(
    ownership: str,
    base: Any,
    ours: Any,
    theirs: Any,
    *,
    ours_changed_at: datetime | None = None,
    theirs_changed_at: datetime | None = None,
) -> Outcome:
    """The outcome for one field (`base` is `MISSING` when the field has no synced value yet)."""
    if ours == theirs:
        return Outcome.SAME
    if ownership == Ownership.ONEC:
        return Outcome.TO_SDELKA
    if ownership == Ownership.SDELKA:
        return Outcome.TO_ONEC
    if base is not MISSING:
        if ours == base:
            return Outcome.TO_SDELKA
        if theirs == base:
            return Outcome.TO_ONEC
    if ownership == Ownership.NEWEST:
        if ours_changed_at is None:
            return Outcome.TO_SDELKA
        if theirs_changed_at is None:
            return Outcome.TO_ONEC
        return Outcome.TO_ONEC if ours_changed_at > theirs_changed_at else Outcome.TO_SDELKA
    return Outcome.CONFLICT
