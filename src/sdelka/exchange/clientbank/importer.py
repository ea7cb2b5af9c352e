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
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
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

from ..bulk import chunks, copy_to_history, insert_returning_ids, insert_rows, update_rows
from ..models import (
    BankDocument,
    BankDocumentStatus,
    Connection,
    ConnectionKind,
    EventLevel,
    ExchangeEvent,
    ExchangeFile,
    ExchangeRun,
    Route,
    RunStatus,
    Trigger,
)
from ..payment_match import DATE_TOLERANCE, pick_same
from ..services import finish_run, journal_event, log_event
from ..storage import UnsafeName, run_folder, run_folder_name, statement_file_name
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
    linked: int = 0  # incoming lines whose payment 1C brought first
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
    keep_statement_file(run, data, filename)
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


def keep_statement_file(run: ExchangeRun, data: bytes, filename: str) -> None:
    """Keep the file as it came with its run, like 1C's uploads, under a name of our making (the client's name is
    hostile input); the nightly cleanup removes it after the connection's `keep_files_days`. A storage failure
    costs the copy, not the import: it goes to the journal."""
    name = statement_file_name(filename)
    folder = run_folder(run_folder_name(run.connection_id, run.pk), run.route)
    try:
        folder.save(name, ContentFile(data))
    except (OSError, UnsafeName) as exc:
        log_event(
            run=run, level=EventLevel.WARNING, message=_("The statement file was not kept: %(error)s") % {"error": exc}
        )
        return
    ExchangeRun.objects.filter(pk=run.pk).update(folder=folder.folder)
    ExchangeFile.objects.create(run=run, name=name, size=len(data))


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
    payment_id: int | None = None
    linked: bool = False  # the payment came from 1C first: the line is linked to it, nothing recorded again

    @property
    def identity(self) -> tuple[str, date, str, Decimal, str, str]:
        d = self.document
        return (self.account, d.date, d.number[:64], d.amount, self.other.inn[:12], self.direction)


@dataclass
class _OnecPayment:
    pk: int
    counterparty_id: int | None
    payer_inn: str
    number: str
    day: date


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
        self.user_id: int | None = getattr(self.user, "pk", None)
        self.now = timezone.now()  # one time stamp for every row and history record of the import
        self.warning_count = 0
        self.key_problems: dict[tuple[str, str], str] = {}

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
        self._link_to_onec(incoming)
        incoming = [e for e in incoming if not e.linked]
        touched = self._match(incoming) if incoming else {}
        self._create_payments([e for e in fresh if not e.internal and not e.linked])
        received = self._allocate(incoming)
        paid = self._update_invoices(touched, received)
        self._store_documents(fresh)
        self._notify(paid)
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
                problem = self._key_problem(party.account, party.bik)
                if problem:
                    self.warn(f"№ {doc.number}: {party.name}: {problem}", line=doc.line)

    def _key_problem(self, account: str, bik: str) -> str:
        """Why the account fails its control key against the БИК ("" when it passes); the same accounts
        recur in every document of a statement, so each pair is checked once."""
        if (account, bik) not in self.key_problems:
            try:
                validate_account_against_bik(account, bik)
                self.key_problems[(account, bik)] = ""
            except ValidationError as exc:
                self.key_problems[(account, bik)] = " ".join(exc.messages)
        return self.key_problems[(account, bik)]

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
        for part in chunks(inns, CHUNK):
            for pk, inn, kpp in Counterparty.objects.filter(inn__in=part, is_active=True).values_list(
                "pk", "inn", "kpp"
            ):
                by_inn[inn].append((pk, kpp))
        accounts = sorted({e.other.account for e in entries if e.other.account and not by_inn.get(e.other.inn)})
        by_account: dict[tuple[str, str], set[int]] = defaultdict(set)
        for part in chunks(accounts, CHUNK):
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

    # --- payments 1C brought first ---

    def _link_to_onec(self, entries: list[_Entry]) -> None:
        """Incoming lines whose payment a sync from 1C recorded already (payment_match.py): the line points to
        that payment, which takes the bank's requisites of the payer; its allocations stay as 1C made them."""
        if not entries:
            return
        days = [self._received(e) for e in entries]
        candidates: dict[tuple[int, Decimal], list[_OnecPayment]] = defaultdict(list)
        rows = (
            Payment.objects.filter(
                source=PaymentSource.ONEC,
                direction=PaymentDirection.INCOMING,
                cancelled=False,
                organisation_id__in={self.accounts[e.account][0].pk for e in entries},
                amount__in={e.document.amount for e in entries},
                date__range=(min(days) - DATE_TOLERANCE, max(days) + DATE_TOLERANCE),
            )
            .exclude(pk__in=BankDocument.objects.filter(payment__isnull=False).values("payment_id"))
            .values_list("pk", "organisation_id", "amount", "counterparty_id", "payer_inn", "number", "date")
        )
        for pk, organisation_id, amount, counterparty_id, inn, number, day in rows:
            candidates[(organisation_id, amount)].append(_OnecPayment(pk, counterparty_id, inn, number, day))
        linked: list[tuple[Any, ...]] = []
        for entry, day in zip(entries, days, strict=True):
            pool = [
                p for p in candidates[(self.accounts[entry.account][0].pk, entry.document.amount)]
                if (p.counterparty_id in entry.payers if p.counterparty_id else p.payer_inn == entry.other.inn)
            ]  # fmt: skip
            found = pick_same(pool, entry.document.number, day, number_of=lambda p: p.number, date_of=lambda p: p.day)
            if found is None:
                continue
            candidates[(self.accounts[entry.account][0].pk, entry.document.amount)].remove(found)
            entry.linked, entry.payment_id = True, found.pk
            _organisation, bank_account = self.accounts[entry.account]
            payer = entry.document.payer
            linked.append((found.pk, bank_account.pk if bank_account else None, payer.name[:500], payer.inn[:12],
                           payer.kpp[:9], payer.account[:20], self.now))  # fmt: skip
            self.result.linked += 1
            self.events.append(
                _event(
                    self.run,
                    EventLevel.INFO,
                    _("№ %(number)s: the payment is already recorded from 1C (№ %(onec)s of %(date)s); linked to it, "
                      "not recorded again.") % {"number": entry.document.number, "onec": found.number,
                                                "date": found.day.strftime("%d.%m.%Y")},
                    line=entry.document.line,
                    external_id=entry.document.number[:255],
                )
            )  # fmt: skip
        columns = ["bank_account_id", "payer_name", "payer_inn", "payer_kpp", "payer_account", "updated_at"]
        update_rows(Payment, columns, linked)
        copy_to_history(Payment, [row[0] for row in linked], history_type="~", user_id=self.user_id, when=self.now)

    @staticmethod
    def _received(entry: _Entry) -> date:
        doc = entry.document
        return (doc.received if entry.direction == PaymentDirection.INCOMING else doc.debited) or doc.date

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

    _PAYMENT_COLUMNS = (
        "organisation_id", "bank_account_id", "counterparty_id", "direction", "source", "date", "number", "amount",
        "currency_id", "purpose", "payer_name", "payer_inn", "payer_kpp", "payer_account", "allocated_amount",
        "created_by_id", "created_at", "updated_at",
    )  # fmt: skip

    def _create_payments(self, entries: list[_Entry]) -> None:
        rows = []
        for entry in entries:
            doc = entry.document
            organisation, bank_account = self.accounts[entry.account]
            decision = entry.decision
            if decision is not None and decision.allocations:
                counterparty_id: int | None = decision.allocations[0][0].counterparty_id
            else:
                counterparty_id = next(iter(entry.payers)) if len(entry.payers) == 1 else None
            rows.append(
                (
                    organisation.pk,
                    bank_account.pk if bank_account is not None else None,
                    counterparty_id,
                    entry.direction,
                    PaymentSource.BANK,
                    self._received(entry),
                    doc.number[:30],
                    doc.amount,
                    self._currency(entry.account),
                    doc.purpose,
                    doc.payer.name[:500],
                    doc.payer.inn[:12],
                    doc.payer.kpp[:9],
                    doc.payer.account[:20],
                    decision.allocated if decision is not None else Decimal("0.00"),
                    self.user_id,
                    self.now,
                    self.now,
                )
            )
        ids = insert_returning_ids(Payment, self._PAYMENT_COLUMNS, rows)
        for entry, pk in zip(entries, ids, strict=True):
            entry.payment_id = pk
        copy_to_history(Payment, ids, history_type="+", user_id=self.user_id, when=self.now)
        self.result.payments = ids

    def _allocate(self, entries: list[_Entry]) -> dict[int, Decimal]:
        """The allocations of the matched payments; returns the money each invoice received."""
        rows = []
        received: dict[int, Decimal] = defaultdict(Decimal)
        for entry in entries:
            assert entry.payment_id is not None and entry.decision is not None
            for invoice, amount in entry.decision.allocations:
                rows.append((entry.payment_id, invoice.id, amount, self.now))
                received[invoice.id] += amount
        insert_rows(PaymentAllocation, ["payment_id", "invoice_id", "amount", "created_at"], rows)
        return received

    def _update_invoices(self, touched: dict[int, OpenInvoice], received: dict[int, Decimal]) -> list[_PaidInvoice]:
        """Invoices take the money and the status it gives them; locked first, so a payment recorded by
        someone else since they were read refuses the import instead of being overwritten."""
        if not touched:
            return []
        paid: list[_PaidInvoice] = []
        for part in chunks(sorted(touched), CHUNK):
            rows = (
                Invoice.objects.select_for_update()
                .filter(pk__in=part)
                .values_list("pk", "number", "owner_id", "total", "paid_amount")
            )
            for pk, number, owner_id, total, paid_amount in rows:
                if paid_amount + received[pk] != touched[pk].paid:
                    raise Refused(0, f"invoice № {number} was paid by someone else during the import; import again")
                paid_amount += received[pk]
                status = InvoiceStatus.PAID if paid_amount >= total else InvoiceStatus.PARTLY_PAID
                paid.append(_PaidInvoice(pk, number, owner_id, total, paid_amount, status, received[pk]))
        update_rows(
            Invoice,
            ["paid_amount", "status", "updated_at"],
            [(i.pk, i.paid_amount, i.status, self.now) for i in paid],
        )
        copy_to_history(Invoice, [i.pk for i in paid], history_type="~", user_id=self.user_id, when=self.now)
        return paid

    _DOCUMENT_COLUMNS = (
        "run_id", "organisation_id", "account", "direction", "kind", "number", "date", "amount", "counterparty_inn",
        "party", "purpose", "fields", "payment_id", "status", "reason", "candidates", "created_at",
    )  # fmt: skip

    def _store_documents(self, entries: list[_Entry]) -> None:
        rows = []
        for entry in entries:
            doc = entry.document
            decision = entry.decision
            if entry.internal:
                status, reason = BankDocumentStatus.INTERNAL, _("Transfer between our own accounts.")
            elif entry.linked:
                status, reason = BankDocumentStatus.LINKED, _("Already recorded from 1C.")
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
                (
                    self.run.pk,
                    self.accounts[entry.account][0].pk,
                    entry.account,
                    entry.direction,
                    doc.kind[:100],
                    doc.number[:64],
                    doc.date,
                    doc.amount,
                    entry.other.inn[:12],
                    entry.other.requisites,
                    doc.purpose,
                    {k: v for k, v in doc.fields.items() if v},
                    entry.payment_id,
                    status,
                    reason,
                    decision.candidates if decision is not None else [],
                    self.now,
                )
            )
        insert_rows(BankDocument, self._DOCUMENT_COLUMNS, rows)

    def _notify(self, paid: list[_PaidInvoice]) -> None:
        """One notification per invoice; a manager with many invoices paid by one statement gets one summary."""
        by_owner: dict[int, list[_PaidInvoice]] = defaultdict(list)
        for invoice in sorted(paid, key=lambda i: i.pk):
            by_owner[invoice.owner_id].append(invoice)
        notifications = []
        for owner_id, invoices in by_owner.items():
            if len(invoices) <= SUMMARY_AFTER:
                notifications += [
                    Notification(user_id=owner_id, text=notification_text(i, i.received), url=f"/invoices/{i.pk}/")
                    for i in invoices
                ]
                continue
            count_paid = sum(1 for i in invoices if i.status == InvoiceStatus.PAID)
            text = _("Bank statement: %(count)s of your invoices received money, %(paid)s of them are paid in full.")
            notifications.append(
                Notification(
                    user_id=owner_id, text=text % {"count": len(invoices), "paid": count_paid}, url="/invoices/"
                )
            )
        Notification.objects.bulk_create(notifications, batch_size=BATCH)


@dataclass
class _PaidInvoice:
    """An invoice that received money from this statement, as the notifications need it."""

    pk: int
    number: str
    owner_id: int
    total: Decimal
    paid_amount: Decimal
    status: str
    received: Decimal

    @property
    def open_amount(self) -> Decimal:
        return max(self.total - self.paid_amount, Decimal("0.00"))


def notification_text(invoice: Invoice | _PaidInvoice, amount: Decimal) -> str:
    if invoice.status == InvoiceStatus.PAID:
        text = _("Invoice № %(number)s is paid: %(amount)s received.")
    else:
        text = _("Invoice № %(number)s is partly paid: %(amount)s received, %(open)s still open.")
    values = {"number": invoice.number, "amount": amount, "open": invoice.open_amount}
    return (text % values)[:500]


def payment_notification(invoice: Invoice, amount: Decimal) -> Notification:
    """The manager's notice that money came for his invoice."""
    return Notification(
        user_id=invoice.owner_id, text=notification_text(invoice, amount), url=f"/invoices/{invoice.pk}/"
    )
