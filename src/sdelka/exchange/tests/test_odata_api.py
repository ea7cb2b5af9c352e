"""The sync tasks API: starting a task's run (queued at once, its id returned), a dry run answered in place, the
run's status and counts, and who may do it (as on the screen: administrators, integrators, the task's teams)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from django.test import Client

from sdelka.accounts.models import Role
from sdelka.exchange.models import Connection, ExchangeRun, Route, RunStatus
from sdelka.exchange.odata.models import SyncTask
from sdelka.exchange.odata.services import check_connection, create_odata_connection, load_preset
from sdelka.exchange.tasks import run_sync_task
from sdelka.parties.models import Counterparty
from tests.factories import UserFactory, make_inn10
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings
from tests.onec_fixtures import huey_immediate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("odata_settings", "huey_immediate")]
__all__ = ["fake_bp30", "huey_immediate", "odata_settings"]


@pytest.fixture
def task(fake: FakeOneC) -> SyncTask:
    connection = create_odata_connection(name="bp", url=fake.base_url, login=fake.login, password=fake.password)
    assert check_connection(connection=connection).ok
    load_preset(connection=connection, preset="bp30")
    inn = make_inn10(random.Random(5))
    fake.add("Catalog_Контрагенты", Description="ООО Ромашка", ИНН=inn, КПП=inn[:4] + "01001",
             ЮридическоеФизическоеЛицо="ЮридическоеЛицо")  # fmt: skip
    return SyncTask.objects.get(connection=connection)


def _run(client: Client, task: SyncTask, **options: Any) -> Any:
    return client.post(f"/api/v1/sync-tasks/{task.pk}/run/", options, content_type="application/json")


def test_a_team_member_runs_the_task_and_follows_the_run(client: Client, staff: Any, task: SyncTask) -> None:
    client.force_login(staff.manager)
    assert _run(client, task).status_code == 403  # not one of the task's teams yet
    assert not ExchangeRun.objects.exists()
    assert client.get("/api/v1/sync-tasks/").json()["results"] == []

    task.run_teams.add(staff.manager.team)
    response = _run(client, task)
    assert response.status_code == 202, response.content
    run_id = response.json()["run"]
    assert response.json()["url"].endswith(f"/api/v1/sync-runs/{run_id}/")
    run = client.get(f"/api/v1/sync-runs/{run_id}/").json()
    assert run["status"] == RunStatus.SUCCESS and run["created"] >= 1 and run["total"] >= 1
    assert Counterparty.objects.filter(name="ООО Ромашка").exists()
    listed = client.get("/api/v1/sync-tasks/").json()["results"]
    assert [(t["id"], t["last_run"]["id"]) for t in listed] == [(task.pk, run_id)]

    client.force_login(staff.outsider)  # another team: neither runs the task nor sees its runs
    assert _run(client, task).status_code == 403
    assert client.get(f"/api/v1/sync-runs/{run_id}/").status_code == 404


def test_an_integrator_may_run_every_task(client: Client, staff: Any, task: SyncTask) -> None:
    client.force_login(UserFactory(username="integrator", role=Role.INTEGRATOR))
    response = _run(client, task)
    assert response.status_code == 202, response.content
    assert ExchangeRun.objects.get(pk=response.json()["run"]).status == RunStatus.SUCCESS


def test_dry_run_answers_what_would_change_and_writes_nothing(client: Client, staff: Any, task: SyncTask) -> None:
    client.force_login(staff.admin)
    response = _run(client, task, dry_run=True)
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["dry_run"] is True and result["run"] is None and result["totals"]["created"] >= 1
    created = [c for rule in result["rules"] for c in rule["changes"] if c["action"] == "create"]
    assert "ООО Ромашка" in {c["label"] for c in created}
    assert not ExchangeRun.objects.exists() and not Counterparty.objects.exists()


def test_a_second_run_while_one_goes_is_refused(client: Client, staff: Any, task: SyncTask) -> None:
    client.force_login(staff.admin)
    going = ExchangeRun.objects.create(connection=task.connection, route=Route.ODATA, status=RunStatus.RUNNING)
    response = _run(client, task)
    assert response.status_code == 400
    assert f"Run #{going.pk} of this connection is still going." in str(response.json())
    assert ExchangeRun.objects.count() == 1


def test_a_queued_run_whose_task_cannot_start_is_closed(staff: Any, task: SyncTask) -> None:
    connection: Connection = task.connection
    queued = ExchangeRun.objects.create(connection=connection, route=Route.ODATA, status=RunStatus.QUEUED)
    SyncTask.objects.filter(pk=task.pk).update(is_active=False)
    run_sync_task.call_local(task.pk, "manual", False, queued.pk)
    queued.refresh_from_db()
    assert queued.status == RunStatus.FAILED and "switched off" in queued.message


def test_bad_options_and_anonymous(client: Client, staff: Any, task: SyncTask) -> None:
    assert _run(client, task).status_code in (401, 403)
    client.force_login(staff.admin)
    response = _run(client, task, dry_run="perhaps")
    assert response.status_code == 400 and "dry_run" in response.json()
