"""The job queue for real: the Huey instance from settings, its real storage (SqliteHuey file under the
data dir, or Redis when REDIS_URL is set), and jobs run the way a consumer runs them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.management import get_commands
from django.db import connection, transaction
from django.utils import timezone
from huey import RedisHuey, SqliteHuey
from huey.contrib.djhuey import HUEY, db_task

from sdelka.activities import tasks
from sdelka.activities.models import Notification, Task
from sdelka.core.jobs import enqueue_on_commit

from .helpers import make_task

# Huey's storage is outside the test transaction and the job uses the connection as a consumer does
# (closing it before and after), so these tests commit for real; serialized_rollback restores the
# reference data that the flush after a transactional test removes.
transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(scope="module", autouse=True)
def _leave_reference_data_behind(django_db_blocker: Any) -> Iterator[None]:
    """A transactional test ends with a flush that also removes the data migrations' rows (currencies,
    units, the default pipeline). Put them back after this module, so that a transactional test of
    another module running later finds the database as migrations left it."""
    yield
    contents = getattr(connection, "_test_serialized_contents", None)
    with django_db_blocker.unblock():
        # The flush after a serialized-rollback test leaves even the content types out.
        if contents and not ContentType.objects.exists():
            connection.creation.deserialize_db_from_string(contents)


@db_task()
def remind_now(task_id: int) -> int:
    """A test job: make the task due and run the reminders, as a job enqueued by a service would."""
    Task.objects.filter(pk=task_id).update(remind_at=timezone.now())
    return tasks.send_due_reminders.call_local()


def run_next_job(huey: Any) -> Any:
    """What a consumer worker does with the next message in the queue."""
    job = huey.dequeue()
    assert job is not None, "the queue is empty"
    return huey.execute(job)


def test_backend_follows_settings(huey_queue):
    if settings.REDIS_URL:
        assert isinstance(HUEY, RedisHuey)
    else:
        assert isinstance(HUEY, SqliteHuey)
        assert HUEY.storage.filename == str(settings.DATA_DIR / "huey.sqlite3")
    assert HUEY.utc


def test_consumer_command_is_available():
    assert get_commands()["run_huey"] == "huey.contrib.djhuey"


@pytest.mark.parametrize("minute", [0, 1, 17, 59])
def test_reminders_are_scheduled_every_minute(minute):
    # The consumer's scheduler asks read_periodic() once a minute, with a UTC timestamp.
    moment = datetime(2026, 3, 2, 9, minute)  # noqa: DTZ001 - huey works in naive UTC
    due = [type(job) for job in HUEY.read_periodic(moment)]
    assert tasks.send_due_reminders.task_class in due
    assert remind_now.task_class not in due


@transactional
def test_reminder_job_through_the_real_queue(huey_queue, staff):
    due = make_task(assignee=staff.manager, remind_at=timezone.now() - timedelta(minutes=1))
    later = make_task(assignee=staff.manager, remind_at=timezone.now() + timedelta(hours=1))

    tasks.send_due_reminders()  # what the scheduler does when the minute matches: enqueue
    assert huey_queue.pending_count() == 1
    assert not Notification.objects.exists()  # nothing happens until a consumer takes the job

    assert run_next_job(huey_queue) == 1
    assert huey_queue.pending_count() == 0
    notification = Notification.objects.get()
    assert (notification.user, notification.task) == (staff.manager, due)
    later.refresh_from_db()
    assert later.reminded_at is None


@transactional
def test_two_consumers_running_the_reminder_make_one_notification(huey_queue, staff):
    make_task(assignee=staff.manager, remind_at=timezone.now())
    tasks.send_due_reminders()
    tasks.send_due_reminders()
    assert huey_queue.pending_count() == 2
    assert sorted([run_next_job(huey_queue), run_next_job(huey_queue)]) == [0, 1]
    assert Notification.objects.count() == 1


@transactional
def test_job_enqueued_in_a_rolled_back_transaction_never_runs(huey_queue, staff):
    task = make_task(assignee=staff.manager)

    with pytest.raises(RuntimeError), transaction.atomic():
        Task.objects.filter(pk=task.pk).update(title="изменено")
        enqueue_on_commit(remind_now, task.pk)
        assert huey_queue.pending_count() == 0  # not before the commit
        raise RuntimeError("the write fails")

    assert huey_queue.pending_count() == 0
    assert Task.objects.get(pk=task.pk).title != "изменено"


@transactional
def test_job_enqueued_once_after_commit_and_runs(huey_queue, staff):
    task = make_task(assignee=staff.manager)

    with transaction.atomic():
        enqueue_on_commit(remind_now, task.pk)
        assert huey_queue.pending_count() == 0
    assert huey_queue.pending_count() == 1

    assert run_next_job(huey_queue) == 1
    assert huey_queue.pending_count() == 0
    assert Notification.objects.get().task_id == task.pk


@transactional
def test_enqueue_outside_a_transaction_is_immediate(huey_queue, staff):
    enqueue_on_commit(remind_now, make_task(assignee=staff.manager).pk)
    assert huey_queue.pending_count() == 1


def test_on_commit_callbacks_fire_only_on_commit(db, staff, huey_queue, django_capture_on_commit_callbacks):
    task = make_task(assignee=staff.manager)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        enqueue_on_commit(remind_now, task.pk)
        assert huey_queue.pending_count() == 0
    assert len(callbacks) == 1
    assert huey_queue.pending_count() == 1
