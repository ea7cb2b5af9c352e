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
from django.db import connections, models, router, transaction
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

from .writer import write_orders

CHUNK = 500
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
        ExternalRef.objects.filter(connection=connection, kind=kind, content_type=content_type, object_id__in=ids)
        .order_by("id")
        .values_list("object_id", "external_id")
    )
    for object_id, external_id in rows:
        found.setdefault(object_id, external_id)
    return found


def _order_ids(connection: Connection, invoice_ids: list[int]) -> dict[int, str]:
    """The stable `Ид` of each invoice: its order ref of this base, created (a uuid) on first export."""
    ids = _refs_by_object(connection, RefKind.ORDER, Invoice, set(invoice_ids))
    missing = [pk for pk in invoice_ids if pk not in ids]
    if missing:
        content_type = ContentType.objects.get_for_model(Invoice)
        new = {pk: str(uuid.uuid4()) for pk in missing}
        now = timezone.now()
        _upsert(
            ExternalRef,
            [
                {
                    "connection": connection.pk,
                    "kind": RefKind.ORDER,
                    "external_id": value,
                    "content_type": content_type.pk,
                    "object_id": pk,
                    "created_at": now,
                    "updated_at": now,
                }
                for pk, value in new.items()
            ],
            conflict=("connection", "kind", "external_id"),
            update=("updated_at",),
        )
        ids.update(new)
    return ids


def _upsert(
    model: type[models.Model], rows: list[dict[str, Any]], *, conflict: tuple[str, ...], update: tuple[str, ...]
) -> None:
    """INSERT … ON CONFLICT DO UPDATE of plain rows (field name → value; other fields take their defaults) in
    one executemany: Django's bulk_create prepares every field of every object and was the slowest step of a
    big query."""
    if not rows:
        return
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and f.name not in rows[0])]
    db = connections[router.db_for_write(model)]
    quote = db.ops.quote_name
    defaults = {f.name: f.get_db_prep_save(f.get_default(), db) for f in fields if f.name not in rows[0]}
    columns = ", ".join(quote(f.column) for f in fields)
    by_name = {f.name: f for f in fields}
    targets = ", ".join(quote(by_name[name].column) for name in conflict)
    changes = ", ".join(f"{quote(by_name[n].column)} = EXCLUDED.{quote(by_name[n].column)}" for n in update)
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({targets}) DO UPDATE SET {changes}"
    )
    params = [
        [f.get_db_prep_save(row[f.name], db) if f.name in row else defaults[f.name] for f in fields] for row in rows
    ]
    with db.cursor() as cursor:
        cursor.executemany(sql, params)


def _mark_sent(connection: Connection, session: ExchangeSession, versions: dict[int, datetime]) -> None:
    """Record, in one upsert, which version of each invoice this session offered."""
    now = timezone.now()
    _upsert(
        OrderState,
        [
            {
                "connection": connection.pk,
                "invoice": pk,
                "sent_version": version,
                "sent_session": session.pk,
                "updated_at": now,
            }
            for pk, version in versions.items()
        ],
        conflict=("connection", "invoice"),
        update=("sent_version", "sent_session", "updated_at"),
    )


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
Row = dict[str, Any]


def _contacts(phones: str, emails: str) -> tuple[r.Contact, ...]:
    phone_list = [p.strip() for p in phones.split(",") if p.strip()]
    email_list = [e.strip() for e in emails.replace(";", ",").split(",") if e.strip()]
    return tuple(r.Contact(PHONE_KIND, p) for p in phone_list) + tuple(r.Contact(EMAIL_KIND, e) for e in email_list)


def _party(row: Row, party_id: str) -> r.Party:
    contact = " ".join(
        part for part in (row["contact__last_name"], row["contact__first_name"], row["contact__middle_name"]) if part
    )
    return r.Party(
        id=party_id,
        name=row["counterparty__name"],
        full_name=row["counterparty__full_name"],
        inn=row["counterparty__inn"],
        kpp=row["counterparty__kpp"],
        okpo=row["counterparty__okpo"],
        address=row["counterparty__legal_address"] or row["counterparty__postal_address"],
        contacts=_contacts(row["counterparty__phones"], row["counterparty__emails"]),
        role="Покупатель",
        contact_persons=(contact,) if row["contact_id"] and contact else (),
    )


def _line(line: Row, vat_mode: str, products: dict[int, str], variants: dict[int, str]) -> r.OrderLine:
    product_pk = line["product_id"]
    article = line["product__article"] or ""
    product_id = (products.get(product_pk) or article) if product_pk else ""
    okei = line["unit__okei"]
    unit = None
    if line["unit__name"] is not None:
        unit = r.Unit(code=okei or "", name=line["unit__name"], full_name=line["unit__full_name"] or "")
    return r.OrderLine(
        product_id=product_id,
        variant_id=variants.get(line["variant_id"]) if line["variant_id"] else None,
        name=line["description"],
        article=article,
        unit=unit,
        quantity=line["quantity"],
        price=line["price"],
        amount=line["amount"],
        discount=line["discount"],
        vat_rate=VatRate(line["vat_rate"]),
        vat_amount=None if vat_mode == VatMode.WITHOUT else line["vat_amount"],
        kind=line["product__kind"] or "goods",
    )


def invoice_record(
    row: Row,
    lines: list[Row],
    *,
    order_id: str,
    party_id: str,
    products: dict[int, str],
    variants: dict[int, str],
    status_labels: dict[str, str],
) -> r.Order:
    """One invoice (a row of INVOICE_FIELDS and its rows of LINE_FIELDS) as the order 1C receives."""
    created = timezone.localtime(row["created_at"])
    moment = datetime.combine(row["date"], created.time().replace(microsecond=0), tzinfo=created.tzinfo)
    vat_mode = row["vat_mode"]
    with_vat = vat_mode != VatMode.WITHOUT
    status = str(row["status"])
    requisites = {
        "Статус заказа": status_labels.get(status, status),
        "Статуса заказа ИД": status,
        "Метод оплаты": PAYMENT_METHOD,
        "Заказ оплачен": "true" if status == InvoiceStatus.PAID else "false",
        "Отменен": "true" if status == InvoiceStatus.CANCELLED else "false",
        "Финальный статус": "true" if status in FINAL_STATUSES else "false",
        "Дата изменения статуса": timezone.localtime(row["updated_at"]).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if row["shipped_date"] is not None:
        requisites["Дата отгрузки"] = row["shipped_date"].isoformat()
    return r.Order(
        id=order_id,
        number=row["number"],
        date=moment,
        operation="Заказ товара",
        role="Продавец",
        currency=str(row["currency_id"]),
        rate=row["exchange_rate"],
        total=row["total"],
        vat_included=(vat_mode == VatMode.INCLUDED) if with_vat else None,
        vat_total=row["vat_amount"] if with_vat else None,
        comment=row["comment"],
        parties=(_party(row, party_id),),
        lines=tuple(_line(line, vat_mode, products, variants) for line in lines),
        requisites=requisites,
    )


def _chunks(connection: Connection) -> Iterator[tuple[list[Row], dict[int, list[Row]]]]:
    """Chunks of pending invoices as rows, with their lines. Which invoices are pending is decided once (one
    scan, only their ids kept); each chunk is then two queries by primary key."""
    pending = list(pending_invoices(connection).order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pending), CHUNK):
        ids = pending[start : start + CHUNK]
        chunk = list(Invoice.objects.filter(pk__in=ids).order_by("pk").values(*INVOICE_FIELDS))
        lines: dict[int, list[Row]] = {row["pk"]: [] for row in chunk}
        for line in (
            InvoiceLine.objects.filter(invoice_id__in=ids).order_by("invoice_id", "position").values(*LINE_FIELDS)
        ):
            lines[line["invoice_id"]].append(line)
        yield chunk, lines


def export_records(connection: Connection, session: ExchangeSession) -> Iterator[r.Order]:
    """The pending invoices as Order records, chunk by chunk; each chunk is marked as offered in `session`."""
    labels = {str(value): str(label) for value, label in InvoiceStatus.choices}
    for chunk, lines in _chunks(connection):
        with transaction.atomic():
            order_ids = _order_ids(connection, [row["pk"] for row in chunk])
            _mark_sent(connection, session, {row["pk"]: row["updated_at"] for row in chunk})
        all_lines = [line for rows in lines.values() for line in rows]
        products = _refs_by_object(
            connection, RefKind.PRODUCT, Product, {line["product_id"] for line in all_lines if line["product_id"]}
        )
        variants = _refs_by_object(
            connection, RefKind.VARIANT, Variant, {line["variant_id"] for line in all_lines if line["variant_id"]}
        )
        parties = _refs_by_object(
            connection, RefKind.COUNTERPARTY, Counterparty, {row["counterparty_id"] for row in chunk}
        )
        for row in chunk:
            yield invoice_record(
                row,
                lines[row["pk"]],
                order_id=order_ids[row["pk"]],
                party_id=parties.get(row["counterparty_id"]) or f"sdelka-{row['counterparty_id']}",
                products=products,
                variants=variants,
                status_labels=labels,
            )


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
