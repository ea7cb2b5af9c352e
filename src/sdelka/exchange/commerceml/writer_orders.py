"""The order outbox of a connection (`type=sale&mode=query`): invoices changed since 1C last confirmed,
turned into canonical Order records and streamed to the writer; `confirm_sent` is `mode=success`.

Which invoices: not drafts, changed (`updated_at`) after the connection's confirmed watermark minus a small
margin (a transaction that committed late is still caught), except those whose current version 1C has
already confirmed or itself produced (`OrderState.confirmed_version` / `synced_version`). A cancelled
invoice goes out only if 1C has already had it. Each offered invoice records the version offered and the
session; `confirm_sent` turns exactly those into confirmed versions and moves the watermark to the moment
of the query. Until then the same invoices are offered again, always under the same `Ид`.

Reads are keyset chunks of `CHUNK` invoices with their lines, products, units, counterparties and contacts
prefetched, and one query per chunk for each kind of 1C id: the number of queries does not grow with the
number of invoices in a chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from django.contrib.contenttypes.models import ContentType
from django.db import connections, router, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from sdelka.catalog.models import Product, Variant
from sdelka.core.vat import VatMode, VatRate
from sdelka.exchange import records as r
from sdelka.exchange.models import (
    Connection,
    ExchangeSession,
    ExternalRef,
    OrderState,
    RefKind,
    SaleCursor,
)
from sdelka.parties.models import Counterparty
from sdelka.sales.models import Invoice, InvoiceLine, InvoiceStatus

from ..bulk import InIds
from .outbox_sql import column_of, id_condition, insert_rows, prepared_columns, refresh_statistics
from .writer import write_orders

CHUNK = 500
ANALYZE_AFTER = 2 * CHUNK  # new order ids after which the table statistics are refreshed once
LATE_COMMIT_MARGIN = timedelta(minutes=10)
PHONE_KIND = "Телефон рабочий"
EMAIL_KIND = "Электронная почта"
PAYMENT_METHOD = "Безналичный расчет"
FINAL_STATUSES = {InvoiceStatus.PAID, InvoiceStatus.CANCELLED}


def pending_invoices(connection: Connection) -> QuerySet[Invoice]:
    """Invoices `mode=query` offers to this connection now (unordered)."""
    cursor = SaleCursor.objects.filter(connection=connection).first()
    invoices = Invoice.objects.exclude(status=InvoiceStatus.DRAFT)
    if cursor is not None and cursor.confirmed_until is not None:
        invoices = invoices.filter(updated_at__gt=cursor.confirmed_until - LATE_COMMIT_MARGIN)
    known = OrderState.objects.filter(connection=connection, invoice=OuterRef("pk"))
    current = known.filter(
        Q(confirmed_version__gte=OuterRef("updated_at")) | Q(synced_version__gte=OuterRef("updated_at"))
    )
    invoices = invoices.exclude(Exists(current))
    return invoices.exclude(Q(status=InvoiceStatus.CANCELLED) & ~Exists(known))


def _refs_by_object(connection: Connection, kind: str, model: type[Any], ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    content_type = ContentType.objects.get_for_model(model)
    found: dict[int, str] = {}
    rows = (
        ExternalRef.objects.filter(
            InIds(F("object_id"), list(ids)), connection=connection, kind=kind, content_type=content_type
        )
        .order_by("id")
        .values_list("object_id", "external_id")
    )
    for object_id, external_id in rows:
        found.setdefault(object_id, external_id)
    return found


def _order_ids(connection: Connection, invoice_ids: list[int]) -> tuple[dict[int, str], int]:
    """The stable `Ид` of each invoice: its order ref of this base, created (a uuid) on first export.
    Returns them and how many were created."""
    ids = _refs_by_object(connection, RefKind.ORDER, Invoice, set(invoice_ids))
    new = {pk: str(uuid.uuid4()) for pk in invoice_ids if pk not in ids}
    if new:
        now = timezone.now()
        common = {
            "connection": connection.pk,
            "kind": RefKind.ORDER,
            "content_type": ContentType.objects.get_for_model(Invoice).pk,
            "created_at": now,
            "updated_at": now,
        }
        insert_rows(ExternalRef, common, ("object_id", "external_id"), list(new.items()))
        ids.update(new)
    return ids, len(new)


def _mark_sent(connection: Connection, session: ExchangeSession, invoice_ids: list[int]) -> None:
    """Record, in one statement, that `session` offers the current version of these invoices. The database
    reads the versions itself before the rows are fetched: an invoice changed in between goes out with its
    newer content under the older version, so it is offered again next time, never confirmed unseen."""
    db = connections[router.db_for_write(OrderState)]
    quote = db.ops.quote_name
    meta = OrderState._meta
    common = {"connection": connection.pk, "sent_session": session.pk, "updated_at": timezone.now()}
    columns, constants = prepared_columns(OrderState, common, db, skip=("invoice", "sent_version"))
    invoice_pk, updated = column_of(Invoice, "pk", db), column_of(Invoice, "updated_at", db)
    column = {name: column_of(OrderState, name, db) for name in ("connection", "invoice", "sent_version")}
    changed = [
        column["sent_version"],
        column_of(OrderState, "sent_session", db),
        column_of(OrderState, "updated_at", db),
    ]
    condition, id_params = id_condition(invoice_pk, invoice_ids, db.vendor)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns)}, {column['invoice']}, {column['sent_version']}) "
        f"SELECT {', '.join(['%s'] * len(columns))}, {invoice_pk}, {updated} FROM {quote(Invoice._meta.db_table)} "
        f"WHERE {condition} "
        f"ON CONFLICT ({column['connection']}, {column['invoice']}) DO UPDATE SET "
        + ", ".join(f"{c} = EXCLUDED.{c}" for c in changed)
    )
    with db.cursor() as cursor:
        cursor.execute(sql, [*constants, *id_params])


INVOICE_FIELDS = (
    "pk",
    "number",
    "date",
    "created_at",
    "updated_at",
    "status",
    "currency_id",
    "exchange_rate",
    "vat_mode",
    "total",
    "vat_amount",
    "comment",
    "shipped_date",
    "counterparty_id",
    "contact_id",
    "contact__last_name",
    "contact__first_name",
    "contact__middle_name",
    "counterparty__name",
    "counterparty__full_name",
    "counterparty__inn",
    "counterparty__kpp",
    "counterparty__okpo",
    "counterparty__legal_address",
    "counterparty__postal_address",
    "counterparty__phones",
    "counterparty__emails",
)
LINE_FIELDS = (
    "invoice_id",
    "product_id",
    "variant_id",
    "description",
    "quantity",
    "price",
    "discount",
    "vat_rate",
    "amount",
    "vat_amount",
    "product__article",
    "product__kind",
    "unit__okei",
    "unit__name",
    "unit__full_name",
)
Row = Any  # a named tuple of INVOICE_FIELDS or LINE_FIELDS


VAT_RATES = {str(rate.value): rate for rate in VatRate}


def _contacts(phones: str, emails: str) -> tuple[r.Contact, ...]:
    phone_list = [p.strip() for p in phones.split(",") if p.strip()]
    email_list = [e.strip() for e in emails.replace(";", ",").split(",") if e.strip()]
    return tuple(r.Contact(PHONE_KIND, p) for p in phone_list) + tuple(r.Contact(EMAIL_KIND, e) for e in email_list)


def _party(row: Row, party_id: str) -> r.Party:
    contact = " ".join(
        part for part in (row.contact__last_name, row.contact__first_name, row.contact__middle_name) if part
    )
    return r.Party(
        id=party_id,
        name=row.counterparty__name,
        full_name=row.counterparty__full_name,
        inn=row.counterparty__inn,
        kpp=row.counterparty__kpp,
        okpo=row.counterparty__okpo,
        address=row.counterparty__legal_address or row.counterparty__postal_address,
        contacts=_contacts(row.counterparty__phones, row.counterparty__emails),
        role="Покупатель",
        contact_persons=(contact,) if row.contact_id and contact else (),
    )


class RecordFactory:
    """Builds the Order records of one export. Counterparties, units and status labels repeat from invoice
    to invoice: each is built once per chunk (`new_chunk` forgets them, so memory stays bounded)."""

    def __init__(self) -> None:
        self.labels = {str(value): str(label) for value, label in InvoiceStatus.choices}
        self.tz = timezone.get_current_timezone()
        self.created_refs = 0
        self.new_chunk({}, {}, {})

    def new_chunk(self, products: dict[int, str], variants: dict[int, str], parties: dict[int, str]) -> None:
        self.products, self.variants, self.party_ids = products, variants, parties
        self.parties: dict[tuple[int, int | None], r.Party] = {}
        self.units: dict[tuple[str, str, str], r.Unit] = {}

    def party(self, row: Row) -> r.Party:
        key = (row.counterparty_id, row.contact_id)
        party = self.parties.get(key)
        if party is None:
            party_id = self.party_ids.get(row.counterparty_id) or f"sdelka-{row.counterparty_id}"
            party = self.parties[key] = _party(row, party_id)
        return party

    def unit(self, line: Row) -> r.Unit | None:
        if line.unit__name is None:
            return None
        key = (line.unit__okei or "", line.unit__name, line.unit__full_name or "")
        unit = self.units.get(key)
        if unit is None:
            unit = self.units[key] = r.Unit(code=key[0], name=key[1], full_name=key[2])
        return unit

    def line(self, line: Row, with_vat: bool) -> r.OrderLine:
        product_pk = line.product_id
        article = line.product__article or ""
        return r.OrderLine(
            product_id=(self.products.get(product_pk) or article) if product_pk else "",
            variant_id=self.variants.get(line.variant_id) if line.variant_id else None,
            name=line.description,
            article=article,
            unit=self.unit(line),
            quantity=line.quantity,
            price=line.price,
            amount=line.amount,
            discount=line.discount,
            vat_rate=VAT_RATES[line.vat_rate],
            vat_amount=line.vat_amount if with_vat else None,
            kind=line.product__kind or "goods",
        )

    def order(self, row: Row, lines: list[Row], *, order_id: str) -> r.Order:
        """One invoice (a row of INVOICE_FIELDS and its rows of LINE_FIELDS) as the order 1C receives."""
        created = row.created_at.astimezone(self.tz)
        moment = datetime.combine(row.date, created.time().replace(microsecond=0), tzinfo=created.tzinfo)
        vat_mode = row.vat_mode
        with_vat = vat_mode != VatMode.WITHOUT
        status = str(row.status)
        changed = row.updated_at.astimezone(self.tz).replace(microsecond=0, tzinfo=None)
        requisites = {
            "Статус заказа": self.labels.get(status, status),
            "Статуса заказа ИД": status,
            "Метод оплаты": PAYMENT_METHOD,
            "Заказ оплачен": "true" if status == InvoiceStatus.PAID else "false",
            "Отменен": "true" if status == InvoiceStatus.CANCELLED else "false",
            "Финальный статус": "true" if status in FINAL_STATUSES else "false",
            "Дата изменения статуса": changed.isoformat(sep=" "),
        }
        if row.shipped_date is not None:
            requisites["Дата отгрузки"] = row.shipped_date.isoformat()
        return r.Order(
            id=order_id,
            number=row.number,
            date=moment,
            operation="Заказ товара",
            role="Продавец",
            currency=str(row.currency_id),
            rate=row.exchange_rate,
            total=row.total,
            vat_included=(vat_mode == VatMode.INCLUDED) if with_vat else None,
            vat_total=row.vat_amount if with_vat else None,
            comment=row.comment,
            parties=(self.party(row),),
            lines=tuple([self.line(line, with_vat) for line in lines]),
            requisites=requisites,
        )


def _read_chunk(
    connection: Connection, session: ExchangeSession, ids: list[int], factory: RecordFactory
) -> tuple[list[Row], dict[int, list[Row]], dict[int, str]]:
    """One chunk of pending invoices, in one transaction: marked as offered in `session` before it is read,
    then its rows, its lines, its order ids and the 1C ids of its products and counterparties (handed to
    `factory`)."""
    with transaction.atomic():
        _mark_sent(connection, session, ids)
        rows = list(Invoice.objects.filter(InIds(F("pk"), ids)).order_by("pk").values_list(*INVOICE_FIELDS, named=True))
        lines: dict[int, list[Row]] = {row.pk: [] for row in rows}
        line_rows = (
            InvoiceLine.objects.filter(InIds(F("invoice_id"), ids))
            .order_by("invoice_id", "position")
            .values_list(*LINE_FIELDS, named=True)
        )
        for line in line_rows:
            lines[line.invoice_id].append(line)
        order_ids, created = _order_ids(connection, [row.pk for row in rows])
        factory.created_refs += created
        if created and factory.created_refs >= ANALYZE_AFTER > factory.created_refs - created:
            # Until the planner learns that this base now has thousands of order ids, PostgreSQL looks each
            # chunk's ids up by scanning all of them (the export then grows with the square of its size).
            refresh_statistics(ExternalRef)
        all_lines = [line for group in lines.values() for line in group]
        factory.new_chunk(
            products=_refs_by_object(
                connection, RefKind.PRODUCT, Product, {line.product_id for line in all_lines if line.product_id}
            ),
            variants=_refs_by_object(
                connection, RefKind.VARIANT, Variant, {line.variant_id for line in all_lines if line.variant_id}
            ),
            parties=_refs_by_object(
                connection, RefKind.COUNTERPARTY, Counterparty, {row.counterparty_id for row in rows}
            ),
        )
    return rows, lines, order_ids


def export_records(connection: Connection, session: ExchangeSession) -> Iterator[r.Order]:
    """The pending invoices as Order records, chunk by chunk. Which invoices are pending is decided once (one
    scan, only their ids kept); each chunk is then read by primary key (`_read_chunk`)."""
    pending = list(pending_invoices(connection).order_by("pk").values_list("pk", flat=True))
    factory = RecordFactory()
    for start in range(0, len(pending), CHUNK):
        rows, lines, order_ids = _read_chunk(connection, session, pending[start : start + CHUNK], factory)
        for row in rows:
            yield factory.order(row, lines[row.pk], order_id=order_ids[row.pk])


def export_orders(
    *, connection: Connection, session: ExchangeSession, out: BinaryIO, version: str = "2.05"
) -> tuple[int, datetime]:
    """Write the orders file of `mode=query` to `out`; returns (orders written, the query's moment), the
    moment being recorded as the watermark `confirm_sent` will commit."""
    started = timezone.now()
    count = write_orders(
        export_records(connection, session),
        out,
        encoding=connection.sale_encoding,
        generated_at=timezone.localtime(started),
        version=version,
    )
    SaleCursor.objects.update_or_create(
        connection=connection, defaults={"pending_until": started, "pending_session": session}
    )
    return count, started


@transaction.atomic
def confirm_sent(*, connection: Connection, session: ExchangeSession) -> int:
    """`mode=success`: what this session offered is delivered. Returns the number of orders confirmed."""
    cursor = SaleCursor.objects.select_for_update().filter(connection=connection).first()
    confirmed = OrderState.objects.filter(connection=connection, sent_session=session).update(
        confirmed_version=F("sent_version"), sent_session=None
    )
    if cursor is not None and cursor.pending_session_id == session.pk and cursor.pending_until is not None:
        cursor.confirmed_until = cursor.pending_until
        cursor.pending_until = None
        cursor.pending_session = None
        cursor.save(update_fields=["confirmed_until", "pending_until", "pending_session"])
    return confirmed
