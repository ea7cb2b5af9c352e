"""Writing to 1C for rules of direction "to 1C": Sdelka objects → POST (new) or PATCH (changed) of the mapped
fields, then a re-read of the object and a field-by-field comparison, because 1C silently truncates strings,
ignores unknown fields and strings sent into numbers: a difference is an error event, never a success.

What was last written is remembered in `ExternalRef.content_hash` (a hash of the Sdelka values of the mapped
fields) and `version` (1C's DataVersion after the write): an object whose values hash the same is unchanged
and not sent. A write refused by 1C is an error event with 1C's own text; writes are never retried.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from sdelka.exchange import bulk
from sdelka.exchange.models import EventLevel, ExchangeRun, ExternalRef

from . import values as v
from .client import ODataError
from .models import MappingRule
from .targets import TARGETS, Target

if TYPE_CHECKING:
    from .sync import RuleResult, Syncer

CHUNK = 200


def values_hash(values: dict[str, Any]) -> str:
    return hashed(values)[0]


_ENCODER = json.JSONEncoder(sort_keys=True, default=str, ensure_ascii=False)  # one for all: a pull hashes 100,000s


def hashed(values: dict[str, Any]) -> tuple[str, bulk.JsonText]:
    """The content hash of `values` and their JSON (which a new ref stores as its synced base: serialised once)."""
    payload = bulk.JsonText(_ENCODER.encode(values))
    return hashlib.sha1(payload.encode("utf-8"), usedforsecurity=False).hexdigest(), payload


def sdelka_values(rule: MappingRule, target: Target, obj: models.Model) -> dict[str, Any]:
    """The Sdelka side of every mapped pair (attnames: `unit_id` for the unit reference)."""
    out: dict[str, Any] = {}
    for pair in rule.fields:
        if "const" in pair:
            continue
        spec = target.fields[pair["sdelka"]]
        out[spec.attname(pair["sdelka"])] = getattr(obj, spec.attname(pair["sdelka"]))
    return out


def to_onec(
    rule: MappingRule,
    target: Target,
    obj: models.Model,
    guids: dict[tuple[str, int], str],
    only: set[str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The 1C body (1C field → value) and errors (1C field → message) for one Sdelka object (`only`: these
    Sdelka fields)."""
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for pair in rule.fields:
        onec = pair.get("onec", "")
        if "const" in pair or not onec or (only is not None and pair["sdelka"] not in only):
            continue
        name = pair["sdelka"]
        spec = target.fields[name]
        value = getattr(obj, spec.attname(name))
        if spec.kind == "ref":
            guid = guids.get((spec.ref, value)) if value is not None else v.ZERO_GUID
            if guid is None:
                errors[onec] = _("The %(entity)s this refers to is not in 1C yet.") % {"entity": spec.ref}
            else:
                body[onec] = guid
        elif spec.kind == "bool":
            body[onec] = (not value) if pair.get("invert") else bool(value)
        elif spec.kind == "choice":
            sources = [key for key, target_value in pair.get("map", {}).items() if target_value == value]
            if not sources:
                errors[onec] = _("Sdelka's value %(value)s has no 1C value in the rule.") % {"value": value}
            else:
                source = sources[0]
                body[onec] = source == "true" if source in ("true", "false") else source
        else:
            body[onec] = "" if value is None else str(value)
    return body, errors


def _same(sent: Any, stored: Any) -> bool:
    if isinstance(sent, bool) or isinstance(stored, bool):
        return v.boolean(stored) == bool(sent)
    return v.text(sent) == v.text(stored)


def _objects(target: Target) -> Iterator[list[models.Model]]:
    queryset = target.model._default_manager.order_by("pk")
    last = 0
    while True:
        chunk = list(queryset.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def push_rule(syncer: Syncer, rule: MappingRule, outcome: RuleResult, only_new: bool = False) -> None:
    """Send the rule's Sdelka objects that changed since they were last written to 1C (`only_new`: those not
    in 1C yet; a two-way rule has compared the linked ones while reading)."""
    from .sync import Change

    target = TARGETS[rule.entity]
    content_type = ContentType.objects.get_for_model(target.model)
    run = syncer.run
    if not only_new:
        outcome.total = target.model._default_manager.count()
        if run is not None:
            ExchangeRun.objects.filter(pk=run.pk).update(total=F("total") + outcome.total)
    for chunk in _objects(target):
        refs = {
            ref.object_id: ref
            for ref in ExternalRef.objects.filter(
                connection=syncer.connection,
                kind=target.ref_kind,
                content_type=content_type,
                object_id__in=[obj.pk for obj in chunk],
            )
        }
        guids = _reference_guids(syncer, rule, target, chunk)
        for obj in chunk:
            values = sdelka_values(rule, target, obj)
            digest = values_hash(values)
            ref = refs.get(obj.pk)
            if only_new and ref is not None:
                continue
            label = target.label(values) or str(obj)
            if ref is not None and ref.content_hash == digest and not syncer.full:
                outcome.count(Change("unchanged", ref.external_id, label), keep=False)
                continue
            body, errors = to_onec(rule, target, obj, guids)
            change = Change("create" if ref is None else "update", ref.external_id if ref else "", label)
            change.diff = {name: (None, value) for name, value in body.items()}
            if errors:
                change.action, change.errors = "refused", errors
                syncer._refused(change, outcome, body)
                continue
            if ref is None and not syncer.task.create_allowed:
                change.action = "skipped"
                outcome.count(change, keep=True)
                continue
            if syncer.dry_run:
                outcome.count(change, keep=True)
                continue
            _write_one(syncer, rule, target, obj, ref, body, values, change, outcome, content_type)
        if run is not None and not only_new:
            ExchangeRun.objects.filter(pk=run.pk).update(done=F("done") + len(chunk))
            syncer.flush()


def _reference_guids(
    syncer: Syncer, rule: MappingRule, target: Target, chunk: list[models.Model]
) -> dict[tuple[str, int], str]:
    guids: dict[tuple[str, int], str] = {}
    for pair in rule.fields:
        spec = target.fields[pair["sdelka"]]
        if spec.kind != "ref" or "const" in pair:
            continue
        pks = {getattr(obj, spec.attname(pair["sdelka"])) for obj in chunk} - {None}
        for object_id, external_id in ExternalRef.objects.filter(
            connection=syncer.connection, kind=TARGETS[spec.ref].ref_kind, object_id__in=pks
        ).values_list("object_id", "external_id"):
            guids[(spec.ref, object_id)] = external_id
    return guids


def _write_one(
    syncer: Syncer,
    rule: MappingRule,
    target: Target,
    obj: models.Model,
    ref: ExternalRef | None,
    body: dict[str, Any],
    values: dict[str, Any],
    change: Any,
    outcome: RuleResult,
    content_type: ContentType,
) -> None:
    client = syncer.client
    try:
        if ref is None:
            created = client.create(rule.entity_set, body)
            key = v.text(created.get("Ref_Key"))
        else:
            key = ref.external_id
            client.update(rule.entity_set, key, body)
        stored = client.entity(rule.entity_set, key)
    except ODataError as exc:
        change.action, change.errors = "refused", {"": str(exc)}
        outcome.count(change, keep=True)
        syncer.event(EventLevel.ERROR, str(exc), external_id=change.external_id, obj=change.label, value=exc.message)
        return
    change.external_id = key
    mismatches = {name: sent for name, sent in body.items() if not _same(sent, stored.get(name))}
    with transaction.atomic():
        if ref is None:
            ref = ExternalRef(
                connection=syncer.connection,
                kind=target.ref_kind,
                external_id=key,
                content_type=content_type,
                object_id=obj.pk,
            )
        # A mismatch keeps the hash empty: the object is sent again next time (and reported again).
        ref.content_hash = "" if mismatches else values_hash(values)
        ref.synced = {} if mismatches else values
        ref.version = v.text(stored.get("DataVersion"))[:100]
        ref.code = v.text(stored.get("Code"))[:100]
        ref.seen_run = syncer.run
        ref.save()
    if mismatches:
        change.action = "refused"
        change.errors = {
            name: _("1C stored %(stored)r instead of %(sent)r.") % {"stored": stored.get(name), "sent": sent}
            for name, sent in mismatches.items()
        }
        syncer._refused(change, outcome, {name: stored.get(name) for name in mismatches})
        return
    outcome.count(change, keep=True)
    counter = "created" if change.action == "create" else "updated"
    assert syncer.run is not None
    ExchangeRun.objects.filter(pk=syncer.run.pk).update(**{counter: F(counter) + 1})
