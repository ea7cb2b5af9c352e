"""The incremental read of a one-way rule: a cheap pass over `Ref_Key` and `DataVersion`, then only the changed
and new objects, by key.

* Used for rules read from 1C ("in") keyed by Ref_Key once Sdelka holds objects of the rule's kind from this base
  (the first pull reads page by page), never on a full resync. Two-way rules read every object: Sdelka's side may
  have changed too (merge.py).
* Pass 1: `$select=Ref_Key,DataVersion` with the rule's filter, ordered by Ref_Key, pages of KEY_PAGE with
  `$top`/`$skip` (1C has no server paging), read in a thread. An object whose DataVersion is the one its
  ExternalRef keeps and whose Sdelka object still exists is unchanged: nothing is done to it but marking its
  ref seen by the run (page by page, while 1C serves the next) when its last sighting is over SEEN_REFRESH old.
* Pass 2: the rest is read by key (`Ref_Key eq guid'…' or …`, URLs kept short by the client) while the
  unchanged refs are marked, then applied page by page exactly as the paged read applies a page. When so many
  changed that reading them by key would take more requests than the paged read, the paged read runs instead.
* An object whose ref keeps a version but which pass 1 did not return is gone from 1C (deleted there, or it no
  longer matches the rule's filter): it is journalled once as a warning and its stored version cleared, so that
  it is read in full should it come back. Sdelka's object stays as it is: the hub never deletes. Only done when no
  other rule of the connection writes refs of that kind (their objects would look gone).
* Resume: pass 2 keeps the checkpoint at the rule with offset 0; the next run repeats pass 1, which finds only what
  is still not applied, since applied objects carry their new version.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from queue import SimpleQueue
from typing import TYPE_CHECKING, NamedTuple

from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from sdelka.exchange import bulk
from sdelka.exchange.models import Direction, EventLevel, ExchangeRun, ExternalRef

from . import values as v
from .models import MappingRule
from .rules import select_fields
from .targets import TARGETS, Target

if TYPE_CHECKING:
    from .sync import RuleResult, Syncer

KEY_PAGE = 20_000  # pass 1 reads two short fields (~2 MB a page): fewer pages, fewer of 1C's slow large $skip
KEYS_PER_REQUEST = 20  # about as many `Ref_Key eq guid'…'` as fit a URL of client.MAX_URL with a rule's $select
MAX_GONE_LISTED = 100
# An unchanged object's "last sync" (ExternalRef.seen_run) is moved on when older than this: rewriting every
# ref on every run (each 15 minutes, say) would cost more than the rest of the run and bloat the table.
SEEN_REFRESH = timedelta(hours=1)
_GONE = gettext_lazy(
    "1C no longer returns this object (deleted there, or it no longer matches the rule's filter); Sdelka keeps it."
)


class Known(NamedTuple):  # a tuple: made 100,000 times a run, three times cheaper than a frozen dataclass
    pk: int
    version: str
    alive: bool  # the Sdelka object still exists
    seen_run_id: int | None  # the run that last saw it


def applies(syncer: Syncer, rule: MappingRule) -> bool:
    return not syncer.full and rule.direction == Direction.IN and set(rule.key_fields) <= {"Ref_Key"}


def run_rule(syncer: Syncer, rule: MappingRule, target: Target, outcome: RuleResult) -> bool:
    """Read the rule in two passes; False (nothing done but pass 1, the seen marks and the journal of gone
    objects) when the paged read should run instead: nothing of this kind is in Sdelka yet, or too many objects
    changed. 1C's reads go on in a thread while Sdelka's own queries run (both mostly wait)."""
    if not ExternalRef.objects.filter(connection=syncer.connection, kind=target.ref_kind).exists():
        return False
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="odata-keys") as pool:
        key_pages: SimpleQueue[list[tuple[str, str]] | None] = SimpleQueue()
        reading = pool.submit(_read_versions, syncer, rule, key_pages)
        known = _known(syncer, target)
        versions, unchanged, changed = _compare(syncer, known, key_pages)
        reading.result()  # a failed read fails the rule here
        _notice_gone(syncer, rule, target, outcome, known, versions)
        page_size = max(1, syncer.task.page_size)
        if math.ceil(len(changed) / KEYS_PER_REQUEST) > math.ceil(len(versions) / page_size):
            return False
        select = select_fields(rule)
        reading_changed = pool.submit(lambda: [row for rows in syncer.client.by_keys(
            rule.entity_set, changed, select=select) for row in rows])  # fmt: skip
        outcome.total = len(versions)
        outcome.unchanged += len(unchanged)
        _count_unchanged(syncer, len(unchanged), total=len(versions))
        rows = reading_changed.result()
    done = len(unchanged)
    if not rows and syncer.on_page is not None:
        syncer.on_page(outcome, done)
    for start in range(0, len(rows), page_size):
        page = rows[start : start + page_size]
        if syncer._page(rule, target, page, outcome, 0):  # offset 0: a resumed run repeats pass 1
            break
        done += len(page)
        if syncer.on_page is not None:
            syncer.on_page(outcome, done)
    return True


def _known(syncer: Syncer, target: Target) -> dict[str, Known]:
    """external id → its ref, for every ref of this kind and base: one query."""
    alive = Exists(target.model._default_manager.filter(pk=OuterRef("object_id")))
    refs = ExternalRef.objects.filter(connection=syncer.connection, kind=target.ref_kind).annotate(alive=alive)
    return {ext: Known(pk, version, bool(exists), seen) for ext, pk, version, exists, seen in refs.values_list(
        "external_id", "pk", "version", "alive", "seen_run_id")}  # fmt: skip


def _read_versions(syncer: Syncer, rule: MappingRule, key_pages: SimpleQueue[list[tuple[str, str]] | None]) -> None:
    """Pass 1, in a thread: (Ref_Key, DataVersion) of every object the rule reads, a page at a time into
    `key_pages`; None when done (or failed: the failure is raised by the future)."""
    try:
        for _offset, rows in syncer.client.pages(
            rule.entity_set, select=["Ref_Key", "DataVersion"], filter=rule.filter, page_size=KEY_PAGE
        ):
            key_pages.put([(v.text(row.get("Ref_Key")), v.text(row.get("DataVersion"))) for row in rows])
    finally:
        key_pages.put(None)


def _compare(
    syncer: Syncer, known: dict[str, Known], key_pages: SimpleQueue[list[tuple[str, str]] | None]
) -> tuple[dict[str, str], list[int], list[str]]:
    """Every key page against the refs as it arrives: (all versions, unchanged ref ids, changed or new keys);
    the unchanged are marked seen by the run page by page, while 1C serves the next."""
    versions: dict[str, str] = {}
    unchanged: list[int] = []
    changed: list[str] = []
    since = (syncer.run.started_at if syncer.run else timezone.now()) - SEEN_REFRESH
    recent = set(
        ExchangeRun.objects.filter(connection=syncer.connection, started_at__gte=since).values_list("pk", flat=True)
    )
    while (page := key_pages.get()) is not None:
        seen: list[int] = []
        for key, version in page:
            versions[key] = version
            ref = known.get(key)
            if ref is not None and version and ref.version == version and ref.alive:
                unchanged.append(ref.pk)
                if ref.seen_run_id not in recent:
                    seen.append(ref.pk)
            else:
                changed.append(key)
        if syncer.run is not None:
            bulk.set_column(ExternalRef, "seen_run_id", syncer.run.pk, seen)
    return versions, unchanged, changed


def _count_unchanged(syncer: Syncer, unchanged: int, total: int) -> None:
    if syncer.run is None:
        return
    with transaction.atomic():
        ExchangeRun.objects.filter(pk=syncer.run.pk).update(
            total=F("total") + total, done=F("done") + unchanged, unchanged=F("unchanged") + unchanged
        )
        syncer.flush()


def _shares_kind(syncer: Syncer, rule: MappingRule, target: Target) -> bool:
    others = MappingRule.objects.filter(connection=syncer.connection).exclude(pk=rule.pk)
    return any(
        entity in TARGETS and TARGETS[entity].ref_kind == target.ref_kind
        for entity in others.values_list("entity", flat=True)
    )


def _notice_gone(
    syncer: Syncer,
    rule: MappingRule,
    target: Target,
    outcome: RuleResult,
    known: dict[str, Known],
    versions: dict[str, str],
) -> None:
    gone = [(ext, ref) for ext, ref in known.items() if ref.version and ext not in versions]
    if not gone or _shares_kind(syncer, rule, target):
        return
    outcome.gone = len(gone)
    for ext, _ref in gone[:MAX_GONE_LISTED]:
        syncer.event(
            EventLevel.WARNING,
            str(_GONE),
            external_id=ext,
            obj=rule.entity_set,
        )
    if len(gone) > MAX_GONE_LISTED:
        syncer.event(
            EventLevel.WARNING,
            _("Objects of %(set)s that 1C no longer returns: %(count)d; the first %(listed)d are listed.")
            % {"count": len(gone), "set": rule.entity_set, "listed": MAX_GONE_LISTED},
            obj=rule.entity_set,
        )
    if syncer.run is None:
        return
    pks = [ref.pk for _ext, ref in gone]
    with transaction.atomic():
        bulk.set_column(ExternalRef, "version", "", pks)
        syncer.flush()
