"""Running a sync task: read each rule's 1C objects page by page and upsert them into Sdelka.

* Pages: `$select` of the mapped fields only, ordered by Ref_Key, `$top`/`$skip` (1C has no server paging);
  the total comes from `…/$count` (never `$inlinecount`, which disables paging).
* Incremental: `ExternalRef.version` keeps each object's DataVersion; an object whose DataVersion is the stored
  one is unchanged and not mapped nor written. A one-way rule already pulled once first reads only Ref_Key and
  DataVersion, then the changed and new objects by key (incremental.py).
* Linking: by `ExternalRef`, else by the target's natural key (ИНН+КПП, ОКЕИ code) to an object not yet linked
  to another 1C object of this base; two 1C objects with one natural key: the second is refused.
* Writes per page in one transaction (bulk create/update, id map, counters, checkpoint). A crash loses at most
  the page in flight; the next run resumes at the checkpoint (rule and offset).
* Dry run: the same reads and decisions, nothing written on either side (no run, no journal); the result lists
  every record that would be created or updated with its per-field diff, every refusal and every conflict.
* Two-way rules ("both"): every object read is compared field by field with Sdelka's and with the values both
  sides agreed on at the last sync (`ExternalRef.synced`); merge.py decides per field by its ownership. Fields
  Sdelka should give are PATCHed into 1C (and read back) right after the page is read; fields both sides changed
  with ownership "ask" become `Conflict`s, untouched on both sides until someone decides. Sdelka objects not in
  1C yet are then created there as by a rule "to 1C".
* Every request goes to the run's journal with its timing; 1C's error text becomes an error event; a run with
  a failed rule ends "failed", never "success".
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, NotSupportedError, models, transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.exchange import bulk
from sdelka.exchange.apply_orders import EXCHANGE_USERNAME, counterparty_owner
from sdelka.exchange.models import (
    ACTIVE_RUN_STATUSES,
    Conflict,
    ConflictStatus,
    Connection,
    Direction,
    EventLevel,
    ExchangeEvent,
    ExchangeRun,
    ExternalRef,
    Route,
    RunStatus,
    Trigger,
)
from sdelka.exchange.services import finish_run, journal_event

from . import documents, incremental
from . import values as v
from .client import Attempt, ODataClient, ODataError
from .merge import MISSING, Outcome, decide, onec_changed_at
from .models import MappingRule, OnRecordError, OnRuleError, Ownership, SyncTask
from .push import _reference_guids, _same, hashed, push_rule, to_onec
from .rules import Mapped, external_id, map_row, select_fields
from .targets import TARGETS, Target
from .writer import PageWriter, usable

STALE_AFTER = timedelta(minutes=30)
# ExternalRef columns a page rewrites for the objects it read (updated_at last: the time of the write).
_REF_UPDATE = ["object_id", "content_hash", "version", "synced", "seen_run_id", "updated_at"]
# and those it writes for the objects new to Sdelka.
_REF_INSERT = ["connection_id", "kind", "external_id", "code", "content_type_id", "object_id", "content_hash",
               "version", "synced", "seen_run_id", "created_at", "updated_at"]  # fmt: skip
MAX_CHANGES_LISTED = 1000
__all__ = ["EXCHANGE_USERNAME", "SyncBusy", "run_task"]


class SyncBusy(Exception):
    """Another run of this connection is going."""


class StopTask(Exception):
    """The task's options say to stop (a record or rule error)."""


@dataclass
class Change:
    action: str  # create / update / unchanged / refused / skipped
    external_id: str
    label: str
    diff: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # 1C field → message
    # Two-way rules: Sdelka field → Sdelka's value to write into 1C; Sdelka field → (Sdelka's, 1C's) in conflict.
    to_onec: dict[str, Any] = field(default_factory=dict)
    conflicts: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "external_id": self.external_id,
            "label": self.label,
            "diff": {name: [_plain(old), _plain(new)] for name, (old, new) in self.diff.items()},
            "errors": self.errors,
            "to_onec": {name: _plain(value) for name, value in self.to_onec.items()},
            "conflicts": {name: [_plain(ours), _plain(theirs)] for name, (ours, theirs) in self.conflicts.items()},
        }


@dataclass
class _PageWrite:
    """What `Syncer._page` decided and `Syncer._write` writes: the objects to create and to update (with their
    changes and mapped 1C rows), the refs known before, the unchanged refs, the two-way rules' new synced bases and
    conflicts, the rows read, where the next page starts and the run's skipped and refused totals so far."""

    rule: MappingRule
    target: Target
    to_create: list[tuple[Change, Mapped, dict[str, Any], dict[str, Any]]]
    to_update: list[tuple[Change, Mapped, models.Model, dict[str, Any]]]
    refs: dict[str, tuple[int, int, str]]
    unchanged_refs: list[int]
    rows: int
    next_offset: int
    synced: dict[str, dict[str, Any]]
    conflicts: dict[str, list[Conflict]]
    skipped: int = 0
    refused: int = 0
    ready: _PageRows | None = None  # its rows, made ready before the write (by the syncer's thread)


@dataclass
class _PageRows:
    """A page's rows as the database takes them (`Syncer._rows`): its new objects, how many, the new refs (in
    `_REF_INSERT`'s order) and, unless their ids are needed, their INSERT made ready; the rewritten refs (in
    `_REF_UPDATE`'s order, the pk first), the ids of the refs known, and the counts by action."""

    objects: bulk.Insert
    created: int
    new_refs: list[tuple[Any, ...]] = field(default_factory=list)
    refs_insert: bulk.Insert | None = None
    old_refs: list[tuple[Any, ...]] = field(default_factory=list)
    ref_ids: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"created": 0, "updated": 0, "unchanged": 0})


def _page_keys(rule: MappingRule, target: Target, mapped: Iterable[Mapped]) -> set[tuple[str, str]] | None:
    """What a page reads or writes that another page may read or write too: its objects' external ids and the
    first field of their natural keys; None when the target refers to its own kind or a natural key is a
    reference (the page's reads depend on more than that: read them after the previous page's commit)."""
    first = target.natural_key[0] if target.natural_key else ""
    if any(spec.kind == "ref" and spec.ref == rule.entity for spec in target.fields.values()) or (
        first and target.fields[first].kind == "ref"
    ):
        return None
    keys = {("ref", item.external_id) for item in mapped}
    if first:  # an empty key links nothing
        keys |= {("key", str(item.values[first])) for item in mapped if item.values.get(first)}
    return keys


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, bool | int | str) else str(value)


@dataclass
class RuleResult:
    name: str
    entity_set: str
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: int = 0
    skipped: int = 0
    conflicts: int = 0  # records with a field in conflict (counted besides their action)
    gone: int = 0  # objects 1C no longer returns (incremental.py), counted once
    error: str = ""
    changes: list[Change] = field(default_factory=list)

    def count(self, change: Change, keep: bool) -> None:
        attr = {"create": "created", "update": "updated", "refused": "refused", "skipped": "skipped"}
        setattr(self, attr.get(change.action, "unchanged"), getattr(self, attr.get(change.action, "unchanged")) + 1)
        self.conflicts += bool(change.conflicts)
        listed = change.action != "unchanged" or change.conflicts
        if keep and listed and len(self.changes) < MAX_CHANGES_LISTED:
            self.changes.append(change)

    def as_dict(self, with_changes: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "rule": self.name,
            "entity_set": self.entity_set,
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": self.refused,
            "skipped": self.skipped,
            "conflicts": self.conflicts,
            "gone": self.gone,
            "error": self.error,
        }
        if with_changes:
            data["changes"] = [change.as_dict() for change in self.changes]
        return data


@dataclass
class SyncResult:
    task: str
    dry_run: bool
    run_id: int | None = None
    status: str = RunStatus.SUCCESS
    message: str = ""
    resumed_from: dict[str, Any] = field(default_factory=dict)
    rules: list[RuleResult] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == RunStatus.FAILED

    def totals(self) -> dict[str, int]:
        keys = ("created", "updated", "unchanged", "refused", "skipped", "conflicts")
        return {key: sum(getattr(rule, key) for rule in self.rules) for key in keys}

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "dry_run": self.dry_run,
            "run": self.run_id,
            "status": self.status,
            "message": self.message,
            "resumed_from": self.resumed_from,
            "totals": self.totals(),
            "rules": [rule.as_dict(with_changes=self.dry_run) for rule in self.rules],
        }


class Syncer:
    def __init__(
        self,
        *,
        connection: Connection,
        task: SyncTask,
        client: ODataClient,
        dry_run: bool = False,
        trigger: str = Trigger.MANUAL,
        on_page: Callable[[RuleResult, int], None] | None = None,
        full: bool = False,
        queued: ExchangeRun | None = None,
    ) -> None:
        self.connection = connection
        self.queued = queued  # a run made when the task was queued (the API returns its id): this run takes it
        self.task = task
        self.client = client
        self.dry_run = dry_run
        self.full = full  # full resync: DataVersion and write hashes are not trusted, no resume
        self.trigger = trigger
        self.on_page = on_page
        self.run: ExchangeRun | None = None
        self.result = SyncResult(task=task.name, dry_run=dry_run)
        self._events: list[ExchangeEvent] = []
        self._events_lock = threading.Lock()
        self._content_types: dict[type[models.Model], ContentType] = {}
        # Tables the pull fills and looks up page by page (refs by external id, targets by natural key).
        self._statistics: dict[type[models.Model], bulk.Statistics] = {
            ExternalRef: bulk.Statistics(ExternalRef, ["connection_id", "kind", "external_id", "object_id"])
        }
        self._owner_id: int | None = None
        self._offset = 0  # records of the current rule already committed
        self._frozen = False  # a rule failed: the checkpoint stays at it so the next run redoes it
        # Two-way rules, per page: external id → the new synced base, and the conflicts to raise.
        self._synced: dict[str, dict[str, Any]] = {}
        self._conflicts: dict[str, list[Conflict]] = {}
        self._writer: PageWriter | None = None  # writes the rule's pages on a second connection (writer.py)
        client.on_request = self._log_request

    # --- journal ---

    def event(self, level: str, message: str, *, external_id: str = "", obj: str = "", field_name: str = "",
              value: str = "") -> None:  # fmt: skip
        if self.run is None:
            return
        event = journal_event(
            run=self.run,
            connection=self.connection,
            level=level,
            message=message,
            external_id=external_id,
            object_repr=obj,
            field=field_name,
            value=value,
        )
        with self._events_lock:  # requests of a prefetched page are journalled from the fetching thread
            self._events.append(event)

    def flush(self) -> None:
        self._save_events(self._take_events())

    def _take_events(self) -> list[ExchangeEvent]:
        with self._events_lock:
            events, self._events = self._events, []
        return events

    def _save_events(self, events: list[ExchangeEvent]) -> None:
        if events:
            ExchangeEvent.objects.bulk_create(events)

    def _log_request(self, attempt: Attempt) -> None:
        status = " ".join(str(part) for part in (attempt.status, attempt.error) if part)
        ok = attempt.status is not None and attempt.status < 400 and not attempt.error
        level = EventLevel.INFO if ok else EventLevel.WARNING
        self.event(level, f"{attempt.method} {attempt.path} → {status} in {attempt.seconds:.3f} s", obj="request")

    # --- run lifecycle ---

    def _start_run(self) -> ExchangeRun:
        if self.queued is not None:  # it holds the connection's one active run already
            ExchangeRun.objects.filter(pk=self.queued.pk).update(status=RunStatus.RUNNING)
            self.queued.refresh_from_db()
            return self.queued
        active = ExchangeRun.objects.filter(
            connection=self.connection, route=Route.ODATA, status__in=ACTIVE_RUN_STATUSES
        ).first()
        if active is not None:
            last = active.events.aggregate(last=Max("created_at"))["last"] or active.started_at
            if timezone.now() - last < STALE_AFTER:
                raise SyncBusy(active.busy_message())
            finish_run(run=active, status=RunStatus.FAILED, message=_("Interrupted (no activity); resumed later."))
        try:
            with transaction.atomic():
                return ExchangeRun.objects.create(
                    connection=self.connection,
                    route=Route.ODATA,
                    direction=Direction.IN,
                    trigger=self.trigger,
                    status=RunStatus.RUNNING,
                )
        except IntegrityError as exc:
            raise SyncBusy(_("Another run of this connection has just started.")) from exc

    def execute(self) -> SyncResult:
        rules = [rule for rule in self.task.ordered_rules() if rule.is_active]
        start_index, start_skip = 0, 0
        checkpoint = {} if self.full else (self.task.checkpoint or {})
        rule_ids = [rule.pk for rule in rules]
        if checkpoint.get("rule") in rule_ids:
            start_index, start_skip = rule_ids.index(checkpoint["rule"]), int(checkpoint.get("skip", 0))
            self.result.resumed_from = dict(checkpoint)
        if not self.dry_run:
            self.run = self._start_run()
            self.result.run_id = self.run.pk
            SyncTask.objects.filter(pk=self.task.pk).update(last_run=self.run)
            if self.result.resumed_from:
                self.event(
                    EventLevel.INFO,
                    _("Resuming run #%(run)s at rule %(rule)s, record %(skip)s.")
                    % {"run": checkpoint.get("run"), "rule": rules[start_index].name, "skip": start_skip},
                )
        failed = False
        try:
            for index, rule in enumerate(rules):
                if index < start_index:
                    continue
                outcome = RuleResult(rule.name, rule.entity_set)
                self.result.rules.append(outcome)
                try:
                    if rule.entity in documents.HANDLED:
                        documents.run_rule(self, rule, outcome, start_skip if index == start_index else 0)
                    elif rule.direction == Direction.OUT:
                        push_rule(self, rule, outcome)
                    else:
                        self._rule(rule, outcome, start_skip if index == start_index else 0)
                        if rule.direction == Direction.BOTH:
                            push_rule(self, rule, outcome, only_new=True)
                except ODataError as exc:
                    failed = True
                    outcome.error = str(exc)
                    self._freeze(rule)
                    self.event(EventLevel.ERROR, str(exc), obj=rule.entity_set, value=exc.message)
                    if self.task.on_rule_error == OnRuleError.STOP:
                        raise StopTask(str(exc)) from exc
        except StopTask as exc:
            failed = True
            self.result.message = str(exc)
        except Exception as exc:
            failed = True
            self.result.message = _("Internal error: %(error)s") % {"error": exc}
            self.event(EventLevel.ERROR, self.result.message)
            self._finish(failed)
            raise
        self._finish(failed)
        return self.result

    def progress(self, rule: MappingRule, next_offset: int, rows: int) -> None:
        """A rule that writes record by record (documents, registers) reports a finished page: counters,
        journal, and the checkpoint (`next_offset`: where the next run resumes; 0 keeps it)."""
        if self.run is not None:
            with transaction.atomic():
                ExchangeRun.objects.filter(pk=self.run.pk).update(done=F("done") + rows)
                if next_offset and not self._frozen:
                    SyncTask.objects.filter(pk=self.task.pk).update(
                        checkpoint={"run": self.run.pk, "rule": rule.pk, "skip": next_offset}
                    )
                self.flush()
        self._offset = next_offset or self._offset
        if self.on_page is not None:
            self.on_page(self.result.rules[-1], next_offset)

    def _freeze(self, rule: MappingRule) -> None:
        """Keep the checkpoint at the first failed rule (and how far it got) for the next run."""
        if self.run is None or self._frozen:
            return
        self._frozen = True
        SyncTask.objects.filter(pk=self.task.pk).update(
            checkpoint={"run": self.run.pk, "rule": rule.pk, "skip": self._offset}
        )

    def _finish(self, failed: bool) -> None:
        totals = self.result.totals()
        summary = (
            _(
                "%(created)d created, %(updated)d updated, %(unchanged)d unchanged, %(refused)d refused, "
                "%(skipped)d skipped, %(conflicts)d in conflict."
            )
            % totals
        )
        errors = [rule.error for rule in self.result.rules if rule.error]
        self.result.status = RunStatus.FAILED if failed else RunStatus.SUCCESS
        self.result.message = " ".join(filter(None, [self.result.message or (errors[0] if errors else ""), summary]))
        if self.run is None:
            return
        self.flush()
        ExchangeRun.objects.filter(pk=self.run.pk).update(
            created=totals["created"],
            updated=totals["updated"],
            unchanged=totals["unchanged"],
            skipped=totals["skipped"],
            failed=totals["refused"],
        )
        if not failed:
            SyncTask.objects.filter(pk=self.task.pk).update(checkpoint={})
        finish_run(run=self.run, status=self.result.status, message=self.result.message)

    # --- one rule ---

    def _rule(self, rule: MappingRule, outcome: RuleResult, start: int) -> None:
        target = TARGETS[rule.entity]
        if incremental.applies(self, rule):
            self._offset = 0
            if incremental.run_rule(self, rule, target, outcome):
                return
        select = select_fields(rule)
        self._offset = start
        outcome.total = self.client.count(rule.entity_set, rule.filter)
        if self.run is not None:
            ExchangeRun.objects.filter(pk=self.run.pk).update(total=F("total") + outcome.total, done=F("done") + start)
            self.flush()
        page_size = max(1, self.task.page_size)
        writer = self._writer = PageWriter() if usable(rule, dry_run=self.dry_run) else None
        try:
            for offset, rows in self.client.pages(
                rule.entity_set, select=select, filter=rule.filter, page_size=page_size, start=start, prefetch=True
            ):
                stop_rule = self._page(rule, target, rows, outcome, offset + len(rows))
                self._committed(outcome, [offset + len(rows)] if writer is None else writer.take_committed())
                if stop_rule:
                    break
            if writer is not None:
                writer.wait()
                self._committed(outcome, writer.take_committed())
        finally:
            self._writer = None
            failed_write = writer.close() if writer is not None else None
            if failed_write is not None:  # something else failed meanwhile and is on its way up: journal this one
                self.event(EventLevel.ERROR, _("Internal error: %(error)s") % {"error": failed_write})

    def _committed(self, outcome: RuleResult, offsets: list[int]) -> None:
        """Report the pages committed (their next offsets) to `on_page`."""
        if self.on_page is not None:
            for offset in offsets:
                self.on_page(outcome, offset)

    def _content_type(self, model: type[models.Model]) -> ContentType:
        if model not in self._content_types:
            self._content_types[model] = ContentType.objects.get_for_model(model)
        return self._content_types[model]

    def _resolve(self, target: Target, mapped: list[Mapped]) -> dict[tuple[str, str], int]:
        """(sdelka entity, 1C GUID) → our pk for every reference of the page, in one query per entity."""
        wanted: dict[str, set[str]] = {}
        for item in mapped:
            for name, guid in item.refs.items():
                if guid:
                    wanted.setdefault(target.fields[name].ref, set()).add(guid)
        found: dict[tuple[str, str], int] = {}
        for entity, guids in wanted.items():
            kind = TARGETS[entity].ref_kind
            for ext, pk in ExternalRef.objects.filter(
                connection=self.connection, kind=kind, external_id__in=guids
            ).values_list("external_id", "object_id"):
                found[(entity, ext)] = pk
        return found

    def _natural(self, target: Target, keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], int]:
        """Objects found by natural key and not linked to another 1C object of this base."""
        if not target.natural_key or not keys:
            return {}
        wanted = set(keys)
        first = target.natural_key[0]
        found: dict[tuple[Any, ...], list[int]] = {}
        # One indexed `IN` on the first key field; the rest is matched here (an OR of pairs is slow to build).
        rows = target.model._default_manager.filter(bulk.one_of(first, {key[0] for key in wanted}))
        for row in rows.values("pk", *target.natural_key):
            key = tuple(row[name] for name in target.natural_key)
            if key in wanted:
                found.setdefault(key, []).append(row["pk"])
        return {key: pks[0] for key, pks in found.items() if len(pks) == 1}

    def _page(self, rule: MappingRule, target: Target, rows: list[dict[str, Any]], outcome: RuleResult,
              next_offset: int) -> bool:  # fmt: skip
        """Decide and (unless dry) write one page; True when the task says to skip the rest of the rule."""
        model = target.model
        self._synced, self._conflicts = {}, {}
        keyed = [(external_id(rule, row), v.text(row.get("DataVersion")), row) for row in rows]
        premapped: dict[str, Mapped] = {}
        if self._writer is not None:  # decide this page while the previous one is written, unless it reads that one
            premapped = {ext: map_row(rule, target, row, ext) for ext, _v, row in keyed}
            keys = _page_keys(rule, target, premapped.values())
            if keys is None or self._writer.touches(keys):
                self._writer.wait()
        refs: dict[str, tuple[int, int, str]] = {
            ext: (pk, object_id, version)
            for ext, pk, object_id, version in ExternalRef.objects.filter(
                bulk.one_of("external_id", [ext for ext, _v, _r in keyed]),
                connection=self.connection,
                kind=target.ref_kind,
            ).values_list("external_id", "pk", "object_id", "version")
        }
        # Same DataVersion as stored (and the object still exists): unchanged, not even mapped.
        two_way = rule.direction == Direction.BOTH
        same = {
            ext: refs[ext]
            for ext, version, _row in keyed
            if version and ext in refs and refs[ext][2] == version and not self.full and not two_way
        }
        alive = set(
            model._default_manager.filter(pk__in=[ref[1] for ref in same.values()]).values_list("pk", flat=True)
        )
        unchanged_refs: list[int] = []
        mapped: list[Mapped] = []
        for ext, _version, row in keyed:
            known = same.get(ext)
            if known is not None and known[1] in alive:
                unchanged_refs.append(known[0])
                outcome.count(Change("unchanged", ext, ""), keep=False)
            else:
                mapped.append(premapped.get(ext) or map_row(rule, target, row, ext))
        objects = model._default_manager.in_bulk([refs[m.external_id][1] for m in mapped if m.external_id in refs])
        onec_field = {pair["sdelka"]: pair.get("onec", "") for pair in rule.fields}
        resolved = self._resolve(target, mapped)
        defaults = target.defaults()

        decisions: list[tuple[Change, Mapped, models.Model | None, dict[str, Any]]] = []
        need_natural: list[tuple[Mapped, tuple[Any, ...]]] = []
        for item in mapped:
            known = refs.get(item.external_id)
            obj = objects.get(known[1]) if known is not None else None
            label = target.label(item.values) or item.external_id
            values = dict(item.values)
            for name, guid in item.refs.items():
                spec = target.fields[name]
                pk = resolved.get((spec.ref, guid)) if guid else None
                if pk is None and guid:
                    self.event(
                        EventLevel.WARNING,
                        _("%(field)s refers to a 1C object not yet in Sdelka; the default is used.")
                        % {"field": onec_field[name]},
                        external_id=item.external_id,
                        obj=label,
                        field_name=onec_field[name],
                        value=guid,
                    )
                values[spec.attname(name)] = pk if pk is not None else defaults.get(spec.attname(name))
            errors = dict(item.errors.values())
            for name, message in target.check(values).items():
                errors[onec_field.get(name, name) or name] = message
            change = Change("refused" if errors else "pending", item.external_id, label, errors=errors)
            decisions.append((change, item, obj, values))
            if not errors and obj is None and target.natural_key:
                key = tuple(values.get(name, "") for name in target.natural_key)
                if key[0]:
                    need_natural.append((item, key))

        state = self._two_way_state(target, refs) if two_way else {}
        natural = self._natural(target, [key for _item, key in need_natural])
        if natural:
            linked = dict(
                ExternalRef.objects.filter(
                    connection=self.connection, kind=target.ref_kind, object_id__in=list(natural.values())
                ).values_list("object_id", "external_id")
            )
            extra = model._default_manager.in_bulk([pk for pk in natural.values() if pk not in linked])
        else:
            linked, extra = {}, {}
        keys_of = {id(item): key for item, key in need_natural}
        claimed: dict[tuple[Any, ...], str] = {}

        to_create: list[tuple[Change, Mapped, dict[str, Any], dict[str, Any]]] = []
        has_owner = any(f.attname == "owner_id" for f in model._meta.concrete_fields)
        to_update: list[tuple[Change, Mapped, models.Model, dict[str, Any]]] = []
        now = timezone.now()
        for change, item, obj, values in decisions:
            if change.action == "refused":
                self._refused(change, outcome, item.raw)
                if self.task.on_record_error != OnRecordError.GO_ON:
                    break
                continue
            natural_key = keys_of.get(id(item))
            if obj is None and natural_key is not None:
                key = natural_key
                if key in claimed and claimed[key] != item.external_id:
                    change.action = "refused"
                    change.errors = {
                        "/".join(onec_field.get(n, n) for n in target.natural_key): _(
                            "Another 1C object (%(other)s) has the same %(key)s."
                        )
                        % {"other": claimed[key], "key": "/".join(onec_field.get(n, n) for n in target.natural_key)}
                    }
                    self._refused(change, outcome, item.raw)
                    continue
                claimed[key] = item.external_id
                pk = natural.get(key)
                if pk is not None:
                    if pk in linked and linked[pk] != item.external_id:
                        change.action = "refused"
                        change.errors = {
                            "Ref_Key": _("The Sdelka object with the same %(key)s is linked to 1C object %(other)s.")
                            % {"key": "/".join(onec_field.get(n, n) for n in target.natural_key), "other": linked[pk]}
                        }
                        self._refused(change, outcome, item.raw)
                        continue
                    obj = extra.get(pk)
            if obj is None:
                if not self.task.create_allowed:
                    change.action = "skipped"
                    outcome.count(change, keep=True)
                    continue
                change.action = "create"
                if self.dry_run:  # listed; a real run only counts creations
                    change.diff = {name: (None, value) for name, value in values.items()}
                row = {**defaults, **values}
                if has_owner and row.get("owner_id") is None:
                    row["owner_id"] = self._owner()
                to_create.append((change, item, row, values))
            else:
                if two_way:
                    values = self._merge(rule, target, change, item, obj, values, state.get(item.external_id), now)
                diff = {
                    name: (getattr(obj, name), value) for name, value in values.items() if getattr(obj, name) != value
                }
                change.action = "update" if diff or change.to_onec else "unchanged"
                change.diff = diff
                for name, value in values.items():
                    setattr(obj, name, value)
                if hasattr(obj, "updated_at") and diff:
                    obj.updated_at = now
                to_update.append((change, item, obj, values))
        for change, *_rest in to_create + to_update:
            outcome.count(change, keep=self.dry_run)
        stop_rule = any(c.action == "refused" for c, *_r in decisions) and (
            self.task.on_record_error != OnRecordError.GO_ON
        )
        if self.dry_run:
            if stop_rule and self.task.on_record_error == OnRecordError.STOP:
                raise StopTask(_("A record was refused and the task says to stop."))
            return stop_rule
        if two_way:
            self._send_to_onec(rule, target, to_update)
        page = _PageWrite(rule, target, to_create, to_update, refs, unchanged_refs, len(rows), next_offset,
                          self._synced, self._conflicts, skipped=sum(r.skipped for r in self.result.rules),
                          refused=sum(r.refused for r in self.result.rules))  # fmt: skip
        if self._writer is None:
            self._write(page)
        else:
            self._write_later(page)
        if stop_rule and self.task.on_record_error == OnRecordError.STOP:
            raise StopTask(_("A record was refused and the task says to stop."))
        return stop_rule

    # --- two-way rules ---

    def _two_way_state(
        self, target: Target, refs: dict[str, tuple[int, int, str]]
    ) -> dict[str, tuple[int, dict[str, Any], Any, set[str], str]]:
        """external id → (ref pk, synced base, last sync time, fields with an open conflict, stored version)."""
        ref_pks = [ref[0] for ref in refs.values()]
        open_fields: dict[int, set[str]] = {}
        for ref_id, name in Conflict.objects.filter(
            external_ref_id__in=ref_pks, status=ConflictStatus.OPEN
        ).values_list("external_ref_id", "field"):
            open_fields.setdefault(ref_id, set()).add(name)
        return {
            ext: (pk, synced or {}, updated_at, open_fields.get(pk, set()), version)
            for ext, pk, synced, updated_at, version in ExternalRef.objects.filter(pk__in=ref_pks).values_list(
                "external_id", "pk", "synced", "updated_at", "version"
            )
        }

    def _merge(
        self,
        rule: MappingRule,
        target: Target,
        change: Change,
        item: Mapped,
        obj: models.Model,
        theirs: dict[str, Any],
        state: tuple[int, dict[str, Any], Any, set[str], str] | None,
        now: Any,
    ) -> dict[str, Any]:
        """Decide every field of a linked object (merge.py); returns the values Sdelka takes, notes what goes to
        1C and what is in conflict on `change`, and keeps the new synced base for `_write`."""
        _pk, base, last_sync, open_fields, stored_version = state or (None, {}, None, set(), "")
        ours_changed_at = getattr(obj, "updated_at", None)
        theirs_changed_at = (
            onec_changed_at(last_sync, now) if item.version != stored_version or last_sync is None else last_sync
        )
        names = {target.fields[pair["sdelka"]].attname(pair["sdelka"]): pair for pair in rule.fields}
        resolved: dict[str, Any] = {}
        synced: dict[str, Any] = {}
        conflicts: list[Conflict] = []
        for name, value in theirs.items():
            pair = names.get(name, {})
            ours = getattr(obj, name)
            if name in open_fields:  # someone has to decide first: neither side moves
                resolved[name] = ours
                if name in base:
                    synced[name] = base[name]
                continue
            ownership = Ownership.ONEC if "const" in pair else pair.get("ownership", Ownership.ONEC)
            outcome = decide(
                ownership,
                base.get(name, MISSING),
                ours,
                value,
                ours_changed_at=ours_changed_at,
                theirs_changed_at=theirs_changed_at,
            )
            if outcome in (Outcome.SAME, Outcome.TO_SDELKA):
                resolved[name] = synced[name] = value
            elif outcome == Outcome.TO_ONEC:
                resolved[name] = synced[name] = ours
                change.to_onec[pair.get("sdelka", name)] = ours
            else:
                resolved[name] = ours
                if name in base:
                    synced[name] = base[name]
                change.conflicts[name] = (ours, value)
                conflicts.append(
                    Conflict(
                        connection=self.connection,
                        rule=rule,
                        run=self.run,
                        object_repr=change.label[:255],
                        field=name,
                        onec_field=pair.get("onec", "")[:255],
                        base_value=base.get(name),
                        our_value=ours,
                        onec_value=value,
                        our_changed_at=ours_changed_at,
                        onec_changed_at=theirs_changed_at,
                    )
                )
        self._synced[item.external_id] = synced
        if conflicts:
            self._conflicts[item.external_id] = conflicts
            self.conflicts_event(conflicts, external_id=item.external_id, obj=change.label)
        return resolved

    def conflicts_event(self, conflicts: list[Conflict], *, external_id: str, obj: str) -> None:
        """The warning naming an object's fields that wait for a decision."""
        self.event(
            EventLevel.WARNING,
            _("Both Sdelka and 1C changed %(fields)s; the conflict waits for a decision.")
            % {"fields": ", ".join(c.onec_field or c.field for c in conflicts)},
            external_id=external_id,
            obj=obj,
        )

    def _send_to_onec(
        self, rule: MappingRule, target: Target, to_update: list[tuple[Change, Mapped, models.Model, dict[str, Any]]]
    ) -> None:
        """PATCH the fields Sdelka gives to 1C, re-read and compare; a refusal or a mismatch keeps the old base
        of those fields, so the next run tries again."""
        sending = [(c, i, obj) for c, i, obj, _v in to_update if c.to_onec]
        if not sending:
            return
        guids = _reference_guids(self, rule, target, [obj for _c, _i, obj in sending])
        for change, item, obj in sending:
            body, errors = to_onec(rule, target, obj, guids, only=set(change.to_onec))
            key = v.text(item.raw.get("Ref_Key")) or item.external_id
            failed: dict[str, str] = dict(errors)
            if body:
                try:
                    self.client.update(rule.entity_set, key, body)
                    stored = self.client.entity(rule.entity_set, key)
                except ODataError as exc:
                    failed.update({name: str(exc) for name in body})
                else:
                    item.version = v.text(stored.get("DataVersion"))
                    for name, sent in body.items():
                        if not _same(sent, stored.get(name)):
                            failed[name] = _("1C stored %(stored)r instead of %(sent)r.") % {
                                "stored": stored.get(name),
                                "sent": sent,
                            }
            for onec, message in failed.items():
                self.event(EventLevel.ERROR, message, external_id=item.external_id, obj=change.label,
                           field_name=onec, value=str(body.get(onec, "")))  # fmt: skip
            if failed:
                change.errors.update(failed)
                self._keep_old_base(rule, target, item.external_id, {p["sdelka"] for p in rule.fields
                                                                      if p.get("onec") in failed})  # fmt: skip

    def _keep_old_base(self, rule: MappingRule, target: Target, external_id: str, names: set[str]) -> None:
        synced = self._synced.get(external_id)
        if synced is None:
            return
        base = (
            ExternalRef.objects.filter(connection=self.connection, kind=target.ref_kind, external_id=external_id)
            .values_list("synced", flat=True)
            .first()
            or {}
        )
        for name in names:
            attname = target.fields[name].attname(name)
            if attname in base:
                synced[attname] = base[attname]
            else:
                synced.pop(attname, None)

    def _raise_conflicts(self, ref_ids: dict[str, int], raised: dict[str, list[Conflict]]) -> None:
        pending = []
        for ext, conflicts in raised.items():
            ref_id = ref_ids.get(ext)
            for conflict in conflicts:
                if ref_id is not None:
                    conflict.external_ref_id = ref_id
                    pending.append(conflict)
        Conflict.objects.bulk_create(pending)

    def _owner(self) -> int:
        if self._owner_id is None:
            self._owner_id = counterparty_owner(self.connection).pk
        return self._owner_id

    def _refused(self, change: Change, outcome: RuleResult, raw: dict[str, Any]) -> None:
        outcome.count(change, keep=True)
        for onec, message in change.errors.items():
            value = raw.get(onec)
            self.event(
                EventLevel.ERROR,
                message,
                external_id=change.external_id,
                obj=change.label,
                field_name=onec,
                value="" if value is None else str(value),
            )

    def _write_later(self, page: _PageWrite) -> None:
        """Hand the page to the writer thread with the journal lines so far (writer.py); should the write fail,
        they go back to the list the run's end saves. Its rows are made ready here: the writer's thread waits on
        the database, this one on the writer, and both need the one interpreter lock for Python."""
        assert self._writer is not None
        page.ready = self._rows(page, self._new_ids(page.target.model, len(page.to_create)))
        writing = _page_keys(page.rule, page.target, [item for _c, item, _o, _v in page.to_create + page.to_update])
        self._writer.wait()  # one page in flight: the previous one is committed first (its failure raised here)
        events = self._take_events()

        def write() -> int:
            try:
                self._write(page, events)
            except BaseException:
                with self._events_lock:
                    self._events[:0] = events
                raise
            return page.next_offset

        self._writer.submit(write, frozenset(writing or ()))

    @staticmethod
    def _new_ids(model: type[models.Model], count: int) -> list[int]:
        """Primary keys for the page's new objects (SQLite: inside the page's transaction, which holds its lock)."""
        ids = bulk.reserve_ids(model, count) if count else []
        if ids is None:
            raise NotSupportedError("reserving ids needs PostgreSQL or SQLite, the databases Sdelka runs on")
        return ids

    def _rows(self, page: _PageWrite, ids: list[int]) -> _PageRows:
        """The page's new objects (with the primary keys `ids`) and refs as the database takes them; reads
        nothing from the database."""
        assert self.run is not None
        target = page.target
        model = target.model
        content_type = self._content_type(model)
        now = timezone.now()
        columns, values = bulk.value_rows(model, [row for _c, _i, row, _v in page.to_create])
        objects = bulk.prepare_insert(model, [model._meta.pk.attname, *columns],
                                      [(pk, *row) for pk, row in zip(ids, values, strict=True)])  # fmt: skip
        created = [(c, i, pk, mapped) for (c, i, _row, mapped), pk in zip(page.to_create, ids, strict=True)]
        rows = _PageRows(objects, len(created))
        for change, item, pk, values_of in created + [(c, i, obj.pk, mapped) for c, i, obj, mapped in page.to_update]:
            rows.counts[{"create": "created", "update": "updated"}.get(change.action, "unchanged")] += 1
            synced = page.synced.pop(item.external_id, None)
            content_hash, payload = hashed(values_of)
            known = page.refs.get(item.external_id)
            if known is None:
                code = str(item.raw.get("Code", "") or "").strip()[:100]
                rows.new_refs.append((self.connection.pk, target.ref_kind, item.external_id, code, content_type.pk,
                                      pk, content_hash, item.version[:100], payload if synced is None else synced,
                                      self.run.pk, now, now))  # fmt: skip
            else:
                rows.ref_ids[item.external_id] = known[0]
                rows.old_refs.append((known[0], pk, content_hash, item.version[:100],
                                      payload if synced is None else synced, self.run.pk, now))  # fmt: skip
        if not page.conflicts:  # else the new refs' ids are needed: they are inserted returning them
            rows.refs_insert = bulk.prepare_insert(ExternalRef, _REF_INSERT, rows.new_refs)
        return rows

    def _write(self, page: _PageWrite, events: list[ExchangeEvent] | None = None) -> None:
        """Write one page, its refs, counters and checkpoint in one transaction; with the journal lines `events`
        (None: every line so far)."""
        assert self.run is not None
        model = page.target.model
        with transaction.atomic():
            bulk.without_flush_on_commit()  # the page and its checkpoint are one transaction: a lost page is reread
            rows = page.ready or self._rows(page, self._new_ids(model, len(page.to_create)))
            bulk.run_insert(rows.objects)
            changed = [(c, obj) for c, _i, obj, _v in page.to_update if c.action == "update"]
            if changed:
                fields = sorted({name for c, _obj in changed for name in c.diff} | ({"updated_at"} if hasattr(
                    model, "updated_at") else set()))  # fmt: skip
                bulk.update_rows(
                    model, fields, [(obj.pk, *(getattr(obj, name) for name in fields)) for _c, obj in changed]
                )
            if rows.refs_insert is None:
                new_ids = bulk.insert_returning_ids(ExternalRef, _REF_INSERT, rows.new_refs)
                rows.ref_ids.update(zip((row[2] for row in rows.new_refs), new_ids, strict=True))
            else:
                bulk.run_insert(rows.refs_insert)
            bulk.update_rows(ExternalRef, _REF_UPDATE, rows.old_refs)
            if page.conflicts:
                self._raise_conflicts(rows.ref_ids, page.conflicts)
            bulk.set_column(ExternalRef, "seen_run_id", self.run.pk, page.unchanged_refs)
            counts = rows.counts
            ExchangeRun.objects.filter(pk=self.run.pk).update(
                created=F("created") + counts["created"],
                updated=F("updated") + counts["updated"],
                unchanged=F("unchanged") + counts["unchanged"] + len(page.unchanged_refs),
                skipped=page.skipped,
                failed=page.refused,
                done=F("done") + page.rows,
            )
            if not self._frozen:
                SyncTask.objects.filter(pk=self.task.pk).update(
                    checkpoint={"run": self.run.pk, "rule": page.rule.pk, "skip": page.next_offset}
                )
            self._save_events(self._take_events() if events is None else events)
        self._offset = page.next_offset
        self._statistics[ExternalRef].wrote(len(rows.new_refs))
        if page.target.natural_key:
            self._statistics.setdefault(model, bulk.Statistics(model, page.target.natural_key)).wrote(rows.created)


def run_task(
    *,
    connection: Connection,
    task: SyncTask,
    client: ODataClient,
    dry_run: bool = False,
    trigger: str = Trigger.MANUAL,
    on_page: Callable[[RuleResult, int], None] | None = None,
    full: bool = False,
    user: Any = None,
    queued: ExchangeRun | None = None,
) -> SyncResult:
    """Run one task now (or as a dry run; `full`: a full resync that compares every object); see the module
    docstring. `user`: who asks (API, screen, `--user` of the command) — refused unless the task lets him run
    it; None is the system itself (the scheduler, the shell)."""
    if user is not None and not task.may_run(user):
        raise PermissionDenied(
            _("%(user)s may not run the task %(task)s: it is open to administrators and the teams it names.")
            % {"user": user, "task": task.name}
        )
    return Syncer(
        connection=connection, task=task, client=client, dry_run=dry_run, trigger=trigger, on_page=on_page, full=full,
        queued=queued,
    ).execute()  # fmt: skip
