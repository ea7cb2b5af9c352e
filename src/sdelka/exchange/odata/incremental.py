"""The incremental read of a one-way rule: a cheap pass over `Ref_Key` and `DataVersion`, then only the changed
and new objects, by key.

* Used for rules read from 1C ("in") keyed by Ref_Key once Sdelka holds objects of the rule's kind from this base
  (the first pull reads page by page), never on a full resync. Two-way rules read every object: Sdelka's side may
  have changed too (merge.py).
* Pass 1: `$select=Ref_Key,DataVersion` with the rule's filter, ordered by Ref_Key, pages of KEY_PAGE with
  `$top`/`$skip` (1C has no server paging; the page expected to end the pass is split, see `key_page_sizes`),
  read in a thread. An object whose DataVersion is the one its ExternalRef keeps and whose Sdelka object still
  exists is unchanged: nothing is done to it but marking its ref seen by the run (page by page, while 1C serves
  the next) when its last sighting is over SEEN_REFRESH old.
* Pass 2 runs alongside pass 1: each key page's changed and new objects are read by key (`Ref_Key eq guid'…' or
  …`, URLs kept short by the client) in a second thread and applied as they come, page by page, exactly as the
  paged read applies a page. When the first key page shows so many changes that reading them by key would take
  more requests than the paged read, the paged read runs instead.
* An object whose ref keeps a version but which pass 1 did not return is gone from 1C (deleted there, or it no
  longer matches the rule's filter): it is journalled once as a warning and its stored version cleared, so that
  it is read in full should it come back. Sdelka's object stays as it is: the hub never deletes. Only done when no
  other rule of the connection writes refs of that kind (their objects would look gone).
* Resume: pass 2 keeps the checkpoint at the rule with offset 0; the next run repeats pass 1, which finds only what
  is still not applied, since applied objects carry their new version.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

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


# A base's ref as the comparison needs it: (external id, ref id, DataVersion, whether the Sdelka object still
# exists, the run that last saw it). The query's own rows: 100,000 of them a run, a named tuple would cost more
# than the query.
Known = tuple[str, int, str, bool, int | None]


def applies(syncer: Syncer, rule: MappingRule) -> bool:
    return not syncer.full and rule.direction == Direction.IN and set(rule.key_fields) <= {"Ref_Key"}


def run_rule(syncer: Syncer, rule: MappingRule, target: Target, outcome: RuleResult) -> bool:
    """Read the rule in two passes; False (nothing done but pass 1, the seen marks and the journal of gone
    objects) when the paged read should run instead: nothing of this kind is in Sdelka yet, or too many objects
    changed. Pass 1 is read in one thread, each key page's changed objects in another, while this one compares
    the key pages and applies the changed objects as they come (1C and the database do most of the work)."""
    expected = ExternalRef.objects.filter(connection=syncer.connection, kind=target.ref_kind).count()
    if not expected:
        return False
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="odata-incremental") as pool:
        second = _SecondPass(syncer, rule, target, outcome, pool)
        reading = pool.submit(_read_versions, syncer, rule, second, expected)
        try:
            second.run(_known(syncer, target))
        except BaseException:
            second.abandoned.set()  # pass 1 stops at its next page
            raise
        reading.result()  # a failed read fails the rule here
        _notice_gone(syncer, rule, target, outcome, second.known, second.returned)
        if second.paged_read_pays:
            return False
        if not second.applied and syncer.on_page is not None:
            syncer.on_page(outcome, second.done)
    return True


def _known(syncer: Syncer, target: Target) -> dict[str, Known]:
    """external id → its ref, for every ref of this kind and base: one query."""
    alive = Exists(target.model._default_manager.filter(pk=OuterRef("object_id")))
    refs = ExternalRef.objects.filter(connection=syncer.connection, kind=target.ref_kind).annotate(alive=alive)
    return {row[0]: row for row in refs.values_list("external_id", "pk", "version", "alive", "seen_run_id")}


def _read_versions(syncer: Syncer, rule: MappingRule, second: _SecondPass, expected: int) -> None:
    """Pass 1, in a thread: (Ref_Key, DataVersion) of every object the rule reads, ordered by Ref_Key with
    `$top`/`$skip` (pages sized by `key_page_sizes`), a page at a time handed to `second`; then None (also when
    failed: the failure is raised by the future)."""
    try:
        skip = 0
        for size in key_page_sizes(expected):
            rows = syncer.client.fetch(rule.entity_set, select=["Ref_Key", "DataVersion"], filter=rule.filter,
                                       orderby="Ref_Key", top=size, skip=skip)  # fmt: skip
            if second.abandoned.is_set():
                return
            if rows:
                second.arrivals.put([(v.text(row.get("Ref_Key")), v.text(row.get("DataVersion"))) for row in rows])
            if len(rows) < size:
                return
            skip += len(rows)
    finally:
        second.arrivals.put(None)


def key_page_sizes(expected: int) -> Iterator[int]:
    """Pass 1's page sizes: KEY_PAGE, except that the page expected to end the pass (`expected`: the objects of
    this kind Sdelka holds from the base) is split so that its last tenth comes alone. The changes of the last
    key page are the ones read and applied after pass 1 is over: a small last page keeps that short. Past the
    expected end (objects added in 1C), KEY_PAGE again until a page comes back short."""
    tail = KEY_PAGE // 10
    offset = 0
    if tail:
        while expected - offset > KEY_PAGE + tail:
            yield KEY_PAGE
            offset += KEY_PAGE
        if expected - offset >= 2 * tail:  # else the pass is short anyway, and no page comes tiny
            yield expected - offset - tail
            yield tail
    while True:
        yield KEY_PAGE


Rows = list[dict[str, Any]]


class _SecondPass:
    """Pass 2 while pass 1 goes on: each key page compared with the refs as it arrives (the unchanged marked
    seen by the run), its changed and new objects read by key in a thread, and applied here as each read ends.

    Whether reading by key pays is decided on the first key page, before anything is read by key: 1C's objects
    are ordered by Ref_Key, which has nothing to do with when they changed, so the first page's share of
    changes stands for the whole. Once reads by key have begun they go on to the end."""

    def __init__(self, syncer: Syncer, rule: MappingRule, target: Target, outcome: RuleResult,
                 pool: ThreadPoolExecutor) -> None:  # fmt: skip
        self.syncer, self.rule, self.target, self.outcome, self.pool = syncer, rule, target, outcome, pool
        # Key pages from pass 1 (None once it ended), and reads by key as they end, in the order they come.
        self.arrivals: SimpleQueue[list[tuple[str, str]] | Future[Rows] | None] = SimpleQueue()
        self.abandoned = threading.Event()
        self.known: dict[str, Known] = {}
        self.returned: set[str] = set()  # every key pass 1 returned
        self.paged_read_pays = False
        self.page_size = max(1, syncer.task.page_size)
        self.select = select_fields(rule)
        self.done = 0  # objects found unchanged or applied
        self.applied = False
        self.stopped = False  # the task said to skip the rest of the rule
        since = (syncer.run.started_at if syncer.run else timezone.now()) - SEEN_REFRESH
        self.recent = set(
            ExchangeRun.objects.filter(connection=syncer.connection, started_at__gte=since).values_list("pk", flat=True)
        )

    def run(self, known: dict[str, Known]) -> None:
        """Until pass 1 has ended and every read by key is applied."""
        self.known = known
        keys_ended, reading = False, 0
        while not keys_ended or reading:
            arrival = self.arrivals.get()
            if arrival is None:
                keys_ended = True
            elif isinstance(arrival, Future):
                reading -= 1
                self._apply(arrival.result())
            elif changed := self._compare(arrival):
                reading += 1
                self.pool.submit(self._read, changed).add_done_callback(self.arrivals.put)

    def _compare(self, page: list[tuple[str, str]]) -> list[str]:
        """The page's changed and new keys, to read by key (none once the paged read is found to pay)."""
        first = not self.returned
        unchanged: list[int] = []
        seen: list[int] = []  # unchanged, last seen by a run over SEEN_REFRESH ago
        changed: list[str] = []
        for key, version in page:
            self.returned.add(key)
            ref = self.known.get(key)
            if ref is None:
                changed.append(key)
                continue
            _ext, pk, known_version, alive, seen_run = ref
            if version and known_version == version and alive:
                unchanged.append(pk)
                if seen_run not in self.recent:
                    seen.append(pk)
            else:
                changed.append(key)
        if self.syncer.run is not None:
            bulk.set_column(ExternalRef, "seen_run_id", self.syncer.run.pk, seen)
        if first:
            self.paged_read_pays = math.ceil(len(changed) / KEYS_PER_REQUEST) > math.ceil(len(page) / self.page_size)
        if self.paged_read_pays:
            return []
        self.outcome.total += len(page)
        self.outcome.unchanged += len(unchanged)
        self.done += len(unchanged)
        _count_unchanged(self.syncer, len(unchanged), total=len(page))
        return [] if self.stopped else changed

    def _read(self, keys: list[str]) -> Rows:
        return [row for rows in self.syncer.client.by_keys(self.rule.entity_set, keys, select=self.select)
                for row in rows]  # fmt: skip

    def _apply(self, rows: Rows) -> None:
        """Apply objects read by key, pages of at most the task's page size."""
        for start in range(0, len(rows), self.page_size):
            if self.stopped:
                return
            page = rows[start : start + self.page_size]
            self.stopped = self.syncer._page(self.rule, self.target, page, self.outcome, 0)  # 0: rerun pass 1
            self.done += len(page)
            self.applied = True
            if self.syncer.on_page is not None:
                self.syncer.on_page(self.outcome, self.done)


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
    returned: set[str],
) -> None:
    gone = [(ext, ref) for ext, ref in known.items() if ref[2] and ext not in returned]  # a version kept
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
    pks = [ref[1] for _ext, ref in gone]
    with transaction.atomic():
        bulk.set_column(ExternalRef, "version", "", pks)
        syncer.flush()
