"""The one upsert engine: canonical records of a connection → catalogue models.

Records come in batches (`BATCH_SIZE`). Per batch and kind, existing objects are found through
`ExternalRef` in one query, then by natural key (name for price types, warehouses and properties, whose
names are unique; ОКЕИ code for units; article/barcode for products when the connection allows).
A record whose content hash (sha1 of the canonical record plus what it resolved to) equals the stored
one is unchanged and not written. Writes are bulk_create / bulk_update. Nothing is deleted: a deleted
mark deactivates, and products missing from a full upload are deactivated by `deactivate_missing`
when the connection's option says so. A bad record becomes an `ExchangeEvent` and the run goes on.

Catalogue products and offers may come as `RawElement`s (the CommerceML reader's raw mode): an element whose
digest (its bytes, the base's reference data, its pictures; see `ElementDigest`) and object are the same as
when it was last applied is counted unchanged without being turned into records. Only elements applied
without any journal event get a digest, so whatever was skipped or refused is tried again next time.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.db.models import Count, F, Max
from django.utils import timezone

from sdelka.catalog import models as catalog
from sdelka.core.models import Currency
from sdelka.core.vat import VatRate

from . import bulk
from . import records as r
from .commerceml.reader_values import split_variant_id
from .models import (
    Connection,
    ElementDigest,
    EventLevel,
    ExchangeEvent,
    ExchangeFile,
    ExchangeRun,
    ExternalRef,
    ProductImage,
    RefKind,
)
from .services import journal_event
from .storage import IMAGE_EXTENSIONS, RunFolder, UnsafeName, extension_of, safe_relative_name

logger = logging.getLogger(__name__)

BATCH_SIZE = 5000
BATCH_RAW_BYTES = 8 * 2**20  # raw elements are kept as bytes until their batch is decided: cap the batch's weight
# 1C ids looked up per query. PostgreSQL's planner prices an index probe as a disk seek (random_page_cost 4) though
# the tables are cached: for a batch's 2,000 ids in a base of 100,000 products it read the whole digest table in
# parallel (50 ms a query) rather than probe the index (5 ms); a few hundred ids keep the probes cheaper to it.
LOOKUP_CHUNK = 500
_PRODUCT_KINDS = frozenset(catalog.ProductKind.values)  # an enum's `values` is a new list on every call
_CENTS, _THOUSANDTHS, _ZERO = Decimal("0.01"), Decimal("0.001"), Decimal(0)  # made once, used per price and stock
# What a product or an offer means depends on these besides its own element (its group, the texts of property
# values; price types and warehouses): a change of any of them makes the element digests of that kind stale.
REFERENCE_KINDS = {
    "product": (RefKind.GROUP, RefKind.PROPERTY, RefKind.PROPERTY_OPTION),
    "offer": (RefKind.PRICE_TYPE, RefKind.WAREHOUSE),
}
# Tables whose statistics are refreshed after a big catalogue file, and within it those of the 1C-id lookups.
LOOKUP_MODELS: tuple[type[models.Model], ...] = (ExternalRef, ElementDigest)
CATALOGUE_MODELS: tuple[type[models.Model], ...] = (
    *LOOKUP_MODELS,
    catalog.Product,
    catalog.Variant,
    catalog.Price,
    catalog.StockLevel,
    catalog.ProductPropertyValue,
)
# Within a file only the lookups' columns are analysed (half the time of whole rows with their hashes and texts);
# the row count comes with them.
LOOKUP_COLUMNS: dict[type[models.Model], tuple[str, ...]] = {
    ExternalRef: ("connection_id", "kind", "external_id", "object_id"),
    ElementDigest: ("connection_id", "source", "external_id", "object_id"),
}
ANALYZE_FIRST = 5000  # objects a file creates before the lookup tables' statistics are first refreshed within it
TOTAL_WAREHOUSE_ID = "__total__"  # ExternalRef id of the per-connection warehouse that holds total-only stock
DEFAULT_UNIT_CODE = "796"
M = TypeVar("M", bound=models.Model)
KEEP: Any = object()  # a field value meaning "1C did not send it: leave the stored value alone"
_OKEI = re.compile(r"^\d{3,4}$")


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0

    def add(self, other: Counts) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped += other.skipped
        self.failed += other.failed

    @property
    def done(self) -> int:
        return self.created + self.updated + self.unchanged + self.skipped + self.failed


class _Ref(NamedTuple):
    pk: int
    object_id: int
    content_hash: str


_REF_COLUMNS = (
    "connection_id",
    "kind",
    "external_id",
    "code",
    "content_type_id",
    "object_id",
    "content_hash",
    "version",
    "seen_run_id",
    "created_at",
    "updated_at",
)


@dataclass
class _Item:
    external_id: str
    fields: dict[str, Any]
    hash: str
    version: str = ""
    label: str = ""


@dataclass
class Outcome:
    """What one `apply_records` call did; also added to the run's counts."""

    counts: Counts = field(default_factory=Counts)
    full_products: bool = False
    package: r.Package | None = None


def record_hash(record: Any, *extra: Any) -> str:
    return hashlib.sha1(repr((record, extra)).encode("utf-8"), usedforsecurity=False).hexdigest()


def _offer_key(record: Any) -> tuple[str, str | None] | None:
    if isinstance(record, (r.Price, r.Stock)):
        return (record.product_id, record.variant_id)
    return None


def batched(records: Iterable[Any], size: int = BATCH_SIZE) -> Iterator[list[Any]]:
    """Batches of about `size` records (or raw elements of at most BATCH_RAW_BYTES); the prices and stock of one
    offer are never split between two."""
    batch: list[Any] = []
    weight = 0
    for record in records:
        if (len(batch) >= size or weight >= BATCH_RAW_BYTES) and (
            _offer_key(record) is None or _offer_key(record) != _offer_key(batch[-1])
        ):
            yield batch
            batch = []
            weight = 0
        batch.append(record)
        if isinstance(record, r.RawElement):
            weight += len(record.data)
    if batch:
        yield batch


class Applier:
    """Applies batches of records of one connection within one run."""

    def __init__(
        self,
        *,
        connection: Connection,
        run: ExchangeRun,
        folder: RunFolder | None = None,
        progress: Callable[[Counts], None] | None = None,
    ) -> None:
        self.connection = connection
        self.run = run
        self.folder = folder
        self.progress = progress
        self.outcome = Outcome()
        self.changes_only = False
        self._content_types: dict[type[models.Model], ContentType] = {}
        self._events: list[ExchangeEvent] = []
        self._units: dict[str, int] | None = None
        self._currencies: set[str] | None = None
        self._warned: set[str] = set()
        # 1C id → our pk of what the current batch resolved or wrote (cleared per batch: memory stays bounded).
        self._memo: dict[tuple[str, str], int] = {}
        self._warehouse_set: set[int] | None = None
        # A full upload records the run on the refs of the products it names, unchanged ones too, when the
        # connection deactivates missing products (deactivate_missing reads nothing else).
        self._mark_seen = False
        self._reference_stamps: dict[str, str] = {}
        self._tainted: set[str] = set()  # 1C ids the current batch journalled something about
        self._pictures: dict[str, str] = {}  # the current batch's picture paths → "size/CRC-32"
        self._digest_pks: dict[tuple[str, str], int] = {}  # (source, 1C id) → ElementDigest id, of this batch
        self._digest_bases: dict[str, Any] = {}  # reference stamp → sha1 of its part of the element digests
        self._created = 0
        self._analyze_at = ANALYZE_FIRST

    # --- journal ---

    def event(
        self, level: str, message: str, *, external_id: str = "", obj: str = "", field_name: str = "", value: str = ""
    ) -> None:
        self._tainted.add(external_id)
        self._events.append(
            journal_event(
                run=self.run,
                connection=self.connection,
                level=level,
                message=message,
                external_id=external_id,
                object_repr=obj,
                field=field_name,
                value=value,
            )
        )

    def warn_once(self, key: str, message: str, **kwargs: Any) -> None:
        self._tainted.add(kwargs.get("external_id", ""))
        if key not in self._warned:
            self._warned.add(key)
            self.event(EventLevel.WARNING, message, **kwargs)

    def flush_events(self) -> None:
        if self._events:
            ExchangeEvent.objects.bulk_create(self._events)
            self._events = []

    # --- entry point ---

    def apply(self, records: Iterable[Any], *, in_transaction: bool = False) -> Outcome:
        """Apply batch by batch, each in its own transaction, adding its counts to the run. With
        `in_transaction` the caller holds one transaction around the whole file and adds the counts itself
        (`add_to_run`) after it commits: the run's row is not locked while the file is applied."""
        for batch in batched(records):
            counts = Counts()
            with contextlib.nullcontext() if in_transaction else transaction.atomic():
                self._apply_batch(batch, counts)
                self.flush_events()
                if not in_transaction:
                    add_to_run(self.run, counts)
            self.outcome.counts.add(counts)
            if in_transaction:
                self._refresh_statistics(counts)
            if self.progress is not None:
                self.progress(self.outcome.counts)
        self.flush_events()
        return self.outcome

    def _refresh_statistics(self, counts: Counts) -> None:
        """In a file's one transaction the 1C-id lookups of later batches are planned with the statistics of before
        the file (an empty base on a first upload: each lookup then scans all the refs written so far); refreshed
        each time what the file created has grown fourfold."""
        self._created += counts.created
        if self._created >= self._analyze_at:
            analyze_catalogue(LOOKUP_MODELS, columns=LOOKUP_COLUMNS)
            self._analyze_at = 4 * self._created

    def _apply_batch(self, batch: list[Any], counts: Counts) -> None:
        self._memo = {}
        self._tainted = set()
        self._digest_pks = {}
        by_type: dict[type, list[Any]] = defaultdict(list)
        raws: list[r.RawElement] = []
        for record in batch:
            if isinstance(record, r.Package):
                self._package(record)
            elif isinstance(record, r.RawElement):
                raws.append(record)
            else:
                by_type[type(record)].append(record)
        # Dependencies first: a product needs its group and unit, a variant its product, a price its type.
        reference: list[tuple[type, Callable[[list[Any], Counts], None]]] = [
            (r.Unit, self._units_batch),
            (r.Group, self._groups),
            (r.Property, self._properties),
            (r.PriceType, self._price_types),
            (r.Warehouse, self._warehouses),
        ]
        if any(record_type in by_type for record_type, _handler in reference):
            self._reference_stamps = {}
        self._run_handlers(by_type, reference, counts)
        if raws:
            self._load_pictures(raws)
        changed = self._changed_elements(raws, counts) if raws else []
        for raw in changed:
            for record in raw.records():
                by_type[type(record)].append(record)
        self._record_errors(by_type.pop(r.RecordError, []), counts)
        self._run_handlers(
            by_type,
            [(r.Product, self._products), (r.Variant, self._variants), (r.Price, self._prices), (r.Stock, self._stock)],
            counts,
        )
        for record_type, items in by_type.items():
            counts.skipped += len(items)
            self.warn_once(
                f"skip:{record_type.__name__}",
                f"{record_type.__name__} records are not taken from a catalogue exchange; skipped.",
            )
        if changed:
            self._store_digests(changed)

    @staticmethod
    def _run_handlers(
        by_type: dict[type, list[Any]], handlers: list[tuple[type, Callable[[list[Any], Counts], None]]], counts: Counts
    ) -> None:
        for record_type, handler in handlers:
            items = by_type.pop(record_type, [])
            if items:
                handler(items, counts)

    def _record_errors(self, errors: list[r.RecordError], counts: Counts) -> None:
        for error in errors:
            counts.failed += 1
            self.event(
                EventLevel.ERROR,
                error.message,
                external_id=error.external_id,
                obj=error.kind,
                field_name=error.field,
                value=error.value,
            )

    def _package(self, package: r.Package) -> None:
        self.outcome.package = package
        self.changes_only = bool(package.changes_only)
        if package.kind == r.PackageKind.IMPORT and package.changes_only is False:
            # Marking every product of a full upload as seen costs a write per product; only a connection that
            # deactivates missing products needs it, and only a run that marked may deactivate (the option
            # switched on mid-run must not make every product look missing).
            self._mark_seen = self.outcome.full_products = self.connection.deactivate_missing_products

    # --- raw elements: skipped whole when unchanged ---

    def _source(self, raw: r.RawElement) -> str:
        package = self.outcome.package
        return f"{raw.kind}:{package.kind if package is not None else ''}"

    def reference_stamp(self, element_kind: str) -> str:
        """The state of the reference data an element kind depends on (count and latest change of the base's
        refs of those kinds), asked again only after a batch that carried reference records."""
        stamp = self._reference_stamps.get(element_kind)
        if stamp is None:
            state = ExternalRef.objects.filter(
                connection=self.connection, kind__in=REFERENCE_KINDS[element_kind]
            ).aggregate(count=Count("pk"), last=Max("updated_at"))
            stamp = f"{state['count']}/{state['last'].isoformat() if state['last'] else ''}"
            self._reference_stamps[element_kind] = stamp
        return stamp

    def _digest(self, raw: r.RawElement) -> str:
        """sha1 of "<reference stamp>\n<element digest>[\n<picture>:<size/CRC>…]" (the stamp's part hashed once
        per kind and copied: this runs for every element of every upload)."""
        stamp = self.reference_stamp(raw.kind)
        base = self._digest_bases.get(stamp)
        if base is None:
            base = self._digest_bases[stamp] = hashlib.sha1(f"{stamp}\n".encode(), usedforsecurity=False)
        digest = base.copy()
        digest.update(raw.digest.encode())
        if raw.images:  # a picture sent after its product, or replaced by another file (of the same size too), counts
            digest.update("".join(f"\n{path}:{self._pictures.get(path, '-')}" for path in raw.images).encode())
        return digest.hexdigest()

    def _load_pictures(self, raws: list[r.RawElement]) -> None:
        """Size and CRC-32 of the pictures the batch's elements name, as the run's files record them (one query);
        a file whose CRC is not recorded is read once."""
        self._pictures = {}
        if self.folder is None:
            return
        names: dict[str, str] = {}
        for raw in raws:
            for path in raw.images:
                with contextlib.suppress(UnsafeName):
                    names[safe_relative_name(path)] = path
        if not names:
            return
        rows = ExchangeFile.objects.filter(bulk.one_of("name", names), run=self.run).values_list(
            "name", "size", "crc32"
        )
        for name, size, crc in rows:
            if crc is None:
                crc = self._crc_of(name)
            self._pictures[names[name]] = f"{size}/{crc}"

    def _crc_of(self, name: str) -> int | None:
        assert self.folder is not None
        if not self.folder.exists(name):
            return None
        crc = 0
        with self.folder.open(name) as handle:
            while block := handle.read(1024 * 1024):
                crc = zlib.crc32(block, crc)
        return crc

    @staticmethod
    def _of_variant(raw: r.RawElement) -> bool:
        """Whether the element was applied to a variant (as `_applied_to` tells, without building its answer)."""
        return raw.kind == "offer" and split_variant_id(raw.external_id)[1] is not None

    @staticmethod
    def _applied_to(raw: r.RawElement) -> tuple[type[models.Model], str, str]:
        """What an element was applied to (model, ref kind, 1C id): an offer of a characteristic to its variant."""
        product_id, variant_id = split_variant_id(raw.external_id)
        if raw.kind == "offer" and variant_id is not None:
            return catalog.Variant, RefKind.VARIANT, variant_id
        return catalog.Product, RefKind.PRODUCT, product_id

    def _changed_elements(self, raws: list[r.RawElement], counts: Counts) -> list[r.RawElement]:
        """The raw elements that must be turned into records; the others are counted unchanged. One query per
        source: the stored digests, and whether what each was applied to still exists."""
        by_kind: dict[str, list[r.RawElement]] = defaultdict(list)
        for raw in raws:
            by_kind[raw.kind].append(raw)
        by_source = {self._source(group[0]): group for group in by_kind.values()}
        changed: list[r.RawElement] = []
        seen: list[str] = []
        for source, group in by_source.items():
            stored = self._stored_digests(source, {raw.external_id for raw in group})
            for raw in group:
                row = stored.get(raw.external_id)
                if row is not None and row[2 if self._of_variant(raw) else 1] and row[0] == self._digest(raw):
                    counts.unchanged += 1
                    if raw.kind == "product":
                        seen.append(raw.external_id)
                else:
                    changed.append(raw)  # new, edited, or its product or variant was deleted in Sdelka
        if seen and self._mark_seen:
            ExternalRef.objects.filter(
                bulk.one_of("external_id", seen), connection=self.connection, kind=RefKind.PRODUCT
            ).update(seen_run=self.run)
        return changed

    def _stored_digests(self, source: str, external_ids: set[str]) -> dict[str, tuple[str, bool, bool]]:
        """1C id → (stored digest, its object exists as a product, … as a variant); the rows' ids are kept for
        `_store_digests`."""
        rows = [
            row
            for chunk in bulk.chunks(list(external_ids), LOOKUP_CHUNK)
            for row in ElementDigest.objects.filter(
                bulk.one_of("external_id", chunk), connection=self.connection, source=source
            )
            .order_by()
            .values_list("pk", "external_id", "digest", "object_id")
        ]
        # Existence asked apart, by primary keys: as EXISTS columns of the lookup PostgreSQL's planner hashed the
        # whole product and variant tables for each batch (several times slower than the lookup itself).
        object_ids = {row[3] for row in rows}
        products = self._existing(catalog.Product, object_ids)
        variants = self._existing(catalog.Variant, object_ids) if source.startswith("offer:") else set()
        found: dict[str, tuple[str, bool, bool]] = {}
        for pk, ext, digest, object_id in rows:
            found[ext] = (digest, object_id in products, object_id in variants)
            self._digest_pks[(source, ext)] = pk
        return found

    @staticmethod
    def _existing(model: type[models.Model], pks: set[int]) -> set[int]:
        if not pks:
            return set()
        return set(model._default_manager.filter(bulk.one_of("pk", pks)).order_by().values_list("pk", flat=True))

    def _store_digests(self, changed: list[r.RawElement]) -> None:
        """Digests of the applied elements that the batch journalled nothing about (the last of duplicates wins)."""
        wanted: dict[tuple[str, str], tuple[str, int]] = {}
        for raw in changed:
            if raw.external_id in self._tainted:
                continue
            _model, kind, ext = self._applied_to(raw)
            target = self._memo.get((kind, ext))
            if target is not None:
                wanted[(self._source(raw), raw.external_id)] = (self._digest(raw), target)
        if not wanted:
            return
        create: list[tuple[Any, ...]] = []
        update: list[tuple[Any, ...]] = []
        for key, (digest, target) in wanted.items():
            pk = self._digest_pks.get(key)  # read with the stored digests at the start of the batch
            if pk is None:
                create.append((self.connection.pk, *key, digest, target))
            else:
                update.append((pk, digest, target))
        bulk.insert_rows(ElementDigest, ("connection_id", "source", "external_id", "digest", "object_id"), create)
        bulk.update_rows(ElementDigest, ("digest", "object_id"), update)

    # --- the generic upsert ---

    def _content_type(self, model: type[models.Model]) -> ContentType:
        if model not in self._content_types:
            self._content_types[model] = ContentType.objects.get_for_model(model)
        return self._content_types[model]

    def refs(self, kind: str, external_ids: Iterable[str]) -> dict[str, _Ref]:
        """The stored refs of these 1C ids (a query per LOOKUP_CHUNK ids; plain tuples, no model instances)."""
        found: dict[str, _Ref] = {}
        for chunk in bulk.chunks(list(set(external_ids)), LOOKUP_CHUNK):
            rows = ExternalRef.objects.filter(
                bulk.one_of("external_id", chunk), connection=self.connection, kind=kind
            ).values_list("external_id", "pk", "object_id", "content_hash")
            found.update((ext, _Ref(pk, object_id, content_hash)) for ext, pk, object_id, content_hash in rows)
        memo = self._memo
        for ext, ref in found.items():
            memo[(kind, ext)] = ref.object_id
        return found

    def upsert(
        self,
        *,
        kind: str,
        model: type[M],
        items: list[_Item],
        counts: Counts,
        natural_key: Callable[[dict[str, Any]], Hashable | None] | None = None,
        natural_lookup: Callable[[list[Hashable]], dict[Hashable, int]] | None = None,
    ) -> dict[str, int]:
        """Create or update one object per item; returns external id → our pk for every item.

        An item whose ref carries the same content hash is unchanged: only its existence is checked (one
        query for the batch) and its ref marked as seen; objects are loaded only for items that changed.
        """
        unique: dict[str, _Item] = {}
        for item in items:
            unique[item.external_id] = item  # the last of duplicates wins
        refs = self.refs(kind, unique)
        manager = model._default_manager
        same = {ext: ref for ext, ref in refs.items() if ref.content_hash == unique[ext].hash}
        alive = set(
            manager.filter(bulk.one_of("pk", [ref.object_id for ref in same.values()])).values_list("pk", flat=True)
        )
        result: dict[str, int] = {}
        unchanged_refs: list[int] = []
        for ext, same_ref in same.items():
            if same_ref.object_id in alive:
                counts.unchanged += 1
                unchanged_refs.append(same_ref.pk)
                result[ext] = same_ref.object_id
        pending = {ext: item for ext, item in unique.items() if ext not in result}
        objects = manager.in_bulk([refs[ext].object_id for ext in pending if ext in refs]) if pending else {}
        natural: dict[Hashable, int] = {}
        if pending and natural_key is not None and natural_lookup is not None:
            keys = [
                natural_key(item.fields)
                for ext, item in pending.items()
                if refs.get(ext) is None or refs[ext].object_id not in objects
            ]
            wanted = [key for key in keys if key is not None]
            natural = natural_lookup(wanted) if wanted else {}
            missing = [pk for pk in natural.values() if pk not in objects]
            if missing:
                objects.update(manager.in_bulk(missing))

        # New objects go in as plain rows (no model instance each): item → its index among them.
        to_create: list[dict[str, Any]] = []
        created_for: dict[str, int] = {}
        new_by_key: dict[Hashable, int] = {}
        to_update: dict[int, M] = {}
        update_fields: set[str] = set()
        ref_writes: list[tuple[str, _Item, _Ref | None]] = []
        for ext, item in pending.items():
            ref: _Ref | None = refs.get(ext)
            obj = objects.get(ref.object_id) if ref is not None else None
            if obj is None and natural_key is not None:
                key = natural_key(item.fields)
                if key is not None and key in natural:
                    obj = objects.get(natural[key])
                elif key is not None and key in new_by_key:
                    created_for[ext] = new_by_key[key]
                    ref_writes.append((ext, item, ref))
                    counts.unchanged += 1  # a second 1C object with the same natural key: merged
                    continue
            if obj is None:
                created_for[ext] = len(to_create)
                to_create.append({name: value for name, value in item.fields.items() if value is not KEEP})
                if natural_key is not None:
                    key = natural_key(item.fields)
                    if key is not None:
                        new_by_key[key] = created_for[ext]
                counts.created += 1
            else:
                changed = False
                for name, value in item.fields.items():
                    if value is KEEP:
                        continue
                    if getattr(obj, name) != value:
                        setattr(obj, name, value)
                        update_fields.add(name)
                        changed = True
                if changed:
                    to_update[obj.pk] = obj
                    counts.updated += 1
                else:
                    counts.unchanged += 1
                result[ext] = obj.pk
            ref_writes.append((ext, item, ref))

        new_ids = bulk.insert_values(model, to_create)
        for ext, index in created_for.items():
            result[ext] = new_ids[index]
        if to_update and update_fields:
            self._update_objects(model, list(to_update.values()), sorted(update_fields))
        if unchanged_refs and self._mark_seen and kind == RefKind.PRODUCT:
            ExternalRef.objects.filter(bulk.one_of("pk", unchanged_refs)).update(seen_run=self.run)
        content_type_id = self._content_type(model).pk
        now = timezone.now()
        new_refs: list[tuple[Any, ...]] = []
        changed_refs: list[tuple[Any, ...]] = []
        for ext, item, written in ref_writes:
            self._memo[(kind, ext)] = result[ext]
            if written is None:
                new_refs.append(
                    (
                        self.connection.pk,
                        kind,
                        ext,
                        "",
                        content_type_id,
                        result[ext],
                        item.hash,
                        item.version[:100],
                        self.run.pk,
                        now,
                        now,
                    )
                )
            else:
                changed_refs.append((written.pk, result[ext], item.hash, item.version[:100], self.run.pk, now))
        bulk.insert_rows(ExternalRef, _REF_COLUMNS, new_refs)
        bulk.update_rows(
            ExternalRef, ["object_id", "content_hash", "version", "seen_run_id", "updated_at"], changed_refs
        )
        return result

    @staticmethod
    def _update_objects(model: type[M], objects: list[M], names: list[str]) -> None:
        """Write `names` of changed objects (auto_now fields such as updated_at refreshed too)."""
        fields = [
            f
            for f in model._meta.concrete_fields
            if f.name in names or f.attname in names or getattr(f, "auto_now", False)
        ]
        rows = [(obj.pk, *(f.pre_save(obj, False) for f in fields)) for obj in objects]
        bulk.update_rows(model, [f.attname for f in fields], rows)

    def resolve(self, kind: str, external_ids: Iterable[str]) -> dict[str, int]:
        """1C id → our pk; what this batch already resolved or wrote is not asked again."""
        memo = self._memo
        found: dict[str, int] = {}
        missing: list[str] = []
        for ext in set(external_ids):
            pk = memo.get((kind, ext))
            if pk is None:
                missing.append(ext)
            else:
                found[ext] = pk
        if missing:
            found.update({ext: ref.object_id for ext, ref in self.refs(kind, missing).items()})
        return found

    # --- units ---

    def _unit_table(self) -> dict[str, int]:
        if self._units is None:
            self._units = {
                okei: pk for okei, pk in catalog.Unit.objects.exclude(okei=None).values_list("okei", "pk") if okei
            }
        return self._units

    def unit_pk(self, unit: r.Unit | None) -> int:
        """Our unit for a 1C unit: by ОКЕИ code, created when unknown; шт (796) when 1C sent none."""
        table = self._unit_table()
        code = (unit.code.strip() if unit is not None else "") or DEFAULT_UNIT_CODE
        if not _OKEI.match(code):
            code = DEFAULT_UNIT_CODE
        if code not in table:
            name = (unit.name if unit is not None and unit.name else code)[:30]
            created = catalog.Unit.objects.create(
                okei=code,
                name=name,
                full_name=(unit.full_name if unit else "")[:100],
                international=(unit.international if unit else "")[:10],
            )
            table[code] = created.pk
        return table[code]

    def _units_batch(self, units: list[r.Unit], counts: Counts) -> None:
        table = self._unit_table()
        for unit in units:
            code = unit.code.strip()
            if not _OKEI.match(code):
                counts.skipped += 1
                self.event(
                    EventLevel.WARNING,
                    "A unit without an ОКЕИ code is skipped.",
                    external_id=unit.id,
                    obj=unit.name,
                    field_name="Код",
                    value=unit.code,
                )
                continue
            if code in table:
                counts.unchanged += 1
            else:
                self.unit_pk(unit)
                counts.created += 1

    # --- groups, properties, price types, warehouses ---

    def _groups(self, groups: list[r.Group], counts: Counts) -> None:
        items = [
            _Item(g.id, {"name": g.name[:255] or g.id, "is_active": not g.deleted}, record_hash(g), g.version, g.name)
            for g in groups
        ]
        result = self.upsert(kind=RefKind.GROUP, model=catalog.ProductGroup, items=items, counts=counts)
        parents = self.resolve(RefKind.GROUP, [g.parent_id for g in groups if g.parent_id])
        wanted = {result[g.id]: (parents.get(g.parent_id) if g.parent_id else None) for g in groups}
        stored = dict(catalog.ProductGroup.objects.filter(bulk.one_of("pk", wanted)).values_list("pk", "parent_id"))
        changed = [(pk, parent) for pk, parent in wanted.items() if stored[pk] != parent and parent != pk]
        bulk.update_rows(catalog.ProductGroup, ["parent_id"], changed)  # one statement, not a CASE per group

    def _by_name(self, model: type[models.Model]) -> Callable[[list[Hashable]], dict[Hashable, int]]:
        def lookup(names: list[Hashable]) -> dict[Hashable, int]:
            return dict(model._default_manager.filter(name__in=names).values_list("name", "pk"))

        return lookup

    def _properties(self, properties: list[r.Property], counts: Counts) -> None:
        items = [_Item(p.id, {"name": p.name[:255] or p.id}, record_hash(p), "", p.name) for p in properties]
        result = self.upsert(
            kind=RefKind.PROPERTY,
            model=catalog.Property,
            items=items,
            counts=counts,
            natural_key=lambda fields: fields["name"],
            natural_lookup=self._by_name(catalog.Property),
        )
        options: list[_Item] = []
        for prop in properties:
            for option_id, value in prop.options.items():
                if not value:
                    continue
                options.append(
                    _Item(
                        f"{prop.id}/{option_id}",
                        {"property_id": result[prop.id], "value": value[:255]},
                        record_hash(result[prop.id], value),
                    )
                )
        if options:
            self.upsert(
                kind=RefKind.PROPERTY_OPTION,
                model=catalog.PropertyOption,
                items=options,
                counts=Counts(),
                natural_key=lambda fields: (fields["property_id"], fields["value"]),
                natural_lookup=self._options_by_value,
            )

    @staticmethod
    def _options_by_value(keys: list[Hashable]) -> dict[Hashable, int]:
        pairs = [key for key in keys if isinstance(key, tuple)]
        rows = catalog.PropertyOption.objects.filter(
            property_id__in={pair[0] for pair in pairs}, value__in={pair[1] for pair in pairs}
        ).values_list("property_id", "value", "pk")
        return {(prop, value): pk for prop, value, pk in rows}

    def _currency(self, code: str) -> str:
        if self._currencies is None:
            self._currencies = set(Currency.objects.values_list("code", flat=True))
        code = (code or "RUB").upper()
        if code == "RUR":
            code = "RUB"
        return code if code in self._currencies else "RUB"

    def _price_types(self, price_types: list[r.PriceType], counts: Counts) -> None:
        items = []
        for p in price_types:
            fields: dict[str, Any] = {"name": p.name[:150] or p.id, "currency_id": self._currency(p.currency)}
            fields["vat_included"] = KEEP if p.vat_included is None else p.vat_included
            items.append(_Item(p.id, fields, record_hash(p), "", p.name))
        self.upsert(
            kind=RefKind.PRICE_TYPE,
            model=catalog.PriceType,
            items=items,
            counts=counts,
            natural_key=lambda fields: fields["name"],
            natural_lookup=self._by_name(catalog.PriceType),
        )

    def _warehouses(self, warehouses: list[r.Warehouse], counts: Counts) -> None:
        self._warehouse_set = None
        items = [
            _Item(
                w.id,
                {"name": w.name[:255] or w.id, "address": w.address, "is_active": not w.deleted},
                record_hash(w),
                "",
                w.name,
            )
            for w in warehouses
        ]
        self.upsert(
            kind=RefKind.WAREHOUSE,
            model=catalog.Warehouse,
            items=items,
            counts=counts,
            natural_key=lambda fields: fields["name"],
            natural_lookup=self._by_name(catalog.Warehouse),
        )

    # --- products and variants ---

    def _products(self, products: list[r.Product], counts: Counts) -> None:
        groups = self.resolve(RefKind.GROUP, [gid for p in products for gid in p.group_ids[:1]])
        items: list[_Item] = []
        for p in products:
            if not p.id:
                counts.failed += 1
                self.event(EventLevel.ERROR, "A product without an id is skipped.", obj=p.name, field_name="Ид")
                continue
            group = groups.get(p.group_ids[0]) if p.group_ids else None
            unit = self.unit_pk(p.unit)
            fields: dict[str, Any] = {
                "name": (p.name or p.full_name or p.id)[:500],
                "article": p.article[:100],
                "barcode": p.barcode[:64],
                "full_name": p.full_name[:1000],
                "description": KEEP if p.description is None else p.description,
                "group_id": group,
                "unit_id": unit,
                "vat_rate": KEEP if p.vat_rate is None else VatRate(p.vat_rate).value,
                "kind": p.kind if p.kind in _PRODUCT_KINDS else catalog.ProductKind.GOODS,
                "manufacturer": p.manufacturer[:255],
                "is_active": not p.deleted,
            }
            items.append(_Item(p.id, fields, record_hash(p, group, unit), p.version, p.name))
        natural_key = None
        if self.connection.match_products_by_article:
            natural_key = self._product_natural_key
        before = Counts()
        result = self.upsert(
            kind=RefKind.PRODUCT,
            model=catalog.Product,
            items=items,
            counts=before,
            natural_key=natural_key,
            natural_lookup=self._products_by_article if natural_key else None,
        )
        counts.add(before)
        changed = [p for p in products if p.id in result]
        self._property_values(changed, result)
        if self.folder is not None:
            self._images([p for p in changed if p.images], result)

    @staticmethod
    def _product_natural_key(fields: dict[str, Any]) -> Hashable | None:
        return (
            ("article", fields["article"])
            if fields["article"]
            else (("barcode", fields["barcode"]) if fields["barcode"] else None)
        )

    def _products_by_article(self, keys: list[Hashable]) -> dict[Hashable, int]:
        """Products found by article (or barcode) that are not yet linked to this base; only unambiguous ones."""
        linked = ExternalRef.objects.filter(connection=self.connection, kind=RefKind.PRODUCT).values("object_id")
        found: dict[Hashable, list[int]] = defaultdict(list)
        articles = [key[1] for key in keys if key[0] == "article"]  # type: ignore[index]
        barcodes = [key[1] for key in keys if key[0] == "barcode"]  # type: ignore[index]
        query = catalog.Product.objects.exclude(pk__in=linked)
        for pk, article in query.filter(article__in=articles).values_list("pk", "article"):
            found[("article", article)].append(pk)
        for pk, barcode in query.filter(barcode__in=barcodes).values_list("pk", "barcode"):
            found[("barcode", barcode)].append(pk)
        return {key: pks[0] for key, pks in found.items() if len(pks) == 1}

    def _property_values(self, products: list[r.Product], result: dict[str, int]) -> None:
        wanted = [p for p in products if p.property_values]
        if not wanted:
            return
        prop_ids = {pid for p in wanted for pid in p.property_values}
        properties = self.resolve(RefKind.PROPERTY, prop_ids)
        option_keys = {f"{pid}/{vid}" for p in wanted for pid, vid in p.property_values.items() if vid}
        option_pks = self.resolve(RefKind.PROPERTY_OPTION, option_keys)
        option_values = dict(
            catalog.PropertyOption.objects.filter(pk__in=option_pks.values()).values_list("pk", "value")
        )
        desired: dict[tuple[int, int], str] = {}  # the last value wins when a product comes twice
        for p in wanted:
            product_pk = result[p.id]
            for pid, raw in p.property_values.items():
                prop_pk = properties.get(pid)
                if prop_pk is None:
                    self.warn_once(
                        f"prop:{pid}",
                        "A property value refers to a property 1C has not sent yet.",
                        external_id=p.id,
                        obj=p.name,
                        field_name="ЗначенияСвойств",
                        value=pid,
                    )
                    continue
                option_pk = option_pks.get(f"{pid}/{raw}")
                desired[(product_pk, prop_pk)] = (option_values.get(option_pk, raw) if option_pk else raw)[:1000]
        existing = {
            (product, prop): (pk, value)
            for pk, product, prop, value in catalog.ProductPropertyValue.objects.filter(
                bulk.one_of("product_id", {key[0] for key in desired})
            ).values_list("pk", "product_id", "property_id", "value")
        }
        create: list[tuple[int, int, str]] = []
        update: list[tuple[int, str]] = []
        clear: list[int] = []
        for key, value in desired.items():
            row = existing.get(key)
            if not value:
                if row is not None:
                    clear.append(row[0])
            elif row is None:
                create.append((*key, value))
            elif row[1] != value:
                update.append((row[0], value))
        if clear:
            catalog.ProductPropertyValue.objects.filter(pk__in=clear).delete()
        bulk.insert_rows(catalog.ProductPropertyValue, ("product_id", "property_id", "value"), create)
        bulk.update_rows(catalog.ProductPropertyValue, ("value",), update)

    def _images(self, products: list[r.Product], result: dict[str, int]) -> None:
        assert self.folder is not None
        existing = set(
            ProductImage.objects.filter(bulk.one_of("product_id", [result[p.id] for p in products])).values_list(
                "product_id", "sha1"
            )
        )
        create: list[ProductImage] = []
        for p in products:
            for position, path in enumerate(p.images):
                if extension_of(path) not in IMAGE_EXTENSIONS:
                    continue
                try:
                    if not self.folder.exists(path):
                        continue
                    with self.folder.open(path) as handle:
                        data = handle.read()
                except UnsafeName:
                    self.event(
                        EventLevel.WARNING,
                        "An image path leaves the exchange folder; ignored.",
                        external_id=p.id,
                        obj=p.name,
                        field_name="Картинка",
                        value=path,
                    )
                    continue
                sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
                name = f"exchange/images/{sha1[:2]}/{sha1}.{extension_of(path)}"
                if not default_storage.exists(name):
                    default_storage.save(name, ContentFile(data))
                if (result[p.id], sha1) not in existing:
                    existing.add((result[p.id], sha1))
                    create.append(ProductImage(product_id=result[p.id], sha1=sha1, file=name, position=position))
        if create:
            ProductImage.objects.bulk_create(create)

    def _variants(self, variants: list[r.Variant], counts: Counts) -> None:
        products = self.resolve(RefKind.PRODUCT, [v.product_id for v in variants])
        items: list[_Item] = []
        for v in variants:
            product = products.get(v.product_id)
            if product is None:
                counts.skipped += 1
                self.event(
                    EventLevel.WARNING,
                    "The offer's product has not been received from 1C; skipped.",
                    external_id=v.id,
                    obj=v.name,
                    field_name="Ид",
                    value=v.product_id,
                )
                continue
            name = v.name or ", ".join(f"{k}: {val}" for k, val in v.characteristics.items()) or v.id
            fields = {
                "product_id": product,
                "name": name[:500],
                "article": v.article[:100],
                "barcode": v.barcode[:64],
                "characteristics": dict(v.characteristics),
                "is_active": not v.deleted,
            }
            items.append(_Item(v.id, fields, record_hash(v, product), "", name))
        if items:
            self.upsert(kind=RefKind.VARIANT, model=catalog.Variant, items=items, counts=counts)

    # --- prices and stock: compared with the stored values, no ids of their own ---

    def _offers(self, rows: list[r.Price] | list[r.Stock], counts: Counts) -> tuple[dict[str, int], dict[str, int]]:
        products = self.resolve(RefKind.PRODUCT, {row.product_id for row in rows})
        variants = self.resolve(RefKind.VARIANT, {row.variant_id for row in rows if row.variant_id})
        return products, variants

    def _target(
        self, row: r.Price | r.Stock, products: dict[str, int], variants: dict[str, int], counts: Counts, what: str
    ) -> tuple[int, int | None] | None:
        product = products.get(row.product_id)
        variant = variants.get(row.variant_id) if row.variant_id else None
        if product is None or (row.variant_id and variant is None):
            counts.skipped += 1
            self.event(
                EventLevel.WARNING,
                f"The {what} refers to an offer 1C has not sent yet; skipped.",
                external_id=row.variant_id or row.product_id,
                field_name="Ид",
            )
            return None
        return product, variant

    def _prices(self, prices: list[r.Price], counts: Counts) -> None:
        products, variants = self._offers(prices, counts)
        types = self.resolve(RefKind.PRICE_TYPE, {p.price_type_id for p in prices})
        existing: dict[tuple[int, int, int | None], tuple[int, Decimal]] = {
            (price_type, product, variant): (pk, value)
            for pk, price_type, product, variant, value in catalog.Price.objects.filter(
                bulk.one_of("product_id", set(products.values()))
            )
            .order_by()
            .values_list("pk", "price_type_id", "product_id", "variant_id", "value")
        }
        wanted: dict[tuple[int, int, int | None], Decimal] = {}
        create: list[tuple[Any, ...]] = []
        update: list[tuple[Any, ...]] = []
        for price in prices:
            target = self._target(price, products, variants, counts, "price")
            if target is None:
                continue
            price_type = types.get(price.price_type_id)
            if price_type is None:
                counts.skipped += 1
                self.event(
                    EventLevel.WARNING,
                    "The price type has not been received from 1C; price skipped.",
                    external_id=price.variant_id or price.product_id,
                    field_name="ИдТипаЦены",
                    value=price.price_type_id,
                )
                continue
            if price.value < _ZERO:
                counts.failed += 1
                self.event(
                    EventLevel.ERROR,
                    "A negative price is refused.",
                    external_id=price.variant_id or price.product_id,
                    field_name="ЦенаЗаЕдиницу",
                    value=str(price.value),
                )
                continue
            # The same offer and price type twice in a file (one price per unit): the last one wins.
            wanted[(price_type, *target)] = price.value.quantize(_CENTS)
        now = timezone.now()
        for key, value in wanted.items():
            row = existing.get(key)
            if row is None:
                counts.created += 1
                create.append((*key, value, now))
            elif row[1] != value:
                update.append((row[0], value, now))
                counts.updated += 1
            else:
                counts.unchanged += 1
        bulk.insert_rows(catalog.Price, ("price_type_id", "product_id", "variant_id", "value", "updated_at"), create)
        bulk.update_rows(catalog.Price, ("value", "updated_at"), update)

    def _base_warehouses(self) -> set[int]:
        """Our warehouses that belong to this base (asked once per run; warehouse records reset it)."""
        if self._warehouse_set is None:
            self._warehouse_set = set(
                ExternalRef.objects.filter(connection=self.connection, kind=RefKind.WAREHOUSE).values_list(
                    "object_id", flat=True
                )
            )
        return self._warehouse_set

    def _total_warehouse(self) -> int:
        ref = self.resolve(RefKind.WAREHOUSE, [TOTAL_WAREHOUSE_ID]).get(TOTAL_WAREHOUSE_ID)
        if ref is not None:
            return ref
        name = f"{self.connection.name}: total"[:255]
        warehouse, _created = catalog.Warehouse.objects.get_or_create(name=name)
        ExternalRef.objects.create(
            connection=self.connection,
            kind=RefKind.WAREHOUSE,
            external_id=TOTAL_WAREHOUSE_ID,
            content_type=self._content_type(catalog.Warehouse),
            object_id=warehouse.pk,
            seen_run=self.run,
        )
        self._memo[(RefKind.WAREHOUSE, TOTAL_WAREHOUSE_ID)] = warehouse.pk
        return warehouse.pk

    def _stock(self, stocks: list[r.Stock], counts: Counts) -> None:
        """Stock of an offer is complete: a warehouse of this base that the offer no longer lists holds zero,
        and an offer with only a total keeps it in the base's "total" warehouse."""
        products, variants = self._offers(stocks, counts)
        warehouses = self.resolve(RefKind.WAREHOUSE, {s.warehouse_id for s in stocks if s.warehouse_id})
        base_warehouses = self._base_warehouses()
        per_offer: dict[tuple[int, int | None], dict[int, Decimal]] = defaultdict(dict)
        totals: dict[tuple[int, int | None], Decimal] = {}
        for stock in stocks:
            target = self._target(stock, products, variants, counts, "stock")
            if target is None:
                continue
            if stock.warehouse_id is None:
                totals[target] = stock.quantity
                continue
            warehouse = warehouses.get(stock.warehouse_id)
            if warehouse is None:
                counts.skipped += 1
                self.event(
                    EventLevel.WARNING,
                    "The warehouse has not been received from 1C; stock skipped.",
                    external_id=stock.variant_id or stock.product_id,
                    field_name="ИдСклада",
                    value=stock.warehouse_id,
                )
                continue
            per_offer[target][warehouse] = per_offer[target].get(warehouse, _ZERO) + stock.quantity
        total_warehouse: int | None = None
        for target, quantity in totals.items():
            if target not in per_offer:
                if total_warehouse is None:
                    total_warehouse = self._total_warehouse()
                    base_warehouses.add(total_warehouse)
                per_offer[target][total_warehouse] = quantity
            else:
                counts.unchanged += 1  # the total of an offer with per-warehouse stock is their sum
        if not per_offer:
            return
        existing: dict[tuple[int, int | None], dict[int, tuple[int, Decimal]]] = defaultdict(dict)
        # By product alone: with the warehouses too, PostgreSQL's planner (the table grows within the file's
        # transaction, unanalysed) scanned every level of the base's warehouses, batch after batch.
        stored_levels = catalog.StockLevel.objects.filter(bulk.one_of("product_id", {t[0] for t in per_offer}))
        for pk, product, variant, warehouse, stored in stored_levels.order_by().values_list(
            "pk", "product_id", "variant_id", "warehouse_id", "quantity"
        ):
            if warehouse in base_warehouses:
                existing[(product, variant)][warehouse] = (pk, stored)
        create: list[tuple[Any, ...]] = []
        update: list[tuple[Any, ...]] = []
        now = timezone.now()
        for target, levels in per_offer.items():
            rows = existing.get(target, {})
            for warehouse, quantity in levels.items():
                level = rows.get(warehouse)
                quantity = quantity.quantize(_THOUSANDTHS)
                if level is None:
                    create.append((warehouse, target[0], target[1], quantity, now))
                    counts.created += 1
                elif level[1] != quantity:
                    update.append((level[0], quantity, now))
                    counts.updated += 1
                else:
                    counts.unchanged += 1
            for warehouse, (pk, stored) in rows.items():
                if warehouse not in levels and stored != 0:
                    update.append((pk, _ZERO, now))
        bulk.insert_rows(
            catalog.StockLevel, ("warehouse_id", "product_id", "variant_id", "quantity", "updated_at"), create
        )
        bulk.update_rows(catalog.StockLevel, ("quantity", "updated_at"), update)


def apply_records(
    *,
    connection: Connection,
    run: ExchangeRun,
    records: Iterable[Any],
    folder: RunFolder | None = None,
    progress: Callable[[Counts], None] | None = None,
    in_transaction: bool = False,
) -> Outcome:
    """Apply `records` (from a reader) for `connection` within `run`; counts are added to the run (with
    `in_transaction`, by the caller: see `Applier.apply`)."""
    applier = Applier(connection=connection, run=run, folder=folder, progress=progress)
    outcome = applier.apply(records, in_transaction=in_transaction)
    if outcome.full_products and not in_transaction:
        ExchangeRun.objects.filter(pk=run.pk).update(full_products=True)
    return outcome


def analyze_catalogue(
    models_: tuple[type[models.Model], ...] = CATALOGUE_MODELS,
    *,
    columns: dict[type[models.Model], tuple[str, ...]] | None = None,
) -> None:
    """Refresh PostgreSQL's statistics of the tables a catalogue file fills (of the columns `columns` names for a
    model, else of all). A big first upload lands in one transaction; until autovacuum gets to the tables (or
    never, where it is off) the planner takes them for nearly empty and reads the lookups of the next exchange
    (1C ids `= ANY(…)`) by scanning the whole base."""
    bulk.analyze({model: (columns or {}).get(model) for model in models_})


def add_to_run(run: ExchangeRun, counts: Counts, *, full_products: bool = False) -> None:
    changes: dict[str, Any] = {
        "created": F("created") + counts.created,
        "updated": F("updated") + counts.updated,
        "unchanged": F("unchanged") + counts.unchanged,
        "skipped": F("skipped") + counts.skipped,
        "failed": F("failed") + counts.failed,
    }
    if full_products:
        changes["full_products"] = True
    ExchangeRun.objects.filter(pk=run.pk).update(**changes)


def deactivate_missing(*, connection: Connection, run: ExchangeRun) -> int:
    """Deactivate this base's products that the run's full upload did not mention (option-controlled; the run
    must have marked what it saw, see `Applier._package`)."""
    if not connection.deactivate_missing_products or not run.full_products:
        return 0
    missing = ExternalRef.objects.filter(connection=connection, kind=RefKind.PRODUCT).exclude(seen_run=run)
    doomed = catalog.Product.objects.filter(pk__in=missing.values("object_id"), is_active=True)
    with transaction.atomic():
        # Forget what they looked like, so that when 1C sends them again unchanged they are applied (reactivated).
        refs = missing.filter(object_id__in=doomed.values("pk"))
        ElementDigest.objects.filter(
            connection=connection, source__startswith="product:", external_id__in=refs.values("external_id")
        ).delete()
        refs.update(content_hash="")
        return doomed.update(is_active=False)
