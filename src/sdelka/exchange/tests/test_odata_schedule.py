"""Schedules of sync tasks (cron validation, next start, the minute tick claiming each due task once), the run
rights of teams, and the per-field merge decisions (property tests)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from sdelka.exchange.models import Connection, ConnectionKind
from sdelka.exchange.odata.merge import MISSING, Outcome, decide, onec_changed_at
from sdelka.exchange.odata.models import Ownership, SyncTask
from sdelka.exchange.odata.schedule import next_fire, parse_error, start_due_tasks
from sdelka.exchange.odata.sync import run_task
from tests.factories import TeamFactory, UserFactory
from tests.fake_odata import odata_settings

__all__ = ["odata_settings"]
MSK = ZoneInfo("Europe/Moscow")


# --- cron expressions ---


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("0 * * *", "five fields"),
        ("0 * * * * *", "five fields"),
        ("61 * * * *", "the minute"),
        ("0 25 * * *", "the hour"),
        ("0 0 32 * *", "the day of the month"),
        ("0 0 * 13 *", "the month"),
        ("0 0 * * 9", "the day of the week"),
        ("0 0 30 2 *", "never comes"),
    ],
)
def test_a_bad_schedule_is_named_precisely(expression: str, fragment: str) -> None:
    with pytest.MonkeyPatch.context():
        from django.utils import translation

        with translation.override("en"):
            assert fragment in parse_error(expression)


@pytest.mark.parametrize("expression", ["0 * * * *", "*/15 8-20 * * MON-FRI", "30 2 1 * *", "0 9 * * 1,3,5"])
def test_good_schedules_pass(expression: str) -> None:
    assert parse_error(expression) == ""


def test_next_fire_is_strictly_after_and_in_local_time() -> None:
    at = datetime(2026, 3, 2, 10, 0, tzinfo=MSK)
    assert next_fire("0 * * * *", at) == datetime(2026, 3, 2, 11, 0, tzinfo=MSK)
    assert next_fire("30 2 * * *", at) == datetime(2026, 3, 3, 2, 30, tzinfo=MSK)
    assert next_fire("", at) is None and next_fire("bad", at) is None


@given(st.integers(0, 59), st.integers(0, 23), st.datetimes(datetime(2025, 1, 1), datetime(2030, 1, 1)))  # noqa: DTZ001
def test_next_fire_matches_the_expression(minute: int, hour: int, naive: datetime) -> None:
    at = naive.replace(tzinfo=MSK)
    fire = next_fire(f"{minute} {hour} * * *", at)
    assert fire is not None and fire > at and fire - at <= timedelta(days=1)
    assert (fire.astimezone(MSK).minute, fire.astimezone(MSK).hour) == (minute, hour)


@pytest.fixture
def connection(db: Any) -> Connection:
    return Connection.objects.create(name="bp", kind=ConnectionKind.ODATA, url="http://127.0.0.1:9/odata")


@pytest.mark.django_db
def test_the_task_rejects_a_bad_schedule_and_defaults_to_hourly(connection: Connection) -> None:
    task = SyncTask(connection=connection, name="t", schedule="every hour")
    with pytest.raises(ValidationError) as error:
        task.full_clean()
    assert "schedule" in error.value.message_dict
    task = SyncTask.objects.create(connection=connection, name="hourly")
    assert task.schedule == "0 * * * *" and task.next_run_at is not None and task.next_run_at.minute == 0


@pytest.mark.django_db
def test_the_tick_starts_each_due_task_once(connection: Connection) -> None:
    due = SyncTask.objects.create(connection=connection, name="due", full_resync=True)
    later = SyncTask.objects.create(connection=connection, name="later")
    SyncTask.objects.create(connection=connection, name="manual", schedule="")
    SyncTask.objects.create(connection=connection, name="off", is_active=False)
    assert due.next_run_at is not None
    now = due.next_run_at + timedelta(seconds=5)
    SyncTask.objects.filter(pk=later.pk).update(next_run_at=now + timedelta(minutes=30))
    started: list[tuple[int, bool]] = []
    assert start_due_tasks(lambda pk, full: started.append((pk, full)), now=now) == [due.pk]
    assert started == [(due.pk, True)]
    assert start_due_tasks(lambda pk, full: started.append((pk, full)), now=now) == []  # claimed already
    due.refresh_from_db()
    assert due.next_run_at == next_fire(due.schedule, now)


@pytest.mark.django_db
def test_a_task_set_up_before_schedules_gets_its_next_start(connection: Connection) -> None:
    task = SyncTask.objects.create(connection=connection, name="old")
    SyncTask.objects.filter(pk=task.pk).update(next_run_at=None)
    start_due_tasks(lambda pk, full: None)
    task.refresh_from_db()
    assert task.next_run_at is not None


@pytest.mark.django_db
def test_the_huey_tick_runs_due_tasks(connection: Connection) -> None:
    from huey.contrib.djhuey import HUEY

    from sdelka.exchange import tasks

    HUEY.immediate = True  # the queued run executes here
    try:
        _tick_and_check(connection, tasks)
    finally:
        HUEY.immediate = False


def _tick_and_check(connection: Connection, tasks: Any) -> None:
    task = SyncTask.objects.create(connection=connection, name="due")
    SyncTask.objects.filter(pk=task.pk).update(next_run_at=timezone.now() - timedelta(minutes=5))
    tasks.start_scheduled_syncs.call_local()
    task.refresh_from_db()
    assert task.last_run is not None and task.last_run.trigger == "schedule"
    assert task.last_run.status == "success"
    assert task.next_run_at is not None and task.next_run_at > timezone.now()


# --- run rights ---


@pytest.mark.django_db
@pytest.mark.usefixtures("odata_settings")
def test_only_admins_and_the_named_teams_may_run(connection: Connection) -> None:
    sales, other = TeamFactory(), TeamFactory()
    task = SyncTask.objects.create(connection=connection, name="t")
    task.run_teams.add(sales)
    member, outsider = UserFactory(team=sales), UserFactory(team=other)
    admin, loner = UserFactory(role="admin"), UserFactory()
    assert task.may_run(member) and task.may_run(admin)
    assert not task.may_run(outsider) and not task.may_run(loner)
    with pytest.raises(PermissionDenied):
        run_task(connection=connection, task=task, client=None, user=outsider)
    with pytest.raises(CommandError, match="may not run"):
        call_command("sync", "run", "bp", "--user", outsider.username)
    with pytest.raises(CommandError, match="No user named"):
        call_command("sync", "run", "bp", "--user", "nobody")


# --- merge decisions ---

values = st.one_of(st.none(), st.booleans(), st.integers(0, 3), st.sampled_from(["", "a", "b"]))


@given(st.sampled_from(Ownership.values), values, values, values)
def test_merge_never_overwrites_what_only_the_owner_changed(ownership: str, base: Any, ours: Any, theirs: Any) -> None:
    outcome = decide(ownership, base, ours, theirs)
    if ours == theirs:
        assert outcome == Outcome.SAME
    elif ownership == Ownership.ONEC:
        assert outcome == Outcome.TO_SDELKA
    elif ownership == Ownership.SDELKA:
        assert outcome == Outcome.TO_ONEC
    elif ours == base:
        assert outcome == Outcome.TO_SDELKA  # only 1C changed it
    elif theirs == base:
        assert outcome == Outcome.TO_ONEC  # only Sdelka changed it
    elif ownership == Ownership.ASK:
        assert outcome == Outcome.CONFLICT
    else:
        assert outcome in (Outcome.TO_ONEC, Outcome.TO_SDELKA)


@given(values, values, st.sampled_from([Ownership.NEWEST, Ownership.ASK]))
def test_merge_without_a_base_treats_a_difference_as_both_changed(ours: Any, theirs: Any, ownership: str) -> None:
    outcome = decide(ownership, MISSING, ours, theirs)
    if ours == theirs:
        assert outcome == Outcome.SAME
    elif ownership == Ownership.ASK:
        assert outcome == Outcome.CONFLICT


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_newest_takes_the_later_side(ours_minutes: int, theirs_minutes: int) -> None:
    start = datetime(2026, 1, 1, tzinfo=MSK)
    ours_at, theirs_at = start + timedelta(minutes=ours_minutes), start + timedelta(minutes=theirs_minutes)
    outcome = decide(Ownership.NEWEST, "a", "b", "c", ours_changed_at=ours_at, theirs_changed_at=theirs_at)
    assert outcome == (Outcome.TO_ONEC if ours_at > theirs_at else Outcome.TO_SDELKA)


def test_1c_change_time_is_the_middle_of_the_window() -> None:
    last, seen = datetime(2026, 1, 1, 10, 0, tzinfo=MSK), datetime(2026, 1, 1, 11, 0, tzinfo=MSK)
    assert onec_changed_at(last, seen) == datetime(2026, 1, 1, 10, 30, tzinfo=MSK)
    assert onec_changed_at(None, seen) == seen
