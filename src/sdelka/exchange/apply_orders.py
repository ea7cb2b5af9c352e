"""1C's answer for `type=sale`: canonical Order / Payment / Party records → invoices, payments, counterparties.

A whole file is applied in one transaction: any document that cannot be applied (an order id Sdelka does not
know and that is no new order either, a negative sum, a broken record, a counterparty that cannot be
created) refuses the file with every reason in the journal, and nothing of it stays applied — 1C then sends
the file again after the user fixed the cause.

Per order document:
- the invoice is found by the order's `Ид` (ExternalRef kind "order" of this base: the id Sdelka sent, or
  1C's id of an order made in 1C), else by the site number in `Номер` when 1C gave its own `Номер1С`;
- an unknown order with lines and a buyer is an order made in 1C: it becomes an issued invoice of the
  buyer, found by 1C id, else by ИНН+КПП over all bases (option `match_counterparties_by_inn_kpp`), else
  created;
- 1C's number, date and state are kept in `OrderState`; a document equal to the last one applied is
  unchanged and skipped;
- payment sub-documents with sums (2.10) become payments (idempotent by 1C id) allocated to the invoice;
  a shipment document of its own («Отпуск товара», linked by `Основание`) ships the invoice on its date;
  "paid" without sums pays what is still open; a shipment date sets `shipped_date`; "cancelled" cancels;
  the connection's `order_status_map` (1C status id or name → invoice status) is applied;
- every change is one note on the counterparty's timeline.
Services are called as the exchange's own user (`exchange_user`), who sees every counterparty.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.accounts.models import Role, User
from sdelka.activities.services import add_note
from sdelka.catalog.models import Unit
from sdelka.core.requisites import digits_only
from sdelka.core.vat import VatMode, VatRate
from sdelka.parties.models import Counterparty, CounterpartyKind
from sdelka.parties.services import create_counterparty
from sdelka.sales import services as sales
from sdelka.sales.models import Invoice, InvoiceStatus, Organisation, Payment, PaymentSource

from . import records as r
from .apply import Counts, Outcome, record_hash
from .commerceml.reader_values import is_shipment
from .models import (
    EXCHANGE_USERNAME,
    Connection,
    EventLevel,
    ExchangeEvent,
    ExchangeRun,
    ExternalRef,
    OrderOrigin,
    OrderState,
    RefKind,
)
from .services import journal_event

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")
STATUS_TARGETS = {InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.CANCELLED}


class OrderFileRefused(Exception):
    """The file is refused as a whole; `reason` is the text 1C shows after `failure`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Problem(Exception):
    def __init__(self, message: str, *, field: str = "", value: str = "") -> None:
        super().__init__(message)
        self.message, self.field, self.value = message, field, value


def exchange_user() -> User:
    """The user the exchange acts as (owner of what 1C creates, author of its notes); sees everything."""
    user, created = User.objects.get_or_create(
        username=EXCHANGE_USERNAME,
        defaults={"role": Role.ADMIN, "first_name": "1C", "last_name": _("Exchange"), "is_active": True},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def counterparty_owner(connection: Connection) -> User:
    """Who owns the counterparties a 1C base brings: the connection's chosen user while he is active, else the
    exchange's own user."""
    owner = connection.counterparty_owner
    return owner if owner is not None and owner.is_active else exchange_user()


def invoice_owner(counterparty: Counterparty) -> User | None:
    """Whom an invoice made from 1C belongs to: its counterparty's manager (so it is among his own and its
    payments notify him) while he is active; None leaves it to the exchange's own user."""
    owner = counterparty.owner
    return owner if owner.is_active else None


def _date(moment: dt.datetime | None) -> dt.date:
    return timezone.localtime(moment).date() if moment is not None else timezone.localdate()


def _fmt(moment: dt.datetime | dt.date | None) -> str:
    if moment is None:
        return ""
    if isinstance(moment, dt.datetime):
        moment = timezone.localtime(moment).date()
    return moment.strftime("%d.%m.%Y")


def _first_error(exc: ValidationError) -> tuple[str, str]:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            return field, "; ".join(errors)
    return "", "; ".join(exc.messages)


def _cannot_create(name: str, exc: ValidationError) -> _Problem:
    field, message = _first_error(exc)
    return _Problem(
        _("Counterparty %(name)s from 1C cannot be created: %(field)s: %(message)s")
        % {"name": name, "field": field, "message": message},
        field=field,
    )


class OrderApplier:
    def __init__(
        self, *, connection: Connection, run: ExchangeRun, progress: Callable[[Counts], None] | None = None
    ) -> None:
        self.connection = connection
        self.run = run
        self.progress = progress
        self.user = exchange_user()
        self.counts = Counts()
        self.events: list[ExchangeEvent] = []
        self.problems: list[str] = []
        self._invoice_type = ContentType.objects.get_for_model(Invoice)

    # --- journal ---

    def event(self, level: str, message: str, *, external_id: str = "", obj: str = "", **kw: str) -> None:
        self.events.append(
            journal_event(
                run=self.run,
                connection=self.connection,
                level=level,
                message=message,
                external_id=external_id,
                object_repr=obj,
                field=kw.get("field", ""),
                value=kw.get("value", ""),
            )
        )

    def problem(self, message: str, *, external_id: str = "", obj: str = "", field: str = "", value: str = "") -> None:
        self.counts.failed += 1
        self.problems.append(message)
        self.event(EventLevel.ERROR, message, external_id=external_id, obj=obj, field=field, value=value)

    # --- refs ---

    def ref(self, kind: str, external_id: str) -> ExternalRef | None:
        if not external_id:
            return None
        return ExternalRef.objects.filter(connection=self.connection, kind=kind, external_id=external_id).first()

    def link(self, kind: str, external_id: str, obj: models.Model) -> None:
        if not external_id:
            return
        ExternalRef.objects.get_or_create(
            connection=self.connection,
            kind=kind,
            external_id=external_id[:255],
            defaults={"content_type": ContentType.objects.get_for_model(obj), "object_id": obj.pk},
        )

    # --- entry point ---

    def apply(self, records: Iterable[Any]) -> None:
        for record in records:
            try:
                if isinstance(record, r.Order) and is_shipment(record.operation):
                    self._lone_shipment(record)
                elif isinstance(record, r.Order):
                    self._order(record)
                elif isinstance(record, r.Payment):
                    self._lone_payment(record)
                elif isinstance(record, r.Party):
                    self._party_record(record)
                elif isinstance(record, r.RecordError):
                    self._record_error(record)
                elif not isinstance(record, r.Package):
                    self.counts.skipped += 1
            except _Problem as problem:
                external_id = getattr(record, "id", "")
                self.problem(problem.message, external_id=external_id, field=problem.field, value=problem.value)
            if self.progress is not None:
                self.progress(self.counts)

    def _record_error(self, error: r.RecordError) -> None:
        if error.level == "warning":
            self.event(EventLevel.WARNING, error.message, external_id=error.external_id, obj=error.kind)
            return
        self.problem(
            _("Document %(id)s: %(message)s") % {"id": error.external_id or "?", "message": error.message},
            external_id=error.external_id,
            obj=error.kind,
            field=error.field,
            value=error.value,
        )

    # --- checks ---

    @staticmethod
    def _check_sums(order: r.Order) -> None:
        def negative(value: Decimal | None, field: str) -> None:
            if value is not None and value < 0:
                raise _Problem(
                    _("Order %(number)s: %(field)s is negative (%(value)s); correct the document in 1C.")
                    % {"number": order.number or order.id, "field": field, "value": value},
                    field=field,
                    value=str(value),
                )

        negative(order.total, "Сумма")
        for line in order.lines:
            negative(line.price, "ЦенаЗаЕдиницу")
            negative(line.amount, "Товар/Сумма")
            negative(line.discount, "Скидка/Сумма")
            negative(line.quantity, "Количество")
            if line.quantity == 0:
                raise _Problem(
                    _("Order %(number)s: line %(name)s has no quantity.")
                    % {"number": order.number or order.id, "name": line.name},
                    field="Количество",
                    value=str(line.quantity),
                )
        for payment in order.payments:
            negative(payment.amount, "Оплата/Сумма")

    # --- orders ---

    def _find_invoice(self, order: r.Order) -> Invoice | None:
        ref = self.ref(RefKind.ORDER, order.id)
        if ref is not None:
            return Invoice.objects.filter(pk=ref.object_id).first()
        if order.number and order.number_1c and order.number != order.number_1c:
            # 1C keeps the site's number in Номер and its own in Номер1С.
            return (
                Invoice.objects.filter(number=order.number, exchange_states__connection=self.connection)
                .order_by("-date")
                .first()
            )
        return None

    def _order(self, order: r.Order) -> None:
        self._check_sums(order)
        invoice = self._find_invoice(order)
        label = order.number_1c or order.number or order.id
        if invoice is None:
            if order.deleted or order.status.cancelled:
                self.counts.skipped += 1
                self.event(
                    EventLevel.INFO,
                    _("Order %(number)s was made and cancelled in 1C; nothing to do.") % {"number": label},
                    external_id=order.id,
                )
                return
            buyer = self._buyer(order)
            if not order.lines or buyer is None:
                raise _Problem(
                    _(
                        "Order %(number)s (Ид %(id)s) is unknown in Sdelka and carries no lines or buyer to create "
                        "it from. Check that it was loaded from this site, or send it in full."
                    )
                    % {"number": label, "id": order.id},
                    field="Ид",
                    value=order.id,
                )
            invoice = self._create_invoice(order, buyer)
            state = OrderState.objects.create(connection=self.connection, invoice=invoice, origin=OrderOrigin.ONEC)
            created = True
        else:
            state, _created = OrderState.objects.get_or_create(connection=self.connection, invoice=invoice)
            created = False
        content_hash = record_hash(order)
        if not created and state.content_hash == content_hash:
            self.counts.unchanged += 1
            return
        changes = self._apply_state(invoice, state, order)
        invoice.refresh_from_db()
        state.content_hash = content_hash
        state.synced_version = invoice.updated_at
        state.save()
        if created:
            self.counts.created += 1
            changes.insert(0, _("made in 1C as order %(number)s") % {"number": label})
        else:
            self.counts.updated += 1
        if changes:
            text = _("Invoice № %(number)s, 1C «%(base)s»: %(changes)s.") % {
                "number": invoice.number,
                "base": self.connection.name,
                "changes": "; ".join(changes),
            }
            add_note(user=self.user, counterparty=invoice.counterparty, text=text)

    def _buyer(self, order: r.Order) -> r.Party | None:
        buyers = [p for p in order.parties if p.role.lower() != "продавец"]
        return buyers[0] if buyers else None

    def _organisation(self, order: r.Order) -> Organisation:
        for party in order.parties:
            if party.role.lower() == "продавец" and party.inn:
                found = Organisation.objects.filter(inn=digits_only(party.inn), is_active=True).first()
                if found is not None:
                    return found
        found = Organisation.objects.filter(is_active=True).order_by("id").first()
        if found is None:
            raise _Problem(_("Sdelka has no organisation of its own to issue invoices for orders made in 1C."))
        return found

    def _create_invoice(self, order: r.Order, buyer: r.Party) -> Invoice:
        counterparty = self.counterparty(buyer)
        organisation = self._organisation(order)
        has_vat = any(line.vat_rate not in (None, VatRate.WITHOUT) for line in order.lines)
        if order.vat_included is True or (order.vat_included is None and has_vat):
            vat_mode = VatMode.INCLUDED
        elif order.vat_included is False and has_vat:
            vat_mode = VatMode.ON_TOP
        else:
            vat_mode = VatMode.WITHOUT
        units = {u.okei: u.pk for u in Unit.objects.filter(okei__in={ln.unit.code for ln in order.lines if ln.unit})}
        products = self._resolve(RefKind.PRODUCT, [line.product_id for line in order.lines])
        variants = self._resolve(RefKind.VARIANT, [line.variant_id or "" for line in order.lines])
        lines = []
        for line in order.lines:
            gross = (line.price * line.quantity).quantize(Decimal("0.01"))
            discount = line.discount or (gross - line.amount if gross > line.amount else ZERO)
            variant = variants.get(line.variant_id or "")
            lines.append(
                {
                    "product": products.get(line.product_id),
                    "variant": variant if products.get(line.product_id) else None,
                    "description": line.name or line.product_id,
                    "quantity": line.quantity,
                    "price": line.price,
                    "discount": discount,
                    "unit": units.get(line.unit.code) if line.unit else None,
                    "vat_rate": str(line.vat_rate or VatRate.WITHOUT),
                }
            )
        comment = order.comment or (_("Order %(number)s from 1C") % {"number": order.number_1c or order.number})
        try:
            invoice = sales.create_invoice(
                user=self.user,
                organisation=organisation,
                counterparty=counterparty,
                owner=invoice_owner(counterparty),
                lines=lines,
                date=_date(order.date),
                vat_mode=vat_mode,
                currency=order.currency or sales.RUB,
                comment=comment[:5000],
            )
            invoice = sales.issue_invoice(user=self.user, invoice=invoice)
        except ValidationError as exc:
            field, message = _first_error(exc)
            raise _Problem(
                _("Order %(number)s from 1C cannot become an invoice: %(field)s: %(message)s")
                % {"number": order.number_1c or order.number or order.id, "field": field, "message": message},
                field=field,
            ) from exc
        self.link(RefKind.ORDER, order.id, invoice)
        if order.total is not None and order.total != invoice.total:
            self.event(
                EventLevel.WARNING,
                _("Order %(number)s: 1C's total %(theirs)s differs from the invoice's %(ours)s (rounding or VAT).")
                % {"number": order.number_1c or order.number, "theirs": order.total, "ours": invoice.total},
                external_id=order.id,
            )
        return invoice

    def _resolve(self, kind: str, external_ids: list[str]) -> dict[str, int]:
        ids = {i for i in external_ids if i}
        if not ids:
            return {}
        return dict(
            ExternalRef.objects.filter(connection=self.connection, kind=kind, external_id__in=ids).values_list(
                "external_id", "object_id"
            )
        )

    # --- the state 1C reports ---

    def _apply_state(self, invoice: Invoice, state: OrderState, order: r.Order) -> list[str]:
        status = order.status
        changes: list[str] = []
        if order.number_1c and (order.number_1c != state.number_1c or order.date_1c != state.date_1c):
            changes.append(
                _("number in 1C %(number)s of %(date)s") % {"number": order.number_1c, "date": _fmt(order.date_1c)}
            )
        state.number_1c = order.number_1c or state.number_1c
        state.date_1c = order.date_1c or state.date_1c
        state.version_1c = order.version
        if status.posted is not None and status.posted != state.posted:
            changes.append(_("posted in 1C") if status.posted else _("not posted in 1C"))
            state.posted = status.posted
        old_status = state.status_name
        for name in ("payment_number", "shipment_number", "status_id", "status_name"):
            value = getattr(status, name)
            if value:
                setattr(state, name, value[:255])
        for name in ("paid", "shipped", "cancelled", "payment_date", "shipment_date"):
            value = getattr(status, name)
            if value is not None:
                setattr(state, name, value)
        if status.status_name and status.status_name != old_status:
            changes.append(_("status in 1C «%(status)s»") % {"status": status.status_name})

        payments = [p for p in order.payments if not p.cancelled and p.paid is not False]
        for payment in payments:
            change = self._payment(invoice, payment, order_label=order.number_1c or order.number)
            if change:
                changes.append(change)
        if status.paid and not payments:
            change = self._pay_in_full(
                invoice, key=f"{order.id}#paid", number=status.payment_number, date=status.payment_date
            )
            if change:
                changes.append(change)
        if status.shipped:
            shipped = _date(status.shipment_date)
            current = Invoice.objects.get(pk=invoice.pk)
            if current.shipped_date != shipped:
                self._service(sales.update_invoice, invoice=current, shipped_date=shipped)
                text = _("shipped on %(date)s") % {"date": _fmt(shipped)}
                if status.shipment_number:
                    text += " " + _("(shipment %(number)s)") % {"number": status.shipment_number}
                changes.append(text)
        shipments = [doc for doc in order.shipments if not doc.cancelled and doc.shipped is not False]
        if shipments:  # 2.10: shipment documents inside the order; the latest one says when it was shipped
            latest = max(shipments, key=lambda doc: doc.date or dt.datetime.min.replace(tzinfo=dt.UTC))
            change = self._ship(invoice, state, number=latest.number or latest.id, moment=latest.date)
            if change:
                changes.append(change)
        if status.cancelled:
            change = self._cancel(invoice)
            if change:
                changes.append(change)
        target = self._mapped_status(status)
        if target:
            change = self._set_status(invoice, target, key=f"{order.id}#status")
            if change:
                changes.append(change)
        return changes

    def _mapped_status(self, status: r.OrderStatus) -> str:
        mapping = self.connection.order_status_map
        for key in (status.status_id, status.status_name):
            if key and key in mapping:
                target = mapping[key]
                if target in STATUS_TARGETS:
                    return target
                self.event(
                    EventLevel.WARNING,
                    _("order_status_map maps %(key)s to %(target)s, which is not an invoice status Sdelka can set.")
                    % {"key": key, "target": target},
                )
        return ""

    def _set_status(self, invoice: Invoice, target: str, *, key: str) -> str:
        current = Invoice.objects.get(pk=invoice.pk)
        if current.status == target:
            return ""
        if target == InvoiceStatus.CANCELLED:
            return self._cancel(invoice)
        if target == InvoiceStatus.PAID:
            return self._pay_in_full(invoice, key=key, number="", date=None)
        if current.status == InvoiceStatus.DRAFT:
            self._service(sales.issue_invoice, invoice=current)
        if target == InvoiceStatus.SENT:
            self._service(sales.mark_invoice_sent, invoice=current)
        return _("status set to «%(status)s»") % {"status": InvoiceStatus(target).label}

    def _cancel(self, invoice: Invoice) -> str:
        current = Invoice.objects.get(pk=invoice.pk)
        if current.status == InvoiceStatus.CANCELLED:
            return ""
        if current.paid_amount > 0:
            self.event(
                EventLevel.WARNING,
                _("Invoice № %(number)s is cancelled in 1C but has payments in Sdelka; it was left as it is.")
                % {"number": current.number},
            )
            return ""
        self._service(sales.cancel_invoice, invoice=current)
        return _("cancelled in 1C")

    def _service(self, service: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return service(user=self.user, **kwargs)
        except ValidationError as exc:
            field, message = _first_error(exc)
            raise _Problem(message, field=field) from exc

    # --- money ---

    def _payment(self, invoice: Invoice, payment: r.Payment, *, order_label: str) -> str:
        if payment.amount is None:
            return self._pay_in_full(invoice, key=payment.id, number=payment.number, date=payment.date)
        if self.ref(RefKind.PAYMENT, payment.id) is not None:
            return ""
        if payment.amount == 0:
            return ""
        return self._register(invoice, key=payment.id, amount=payment.amount, number=payment.number, date=payment.date)

    def _pay_in_full(self, invoice: Invoice, *, key: str, number: str, date: dt.datetime | None) -> str:
        current = Invoice.objects.get(pk=invoice.pk)
        if current.open_amount <= 0 or self.ref(RefKind.PAYMENT, key) is not None:
            return ""
        return self._register(current, key=key, amount=current.open_amount, number=number, date=date)

    def _register(self, invoice: Invoice, *, key: str, amount: Decimal, number: str, date: dt.datetime | None) -> str:
        current = Invoice.objects.get(pk=invoice.pk)
        if current.status == InvoiceStatus.CANCELLED:
            self.event(
                EventLevel.WARNING,
                _("1C reports a payment of %(amount)s for the cancelled invoice № %(number)s; it was not recorded.")
                % {"amount": amount, "number": current.number},
            )
            return ""
        if current.status == InvoiceStatus.DRAFT:
            current = self._service(sales.issue_invoice, invoice=current)
        payment: Payment = self._service(
            sales.register_payment,
            organisation=current.organisation,
            date=_date(date),
            amount=amount,
            counterparty=current.counterparty,
            currency=current.currency_id,
            source=PaymentSource.ONEC,
            number=number[:30],
            purpose=_("Payment of invoice № %(number)s (1C)") % {"number": current.number},
        )
        self.link(RefKind.PAYMENT, key, payment)
        allocate = min(amount, current.open_amount)
        if allocate > 0:
            self._service(sales.allocate_payment, payment=payment, invoice=current, amount=allocate)
        if allocate < amount:
            self.event(
                EventLevel.WARNING,
                _("Payment %(number)s of %(amount)s exceeds what invoice № %(invoice)s owed; %(rest)s is unallocated.")
                % {"number": number or key, "amount": amount, "invoice": current.number, "rest": amount - allocate},
            )
        self.counts.created += 1
        text = _("paid %(amount)s") % {"amount": amount}
        if number:
            text += " " + _("(payment %(number)s of %(date)s)") % {"number": number, "date": _fmt(date)}
        return text

    def _invoice_of_base(self, order_id: str, order_number: str) -> Invoice | None:
        """The invoice a subordinate document belongs to: by the order's id, else by its number (`Основание`)."""
        ref = self.ref(RefKind.ORDER, order_id)
        if ref is not None:
            return Invoice.objects.filter(pk=ref.object_id).first()
        if not order_number:
            return None
        return (
            Invoice.objects.filter(number=order_number, exchange_states__connection=self.connection)
            .order_by("-date")
            .first()
        )

    def _lone_shipment(self, shipment: r.Order) -> None:
        """A 2.10 shipment document of its own («Отпуск товара»), linked to the order by `Основание`: the
        invoice is shipped on the document's date. Never a new invoice, whatever lines it carries."""
        label = shipment.number_1c or shipment.number or shipment.id
        invoice = self._invoice_of_base("", shipment.base_number)
        if invoice is None:
            raise _Problem(
                _("Shipment %(number)s refers to order %(order)s, which is unknown in Sdelka.")
                % {"number": label, "order": shipment.base_number or "—"},
                field="Основание",
                value=shipment.base_number,
            )
        status = shipment.status
        if shipment.deleted or status.cancelled or status.shipped is False:
            self.counts.skipped += 1
            return
        state, _created = OrderState.objects.get_or_create(connection=self.connection, invoice=invoice)
        change = self._ship(invoice, state, number=label, moment=status.shipment_date or shipment.date)
        if not change:
            self.counts.unchanged += 1
            return
        state.synced_version = Invoice.objects.get(pk=invoice.pk).updated_at
        state.save()
        add_note(
            user=self.user,
            counterparty=invoice.counterparty,
            text=_("Invoice № %(number)s, 1C «%(base)s»: %(changes)s.")
            % {"number": invoice.number, "base": self.connection.name, "changes": change},
        )
        self.counts.updated += 1

    def _ship(self, invoice: Invoice, state: OrderState, *, number: str, moment: dt.datetime | None) -> str:
        """Ship the invoice on the shipment document's date and keep its number and date in the state (saved by
        the caller); the change for the timeline, "" when the invoice was already shipped on that date."""
        shipped = _date(moment)
        current = Invoice.objects.get(pk=invoice.pk)
        state.shipped, state.shipment_number, state.shipment_date = True, number[:100], moment
        if current.shipped_date == shipped:
            return ""
        self._service(sales.update_invoice, invoice=current, shipped_date=shipped)
        return (
            _("shipped on %(date)s") % {"date": _fmt(shipped)} + " " + _("(shipment %(number)s)") % {"number": number}
        )

    def _lone_payment(self, payment: r.Payment) -> None:
        """A 2.10 payment document of its own, linked to the order by `Основание` (the order number)."""
        invoice = self._invoice_of_base(payment.order_id, payment.order_number)
        if invoice is None:
            raise _Problem(
                _("Payment %(number)s refers to order %(order)s, which is unknown in Sdelka.")
                % {"number": payment.number or payment.id, "order": payment.order_number or payment.order_id},
                field="Основание",
                value=payment.order_number,
            )
        if payment.amount is not None and payment.amount < 0:
            raise _Problem(
                _("Payment %(number)s has a negative sum.") % {"number": payment.number or payment.id},
                field="Сумма",
                value=str(payment.amount),
            )
        if payment.cancelled or payment.paid is False:
            self.counts.skipped += 1
            return
        change = self._payment(invoice, payment, order_label=payment.order_number)
        if change:
            add_note(
                user=self.user,
                counterparty=invoice.counterparty,
                text=_("Invoice № %(number)s, 1C «%(base)s»: %(changes)s.")
                % {"number": invoice.number, "base": self.connection.name, "changes": change},
            )
            state, _created = OrderState.objects.get_or_create(connection=self.connection, invoice=invoice)
            state.synced_version = Invoice.objects.get(pk=invoice.pk).updated_at
            state.save(update_fields=["synced_version", "updated_at"])
        else:
            self.counts.unchanged += 1

    # --- counterparties ---

    def _party_record(self, party: r.Party) -> None:
        before = self.counts.created
        self.counterparty(party, count=True)
        if self.counts.created == before:
            self.counts.unchanged += 1

    def counterparty(self, party: r.Party, *, count: bool = False) -> Counterparty:
        """The counterparty of a 1C party: by this base's id, else by ИНН+КПП (any base, when the option is
        on), else a new one."""
        ref = self.ref(RefKind.COUNTERPARTY, party.id)
        if ref is not None:
            found = Counterparty.objects.filter(pk=ref.object_id).first()
            if found is not None:
                return found
        inn, kpp = digits_only(party.inn), digits_only(party.kpp).upper()
        if inn and self.connection.match_counterparties_by_inn_kpp:
            found = Counterparty.objects.filter(inn=inn, kpp=kpp).first()
            if found is not None:
                self.link(RefKind.COUNTERPARTY, party.id, found)
                return found
        counterparty = self._create_counterparty(party, inn, kpp)
        self.link(RefKind.COUNTERPARTY, party.id, counterparty)
        if count:
            self.counts.created += 1
        return counterparty

    def _create_counterparty(self, party: r.Party, inn: str, kpp: str) -> Counterparty:
        person_name = " ".join(p for p in (party.last_name, party.first_name, party.middle_name) if p)
        name = (party.name or party.full_name or person_name or party.id)[:255]
        if len(inn) == 12:
            kind = CounterpartyKind.ENTREPRENEUR
        elif not inn and person_name and not kpp:
            kind = CounterpartyKind.PERSON
        else:
            kind = CounterpartyKind.LEGAL
        phones = [
            c.value for c in party.contacts if "тел" in c.kind.lower() and sum(ch.isdigit() for ch in c.value) >= 5
        ]
        emails = [c.value for c in party.contacts if ("почт" in c.kind.lower() or "mail" in c.kind.lower())]
        data: dict[str, Any] = {
            "kind": kind,
            "name": name,
            "full_name": party.full_name[:500],
            "inn": inn,
            "kpp": kpp if kind == CounterpartyKind.LEGAL else "",
            "okpo": digits_only(party.okpo),
            "legal_address": party.address,
            "phones": ", ".join(phones)[:255],
            "emails": ", ".join(e for e in emails if "@" in e and " " not in e.strip())[:255],
            "comment": _("Created from 1C «%(base)s»") % {"base": self.connection.name},
            "owner": counterparty_owner(self.connection),
        }
        try:
            with transaction.atomic():
                return create_counterparty(user=self.user, data=data)
        except ValidationError as exc:
            errors = exc.message_dict
            if any(getattr(e, "code", "") in ("duplicate", "duplicate_hidden") for e in exc.error_dict.get("inn", [])):
                raise _Problem(
                    _(
                        "Counterparty %(name)s (ИНН %(inn)s, КПП %(kpp)s) already exists in Sdelka. Switch on "
                        "“match new counterparties by ИНН+КПП” for this connection to use it."
                    )
                    % {"name": name, "inn": inn, "kpp": kpp or "—"},
                    field="ИНН",
                    value=inn,
                ) from exc
            dropped = [field for field in errors if field in ("inn", "kpp", "okpo", "phones", "emails", "full_name")]
            if not dropped or set(errors) - set(dropped):
                raise _cannot_create(name, exc) from exc
            for field in dropped:
                data[field] = ""
            self.event(
                EventLevel.WARNING,
                _("Counterparty %(name)s: %(fields)s from 1C are not valid and were left empty.")
                % {"name": name, "fields": ", ".join(dropped)},
                external_id=party.id,
            )
            try:
                return create_counterparty(user=self.user, data=data)
            except ValidationError as again:
                raise _cannot_create(name, again) from again


def apply_order_records(
    *,
    connection: Connection,
    run: ExchangeRun,
    records: Iterable[Any],
    folder: Any = None,
    progress: Callable[[Counts], None] | None = None,
) -> Outcome:
    """Apply a 1C answer file for `type=sale` all or nothing; raises OrderFileRefused with the reasons."""
    # No progress writes: they would sit in the file's one transaction, invisible until it ends.
    applier = OrderApplier(connection=connection, run=run)
    refused: OrderFileRefused | None = None
    try:
        with transaction.atomic():
            applier.apply(records)
            if applier.problems:
                shown = "; ".join(applier.problems[:3])
                more = len(applier.problems) - 3
                if more > 0:
                    shown += " " + _("(and %(count)d more in the journal)") % {"count": more}
                raise OrderFileRefused(_("nothing was applied: %(reasons)s") % {"reasons": shown})
    except OrderFileRefused as exc:
        refused = exc
    finally:
        ExchangeEvent.objects.bulk_create(applier.events)
    if refused is not None:
        raise refused
    counts = applier.counts
    ExchangeRun.objects.filter(pk=run.pk).update(
        created=F("created") + counts.created,
        updated=F("updated") + counts.updated,
        unchanged=F("unchanged") + counts.unchanged,
        skipped=F("skipped") + counts.skipped,
        failed=F("failed") + counts.failed,
    )
    return Outcome(counts=counts)
