import pytest

from sdelka.parties.models import Counterparty
from tests.factories import CounterpartyFactory

pytestmark = pytest.mark.django_db


def visible_names(user):
    return set(Counterparty.objects.visible_to(user).values_list("name", flat=True))


def one_of_each_kind(staff):
    """A counterparty owned by each kind of user the rules tell apart, and one co-owned by the manager."""
    CounterpartyFactory(name="own", owner=staff.manager)
    CounterpartyFactory(name="colleague", owner=staff.other_manager)
    CounterpartyFactory(name="east", owner=staff.east_manager)
    CounterpartyFactory(name="outside", owner=staff.outsider)
    co_owned = CounterpartyFactory(name="co-owned", owner=staff.outsider)
    co_owned.co_owners.add(staff.manager)


def test_each_role_sees_its_scope(staff):
    one_of_each_kind(staff)

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


def test_what_hangs_off_a_counterparty_follows_it_for_every_role(staff):
    """The filter from a related model (by foreign key against id sets) agrees with the counterparty's own."""
    from sdelka.parties.models import ContactPerson
    from tests.factories import ContactPersonFactory

    one_of_each_kind(staff)
    vip = CounterpartyFactory(name="vip", owner=staff.manager, is_vip=True)
    vip.vip_users.add(staff.accountant)
    named_vip = CounterpartyFactory(name="named vip", owner=staff.other_manager, is_vip=True)
    named_vip.vip_users.add(staff.head)
    for counterparty in Counterparty.objects.all():
        ContactPersonFactory(counterparty=counterparty, last_name=counterparty.name)

    def contacts(user):
        return set(ContactPerson.objects.visible_to(user).values_list("last_name", flat=True))

    for user in (staff.manager, staff.east_manager, staff.head, staff.director, staff.accountant, staff.admin):
        assert contacts(user) == visible_names(user), user.username
    assert contacts(staff.manager) == {"own", "co-owned"}
    assert contacts(staff.head) == {"own", "colleague", "east", "co-owned", "named vip"}
    assert "vip" in contacts(staff.accountant)
    assert "named vip" not in contacts(staff.accountant)


def test_the_scope_is_read_once_per_user_object(staff, django_assert_num_queries):
    from sdelka.accounts.visibility import forget_scope, scope_user_ids, user_scope

    with django_assert_num_queries(2):  # the team tree, then the users of the head's subtree
        first = scope_user_ids(staff.head)
    with django_assert_num_queries(0):
        assert scope_user_ids(staff.head) == first
        Counterparty.objects.visible_to(staff.head).query.get_compiler("default").as_sql()
    assert set(first) == {staff.head.pk, staff.manager.pk, staff.other_manager.pk, staff.east_manager.pk}
    assert user_scope(staff.head).headed_team_ids == {staff.head.team_id}
    with django_assert_num_queries(1):  # a manager heads nothing: the team tree alone
        assert scope_user_ids(staff.outsider) == [staff.outsider.pk]

    staff.outsider.team.head = staff.outsider
    staff.outsider.team.save()
    assert scope_user_ids(staff.outsider) == [staff.outsider.pk]  # kept on the object until forgotten
    forget_scope(staff.outsider)
    assert staff.outsider.pk in scope_user_ids(staff.outsider)
    assert user_scope(staff.outsider).headed_team_ids == {staff.outsider.team_id}
