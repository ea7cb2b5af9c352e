"""Rules of documents and registers: invoices / customer orders with their rows (both ways), incoming payments
allocated to invoices, a counterparty's bank accounts, contacts and contracts, prices from the price register's
last slice and counterparty debt from the settlement registers' balance. The generic page writer
(`sync.Syncer._page`) handles flat catalog objects; these need the sales services (numbering, totals,
allocations, history) and read 1C's rows or virtual tables.

* rule.py — reading any document rule page by page and handing each record to its entity's apply function;
* invoices_from_1c.py, invoices_to_1c.py — invoices both ways (invoice_state.py: what both compare);
* payments.py — incoming payments and their allocations;
* counterparty_rows.py — bank accounts, contact persons, contracts;
* registers.py — prices and debt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import MappingRule, SdelkaEntity
from .invoices_to_1c import InvoicePush
from .registers import DebtRule, PriceRule
from .rule import DocumentRule, Record

if TYPE_CHECKING:
    from ..sync import RuleResult, Syncer

__all__ = ["HANDLED", "DocumentRule", "InvoicePush", "Record", "run_rule"]


def run_rule(syncer: Syncer, rule: MappingRule, outcome: RuleResult, start: int) -> None:
    """A document or register rule, in its direction."""
    if rule.entity == SdelkaEntity.INVOICE and rule.direction == "out":
        InvoicePush(syncer, rule, outcome).run()
        return
    handlers: dict[str, type[DocumentRule]] = {SdelkaEntity.PRICE: PriceRule, SdelkaEntity.DEBT: DebtRule}
    handler = handlers.get(rule.entity, DocumentRule)
    handler(syncer, rule, outcome).pull(start)
    if rule.entity == SdelkaEntity.INVOICE and rule.direction == "both":
        InvoicePush(syncer, rule, outcome).run()


HANDLED = frozenset(
    {
        SdelkaEntity.PRICE,
        SdelkaEntity.DEBT,
        SdelkaEntity.INVOICE,
        SdelkaEntity.PAYMENT,
        SdelkaEntity.BANK_ACCOUNT,
        SdelkaEntity.CONTACT,
        SdelkaEntity.CONTRACT,
    }
)
