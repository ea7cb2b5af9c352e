"""Checks of Russian requisites (spec: ru-requisites.md). Each check raises ValidationError whose
message names the rule broken, so a person can fix what he typed."""

from __future__ import annotations

import operator
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

KPP_RE = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$")
ACCOUNT_KEY_WEIGHTS = ([7, 1, 3] * 8)[:23]  # prefix (3) + account (20)
CORRESPONDENT_PREFIXES = ("30101", "30125", "40102")


def digits_only(value: str) -> str:
    """Drop the spaces and dashes people type inside numbers; keep leading zeros."""
    return re.sub(r"[\s\-]", "", value or "")


def validate_inn(value: str) -> None:
    if not (value.isascii() and value.isdigit()) or len(value) not in (10, 12):
        raise ValidationError(
            _("ИНН must be 10 digits for an organisation or 12 digits for a person."), code="inn_length"
        )
    if not value.strip("0"):
        raise ValidationError(_("ИНН cannot consist of zeros only."), code="inn_zeros")
    if not inn_check_digits_match(value):
        raise ValidationError(
            _("ИНН %(value)s fails its check digit: mistyped digit?"), code="inn_checksum", params={"value": value}
        )


_INN_WEIGHTS = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


_ZERO = ord("0")


def _inn_digit(digits: str) -> str:
    """The check digit that follows `digits` (ASCII digits): weighted sum (weights right-aligned) mod 11 mod 10.
    Summed over the bytes' codes less "0" times the weights' sum: imports check 100,000s, and int() per digit
    cost more than the rest."""
    weights = _INN_WEIGHTS[len(_INN_WEIGHTS) - len(digits) :]
    total = sum(map(operator.mul, digits.encode("ascii"), weights)) - _ZERO * sum(weights)
    return str(total % 11 % 10)


def inn_check_digits_match(value: str) -> bool:
    """The check digits of a 10- or 12-digit ИНН (the same rule as python-stdnum's, without its per-call
    cleaning: imports check tens of thousands)."""
    if len(value) == 10:
        return value[9] == _inn_digit(value[:9])
    return value[10] == _inn_digit(value[:10]) and value[11] == _inn_digit(value[:11])


def validate_kpp(value: str) -> None:
    if not KPP_RE.match(value):
        raise ValidationError(
            _("КПП is 9 characters: 4 digits, 2 digits or capital Latin letters, 3 digits."), code="kpp_format"
        )


def ogrn_check_digit(value: str) -> str:
    """ОГРН: int(d1..d12) mod 11 mod 10; ОГРНИП: int(d1..d14) mod 13 mod 10.

    python-stdnum 2.2 omits the final `mod 10` for ОГРНИП and so refuses every ОГРНИП whose remainder
    is 10, 11 or 12; that is why this check is our own."""
    modulus = 11 if len(value) == 13 else 13
    return str(int(value[:-1]) % modulus % 10)


def validate_ogrn(value: str) -> None:
    """ОГРН (13 digits, organisation) or ОГРНИП (15 digits, individual entrepreneur)."""
    if not value.isdigit() or len(value) not in (13, 15):
        raise ValidationError(_("ОГРН is 13 digits, ОГРНИП is 15 digits."), code="ogrn_length")
    if value[0] == "0":
        raise ValidationError(_("ОГРН and ОГРНИП never start with 0."), code="ogrn_zero")
    if value[-1] != ogrn_check_digit(value):
        raise ValidationError(
            _("ОГРН %(value)s fails its check digit: mistyped digit?"), code="ogrn_checksum", params={"value": value}
        )


def validate_okpo(value: str) -> None:
    if not value.isdigit() or len(value) not in (8, 10, 14):
        raise ValidationError(_("ОКПО is 8 digits for an organisation, 10 for an entrepreneur."), code="okpo_length")


def validate_bik(value: str) -> None:
    # Treasury BIKs start with 00–02 since 2021, so the old "04" prefix is not required.
    if not value.isdigit() or len(value) != 9:
        raise ValidationError(_("БИК is 9 digits."), code="bik_format")


def validate_account_number(value: str) -> None:
    if not value.isdigit() or len(value) != 20:
        raise ValidationError(_("An account number is 20 digits."), code="account_format")


def account_key_matches(account: str, bik: str) -> bool | None:
    """Bank of Russia control key (letter № 515); None where it cannot be checked (treasury accounts)."""
    if account.startswith("03"):
        return None
    prefix = "0" + bik[4:6] if account.startswith(CORRESPONDENT_PREFIXES) else bik[6:9]
    return sum(int(c) * w for c, w in zip(prefix + account, ACCOUNT_KEY_WEIGHTS, strict=True)) % 10 == 0


def validate_account_against_bik(account: str, bik: str) -> None:
    validate_account_number(account)
    validate_bik(bik)
    if account_key_matches(account, bik) is False:
        raise ValidationError(
            _("Account %(account)s does not match БИК %(bik)s: its control key is wrong."),
            code="account_key",
            params={"account": account, "bik": bik},
        )


def validate_correspondent_account(account: str, bik: str) -> None:
    validate_account_number(account)
    if not account.startswith(CORRESPONDENT_PREFIXES):
        raise ValidationError(
            _("A correspondent account starts with 30101 (or 30125, 40102 for the treasury)."),
            code="corr_account_prefix",
        )
    validate_account_against_bik(account, bik)
    if account.startswith("30101") and account[-3:] != bik[-3:]:
        raise ValidationError(
            _("A bank's correspondent account ends with the last three digits of its БИК (%(bik)s)."),
            code="corr_account_bik",
            params={"bik": bik},
        )


def validate_inn_kpp_pair(inn: str, kpp: str) -> dict[str, ValidationError]:
    """An organisation (10-digit ИНН) has a КПП; an entrepreneur or a person (12 digits) has none."""
    errors: dict[str, ValidationError] = {}
    if len(inn) == 10 and not kpp:
        errors["kpp"] = ValidationError(_("An organisation with a 10-digit ИНН must have a КПП."), code="kpp_required")
    if len(inn) == 12 and kpp:
        errors["kpp"] = ValidationError(
            _("A 12-digit ИНН belongs to an entrepreneur or a person, who have no КПП."), code="kpp_forbidden"
        )
    return errors


def bank_account_errors(*, bik: str, number: str, correspondent_account: str = "") -> dict[str, ValidationError]:
    """Every check of a bank account's requisites, keyed by the field at fault (for forms and services)."""
    errors: dict[str, ValidationError] = {}
    try:
        validate_bik(bik)
    except ValidationError as exc:
        errors["bik"] = exc
    try:
        validate_account_number(number)
    except ValidationError as exc:
        errors["number"] = exc
    if correspondent_account:
        try:
            validate_account_number(correspondent_account)
        except ValidationError as exc:
            errors["correspondent_account"] = exc
    if "bik" in errors:
        return errors
    for field, value, check in (
        ("number", number, validate_account_against_bik),
        ("correspondent_account", correspondent_account, validate_correspondent_account),
    ):
        if value and field not in errors:
            try:
                check(value, bik)
            except ValidationError as exc:
                errors[field] = exc
    return errors
