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
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Prefetch, Q, QuerySet
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


def _order_ids(connection: Connection, invoices: list[Invoice]) -> dict[int, str]:
    """The stable `Ид` of each invoice: its order ref of this base, created (a uuid) on first export."""
    ids = _refs_by_object(connection, RefKind.ORDER, Invoice, {invoice.pk for invoice in invoices})
    missing = [invoice.pk for invoice in invoices if invoice.pk not in ids]
    if missing:
        content_type = ContentType.objects.get_for_model(Invoice)
        new = {pk: str(uuid.uuid4()) for pk in missing}
        ExternalRef.objects.bulk_create(
            ExternalRef(
                connection=connection, kind=RefKind.ORDER, external_id=value, content_type=content_type, object_id=pk
            )
            for pk, value in new.items()
        )
        ids.update(new)
    return ids


def _mark_sent(connection: Connection, session: ExchangeSession, invoices: list[Invoice]) -> None:
    existing = {
        state.invoice_id: state
        for state in OrderState.objects.filter(connection=connection, invoice__in=[i.pk for i in invoices])
    }
    create, update = [], []
    now = timezone.now()
    for invoice in invoices:
        state = existing.get(invoice.pk)
        if state is None:
            create.append(
                OrderState(
                    connection=connection, invoice=invoice, sent_version=invoice.updated_at, sent_session=session
                )
            )
        else:
            state.sent_version, state.sent_session, state.updated_at = invoice.updated_at, session, now
            update.append(state)
    OrderState.objects.bulk_create(create)
    OrderState.objects.bulk_update(update, ["sent_version", "sent_session", "updated_at"])


def _contacts(counterparty: Counterparty) -> tuple[r.Contact, ...]:
    phones = [p.strip() for p in counterparty.phones.split(",") if p.strip()]
    emails = [e.strip() for e in counterparty.emails.replace(";", ",").split(",") if e.strip()]
    return tuple(r.Contact(PHONE_KIND, p) for p in phones) + tuple(r.Contact(EMAIL_KIND, e) for e in emails)


def _party(invoice: Invoice, party_id: str) -> r.Party:
    counterparty = invoice.counterparty
    return r.Party(
        id=party_id,
        name=counterparty.name,
        full_name=counterparty.full_name,
        inn=counterparty.inn,
        kpp=counterparty.kpp,
        okpo=counterparty.okpo,
        address=counterparty.legal_address or counterparty.postal_address,
        contacts=_contacts(counterparty),
        role="Покупатель",
        contact_persons=(str(invoice.contact),) if invoice.contact is not None else (),
    )


def _line(line: InvoiceLine, vat_mode: str, products: dict[int, str], variants: dict[int, str]) -> r.OrderLine:
    product = line.product
    product_id = ""
    if product is not None:
        product_id = products.get(product.pk) or product.article
    variant_id = variants.get(line.variant_id) if line.variant_id else None
    unit = line.unit
    return r.OrderLine(
        product_id=product_id,
        variant_id=variant_id,
        name=line.description,
        article=product.article if product is not None else "",
        unit=r.Unit(code=unit.okei or "", name=unit.name, full_name=unit.full_name) if unit is not None else None,
        quantity=line.quantity,
        price=line.price,
        amount=line.amount,
        discount=line.discount,
        vat_rate=VatRate(line.vat_rate),
        vat_amount=None if vat_mode == VatMode.WITHOUT else line.vat_amount,
        kind=product.kind if product is not None else "goods",
    )


def invoice_record(
    invoice: Invoice,
    *,
    order_id: str,
    party_id: str,
    products: dict[int, str],
    variants: dict[int, str],
) -> r.Order:
    """One invoice (lines, counterparty and contact loaded) as the canonical order 1C receives."""
    created = timezone.localtime(invoice.created_at)
    moment = datetime.combine(invoice.date, created.time().replace(microsecond=0), tzinfo=created.tzinfo)
    with_vat = invoice.vat_mode != VatMode.WITHOUT
    status = str(invoice.status)
    requisites = {
        "Статус заказа": str(InvoiceStatus(status).label),
        "Статуса заказа ИД": status,
        "Метод оплаты": PAYMENT_METHOD,
        "Заказ оплачен": "true" if status == InvoiceStatus.PAID else "false",
        "Отменен": "true" if status == InvoiceStatus.CANCELLED else "false",
        "Финальный статус": "true" if status in FINAL_STATUSES else "false",
        "Дата изменения статуса": timezone.localtime(invoice.updated_at).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if invoice.shipped_date is not None:
        requisites["Дата отгрузки"] = invoice.shipped_date.isoformat()
    return r.Order(
        id=order_id,
        number=invoice.number,
        date=moment,
        operation="Заказ товара",
        role="Продавец",
        currency=str(invoice.currency_id),
        rate=invoice.exchange_rate,
        total=invoice.total,
        vat_included=(invoice.vat_mode == VatMode.INCLUDED) if with_vat else None,
        vat_total=invoice.vat_amount if with_vat else None,
        comment=invoice.comment,
        parties=(_party(invoice, party_id),),
        lines=tuple(_line(line, invoice.vat_mode, products, variants) for line in invoice.lines.all()),
        requisites=requisites,
    )


def _chunks(connection: Connection) -> Iterator[list[Invoice]]:
    lines = InvoiceLine.objects.select_related("product", "unit").order_by("position")
    base = (
        pending_invoices(connection)
        .select_related("counterparty", "contact")
        .prefetch_related(Prefetch("lines", queryset=lines))
        .order_by("pk")
    )
    last = 0
    while True:
        chunk = list(base.filter(pk__gt=last)[:CHUNK])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def export_records(connection: Connection, session: ExchangeSession) -> Iterator[r.Order]:
    """The pending invoices as Order records, chunk by chunk; each chunk is marked as offered in `session`."""
    for chunk in _chunks(connection):
        with transaction.atomic():
            order_ids = _order_ids(connection, chunk)
            _mark_sent(connection, session, chunk)
        all_lines = [line for invoice in chunk for line in invoice.lines.all()]
        products = _refs_by_object(
            connection, RefKind.PRODUCT, Product, {line.product_id for line in all_lines if line.product_id}
        )
        variants = _refs_by_object(
            connection, RefKind.VARIANT, Variant, {line.variant_id for line in all_lines if line.variant_id}
        )
        parties = _refs_by_object(connection, RefKind.COUNTERPARTY, Counterparty, {i.counterparty_id for i in chunk})
        for invoice in chunk:
            yield invoice_record(
                invoice,
                order_id=order_ids[invoice.pk],
                party_id=parties.get(invoice.counterparty_id) or f"sdelka-{invoice.counterparty_id}",
                products=products,
                variants=variants,
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
