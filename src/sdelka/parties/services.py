"""Every write to counterparties, their bank accounts and contact persons.

Each public function is keyword-only, runs in one transaction and raises Django's `ValidationError`
with a dict naming the field at fault; nested rows are named `bank_accounts.<index>.<field>` and
`contacts.<index>.<field>` (the index in the list given). Nothing is saved when anything is refused.

Rules (spec: ru-requisites.md):
- typed requisites are normalised: spaces and dashes dropped from ИНН, КПП, ОГРН, ОКПО, БИК and account
  numbers; КПП upper-cased;
- each requisite passes its check in `core.requisites`; ИНН, КПП and ОГРН must fit the kind: a legal
  entity has a 10-digit ИНН with a КПП and a 13-digit ОГРН; an entrepreneur a 12-digit ИНН, a 15-digit
  ОГРНИП and no КПП; a person an optional 12-digit ИНН, no КПП and no ОГРН;
- ИНН+КПП is unique over all counterparties, visible or not: a duplicate is refused with a link to the
  existing one (named only if the user may see it);
- the acting user is the default owner; a manager may give a counterparty (owner, co-owners, VIP users)
  only to himself, a head to anyone in his team subtree, a director or an administrator to anyone;
- a counterparty has at most one main bank account; an account's control key must match its БИК;
- marking a counterparty VIP names its owner among the VIP users, so he keeps seeing it.

Nested bank accounts and contacts given to `create_counterparty`/`update_counterparty` are upserted:
an item with an `id` updates that row of this counterparty, an item without one adds a row; rows not
mentioned are left as they are (delete them with `delete_bank_account` / `delete_contact`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.accounts.models import User
from sdelka.accounts.visibility import scope_user_ids
from sdelka.core import requisites
from sdelka.core.models import Currency

from .models import ContactPerson, Counterparty, CounterpartyBankAccount, CounterpartyKind

Errors = dict[str, list[ValidationError]]

COUNTERPARTY_FIELDS = frozenset(
    {
        "kind", "name", "full_name", "inn", "kpp", "ogrn", "okpo", "legal_address", "postal_address",
        "phones", "emails", "site", "group", "owner", "is_active", "comment",
    }
)  # fmt: skip
COUNTERPARTY_M2M = frozenset({"co_owners", "tags"})
VIP_FIELDS = frozenset({"is_vip", "vip_users"})
BANK_ACCOUNT_FIELDS = frozenset({"bik", "bank_name", "correspondent_account", "number", "currency", "is_main"})
CONTACT_FIELDS = frozenset(
    {"last_name", "first_name", "middle_name", "position", "phones", "emails", "birthday", "notes", "is_active"}
)
TEXT_FIELDS = frozenset(
    {"name", "full_name", "site", "phones", "emails", "bank_name", "last_name", "first_name", "middle_name", "position"}
)
NUMBER_FIELDS = frozenset({"inn", "kpp", "ogrn", "okpo", "bik", "number", "correspondent_account"})
LIST_SPLIT = re.compile(r"[,;\s]+")
PHONE_SPLIT = re.compile(r"[,;]+")
MIN_PHONE_DIGITS = 5


# --- Normalising and checking ---------------------------------------------------------------------


def normalise(data: Mapping[str, Any]) -> dict[str, Any]:
    """Typed input as it is stored: numbers without spaces and dashes, КПП upper-case, text stripped."""
    values = dict(data)
    for field in NUMBER_FIELDS & values.keys():
        values[field] = requisites.digits_only(str(values[field] or ""))
    if "kpp" in values:
        values["kpp"] = values["kpp"].upper()
    for field in TEXT_FIELDS & values.keys():
        values[field] = str(values[field] or "").strip()
    return values


def _add(errors: Errors, field: str, error: ValidationError | str) -> None:
    errors.setdefault(field, []).append(error if isinstance(error, ValidationError) else ValidationError(error))


def _check(errors: Errors, field: str, check: Any, *args: str) -> bool:
    try:
        check(*args)
    except ValidationError as exc:
        _add(errors, field, exc)
        return False
    return True


def _contact_channel_errors(errors: Errors, *, phones: str, emails: str, prefix: str = "") -> None:
    for email in filter(None, LIST_SPLIT.split(emails)):
        try:
            validate_email(email)
        except ValidationError:
            _add(errors, f"{prefix}emails", _("“%(value)s” is not an e-mail address.") % {"value": email})
    for phone in filter(None, (p.strip() for p in PHONE_SPLIT.split(phones))):
        if len(re.sub(r"\D", "", phone)) < MIN_PHONE_DIGITS:
            _add(
                errors,
                f"{prefix}phones",
                _("Phone “%(value)s” has fewer than %(count)d digits; separate phones with commas.")
                % {"value": phone, "count": MIN_PHONE_DIGITS},
            )


def _requisite_errors(errors: Errors, counterparty: Counterparty) -> None:
    kind, inn, kpp, ogrn = counterparty.kind, counterparty.inn, counterparty.kpp, counterparty.ogrn
    if inn and _check(errors, "inn", requisites.validate_inn, inn):
        if kind == CounterpartyKind.LEGAL and len(inn) != 10:
            _add(errors, "inn", _("A legal entity has a 10-digit ИНН; 12 digits belong to a person."))
        elif kind != CounterpartyKind.LEGAL and len(inn) != 12:
            _add(
                errors, "inn", _("An entrepreneur or a person has a 12-digit ИНН; 10 digits belong to an organisation.")
            )
    if kpp:
        if kind != CounterpartyKind.LEGAL:
            _add(errors, "kpp", _("An entrepreneur or a person has no КПП; only an organisation does."))
        else:
            _check(errors, "kpp", requisites.validate_kpp, kpp)
    elif kind == CounterpartyKind.LEGAL and inn and "inn" not in errors:
        for field, error in requisites.validate_inn_kpp_pair(inn, kpp).items():
            _add(errors, field, error)
    if ogrn:
        if kind == CounterpartyKind.PERSON:
            _add(errors, "ogrn", _("A person has no ОГРН; choose “Individual entrepreneur” for an ОГРНИП."))
        elif _check(errors, "ogrn", requisites.validate_ogrn, ogrn):
            if kind == CounterpartyKind.LEGAL and len(ogrn) != 13:
                _add(errors, "ogrn", _("A legal entity has a 13-digit ОГРН; 15 digits are an entrepreneur's ОГРНИП."))
            elif kind == CounterpartyKind.ENTREPRENEUR and len(ogrn) != 15:
                _add(errors, "ogrn", _("An entrepreneur has a 15-digit ОГРНИП; 13 digits are an organisation's ОГРН."))
    if counterparty.okpo:
        _check(errors, "okpo", requisites.validate_okpo, counterparty.okpo)


def duplicate_error(*, user: User, inn: str, kpp: str, exclude_pk: int | None = None) -> ValidationError | None:
    """The refusal for a second counterparty with this ИНН+КПП, linking to the first; None if there is none.

    All counterparties are searched, visible or not, so no duplicate is ever created; one outside the
    user's scope is neither named nor linked."""
    if not inn:
        return None
    existing = Counterparty.objects.filter(inn=inn, kpp=kpp).exclude(pk=exclude_pk).first()
    if existing is None:
        return None
    if Counterparty.objects.visible_to(user).filter(pk=existing.pk).exists():
        return ValidationError(
            _("A counterparty with this ИНН and КПП already exists: “%(name)s”, %(url)s"),
            code="duplicate",
            params={"name": existing.name, "url": existing.get_absolute_url()},
        )
    return ValidationError(
        _(
            "A counterparty with this ИНН and КПП already exists, outside the counterparties you see; "
            "ask your head or an administrator to give you access instead of creating a second one."
        ),
        code="duplicate_hidden",
    )


def counterparty_errors(*, user: User, counterparty: Counterparty) -> Errors:
    """Every rule a counterparty (with its new values set, saved or not) must satisfy, by field."""
    errors: Errors = {}
    try:
        counterparty.full_clean(exclude=["owner"], validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        for field, messages in exc.error_dict.items():
            errors.setdefault(field, []).extend(messages)
    if not counterparty.name:
        errors["name"] = [ValidationError(_("A counterparty needs a short name."))]
    _requisite_errors(errors, counterparty)
    _contact_channel_errors(errors, phones=counterparty.phones, emails=counterparty.emails)
    if "inn" not in errors and "kpp" not in errors:
        duplicate = duplicate_error(user=user, inn=counterparty.inn, kpp=counterparty.kpp, exclude_pk=counterparty.pk)
        if duplicate is not None:
            _add(errors, "inn", duplicate)
    return errors


def may_assign(user: User, target: User) -> bool:
    """Whether `user` may make `target` an owner, co-owner or VIP user of a counterparty."""
    if target.pk == user.pk:
        return True
    if not target.is_active:
        return False
    return user.sees_all_vip or target.pk in set(scope_user_ids(user))


def may_manage_access(user: User, counterparty: Counterparty) -> bool:
    """Whether `user` may change who shares `counterparty` (co-owners) and who sees it when VIP: its owner,
    the heads of the owner's teams, the director and administrators. Co-owners and accountants may not."""
    return _may_manage_owned_by(user, counterparty.owner_id)


def _may_manage_owned_by(user: User, owner_id: int | None) -> bool:
    return user.sees_all_vip or owner_id is None or owner_id in set(scope_user_ids(user))


def _access_errors(errors: Errors, *, user: User, instance: Counterparty, values: Mapping[str, Any], old: Any) -> None:
    """Refuse changes of co-owners and VIP access by someone who may not manage them (see `may_manage_access`)."""
    changed = [
        name
        for name, before, after in (
            ("co_owners", set(old["co_owners"]), {getattr(u, "pk", u) for u in values.get("co_owners") or []}),
            ("vip_users", set(old["vip_users"]), {getattr(u, "pk", u) for u in values.get("vip_users") or []}),
            ("is_vip", instance.is_vip, values.get("is_vip")),
        )
        if name in values and before != after
    ]
    if changed and not _may_manage_owned_by(user, old["owner"]):
        _add(
            errors,
            changed[0],
            _("Only the owner of the counterparty, the head of his team or the director may change who shares it."),
        )


def _assignment_errors(errors: Errors, *, user: User, field: str, new: Iterable[User], old: Iterable[Any]) -> None:
    """Users newly given a counterparty must be within what `user` may hand out; existing ones stay."""
    old_ids = {getattr(u, "pk", u) for u in old}
    refused = [target for target in new if target.pk not in old_ids and not may_assign(user, target)]
    if refused:
        _add(
            errors,
            field,
            _("You may give counterparties only to yourself or to users of the teams you head: %(users)s.")
            % {"users": ", ".join(str(u) for u in refused)},
        )


def bank_account_errors(*, account: CounterpartyBankAccount, prefix: str = "") -> Errors:
    errors: Errors = {}
    for field, error in requisites.bank_account_errors(
        bik=account.bik, number=account.number, correspondent_account=account.correspondent_account
    ).items():
        _add(errors, f"{prefix}{field}", error)
    if not account.bank_name:
        _add(errors, f"{prefix}bank_name", _("Name the bank."))
    return errors


def contact_errors(*, contact: ContactPerson, prefix: str = "") -> Errors:
    errors: Errors = {}
    if not contact.first_name:
        _add(errors, f"{prefix}first_name", _("A contact person needs a first name."))
    if contact.birthday and contact.birthday > timezone.localdate():
        _add(errors, f"{prefix}birthday", _("A birthday cannot be in the future."))
    _contact_channel_errors(errors, phones=contact.phones, emails=contact.emails, prefix=prefix)
    return errors


def _currency(value: Any, errors: Errors, field: str) -> Currency | None:
    if isinstance(value, Currency):
        return value
    currency = Currency.objects.filter(code=str(value).upper(), is_active=True).first()
    if currency is None:
        _add(errors, field, _("Unknown currency “%(code)s”.") % {"code": value})
    return currency


def _raise(errors: Errors) -> None:
    if errors:
        raise ValidationError(errors)


def _ensure_visible(user: User, counterparty: Counterparty) -> None:
    if counterparty.pk and not Counterparty.objects.visible_to(user).filter(pk=counterparty.pk).exists():
        raise PermissionDenied(_("This counterparty is outside the counterparties you see."))


def _only_known(data: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise TypeError(f"unknown fields: {sorted(unknown)}")


# --- Bank accounts and contacts, alone or nested ------------------------------------------------------


def _prepare_rows(
    *,
    counterparty: Counterparty,
    items: Sequence[Mapping[str, Any]],
    model: type[CounterpartyBankAccount] | type[ContactPerson],
    name: str,
    errors: Errors,
) -> list[Any]:
    """Rows of this counterparty with the items' values set (not saved); errors keyed `name.i.field`."""
    fields = BANK_ACCOUNT_FIELDS if model is CounterpartyBankAccount else CONTACT_FIELDS
    existing = {row.pk: row for row in model.objects.filter(counterparty=counterparty)} if counterparty.pk else {}
    rows = []
    for index, item in enumerate(items):
        prefix = f"{name}.{index}."
        _only_known(item, fields | {"id"})
        values = normalise(item)
        row_id = values.pop("id", None)
        row: Any = existing.get(row_id) if row_id else model(counterparty=counterparty)
        if row is None:
            _add(errors, f"{prefix}id", _("No such row on this counterparty: %(id)s.") % {"id": row_id})
            continue
        if "currency" in values:
            values["currency"] = _currency(values["currency"], errors, f"{prefix}currency")
        for field, value in values.items():
            setattr(row, field, value)
        if model is CounterpartyBankAccount:
            errors.update(bank_account_errors(account=row, prefix=prefix))
        else:
            errors.update(contact_errors(contact=row, prefix=prefix))
        rows.append(row)
    if model is CounterpartyBankAccount:
        _main_and_duplicate_account_errors(errors, rows=rows, others=existing, name=name)
    return rows


def _main_and_duplicate_account_errors(
    errors: Errors, *, rows: list[Any], others: Mapping[int, CounterpartyBankAccount], name: str
) -> None:
    touched = {row.pk for row in rows if row.pk}
    final = [*rows, *(row for pk, row in others.items() if pk not in touched)]
    mains = [row for row in final if row.is_main]
    if len(mains) > 1:
        index = next(i for i, row in enumerate(rows) if row.is_main) if any(r.is_main for r in rows) else 0
        _add(
            errors,
            f"{name}.{index}.is_main",
            _("A counterparty has only one main bank account; %(count)d are marked main: %(numbers)s.")
            % {"count": len(mains), "numbers": ", ".join(row.number for row in mains)},
        )
    seen: set[tuple[str, str]] = set()
    for row in final:
        key = (row.number, row.bik)
        if key in seen and row in rows:
            _add(errors, f"{name}.{rows.index(row)}.number", _("This account is already on the counterparty."))
        seen.add(key)


def _save_rows(*, user: User, counterparty: Counterparty, rows: list[Any]) -> None:
    # Demoted main accounts first, so the one-main constraint holds after every statement.
    for row in sorted(rows, key=lambda row: bool(getattr(row, "is_main", False))):
        row.counterparty = counterparty
        row._history_user = user
        row.save()


def _single_row(
    *, user: User, counterparty: Counterparty, row_id: int | None, data: Mapping[str, Any], name: str
) -> Any:
    _ensure_visible(user, counterparty)
    data = dict(data)
    moved_to = data.pop("counterparty", counterparty)
    if row_id and moved_to.pk != counterparty.pk:
        _raise({"counterparty": [ValidationError(_("A row cannot move to another counterparty; add a new one."))]})
    model = CounterpartyBankAccount if name == "bank_accounts" else ContactPerson
    errors: Errors = {}
    rows = _prepare_rows(
        counterparty=counterparty, items=[{**data, "id": row_id}], model=model, name=name, errors=errors
    )
    prefix = f"{name}.0."
    _raise({key.removeprefix(prefix): value for key, value in errors.items()})
    _save_rows(user=user, counterparty=counterparty, rows=rows)
    return rows[0]


@transaction.atomic
def add_bank_account(*, user: User, counterparty: Counterparty, data: Mapping[str, Any]) -> CounterpartyBankAccount:
    return _single_row(user=user, counterparty=counterparty, row_id=None, data=data, name="bank_accounts")


@transaction.atomic
def update_bank_account(
    *, user: User, bank_account: CounterpartyBankAccount, data: Mapping[str, Any]
) -> CounterpartyBankAccount:
    return _single_row(
        user=user, counterparty=bank_account.counterparty, row_id=bank_account.pk, data=data, name="bank_accounts"
    )


@transaction.atomic
def delete_bank_account(*, user: User, bank_account: CounterpartyBankAccount) -> None:
    _ensure_visible(user, bank_account.counterparty)
    bank_account.delete()


@transaction.atomic
def add_contact(*, user: User, counterparty: Counterparty, data: Mapping[str, Any]) -> ContactPerson:
    return _single_row(user=user, counterparty=counterparty, row_id=None, data=data, name="contacts")


@transaction.atomic
def update_contact(*, user: User, contact: ContactPerson, data: Mapping[str, Any]) -> ContactPerson:
    return _single_row(user=user, counterparty=contact.counterparty, row_id=contact.pk, data=data, name="contacts")


@transaction.atomic
def delete_contact(*, user: User, contact: ContactPerson) -> None:
    _ensure_visible(user, contact.counterparty)
    contact.delete()


# --- Counterparties -----------------------------------------------------------------------------------


def validate_counterparty(
    *,
    user: User,
    counterparty: Counterparty | None,
    data: Mapping[str, Any],
    bank_accounts: Sequence[Mapping[str, Any]] = (),
    contacts: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Raise the ValidationError `create_counterparty`/`update_counterparty` would raise; save nothing.

    Forms (the admin's among them) call this in `clean()` so a person sees the same messages."""
    _prepare(user=user, counterparty=counterparty, data=data, bank_accounts=bank_accounts, contacts=contacts)


def _prepare(
    *,
    user: User,
    counterparty: Counterparty | None,
    data: Mapping[str, Any],
    bank_accounts: Sequence[Mapping[str, Any]],
    contacts: Sequence[Mapping[str, Any]],
) -> tuple[Counterparty, dict[str, Any], list[Any], list[Any]]:
    _only_known(data, COUNTERPARTY_FIELDS | COUNTERPARTY_M2M | VIP_FIELDS)
    values = normalise(data)
    if counterparty is None:
        instance = Counterparty(owner=user)
        old_co_owners: list[Any] = []
        old_vip_users: list[Any] = []
        old_owner = None
    else:
        _ensure_visible(user, counterparty)
        # Work on a copy: a refused update must leave the caller's object as it was.
        instance = Counterparty.objects.get(pk=counterparty.pk)
        old_co_owners = list(instance.co_owners.values_list("pk", flat=True))
        old_vip_users = list(instance.vip_users.values_list("pk", flat=True))
        old_owner = instance.owner_id
    for field in COUNTERPARTY_FIELDS & values.keys():
        setattr(instance, field, values[field])
    if values.get("owner") is None and "owner" in values:
        instance.owner = user
    errors = counterparty_errors(user=user, counterparty=instance)
    if instance.owner_id != old_owner:
        _assignment_errors(errors, user=user, field="owner", new=[instance.owner], old=[old_owner])
    if counterparty is not None:
        old = {"co_owners": old_co_owners, "vip_users": old_vip_users, "owner": old_owner}
        _access_errors(errors, user=user, instance=instance, values=values, old=old)
    if "co_owners" in values:
        _assignment_errors(errors, user=user, field="co_owners", new=values["co_owners"], old=old_co_owners)
    if values.get("vip_users"):
        _assignment_errors(errors, user=user, field="vip_users", new=values["vip_users"], old=old_vip_users)
    accounts = _prepare_rows(
        counterparty=instance, items=bank_accounts, model=CounterpartyBankAccount, name="bank_accounts", errors=errors
    )
    people = _prepare_rows(counterparty=instance, items=contacts, model=ContactPerson, name="contacts", errors=errors)
    _raise(errors)
    return instance, values, accounts, people


def _save(
    *,
    user: User,
    counterparty: Counterparty | None,
    data: Mapping[str, Any],
    bank_accounts: Sequence[Mapping[str, Any]] | None,
    contacts: Sequence[Mapping[str, Any]] | None,
) -> Counterparty:
    instance, values, accounts, people = _prepare(
        user=user, counterparty=counterparty, data=data, bank_accounts=bank_accounts or (), contacts=contacts or ()
    )
    instance._history_user = user  # type: ignore[attr-defined]
    instance.save()
    if "co_owners" in values:
        instance.co_owners.set(values["co_owners"])
    if "tags" in values:
        instance.tags.set(values["tags"])
    if VIP_FIELDS & values.keys():
        _apply_vip(
            counterparty=instance,
            is_vip=values.get("is_vip", instance.is_vip),
            vip_users=values.get("vip_users"),
            user=user,
        )
    _save_rows(user=user, counterparty=instance, rows=accounts + people)
    return instance


@transaction.atomic
def create_counterparty(
    *,
    user: User,
    data: Mapping[str, Any],
    bank_accounts: Sequence[Mapping[str, Any]] | None = None,
    contacts: Sequence[Mapping[str, Any]] | None = None,
) -> Counterparty:
    """A new counterparty, owned by `user` unless `data["owner"]` names someone he may give it to."""
    return _save(user=user, counterparty=None, data=data, bank_accounts=bank_accounts, contacts=contacts)


@transaction.atomic
def update_counterparty(
    *,
    user: User,
    counterparty: Counterparty,
    data: Mapping[str, Any],
    bank_accounts: Sequence[Mapping[str, Any]] | None = None,
    contacts: Sequence[Mapping[str, Any]] | None = None,
) -> Counterparty:
    """Change the fields present in `data` (and upsert the nested rows given); others stay as they are."""
    return _save(user=user, counterparty=counterparty, data=data, bank_accounts=bank_accounts, contacts=contacts)


def _apply_vip(*, user: User, counterparty: Counterparty, is_vip: bool, vip_users: Iterable[User] | None) -> None:
    if counterparty.is_vip != is_vip:
        counterparty.is_vip = is_vip
        counterparty._history_user = user  # type: ignore[attr-defined]
        counterparty.save(update_fields=["is_vip", "updated_at"])
    if vip_users is not None:
        counterparty.vip_users.set(vip_users)
    if is_vip:
        counterparty.vip_users.add(counterparty.owner)


@transaction.atomic
def set_vip(
    *, user: User, counterparty: Counterparty, is_vip: bool, vip_users: Iterable[User] | None = None
) -> Counterparty:
    """Mark or unmark a counterparty VIP; marking it names its owner among the users who see it.

    `vip_users`, when given, replaces the list; users newly named must be ones `user` may hand out."""
    _ensure_visible(user, counterparty)
    if not may_manage_access(user, counterparty):
        raise PermissionDenied(
            _("Only the owner of the counterparty, the head of his team or the director may change who sees it.")
        )
    if vip_users is not None:
        vip_users = list(vip_users)
        errors: Errors = {}
        old = list(counterparty.vip_users.values_list("pk", flat=True))
        _assignment_errors(errors, user=user, field="vip_users", new=vip_users, old=old)
        _raise(errors)
    _apply_vip(user=user, counterparty=counterparty, is_vip=is_vip, vip_users=vip_users)
    return counterparty
