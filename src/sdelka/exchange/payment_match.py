"""One incoming payment seen twice — as a line of a bank statement and as 1C's receipt document
(ПоступлениеНаРасчетныйСчет) — is one Sdelka payment: whichever side arrives second is linked to the payment
the first one made instead of being recorded again.

The same payment: the same organisation and amount, the same payer (the payment's counterparty, or the payer's
ИНН when the payment has none), dates at most a day apart (the bank dates the receipt, 1C the document that
records it, often a day later) and the same payment order number when both sides have one. Two payments of one
sum on one day with different numbers stay two; several candidates nothing tells apart are not linked at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import TypeVar

DATE_TOLERANCE = dt.timedelta(days=1)
T = TypeVar("T")


def order_number(number: str) -> str:
    """A payment order number as both sides write it: "000125" in one and "125" in the other."""
    return number.strip().lstrip("0")


def numbers_agree(ours: str, theirs: str) -> bool:
    ours, theirs = order_number(ours), order_number(theirs)
    return not ours or not theirs or ours == theirs


def dates_agree(ours: dt.date, theirs: dt.date) -> bool:
    return abs(ours - theirs) <= DATE_TOLERANCE


def pick_same(candidates: Iterable[T], number: str, date: dt.date, *, number_of: Callable[[T], str],
              date_of: Callable[[T], dt.date]) -> T | None:  # fmt: skip
    """The one candidate (already of the same organisation, payer and amount) that is this payment, or None
    when none is or when several are and the number does not single one out."""
    agreeing = [c for c in candidates if dates_agree(date_of(c), date) and numbers_agree(number_of(c), number)]
    wanted = order_number(number)
    exact = [c for c in agreeing if wanted and order_number(number_of(c)) == wanted]
    if len(exact) == 1:
        return exact[0]
    return agreeing[0] if len(agreeing) == 1 else None
