from __future__ import annotations

import pytest
from django.test import Client

from sdelka.accounts.models import Role, Team, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(staff, admin_client) -> Client:
    """pytest-django's admin client, signed in as the `admin` of the staff fixture."""
    return admin_client


def test_user_list_shows_role_and_team_and_filters_by_role(client, staff):
    response = client.get("/admin/accounts/user/", {"role__exact": Role.HEAD})
    assert response.status_code == 200
    assert [user.username for user in response.context["cl"].result_list] == ["head"]
    assert "Продажи" in response.content.decode()


def test_user_change_sets_role_and_team(client, staff):
    east = Team.objects.get(name="Восток")
    user = staff.manager
    response = client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert response.status_code == 200
    form = response.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None and name != "password"}
    data.update(role=Role.HEAD, team=east.pk, groups=[], user_permissions=[], is_active="on")
    data.pop("last_login", None)
    data["date_joined_0"], data["date_joined_1"] = user.date_joined.strftime("%Y-%m-%d %H:%M:%S").split()
    response = client.post(f"/admin/accounts/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    user.refresh_from_db()
    assert (user.role, user.team) == (Role.HEAD, east)


def test_team_admin_shows_parent_head_and_members(client, staff):
    sales = Team.objects.get(name="Продажи")
    response = client.get("/admin/accounts/team/")
    assert response.status_code == 200
    assert {team.name for team in response.context["cl"].result_list} == {"Продажи", "Восток", "Опт"}
    response = client.get(f"/admin/accounts/team/{sales.pk}/change/")
    assert response.status_code == 200
    assert "manager" in response.content.decode()


def test_team_can_be_created_under_a_parent_with_a_head(client, staff):
    sales = Team.objects.get(name="Продажи")
    response = client.post(
        "/admin/accounts/team/add/",
        {
            "name": "Запад",
            "parent": sales.pk,
            "head": staff.other_manager.pk,
            "members-TOTAL_FORMS": "0",
            "members-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    team = Team.objects.get(name="Запад")
    assert (team.parent, team.head) == (sales, User.objects.get(username="other_manager"))


def test_manager_cannot_open_users(staff):
    client = Client()
    client.force_login(staff.manager)
    assert client.get("/admin/accounts/user/").status_code == 403
