"""Matching incoming bank payments to open invoices; pure Python over rows loaded once, no queries.

Rules, in order (`InvoiceIndex.decide`):

1. Invoice references in the purpose text («Оплата по счету № 123 от 01.02.2026», «сч.123», «по счёту
   №00-123», «счет-договор ТД-45», «по счетам № 12, 13»). Numbers compare by their numeric tail without
   leading zeros (1C prints «123» for «БП-000123») and by their letters when both sides have some; the
   date, when written, must equal the invoice date; among several candidates the payer's own invoices
   win. Every reference must resolve to exactly one open invoice of one counterparty.
2. Without references: the payer's (ИНН, КПП) counterparty and the amount — exactly one open invoice
   with that open amount, or all his open invoices when the amount equals their sum.
3. Whatever is left is not confident and goes to the queue with the candidates found; a payer unknown
   to the CRM goes there with the offer to create him from the statement's requisites.

Money: partial payments pay the invoices in the order referenced; more than is owed stays on the
payment unallocated — the client's advance. A known payer with nothing open pays an advance.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

ZERO = Decimal("0.00")
MAX_CANDIDATES = 10

MONTHS = {
    "января": 1, "февраля": 2, "марта": 3, "апреля": 4, "мая": 5, "июня": 6,
    "июля": 7, "августа": 8, "сентября": 9, "октября": 10, "ноября": 11, "декабря": 12,
}  # fmt: skip
# Latin letters that look Cyrillic: «TД-12» typed with a Latin T is the same number.
_LOOKALIKES = str.maketrans("abcehkmoptxy", "авсенкмортху")

_NUM = r"(?:[a-zа-я]{1,10}[-/]?){0,3}\d[\w\-/]*"
_DATE = r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{1,2}\s+(?:" + "|".join(MONTHS) + r")\s+\d{4}"
_SIGN = r"\s*(?:№|n|#|no\.?|номер)?\s*"
_KEYWORD = (
    r"(?<![a-zа-я])(?:сч(?:ет(?:у|а|ам|ов|ах|е)?)?(?:[\s\-]*(?:договор|оферт)[а-я]*)?\.?"
    r"(?:\s+на\s+оплату)?|с/ф|invoice|inv\.?)"
)
FIRST_REF = re.compile(_KEYWORD + _SIGN + r"(?P<num>" + _NUM + r")(?:\s*от\s*(?P<date>" + _DATE + r"))?")
NEXT_REF = re.compile(
    r"\s*(?:,|;|\bи\b)" + _SIGN + r"(?P<num>" + _NUM + r")(?:\s*от\s*(?P<date>" + _DATE + r"))?"
    r"(?=\s*(?:,|;|\bи\b|\bот\b|$|\)|\.\s))"
)
_SPACES = re.compile(r"[\s\u00a0\u2009\u202f]+")


@dataclass(frozen=True)
class InvoiceRef:
    """An invoice number read from a purpose: `key` is the numeric tail, `letters` the prefix letters."""

    text: str
    key: str
    letters: str
    date: date | None


def number_key(number: str) -> tuple[str, str]:
    """(numeric tail without leading zeros, letters) of a document number: «БП-000123» → ("123", "бп")."""
    if number.isascii() and number.isdigit():  # most numbers are plain digits: no regex
        return number.lstrip("0") or "0", ""
    text = number.lower().replace("ё", "е").translate(_LOOKALIKES)
    runs = re.findall(r"\d+", text)
    key = (runs[-1].lstrip("0") or "0") if runs else ""
    return key, "".join(re.findall(r"[а-я]+", text))


def _parse_date(text: str | None) -> date | None:
    if not text:
        return None
    named = re.match(r"(\d{1,2})\s+([а-я]+)\s+(\d{4})", text)
    try:
        if named:
            return date(int(named[3]), MONTHS[named[2]], int(named[1]))
        day, month, year = (int(part) for part in re.split(r"[./-]", text))
        return date(year + 2000 if year < 100 else year, month, day)
    except (ValueError, KeyError):
        return None


def _ref(match: re.Match[str]) -> InvoiceRef:
    token = match["num"].rstrip("-/")
    key, letters = number_key(token)
    return InvoiceRef(text=token, key=key, letters=letters, date=_parse_date(match["date"]))


def invoice_refs(purpose: str) -> list[InvoiceRef]:
    """The invoice references of a payment purpose, in the order written, without repeats."""
    text = _SPACES.sub(" ", purpose.lower().replace("ё", "е"))
    refs: list[InvoiceRef] = []
    position = 0
    while True:
        match = FIRST_REF.search(text, position)
        if match is None:
            break
        group = [_ref(match)]
        position = match.end()
        while (more := NEXT_REF.match(text, position)) is not None:
            group.append(_ref(more))
            position = more.end()
        # «по счетам № 12, 13 от 01.02.2026»: a date written once after the list belongs to all of them.
        if group[-1].date and all(r.date is None for r in group[:-1]):
            group = [InvoiceRef(r.text, r.key, r.letters, group[-1].date) for r in group]
        refs.extend(r for r in group if r.key and r not in refs)
    return refs


@dataclass
class OpenInvoice:
    id: int
    organisation_id: int
    counterparty_id: int
    currency: str
    number: str
    date: date
    total: Decimal
    paid: Decimal
    owner_id: int
    key: str = ""
    letters: str = ""

    def __post_init__(self) -> None:
        self.key, self.letters = number_key(self.number)

    @property
    def open(self) -> Decimal:
        return max(self.total - self.paid, ZERO)


class Outcome:
    MATCHED = "matched"
    ADVANCE = "advance"
    QUEUED = "queued"


@dataclass
class Decision:
    outcome: str
    reason: str
    allocations: list[tuple[OpenInvoice, Decimal]] = field(default_factory=list)
    candidates: list[int] = field(default_factory=list)

    @property
    def allocated(self) -> Decimal:
        return sum((amount for _, amount in self.allocations), ZERO)


def split(amount: Decimal, invoices: list[OpenInvoice]) -> list[tuple[OpenInvoice, Decimal]]:
    """Pay the invoices in order, each up to what it still owes; what is left stays unallocated."""
    left = amount
    result = []
    for invoice in invoices:
        part = min(left, invoice.open)
        if part > 0:
            result.append((invoice, part))
            left -= part
    return result


class InvoiceIndex:
    """Open invoices by (organisation, number key) and by (organisation, counterparty, currency)."""

    def __init__(self, invoices: Iterable[OpenInvoice]) -> None:
        self.by_key: dict[tuple[int, str], list[OpenInvoice]] = defaultdict(list)
        self.by_counterparty: dict[tuple[int, int, str], list[OpenInvoice]] = defaultdict(list)
        for invoice in sorted(invoices, key=lambda i: (i.date, i.id)):
            self.by_key[(invoice.organisation_id, invoice.key)].append(invoice)
            self.by_counterparty[(invoice.organisation_id, invoice.counterparty_id, invoice.currency)].append(invoice)

    def _by_ref(
        self, ref: InvoiceRef, organisation_id: int, currency: str, payers: frozenset[int]
    ) -> list[OpenInvoice]:
        found = [
            i
            for i in self.by_key.get((organisation_id, ref.key), ())
            if i.currency == currency and i.open > 0 and (not ref.letters or not i.letters or ref.letters == i.letters)
        ]
        if ref.date is not None:
            found = [i for i in found if i.date == ref.date]
        own = [i for i in found if i.counterparty_id in payers]
        return own or found

    def decide(
        self, *, organisation_id: int, currency: str, payers: frozenset[int], amount: Decimal, purpose: str
    ) -> Decision:
        """What to do with an incoming payment; `payers` are the counterparties its ИНН (+КПП) names."""
        refs = invoice_refs(purpose)
        if refs:
            return self._decide_by_refs(refs, organisation_id, currency, payers, amount)
        if not payers:
            return Decision(Outcome.QUEUED, "The payer is not in the CRM and the purpose names no invoice.")
        opens = [
            i
            for payer in sorted(payers)
            for i in self.by_counterparty.get((organisation_id, payer, currency), ())
            if i.open > 0
        ]
        if not opens:
            return Decision(Outcome.ADVANCE, "The payer has no open invoices: kept as the client's advance.")
        exact = [i for i in opens if i.open == amount]
        if len(exact) == 1:
            return Decision(Outcome.MATCHED, "Matched by the payer's ИНН and the amount.", split(amount, exact))
        if len({i.counterparty_id for i in opens}) == 1 and sum((i.open for i in opens), ZERO) == amount:
            return Decision(
                Outcome.MATCHED,
                "Matched by the payer's ИНН: the amount pays all his open invoices.",
                split(amount, opens),
            )
        candidates = exact or opens
        reason = (
            "Several open invoices of the payer have this amount."
            if exact
            else "No open invoice of the payer has this amount."
        )
        return Decision(Outcome.QUEUED, reason, candidates=[i.id for i in candidates[:MAX_CANDIDATES]])

    def _decide_by_refs(
        self, refs: list[InvoiceRef], organisation_id: int, currency: str, payers: frozenset[int], amount: Decimal
    ) -> Decision:
        resolved: list[OpenInvoice] = []
        candidates: list[int] = []
        missing: list[str] = []
        for ref in refs:
            found = self._by_ref(ref, organisation_id, currency, payers)
            candidates.extend(i.id for i in found if i.id not in candidates)
            if len(found) == 1:
                if found[0] not in resolved:
                    resolved.append(found[0])
            else:
                missing.append(ref.text)
        names = ", ".join(r.text for r in refs)
        if missing or not resolved:
            reason = (
                f"Invoice № {', '.join(missing)} named in the purpose is not among the open invoices."
                if not candidates
                else f"Invoice № {', '.join(missing)} named in the purpose matches several open invoices."
            )
            return Decision(Outcome.QUEUED, reason, candidates=candidates[:MAX_CANDIDATES])
        counterparties = {i.counterparty_id for i in resolved}
        if len(counterparties) > 1:
            return Decision(
                Outcome.QUEUED, "The invoices named belong to different counterparties.", candidates=candidates
            )
        if payers and not counterparties <= payers:
            return Decision(
                Outcome.QUEUED, f"Invoice № {names} is of another counterparty than the payer.", candidates=candidates
            )
        owed = sum((i.open for i in resolved), ZERO)
        if not payers and (any(r.date is None for r in refs) or amount != owed):
            return Decision(
                Outcome.QUEUED,
                f"The payer is not in the CRM; invoice № {names} found, but without its date and exact amount "
                "the match is not certain.",
                candidates=candidates,
            )
        allocations = split(amount, resolved)
        if amount > owed:
            reason = f"Matched by invoice № {names}; the overpayment is kept as the client's advance."
        elif amount < owed:
            reason = f"Matched by invoice № {names}; paid in part."
        else:
            reason = f"Matched by invoice № {names}."
        return Decision(Outcome.MATCHED, reason, allocations)

    @staticmethod
    def apply(decision: Decision) -> None:
        """Count the decision's money as paid, so the next payment of the same import sees it."""
        for invoice, amount in decision.allocations:
            invoice.paid += amount
