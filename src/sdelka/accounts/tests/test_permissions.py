import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_a_role_is_enough_to_enter_the_back_office(client, staff):
    assert not staff.manager.is_staff
    client.force_login(staff.manager)

    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:parties_counterparty_changelist")).status_code == 200
    assert client.get(reverse("admin:parties_counterparty_add")).status_code == 200


def test_manager_cannot_manage_users_or_enter_payments(client, staff):
    client.force_login(staff.manager)

    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 403
    assert client.get(reverse("admin:sales_payment_add")).status_code == 403
    assert client.get(reverse("admin:sales_payment_changelist")).status_code == 200


def test_accountant_enters_payments_and_rates(staff):
    assert staff.accountant.has_perm("sales.add_payment")
    assert staff.accountant.has_perm("core.change_exchangerate")
    assert not staff.accountant.has_perm("accounts.change_user")


def test_nobody_but_admin_deletes_counterparties(staff):
    for user in (staff.manager, staff.head, staff.accountant, staff.director):
        assert not user.has_perm("parties.delete_counterparty"), user.role
    staff.admin.is_superuser = False
    assert staff.admin.has_perm("parties.delete_counterparty")
    assert staff.admin.has_perm("accounts.change_user")


def test_inactive_user_has_no_permissions(staff):
    staff.director.is_active = False
    assert not staff.director.has_perm("parties.view_counterparty")
