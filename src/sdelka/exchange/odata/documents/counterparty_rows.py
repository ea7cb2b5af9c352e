"""A counterparty's rows from 1C — bank accounts, contact persons, contracts — through the parties and sales
services, which check them like the card does."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import models, transaction

from sdelka.exchange.models import ExternalRef
from sdelka.parties.models import Counterparty
from sdelka.sales import services as sales

if TYPE_CHECKING:
    from ..sync import Change
    from .rule import DocumentRule, Record

_BANK_FIELDS = ("number", "bik", "bank_name", "correspondent_account")
_CONTACT_FIELDS = ("last_name", "first_name", "middle_name", "position", "birthday", "is_active")


def _apply_row(
    rule: DocumentRule,
    record: Record,
    ref: ExternalRef | None,
    change: Change,
    *,
    model: type[models.Model],
    fields: tuple[str, ...],
    find: Callable[[dict[str, Any]], models.Model | None],
    add: Callable[..., models.Model],
    update: Callable[..., models.Model],
    delete: Callable[..., None] | None,
) -> None:
    """A row of a counterparty (bank account, contact person) through the parties services, which check it
    like the card does. Linked by the 1C id, else by `find` (an account already typed in Sdelka)."""
    values = record.values
    data = {name: values[name] for name in fields if name in values}
    active = values.get("is_active", True)
    row = model._default_manager.filter(pk=ref.object_id).first() if ref is not None else None
    if row is None:
        row = find(values)
    if row is None:
        if not active or not rule.syncer.task.create_allowed:
            change.action = "unchanged" if not active else "skipped"
            return
        change.action, change.diff = "create", {name: (None, value) for name, value in data.items()}
        if not rule.syncer.dry_run:
            with transaction.atomic():
                counterparty = Counterparty.objects.get(pk=values["counterparty_id"])
                rule.link(record, add(user=rule.user, counterparty=counterparty, data=data), ref)
        return
    if not active and delete is not None:
        if ref is None:  # marked for deletion in 1C, typed in Sdelka by hand: left alone, not linked
            change.action = "unchanged"
            return
        change.action, change.diff = "update", {"deleted": (False, True)}
        if not rule.syncer.dry_run:
            with transaction.atomic():
                ExternalRef.objects.filter(pk=ref.pk).delete()
                delete(row)
        return
    diff = {name: (getattr(row, name), value) for name, value in data.items() if getattr(row, name) != value}
    change.action, change.diff = ("update" if diff else "unchanged"), diff
    if not rule.syncer.dry_run:
        with transaction.atomic():
            if diff:
                row = update(row, {name: new for name, (_old, new) in diff.items()})
            rule.link(record, row, ref)


def apply_bank_account(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    from sdelka.parties import services as parties
    from sdelka.parties.models import CounterpartyBankAccount

    def find(values: dict[str, Any]) -> Any:
        return CounterpartyBankAccount.objects.filter(
            counterparty_id=values["counterparty_id"], number=values.get("number"), bik=values.get("bik")
        ).first()

    _apply_row(
        rule, record, ref, change, model=CounterpartyBankAccount, fields=_BANK_FIELDS, find=find,
        add=parties.add_bank_account,
        update=lambda row, data: parties.update_bank_account(user=rule.user, bank_account=row, data=data),
        delete=lambda row: parties.delete_bank_account(user=rule.user, bank_account=row),
    )  # fmt: skip


def apply_contact(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    from sdelka.parties import services as parties
    from sdelka.parties.models import ContactPerson

    def find(values: dict[str, Any]) -> Any:
        return ContactPerson.objects.filter(
            counterparty_id=values["counterparty_id"],
            last_name=values.get("last_name", ""),
            first_name=values.get("first_name", ""),
            middle_name=values.get("middle_name", ""),
        ).first()

    _apply_row(
        rule, record, ref, change, model=ContactPerson, fields=_CONTACT_FIELDS, find=find,
        add=parties.add_contact,
        update=lambda row, data: parties.update_contact(user=rule.user, contact=row, data=data),
        delete=None,  # a contact marked for deletion in 1C is kept, inactive
    )  # fmt: skip


# The contract's own fields, as the comparison reads them on the model (`organisation_id`, `currency_id`).
_CONTRACT_FIELDS = (
    "organisation_id", "kind", "name", "number", "date", "valid_until", "currency_id", "comment", "is_active",
)  # fmt: skip


def _contract_data(data: dict[str, Any]) -> dict[str, Any]:
    """The service's names for the values of `_CONTRACT_FIELDS`."""
    renamed = {"organisation_id": "organisation", "currency_id": "currency"}
    return {renamed.get(name, name): value for name, value in data.items()}


def apply_contract(rule: DocumentRule, record: Record, ref: ExternalRef | None, change: Change) -> None:
    """A counterparty's contract, through the sales services; one marked for deletion in 1C is closed."""
    from sdelka.sales.models import Contract

    values = record.values
    if "currency" in values:
        values["currency_id"] = values.pop("currency") or "RUB"
    if not values.get("name"):
        values.pop("name", None)  # the service names it «Договор № … от …»

    def find(found: dict[str, Any]) -> Any:
        if not found.get("number"):
            return None
        return Contract.objects.filter(
            counterparty_id=found["counterparty_id"], number=found["number"], date=found.get("date")
        ).first()

    _apply_row(
        rule, record, ref, change, model=Contract, fields=_CONTRACT_FIELDS, find=find,
        add=lambda user, counterparty, data: sales.create_contract(
            user=user, counterparty=counterparty, **_contract_data(data)
        ),
        update=lambda row, data: sales.update_contract(user=rule.user, contract=row, **_contract_data(data)),
        delete=None,
    )  # fmt: skip
