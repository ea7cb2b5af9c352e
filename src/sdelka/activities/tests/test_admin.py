from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from sdelka.activities import services
from sdelka.activities.models import Note, Notification, Task
from tests.factories import CounterpartyFactory

from .helpers import make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_manager(staff):
    """The manager with admin access to the activities models."""
    manager = staff.manager
    manager.is_staff = True
    manager.save(update_fields=["is_staff"])
    manager.user_permissions.set(Permission.objects.filter(content_type__app_label="activities"))
    return manager


@pytest.fixture
def tasks(staff):
    own = CounterpartyFactory(owner=staff.manager)
    return {
        "own": make_task(title="своя задача", assignee=staff.manager, counterparty=own),
        "foreign": make_task(
            title="чужая задача",
            assignee=staff.other_manager,
            counterparty=CounterpartyFactory(owner=staff.other_manager),
        ),
    }


def test_task_changelist_shows_only_visible(client, staff_manager, tasks):
    client.force_login(staff_manager)
    response = client.get("/admin/activities/task/")
    assert response.status_code == 200
    assert "своя задача" in response.text
    assert "чужая задача" not in response.text
    for query in ("?is_done__exact=0", f"?assignee__id__exact={staff_manager.pk}", "?q=задача"):
        assert client.get(f"/admin/activities/task/{query}").status_code == 200


def test_task_outside_scope_does_not_exist_in_admin(client, staff_manager, tasks):
    client.force_login(staff_manager)
    response = client.get(f"/admin/activities/task/{tasks['foreign'].pk}/change/")
    assert response.status_code == 302  # Django admin's "doesn't exist" redirect
    assert client.get(f"/admin/activities/task/{tasks['own'].pk}/change/").status_code == 200


def test_admin_add_goes_through_services(client, staff_manager, staff):
    client.force_login(staff_manager)
    own = CounterpartyFactory(owner=staff.manager)
    foreign = CounterpartyFactory(owner=staff.outsider)
    due = timezone.localtime() + timedelta(days=1)
    form = {
        "title": "Из админки",
        "description": "",
        "due_at_0": due.strftime("%Y-%m-%d"),
        "due_at_1": due.strftime("%H:%M:%S"),
        "remind_at_0": "",
        "remind_at_1": "",
        "assignee": staff.manager.pk,
        "counterparty": own.pk,
        "deal": "",
        "invoice": "",
    }
    response = client.post("/admin/activities/task/add/", form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    task = Task.objects.get(title="Из админки")
    assert (task.author, task.counterparty) == (staff.manager, own)

    for field, value in (("counterparty", foreign.pk), ("assignee", staff.other_manager.pk)):
        response = client.post("/admin/activities/task/add/", form | {"title": "Нельзя", field: value})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors
    assert not Task.objects.filter(title="Нельзя").exists()


def test_notes_and_notifications_admin(client, staff_manager, staff, tasks):
    own = tasks["own"].counterparty
    services.add_note(user=staff.manager, counterparty=own, text="моя заметка")
    services.add_note(user=staff.other_manager, counterparty=tasks["foreign"].counterparty, text="чужая заметка")
    make_task(title="напомнить", assignee=staff.other_manager, remind_at=timezone.now())
    make_task(title="напомнить мне", assignee=staff.manager, remind_at=timezone.now())
    services.send_due_reminders()
    client.force_login(staff_manager)

    notes = client.get("/admin/activities/note/").text
    assert "моя заметка" in notes
    assert "чужая заметка" not in notes
    changelist = client.get("/admin/activities/notification/").context["cl"]
    assert [n.user for n in changelist.result_list] == [staff.manager]
    assert Notification.objects.count() == 2

    note = Note.objects.get(text="моя заметка")
    response = client.post(f"/admin/activities/note/{note.pk}/change/", {"text": "исправлено"})
    assert response.status_code == 302
    note.refresh_from_db()
    assert (note.text, note.counterparty) == ("исправлено", own)
