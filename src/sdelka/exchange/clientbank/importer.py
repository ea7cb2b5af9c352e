"""Importing a bank statement: one `ExchangeRun` with its journal, all of the file or nothing.

`import_statement` reads the file (`reader`), decides the direction of every document against our
organisations' accounts, drops documents already imported (identity: our account, date, number,
amount, the other party's ИНН, direction — a unique key on `BankDocument`), creates the payments,
matches incoming ones to open invoices (`matcher`), allocates, moves the invoices' status with the money,
notifies their managers and queues what is not certain. Every write is a bulk write inside one
transaction; a refused file leaves only the failed run and its journal.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.activities.models import Notification
from sdelka.core.requisites import validate_account_against_bik
from sdelka.parties.models import Counterparty, CounterpartyBankAccount
from sdelka.sales.models import (
    OPEN_INVOICE_STATUSES,
    Invoice,
    InvoiceStatus,
    Organisation,
    OrganisationBankAccount,
    Payment,
    PaymentAllocation,
    PaymentDirection,
    PaymentSource,
)

from ..bulk import insert_objects, update_rows
from ..models import (
    BankDocument,
    BankDocumentStatus,
    Connection,
    ConnectionKind,
    EventLevel,
    ExchangeEvent,
    ExchangeRun,
    Route,
    RunStatus,
    Trigger,
)
from ..services import finish_run, journal_event
from .matcher import Decision, InvoiceIndex, OpenInvoice, Outcome
from .reader import Document, Party, Statement, StatementError, read_statement

logger = logging.getLogger(__name__)

DEFAULT_CONNECTION_NAME = "Bank statements"
CHUNK = 900  # ids per IN (...) query: under SQLite's variable limit
BATCH = 1000
MAX_WARNING_EVENTS = 200
SUMMARY_AFTER = 10  # invoices of one manager paid by one statement before notifications become a summary
OPEN_STATUSES = list(OPEN_INVOICE_STATUSES)  # invoices a payment may settle
CURRENCY_BY_ACCOUNT_CODE = {"810": "RUB", "643": "RUB", "840": "USD", "978": "EUR", "156": "CNY"}
T = TypeVar("T")


@dataclass
class ImportResult:
    run: ExchangeRun
    ok: bool = True
    error: str = ""
    line: int = 0
    documents: int = 0
    incoming: int = 0
    outgoing: int = 0
    internal: int = 0
    duplicates: int = 0
    skipped: int = 0
    matched: int = 0
    advance: int = 0
    queued: int = 0
    warnings: int = 0
    payments: list[int] = field(default_factory=list)

    def summary(self) -> str:
        if not self.ok:
            return _("Refused: %(error)s") % {"error": self.error}
        return _(
            "%(documents)s documents: %(incoming)s incoming, %(outgoing)s outgoing, %(internal)s between our "
            "accounts, %(duplicates)s already imported, %(skipped)s skipped; incoming matched %(matched)s, "
            "advances %(advance)s, queued %(queued)s."
        ) % vars(self)


class Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.reason = message
        super().__init__(message)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def bank_connection() -> Connection:
    """The connection bank statements are journaled under (created on first use)."""
    connection = Connection.objects.filter(kind=ConnectionKind.BANK).order_by("pk").first()
    if connection is None:
        connection, _created = Connection.objects.get_or_create(
            name=DEFAULT_CONNECTION_NAME, defaults={"kind": ConnectionKind.BANK}
        )
    return connection


# --- the entry point ------------------------------------------------------------------------------


def import_statement(
    *,
    data: bytes,
    user: Any,
    filename: str = "",
    organisation: Organisation | None = None,
    connection: Connection | None = None,
    trigger: str = Trigger.MANUAL,
) -> ImportResult:
    """Import one statement file. Raises ValidationError only when another import is running; a refused
    file gives `ok=False` with the line and reason, recorded on the failed run."""
    connection = connection or bank_connection()
    try:
        with transaction.atomic():
            run = ExchangeRun.objects.create(
                connection=connection, route=Route.BANK, trigger=trigger, status=RunStatus.RUNNING
            )
    except IntegrityError:
        raise ValidationError({"file": _("Another bank statement is being imported; try again shortly.")}) from None
    result = ImportResult(run=run)
    events: list[ExchangeEvent] = []
    try:
        statement = read_statement(data)
        with transaction.atomic():
            _Import(statement, run, user, organisation, result, events).execute()
    except (StatementError, Refused) as exc:
        result.ok, result.line, result.error = False, exc.line, str(exc)
        events = [_event(run, EventLevel.ERROR, exc.reason, line=exc.line, value=filename)]
    except IntegrityError:
        # A document of this file was imported meanwhile by another run: nothing of this one is kept.
        result.ok, result.error = (
            False,
            _("Documents of this statement were imported at the same time; import it again."),
        )
        events = [_event(run, EventLevel.ERROR, result.error, value=filename)]
    ExchangeEvent.objects.bulk_create(events, batch_size=BATCH)
    ExchangeRun.objects.filter(pk=run.pk).update(
        total=result.documents,
        done=result.documents if result.ok else 0,
        created=len(result.payments),
        unchanged=result.duplicates,
        skipped=result.skipped,
        failed=0 if result.ok else 1,
    )
    finish_run(run=run, status=RunStatus.SUCCESS if result.ok else RunStatus.FAILED, message=result.summary())
    result.run = run
    logger.info("Bank statement %s: %s", filename or "(upload)", result.summary())
    return result


def _event(
    run: ExchangeRun, level: str, message: str, *, line: int = 0, value: str = "", external_id: str = ""
) -> ExchangeEvent:
    return journal_event(
        run=run,
        connection=run.connection,
        level=level,
        message=message,
        field=f"line {line}" if line else "",
        value=value,
        external_id=external_id,
    )


# --- one import -----------------------------------------------------------------------------------


@dataclass
class _Entry:
    """A document as seen from one of our accounts."""

    document: Document
    direction: str
    account: str
    other: Party
    internal: bool = False
    payers: frozenset[int] = frozenset()
    decision: Decision | None = None
    payment: Payment | None = None

    @property
    def identity(self) -> tuple[str, date, str, Decimal, str, str]:
        d = self.document
        return (self.account, d.date, d.number[:64], d.amount, self.other.inn[:12], self.direction)


class _Import:
    def __init__(
        self,
        statement: Statement,
        run: ExchangeRun,
        user: Any,
        organisation: Organisation | None,
        result: ImportResult,
        events: list[ExchangeEvent],
    ) -> None:
        self.statement = statement
        self.run = run
        self.user = user if getattr(user, "is_authenticated", False) else None
        self.organisation = organisation
        self.result = result
        self.events = events
        self.warning_count = 0
        self.invoices: dict[int, Invoice] = {}

    def warn(self, message: str, *, line: int = 0, external_id: str = "") -> None:
        self.warning_count += 1
        if self.warning_count <= MAX_WARNING_EVENTS:
            self.events.append(_event(self.run, EventLevel.WARNING, message, line=line, external_id=external_id))

    def execute(self) -> None:
        st = self.statement
        for line, message in st.warnings:
            self.warn(message, line=line)
        self.accounts = self._our_accounts()
        entries = self._entries()
        self._reconcile(entries)
        fresh = self._drop_duplicates(entries)
        self._resolve_payers(fresh)
        incoming = [e for e in fresh if e.direction == PaymentDirection.INCOMING and not e.internal]
        touched = self._match(incoming) if incoming else {}
        self._create_payments([e for e in fresh if not e.internal])
        allocations = self._allocate(incoming)
        self._update_invoices(touched, allocations)
        self._store_documents(fresh)
        self._notify(touched, allocations)
        r = self.result
        r.warnings = self.warning_count
        if self.warning_count > MAX_WARNING_EVENTS:
            self.events.append(
                _event(
                    self.run, EventLevel.WARNING, f"{self.warning_count - MAX_WARNING_EVENTS} more warnings not shown"
                )
            )
        self.events.append(_event(self.run, EventLevel.INFO, r.summary()))

    # --- accounts and directions ---

    def _our_accounts(self) -> dict[str, tuple[Organisation, OrganisationBankAccount | None]]:
        st = self.statement
        known = {
            a.number: a
            for a in OrganisationBankAccount.objects.filter(number__in=st.accounts).select_related("organisation")
        }
        result: dict[str, tuple[Organisation, OrganisationBankAccount | None]] = {}
        for number in st.accounts:
            account = known.get(number)
            line = st.account_lines.get(number, 0)
            if account is not None:
                if self.organisation is not None and account.organisation_id != self.organisation.pk:
                    raise Refused(
                        line, f"account {number} belongs to {account.organisation}, not to {self.organisation}"
                    )
                result[number] = (account.organisation, account)
            elif self.organisation is not None:
                self.warn(
                    f"account {number} is not among the accounts of {self.organisation}; "
                    "payments are recorded without it",
                    line=line,
                )
                result[number] = (self.organisation, None)
            else:
                raise Refused(
                    line,
                    f"account {number} is not an account of any of our organisations: add it to the organisation "
                    "or choose the organisation for this statement",
                )
        return result

    def _entries(self) -> list[_Entry]:
        st = self.statement
        ours = set(st.accounts)
        entries: list[_Entry] = []
        for doc in st.documents:
            received = sorted(doc.recipient_accounts & ours)
            paid = sorted(doc.payer_accounts & ours)
            if received and paid:
                entries.append(_Entry(doc, PaymentDirection.OUTGOING, paid[0], doc.recipient, internal=True))
                entries.append(_Entry(doc, PaymentDirection.INCOMING, received[0], doc.payer, internal=True))
            elif received:
                entries.append(_Entry(doc, PaymentDirection.INCOMING, received[0], doc.payer))
            elif paid:
                entries.append(_Entry(doc, PaymentDirection.OUTGOING, paid[0], doc.recipient))
            elif len(st.accounts) == 1 and bool(doc.received) != bool(doc.debited):
                # A one-account statement lists only that account's documents; when the bank (or an
                # anonymiser) wrote another account number, the side whose date is filled tells the direction.
                incoming = doc.received is not None
                direction = PaymentDirection.INCOMING if incoming else PaymentDirection.OUTGOING
                other = doc.payer if incoming else doc.recipient
                entries.append(_Entry(doc, direction, st.accounts[0], other))
                self.warn(
                    f"№ {doc.number}: neither account is {st.accounts[0]}; taken as "
                    f"{'incoming (ДатаПоступило)' if incoming else 'outgoing (ДатаСписано)'}",
                    line=doc.line,
                )
            else:
                self.result.skipped += 1
                self.warn(f"№ {doc.number}: none of its accounts is in this statement; skipped", line=doc.line)
            self._check_keys(doc)
        self.result.documents = len(st.documents)
        return entries

    def _check_keys(self, doc: Document) -> None:
        for party in (doc.payer, doc.recipient):
            if party.account and party.bik:
                try:
                    validate_account_against_bik(party.account, party.bik)
                except ValidationError as exc:
                    self.warn(f"№ {doc.number}: {party.name}: {' '.join(exc.messages)}", line=doc.line)

    def _reconcile(self, entries: list[_Entry]) -> None:
        sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for e in entries:
            sums[(e.account, e.direction)] += e.document.amount
        per_account: dict[str, int] = defaultdict(int)
        for balance in self.statement.balances:
            per_account[balance.account] += 1
        for b in self.statement.balances:
            if None not in (b.opening, b.incoming, b.outgoing, b.closing):
                assert b.opening is not None and b.incoming is not None and b.outgoing is not None
                if b.opening + b.incoming - b.outgoing != b.closing:
                    self.warn(
                        f"balances of {b.account} do not add up: "
                        f"{b.opening} + {b.incoming} − {b.outgoing} ≠ {b.closing}",
                        line=b.line,
                    )
            if per_account[b.account] == 1:
                for total, direction in (
                    (b.incoming, PaymentDirection.INCOMING),
                    (b.outgoing, PaymentDirection.OUTGOING),
                ):
                    found = sums.get((b.account, direction), Decimal("0.00"))
                    if total is not None and total != found:
                        self.warn(
                            f"{b.account}: the documents {'received' if direction == 'in' else 'paid'} "
                            f"{found}, the balances section says {total}",
                            line=b.line,
                        )

    def _drop_duplicates(self, entries: list[_Entry]) -> list[_Entry]:
        st = self.statement
        dates = [e.document.date for e in entries]
        existing: set[tuple[Any, ...]] = set()
        if entries:
            existing = set(
                BankDocument.objects.filter(account__in=st.accounts, date__range=(min(dates), max(dates))).values_list(
                    "account", "date", "number", "amount", "counterparty_inn", "direction"
                )
            )
        fresh = []
        for entry in entries:
            if entry.identity in existing:
                self.result.duplicates += 1
                continue
            existing.add(entry.identity)
            fresh.append(entry)
            if entry.internal:
                self.result.internal += 1
            elif entry.direction == PaymentDirection.INCOMING:
                self.result.incoming += 1
            else:
                self.result.outgoing += 1
        return fresh

    # --- counterparties ---

    def _resolve_payers(self, entries: list[_Entry]) -> None:
        inns = sorted({e.other.inn for e in entries if e.other.inn})
        by_inn: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for part in chunks(inns):
            for pk, inn, kpp in Counterparty.objects.filter(inn__in=part, is_active=True).values_list(
                "pk", "inn", "kpp"
            ):
                by_inn[inn].append((pk, kpp))
        accounts = sorted({e.other.account for e in entries if e.other.account and not by_inn.get(e.other.inn)})
        by_account: dict[tuple[str, str], set[int]] = defaultdict(set)
        for part in chunks(accounts):
            rows = CounterpartyBankAccount.objects.filter(number__in=part).values_list(
                "number", "bik", "counterparty_id"
            )
            for number, bik, counterparty_id in rows:
                by_account[(number, bik)].add(counterparty_id)
        for entry in entries:
            party = entry.other
            found = by_inn.get(party.inn, [])
            same_kpp = [pk for pk, kpp in found if party.kpp and kpp == party.kpp]
            ids = same_kpp or [pk for pk, _kpp in found]
            if not ids:
                ids = sorted(by_account.get((party.account, party.bik), ()))
            entry.payers = frozenset(ids)

    # --- matching and money ---

    def _open_invoices(self, organisation_ids: set[int]) -> InvoiceIndex:
        rows = (
            Invoice.objects.filter(
                organisation_id__in=organisation_ids, status__in=OPEN_STATUSES, total__gt=F("paid_amount")
            )
            .values_list(
                "pk",
                "organisation_id",
                "counterparty_id",
                "currency_id",
                "number",
                "date",
                "total",
                "paid_amount",
                "owner_id",
            )
            .iterator(chunk_size=5000)
        )
        return InvoiceIndex(OpenInvoice(*row) for row in rows)

    def _currency(self, account: str) -> str:
        _organisation, bank_account = self.accounts[account]
        if bank_account is not None and bank_account.currency_id:
            return str(bank_account.currency_id)
        return CURRENCY_BY_ACCOUNT_CODE.get(account[5:8], "RUB")

    def _match(self, entries: list[_Entry]) -> dict[int, OpenInvoice]:
        index = self._open_invoices({self.accounts[e.account][0].pk for e in entries})
        touched: dict[int, OpenInvoice] = {}
        for entry in entries:
            decision = index.decide(
                organisation_id=self.accounts[entry.account][0].pk,
                currency=self._currency(entry.account),
                payers=entry.payers,
                amount=entry.document.amount,
                purpose=entry.document.purpose,
            )
            index.apply(decision)
            entry.decision = decision
            for invoice, _amount in decision.allocations:
                touched[invoice.id] = invoice
            if decision.outcome == Outcome.MATCHED:
                self.result.matched += 1
            elif decision.outcome == Outcome.ADVANCE:
                self.result.advance += 1
            else:
                self.result.queued += 1
        return touched

    def _create_payments(self, entries: list[_Entry]) -> None:
        payments = []
        for entry in entries:
            doc = entry.document
            organisation, bank_account = self.accounts[entry.account]
            decision = entry.decision
            if decision is not None and decision.allocations:
                counterparty_id: int | None = decision.allocations[0][0].counterparty_id
            else:
                counterparty_id = next(iter(entry.payers)) if len(entry.payers) == 1 else None
            incoming = entry.direction == PaymentDirection.INCOMING
            payment = Payment(
                organisation=organisation,
                bank_account=bank_account,
                counterparty_id=counterparty_id,
                direction=entry.direction,
                source=PaymentSource.BANK,
                date=(doc.received if incoming else doc.debited) or doc.date,
                number=doc.number[:30],
                amount=doc.amount,
                currency_id=self._currency(entry.account),
                purpose=doc.purpose,
                payer_name=doc.payer.name[:500],
                payer_inn=doc.payer.inn[:12],
                payer_kpp=doc.payer.kpp[:9],
                payer_account=doc.payer.account[:20],
                allocated_amount=decision.allocated if decision is not None else Decimal("0.00"),
                created_by=self.user,
            )
            entry.payment = payment
            payments.append(payment)
        insert_objects(Payment, payments)
        _history(Payment, payments, self.user, created=True)
        self.result.payments = [p.pk for p in payments]

    def _allocate(self, entries: list[_Entry]) -> dict[int, list[tuple[Payment, Decimal]]]:
        allocations: list[PaymentAllocation] = []
        by_invoice: dict[int, list[tuple[Payment, Decimal]]] = defaultdict(list)
        for entry in entries:
            assert entry.payment is not None and entry.decision is not None
            for invoice, amount in entry.decision.allocations:
                allocations.append(PaymentAllocation(payment=entry.payment, invoice_id=invoice.id, amount=amount))
                by_invoice[invoice.id].append((entry.payment, amount))
        insert_objects(PaymentAllocation, allocations)
        return by_invoice

    def _update_invoices(
        self, touched: dict[int, OpenInvoice], allocations: dict[int, list[tuple[Payment, Decimal]]]
    ) -> None:
        if not touched:
            return
        now = timezone.now()
        invoices: list[Invoice] = []
        for part in chunks(sorted(touched)):
            invoices.extend(Invoice.objects.select_for_update().filter(pk__in=part))
        for invoice in invoices:
            added = sum((amount for _p, amount in allocations[invoice.pk]), Decimal("0.00"))
            if invoice.paid_amount + added != touched[invoice.pk].paid:
                raise Refused(0, f"invoice № {invoice.number} was paid by someone else during the import; import again")
            invoice.paid_amount += added
            invoice.status = InvoiceStatus.PAID if invoice.paid_amount >= invoice.total else InvoiceStatus.PARTLY_PAID
            invoice.updated_at = now
        update_rows(
            Invoice, ["paid_amount", "status", "updated_at"], [(i.pk, i.paid_amount, i.status, now) for i in invoices]
        )
        _history(Invoice, invoices, self.user, created=False)
        self.invoices = {i.pk: i for i in invoices}

    def _store_documents(self, entries: list[_Entry]) -> None:
        rows = []
        for entry in entries:
            doc = entry.document
            decision = entry.decision
            if entry.internal:
                status, reason = BankDocumentStatus.INTERNAL, _("Transfer between our own accounts.")
            elif entry.direction == PaymentDirection.OUTGOING:
                status, reason = BankDocumentStatus.OUTGOING, ""
            else:
                assert decision is not None
                status = {
                    Outcome.MATCHED: BankDocumentStatus.MATCHED,
                    Outcome.ADVANCE: BankDocumentStatus.ADVANCE,
                }.get(decision.outcome, BankDocumentStatus.QUEUED)
                reason = decision.reason
            rows.append(
                BankDocument(
                    run=self.run,
                    organisation=self.accounts[entry.account][0],
                    account=entry.account,
                    direction=entry.direction,
                    kind=doc.kind[:100],
                    number=doc.number[:64],
                    date=doc.date,
                    amount=doc.amount,
                    counterparty_inn=entry.other.inn[:12],
                    party=entry.other.requisites,
                    purpose=doc.purpose,
                    fields={k: v for k, v in doc.fields.items() if v},
                    payment=entry.payment,
                    status=status,
                    reason=reason,
                    candidates=decision.candidates if decision is not None else [],
                )
            )
        insert_objects(BankDocument, rows)

    def _notify(self, touched: dict[int, OpenInvoice], allocations: dict[int, list[tuple[Payment, Decimal]]]) -> None:
        """One notification per invoice; a manager with many invoices paid by one statement gets one summary."""
        by_owner: dict[int, list[Invoice]] = defaultdict(list)
        for pk in sorted(touched):
            by_owner[self.invoices[pk].owner_id].append(self.invoices[pk])
        notifications = []
        for owner_id, invoices in by_owner.items():
            if len(invoices) <= SUMMARY_AFTER:
                notifications += [
                    payment_notification(i, sum((a for _p, a in allocations[i.pk]), Decimal("0.00"))) for i in invoices
                ]
                continue
            paid = sum(1 for i in invoices if i.status == InvoiceStatus.PAID)
            text = _("Bank statement: %(count)s of your invoices received money, %(paid)s of them are paid in full.")
            notifications.append(
                Notification(user_id=owner_id, text=text % {"count": len(invoices), "paid": paid}, url="/invoices/")
            )
        insert_objects(Notification, notifications)


def _history(model: Any, objects: list[Any], user: Any, *, created: bool) -> None:
    """simple_history's rows for objects written in bulk ("+" created, "~" changed), also by COPY."""
    if not objects:
        return
    history = model.history.model
    now = timezone.now()
    skip = {"updated_at"}
    fields = [f.attname for f in model._meta.concrete_fields if f.name not in skip]
    rows = [
        history(
            **{name: getattr(obj, name) for name in fields},
            history_date=now,
            history_type="+" if created else "~",
            history_user_id=getattr(user, "pk", None),
            history_change_reason=None,
        )
        for obj in objects
    ]
    insert_objects(history, rows)


def payment_notification(invoice: Invoice, amount: Decimal) -> Notification:
    """The manager's notice that money came for his invoice."""
    if invoice.status == InvoiceStatus.PAID:
        text = _("Invoice № %(number)s is paid: %(amount)s received.")
    else:
        text = _("Invoice № %(number)s is partly paid: %(amount)s received, %(open)s still open.")
    values = {"number": invoice.number, "amount": amount, "open": invoice.open_amount}
    return Notification(user_id=invoice.owner_id, text=(text % values)[:500], url=f"/invoices/{invoice.pk}/")
