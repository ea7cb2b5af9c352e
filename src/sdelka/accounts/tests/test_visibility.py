import pytest

from sdelka.parties.models import Counterparty
from tests.factories import CounterpartyFactory

pytestmark = pytest.mark.django_db


def visible_names(user):
    return set(Counterparty.objects.visible_to(user).values_list("name", flat=True))


def test_each_role_sees_its_scope(staff):
    CounterpartyFactory(name="own", owner=staff.manager)
    CounterpartyFactory(name="colleague", owner=staff.other_manager)
    CounterpartyFactory(name="east", owner=staff.east_manager)
    CounterpartyFactory(name="outside", owner=staff.outsider)
    co_owned = CounterpartyFactory(name="co-owned", owner=staff.outsider)
    co_owned.co_owners.add(staff.manager)

    assert visible_names(staff.manager) == {"own", "co-owned"}
    assert visible_names(staff.east_manager) == {"east"}
    assert visible_names(staff.head) == {"own", "colleague", "east", "co-owned"}
    everything = {"own", "colleague", "east", "outside", "co-owned"}
    assert visible_names(staff.director) == everything
    assert visible_names(staff.accountant) == everything
    assert visible_names(staff.admin) == everything


def test_vip_only_to_named_users_director_and_admin(staff):
    vip = CounterpartyFactory(name="vip", owner=staff.manager, is_vip=True)
    vip.vip_users.add(staff.accountant)

    assert "vip" not in visible_names(staff.manager)
    assert "vip" not in visible_names(staff.head)
    assert "vip" in visible_names(staff.accountant)
    assert "vip" in visible_names(staff.director)
    assert "vip" in visible_names(staff.admin)
    vip.vip_users.add(staff.manager)
    assert "vip" in visible_names(staff.manager)
