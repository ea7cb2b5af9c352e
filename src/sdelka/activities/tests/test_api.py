from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from sdelka.activities import services
from sdelka.activities.models import Note, Task
from tests.factories import CounterpartyFactory, DealFactory, InvoiceFactory

from .helpers import make_task

pytestmark = pytest.mark.django_db

TASKS = "/api/v1/tasks/"
NOTES = "/api/v1/notes/"
TIMELINE = "/api/v1/timeline/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


@pytest.fixture
def scene(staff):
    """Two managers of one team, each with a counterparty and a task on it."""
    own = CounterpartyFactory(owner=staff.manager)
    colleague = CounterpartyFactory(owner=staff.other_manager)
    return {
        "own": own,
        "colleague": colleague,
        "own_task": make_task(title="own", assignee=staff.manager, counterparty=own),
        "colleague_task": make_task(title="colleague", assignee=staff.other_manager, counterparty=colleague),
    }


def test_anonymous_refused(db):
    assert APIClient().get(TASKS).status_code in {401, 403}


def test_list_and_retrieve_respect_visibility(staff, scene):
    manager = client_for(staff.manager)
    assert ids(manager.get(TASKS)) == {scene["own_task"].pk}
    assert manager.get(f"{TASKS}{scene['own_task'].pk}/").json()["title"] == "own"
    assert manager.get(f"{TASKS}{scene['colleague_task'].pk}/").status_code == 404
    assert manager.patch(f"{TASKS}{scene['colleague_task'].pk}/", {"title": "x"}, format="json").status_code == 404
    assert manager.post(f"{TASKS}{scene['colleague_task'].pk}/complete/").status_code == 404
    assert ids(client_for(staff.head).get(TASKS)) == {scene["own_task"].pk, scene["colleague_task"].pk}


def test_list_query_count_is_fixed(staff, django_assert_max_num_queries):
    own = CounterpartyFactory(owner=staff.manager)
    for i in range(25):
        make_task(title=f"t{i}", assignee=staff.manager, counterparty=own)
    with django_assert_max_num_queries(6):
        response = client_for(staff.head).get(TASKS)
    assert response.json()["count"] == 25


def test_filters(staff, scene):
    now = timezone.now()
    late = make_task(title="late", assignee=staff.manager, counterparty=scene["own"], due_at=now - timedelta(hours=2))
    done = make_task(title="done", assignee=staff.manager, due_at=now - timedelta(hours=2), is_done=True)
    personal = make_task(title="head's", assignee=staff.head, counterparty=scene["own"])
    head = client_for(staff.head)
    everything = {scene["own_task"].pk, scene["colleague_task"].pk, late.pk, done.pk, personal.pk}
    assert ids(head.get(TASKS)) == everything
    assert ids(head.get(TASKS, {"mine": "1"})) == {personal.pk}
    assert ids(head.get(TASKS, {"overdue": "1"})) == {late.pk}
    assert ids(head.get(TASKS, {"is_done": "true"})) == {done.pk}
    assert ids(head.get(TASKS, {"assignee": staff.other_manager.pk})) == {scene["colleague_task"].pk}
    assert ids(head.get(TASKS, {"counterparty": scene["own"].pk})) == {scene["own_task"].pk, late.pk, personal.pk}
    assert ids(client_for(staff.manager).get(TASKS, {"mine": "1", "overdue": "1"})) == {late.pk}
    # A counterparty outside the scope filters to nothing rather than revealing anything.
    assert ids(client_for(staff.manager).get(TASKS, {"counterparty": scene["colleague"].pk})) == set()
    bad = head.get(TASKS, {"overdue": "maybe"})
    assert bad.status_code == 400
    assert "overdue" in bad.json()


def test_create_task(staff, scene):
    due = timezone.now() + timedelta(days=1)
    response = client_for(staff.manager).post(
        TASKS,
        {"title": "Выставить счёт", "due_at": due.isoformat(), "counterparty": scene["own"].pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    task = Task.objects.get(pk=body["id"])
    assert (task.assignee, task.author, task.counterparty, task.due_at) == (
        staff.manager,
        staff.manager,
        scene["own"],
        due,
    )
    assert body["assignee"] == staff.manager.pk


def test_create_task_with_deal_takes_its_counterparty(staff, scene):
    deal = DealFactory(counterparty=scene["own"])
    response = client_for(staff.manager).post(TASKS, {"title": "КП", "deal": deal.pk}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["counterparty"] == scene["own"].pk


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"due_at": "2026-03-02T10:00:00"}, "due_at"),
        ({"remind_at": "2026-03-02T10:00"}, "remind_at"),
        ({"due_at": "завтра"}, "due_at"),
        ({"title": ""}, "title"),
        ({"assignee": "other_manager"}, "assignee"),
        ({"counterparty": "colleague"}, "counterparty"),
        ({"deal": "colleague"}, "deal"),
        ({"invoice": "colleague"}, "invoice"),
        ({"counterparty": "own", "deal": "colleague_own"}, "deal"),
    ],
)
def test_create_task_refusals_name_the_field(staff, scene, payload, field):
    other_own = CounterpartyFactory(owner=staff.manager)
    references = {
        "other_manager": staff.other_manager.pk,
        "own": scene["own"].pk,
        "colleague": scene["colleague"].pk,
        "colleague_own": DealFactory(counterparty=other_own).pk,
    }
    if field == "deal" and payload.get("deal") == "colleague":
        references["colleague"] = DealFactory(counterparty=scene["colleague"]).pk
    if field == "invoice":
        references["colleague"] = InvoiceFactory(counterparty=scene["colleague"]).pk
    data = {"title": "Задача"} | {key: references.get(value, value) for key, value in payload.items()}
    before = Task.objects.count()
    response = client_for(staff.manager).post(TASKS, data, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()
    assert Task.objects.count() == before


def test_update_and_complete(staff, scene):
    manager = client_for(staff.manager)
    url = f"{TASKS}{scene['own_task'].pk}/"
    response = manager.patch(url, {"title": "Перезвонить"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["title"] == "Перезвонить"
    refused = manager.patch(url, {"assignee": staff.other_manager.pk}, format="json")
    assert refused.status_code == 400
    assert "assignee" in refused.json()
    # Read-only fields are ignored, not written.
    manager.patch(url, {"is_done": True}, format="json")
    assert not Task.objects.get(pk=scene["own_task"].pk).is_done

    response = manager.post(f"{url}complete/")
    assert response.status_code == 200
    assert response.json()["is_done"] is True
    assert response.json()["completed_by"] == staff.manager.pk
    response = manager.post(f"{url}reopen/")
    assert response.json()["is_done"] is False


def test_notes(staff, scene):
    services.add_note(user=staff.other_manager, counterparty=scene["colleague"], text="чужая")
    manager = client_for(staff.manager)
    response = manager.post(NOTES, {"counterparty": scene["own"].pk, "text": "Звонил, ждут КП"}, format="json")
    assert response.status_code == 201, response.content
    note = Note.objects.get(pk=response.json()["id"])
    assert (note.author, note.counterparty) == (staff.manager, scene["own"])
    listed = manager.get(NOTES).json()
    assert [row["text"] for row in listed["results"]] == ["Звонил, ждут КП"]
    assert manager.get(NOTES, {"counterparty": scene["colleague"].pk}).json()["count"] == 0

    refused = manager.post(NOTES, {"counterparty": scene["colleague"].pk, "text": "x"}, format="json")
    assert refused.status_code == 400
    assert "counterparty" in refused.json()
    refused = manager.post(NOTES, {"counterparty": scene["own"].pk, "text": " "}, format="json")
    assert refused.status_code == 400
    assert "text" in refused.json()


def test_timeline(staff, scene):
    services.add_note(user=staff.manager, counterparty=scene["own"], text="Заметка")
    manager = client_for(staff.manager)
    response = manager.get(TIMELINE, {"counterparty": scene["own"].pk})
    assert response.status_code == 200, response.content
    items = response.json()
    assert [item["kind"] for item in items] == ["note", "task"]
    assert items[0]["title"] == "Заметка"
    assert items[0]["actor"] == staff.manager.pk
    assert set(items[0]) == {"kind", "when", "title", "ref", "url", "actor", "actor_name"}
    assert items[1]["ref"] == f"task:{scene['own_task'].pk}"

    assert manager.get(TIMELINE, {"counterparty": scene["colleague"].pk}).status_code == 404
    for params, field in (
        ({}, "counterparty"),
        ({"counterparty": "x"}, "counterparty"),
        ({"counterparty": scene["own"].pk, "limit": "0"}, "limit"),
    ):
        refused = manager.get(TIMELINE, params)
        assert refused.status_code == 400
        assert field in refused.json()
    assert len(manager.get(TIMELINE, {"counterparty": scene["own"].pk, "limit": "1"}).json()) == 1
