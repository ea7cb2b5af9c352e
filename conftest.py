"""Fixtures shared by the whole suite: one user per role and a small team tree.

Tree: `sales` (head: `head`) ⊃ `sales_east` (manager `east_manager`); `manager` and `other_manager`
are in `sales`; `outsider` is a manager of an unrelated team.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.utils import translation

from sdelka.accounts.models import Role, User
from tests.factories import TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def _default_language() -> Iterator[None]:
    """A request with Accept-Language leaves its language active in the thread; the next test starts afresh."""
    yield
    translation.deactivate()


@dataclass
class Staff:
    manager: User
    other_manager: User
    east_manager: User
    outsider: User
    head: User
    director: User
    accountant: User
    admin: User


@pytest.fixture
def staff(db: None) -> Staff:
    sales = TeamFactory(name="Продажи")
    east = TeamFactory(name="Восток", parent=sales)
    other = TeamFactory(name="Опт")
    head = UserFactory(username="head", role=Role.HEAD, team=sales)
    sales.head = head
    sales.save(update_fields=["head"])
    return Staff(
        manager=UserFactory(username="manager", team=sales),
        other_manager=UserFactory(username="other_manager", team=sales),
        east_manager=UserFactory(username="east_manager", team=east),
        outsider=UserFactory(username="outsider", team=other),
        head=head,
        director=UserFactory(username="director", role=Role.DIRECTOR),
        accountant=UserFactory(username="accountant", role=Role.ACCOUNTANT),
        admin=UserFactory(username="admin", role=Role.ADMIN, is_staff=True, is_superuser=True),
    )
