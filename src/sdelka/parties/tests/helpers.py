"""Valid requisites for the parties tests, built with the checks under test's own spec formulas."""

from __future__ import annotations

import itertools
import random

from sdelka.core.requisites import account_key_matches
from tests.factories import make_inn10, make_inn12, make_ogrn, make_ogrnip

SBER_BIK = "044525225"
SBER_CORR = "30101810400000000225"
VTB_BIK = "044525187"
VTB_CORR = "30101810700000000187"

_rng = random.Random(77)
_serial = itertools.count(1)


def account(bik: str = SBER_BIK, balance: str = "40702") -> str:
    """A fresh 20-digit account whose control key matches `bik`."""
    rest = f"{next(_serial):011d}"
    return next(number for key in "0123456789" if account_key_matches(number := f"{balance}810{key}{rest}", bik))


def inn10() -> str:
    return make_inn10(_rng)


def inn12() -> str:
    return make_inn12(_rng)


def ogrn() -> str:
    return make_ogrn(_rng)


def ogrnip() -> str:
    return make_ogrnip(_rng)


def legal_data(**overrides: object) -> dict[str, object]:
    inn = inn10()
    return {
        "kind": "legal",
        "name": f"ООО «Ромашка {inn}»",
        "inn": inn,
        "kpp": inn[:4] + "01001",
        "ogrn": ogrn(),
        **overrides,
    }


def bank_account_data(**overrides: object) -> dict[str, object]:
    return {
        "bik": SBER_BIK,
        "bank_name": "ПАО Сбербанк",
        "correspondent_account": SBER_CORR,
        "number": account(),
        **overrides,
    }
