"""The incremental read against the fake БП 3.0 (incremental.py): keys and versions first, then only the changed
and new objects by key; gone objects journalled; dry run; resume after a crash; the fall-back to the paged read;
two-way rules still read in full."""

from __future__ import annotations

import itertools
import random
import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from sdelka.exchange.models import Conflict, Connection, ExchangeEvent, ExchangeRun, ExternalRef, RunStatus
from sdelka.exchange.odata import incremental
from sdelka.exchange.odata.client import MAX_URL
from sdelka.exchange.odata.models import MappingRule, SyncTask
from sdelka.exchange.odata.services import check_connection, client_for, create_odata_connection, load_preset, save_task
from sdelka.exchange.odata.sync import run_task
from sdelka.exchange.tests.test_odata_two_way import both_change_the_comment
from sdelka.parties.models import Counterparty
from tests.factories import make_inn10
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings
from tests.fake_odata.server import Request

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("odata_settings")]
__all__ = ["fake_bp30", "odata_settings"]

PARTIES = "Catalog_Контрагенты"
KEYS_AND_VERSIONS = "Ref_Key,DataVersion"
RNG = random.Random(11)


@pytest.fixture
def connection(fake: FakeOneC) -> Connection:
    connection = create_odata_connection(name="bp", url=fake.base_url, login=fake.login, password=fake.password)
    assert check_connection(connection=connection).ok
    return connection


@pytest.fixture
def task(connection: Connection) -> SyncTask:
    load_preset(connection=connection, preset="bp30")
    rule = MappingRule.objects.get(connection=connection, entity_set=PARTIES)
    return save_task(connection=connection, name="parties", rules=[rule], options={"page_size": 2})


def party(fake: FakeOneC, name: str) -> dict[str, Any]:
    inn = make_inn10(RNG)
    kind = "ЮридическоеЛицо"
    return fake.add(PARTIES, Description=name, ИНН=inn, КПП=inn[:4] + "01001", ЮридическоеФизическоеЛицо=kind)


def sync(connection: Connection, task: SyncTask, **kwargs: Any) -> Any:
    task.refresh_from_db()
    return run_task(connection=connection, task=task, client=client_for(connection, sleep=lambda s: None), **kwargs)


def reads(fake: FakeOneC, since: int = 0) -> list[Request]:
    return [r for r in fake.requests[since:] if r.method == "GET" and r.path.endswith(PARTIES)]


def keys_read_in_full(requests: list[Request]) -> set[str]:
    full = [r for r in requests if r.query.get("$select") != KEYS_AND_VERSIONS]
    return {key for r in full for key in re.findall(r"guid'([^']+)'", r.query.get("$filter", ""))}


def pulled(fake: FakeOneC, connection: Connection, task: SyncTask, count: int = 6) -> list[dict[str, Any]]:
    parties = [party(fake, f"ООО Фирма {i}") for i in range(count)]
    assert sync(connection, task).totals()["created"] == count
    return parties


def test_only_changed_and_new_objects_are_read_in_full(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    parties = pulled(fake, connection, task)
    fake.change(PARTIES, parties[3]["Ref_Key"], Description="ООО Фирма Три")
    new = party(fake, "ООО Новая")
    before = len(fake.requests)
    result = sync(connection, task)
    assert result.status == RunStatus.SUCCESS
    assert (result.rules[0].total, result.rules[0].updated, result.rules[0].created) == (7, 1, 1)
    assert result.rules[0].unchanged == 5
    requests = reads(fake, before)
    assert requests[0].query["$select"] == KEYS_AND_VERSIONS
    assert not any(r.path.endswith("$count") for r in fake.requests[before:])
    assert keys_read_in_full(requests) == {parties[3]["Ref_Key"], new["Ref_Key"]}
    assert all("$skip" not in r.query for r in requests[1:])  # no paged read of the full objects
    assert Counterparty.objects.filter(name="ООО Фирма Три").exists() and Counterparty.objects.count() == 7
    assert ExternalRef.objects.get(external_id=new["Ref_Key"]).version == new["DataVersion"]
    run = ExchangeRun.objects.get(pk=result.run_id)
    assert (run.total, run.done, run.created, run.updated, run.unchanged) == (7, 7, 1, 1, 5)
    marked = set(ExternalRef.objects.filter(seen_run=run).values_list("external_id", flat=True))
    assert marked == {parties[3]["Ref_Key"], new["Ref_Key"]}  # the unchanged were seen by the pull an hour ago at most

    before = len(fake.requests)
    quiet = sync(connection, task)
    assert quiet.rules[0].unchanged == 7 and keys_read_in_full(reads(fake, before)) == set()
    assert len(reads(fake, before)) == 1


def test_a_recreated_sdelka_object_is_read_again(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    parties = pulled(fake, connection, task, count=3)
    Counterparty.objects.filter(name="ООО Фирма 1").delete()
    before = len(fake.requests)
    result = sync(connection, task)
    assert result.rules[0].created == 1 and keys_read_in_full(reads(fake, before)) == {parties[1]["Ref_Key"]}


def test_dry_run_reads_the_changes_and_writes_nothing(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    parties = pulled(fake, connection, task)
    fake.change(PARTIES, parties[0]["Ref_Key"], Description="ООО Фирма Ноль")
    party(fake, "ООО Новая")
    runs, refs = ExchangeRun.objects.count(), list(ExternalRef.objects.values_list("pk", "version", "seen_run"))
    result = sync(connection, task, dry_run=True)
    assert result.run_id is None and (result.rules[0].updated, result.rules[0].created) == (1, 1)
    change = next(c for c in result.rules[0].changes if c.action == "update")
    assert change.diff["name"] == ("ООО Фирма 0", "ООО Фирма Ноль")
    assert ExchangeRun.objects.count() == runs and Counterparty.objects.count() == 6
    assert list(ExternalRef.objects.values_list("pk", "version", "seen_run")) == refs


def test_an_object_gone_from_1c_is_journalled_once_and_kept(
    fake: FakeOneC, connection: Connection, task: SyncTask
) -> None:
    parties = pulled(fake, connection, task)
    gone = fake.data[PARTIES].pop(parties[2]["Ref_Key"])
    first = sync(connection, task)
    assert first.rules[0].gone == 1 and first.status == RunStatus.SUCCESS
    warning = ExchangeEvent.objects.get(run_id=first.run_id, external_id=gone["Ref_Key"])
    assert warning.level == "warning" and "no longer returns" in warning.message
    assert Counterparty.objects.filter(name="ООО Фирма 2", is_active=True).exists()  # the hub never deletes
    assert ExternalRef.objects.get(external_id=gone["Ref_Key"]).version == ""
    second = sync(connection, task)
    assert second.rules[0].gone == 0 and not ExchangeEvent.objects.filter(run_id=second.run_id, level="warning")

    fake.data[PARTIES][gone["Ref_Key"]] = gone  # back, with the very same DataVersion: read in full again
    before = len(fake.requests)
    back = sync(connection, task)
    assert keys_read_in_full(reads(fake, before)) == {gone["Ref_Key"]}
    assert ExternalRef.objects.get(external_id=gone["Ref_Key"]).version == gone["DataVersion"]
    assert back.rules[0].unchanged == 6


def test_a_crash_in_the_second_pass_resumes_with_what_is_left(
    fake: FakeOneC, connection: Connection, task: SyncTask
) -> None:
    parties = pulled(fake, connection, task)
    for item in parties[:5]:
        fake.change(PARTIES, item["Ref_Key"], Description=item["Description"] + " (изм.)")

    def crash(outcome: Any, offset: int) -> None:
        raise KeyboardInterrupt  # killed after the first page of changed objects is committed

    with pytest.raises(KeyboardInterrupt):
        sync(connection, task, on_page=crash)
    done = Counterparty.objects.filter(name__endswith="(изм.)")
    assert done.count() == 2  # one page of two
    applied = set(ExternalRef.objects.filter(object_id__in=done.values("pk")).values_list("external_id", flat=True))
    task.refresh_from_db()
    assert task.checkpoint["skip"] == 0
    ExchangeRun.objects.update(status=RunStatus.FAILED)  # the killed run, as the next start would close it
    before = len(fake.requests)
    result = sync(connection, task)
    assert result.status == RunStatus.SUCCESS and result.rules[0].updated == 3 and result.rules[0].unchanged == 3
    assert keys_read_in_full(reads(fake, before)) == {item["Ref_Key"] for item in parties[:5]} - applied
    assert Counterparty.objects.filter(name__endswith="(изм.)").count() == 5
    task.refresh_from_db()
    assert task.checkpoint == {}


def test_changed_objects_are_applied_while_the_key_pass_goes_on(
    fake: FakeOneC, connection: Connection, task: SyncTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    parties = pulled(fake, connection, task)
    monkeypatch.setattr(incremental, "KEY_PAGE", 2)  # three key pages: $skip 0, 2 and 4
    first = min(parties, key=lambda item: item["Ref_Key"])  # on the first key page
    fake.change(PARTIES, first["Ref_Key"], Description="ООО Первая")
    fake.slow_start_seconds = 3.0
    fake.fail("slow", path_contains=PARTIES, query_contains="$skip=4")
    before, last_key_page = len(fake.requests), list[int]()

    def applied(outcome: Any, done: int) -> None:
        if not last_key_page:  # the first page applied: 1C is still serving the last key page
            last_key_page.extend(r.status for r in reads(fake, before) if r.query.get("$skip") == "4")

    result = sync(connection, task, on_page=applied)
    assert (result.rules[0].updated, result.rules[0].unchanged) == (1, 5)
    assert last_key_page in ([], [0])  # not asked for yet, or asked and not answered
    assert Counterparty.objects.filter(name="ООО Первая").exists()


@given(expected=st.integers(min_value=0, max_value=10 * incremental.KEY_PAGE))
def test_the_key_page_expected_to_end_the_pass_comes_in_two(expected: int) -> None:
    page, tail = incremental.KEY_PAGE, incremental.KEY_PAGE // 10
    sizes = list(itertools.islice(incremental.key_page_sizes(expected), 15))
    assert all(tail <= size <= page for size in sizes)  # no tiny page to judge the share of changes by
    trailing_full = len(list(itertools.takewhile(lambda size: size == page, reversed(sizes))))
    planned = sizes[: len(sizes) - trailing_full]  # up to the split-off tail, if there is one
    if planned:
        assert planned[-1] == tail and sum(planned) == expected
    if 2 * tail <= expected <= page + tail:
        assert planned == [expected - tail, tail]


def test_a_hundred_thousand_keys_end_with_a_small_page() -> None:
    sizes = list(itertools.islice(incremental.key_page_sizes(100_000), 7))
    assert sizes == [20_000, 20_000, 20_000, 20_000, 18_000, 2_000, 20_000]


def test_when_most_changed_the_paged_read_is_cheaper(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    SyncTask.objects.filter(pk=task.pk).update(page_size=500)
    parties = pulled(fake, connection, task, count=30)
    for item in parties[:25]:
        fake.change(PARTIES, item["Ref_Key"], Description=item["Description"] + " (изм.)")
    before = len(fake.requests)
    result = sync(connection, task)
    assert result.rules[0].updated == 25 and result.rules[0].unchanged == 5
    requests = reads(fake, before)
    assert [r.query.get("$select") == KEYS_AND_VERSIONS for r in requests] == [True, False]
    assert requests[1].query["$top"] == "500" and keys_read_in_full(requests) == set()


def test_by_key_reads_keep_the_url_short(fake: FakeOneC, connection: Connection) -> None:
    keys = [party(fake, f"ООО Фирма {i}")["Ref_Key"] for i in range(60)]
    client = client_for(connection)
    select = ["Ref_Key", "DataVersion", "Description", "НаименованиеПолное", "ИНН", "КПП"]
    rows = [row for batch in client.by_keys(PARTIES, keys, select=select) for row in batch]
    assert sorted(row["Ref_Key"] for row in rows) == sorted(keys)
    urls = [f"{fake.base_url}/{quote(PARTIES)}?{r.raw_query}" for r in fake.requests if "$filter" in r.query]
    assert 2 < len(urls) <= 4 and all(len(url) <= MAX_URL for url in urls)


def test_two_way_rules_still_read_every_object_and_raise_conflicts(fake: FakeOneC) -> None:
    task, _entity, _party = both_change_the_comment(fake)
    before = len(fake.requests)
    result = run_task(
        connection=Connection.objects.get(pk=task.connection_id),
        task=task,
        client=client_for(Connection.objects.get(pk=task.connection_id), sleep=lambda s: None),
    )
    assert result.totals()["conflicts"] == 1 and Conflict.objects.get().field == "comment"
    assert not any(r.query.get("$select") == KEYS_AND_VERSIONS for r in reads(fake, before))


def test_a_failing_key_pass_fails_the_rule_and_applies_nothing(
    fake: FakeOneC, connection: Connection, task: SyncTask
) -> None:
    parties = pulled(fake, connection, task)
    fake.change(PARTIES, parties[0]["Ref_Key"], Description="ООО Фирма Ноль")
    fake.fail("500", times=20, path_contains=PARTIES, message="Ошибка СУБД")
    result = run_task(
        connection=connection,
        task=task,
        client=client_for(connection, sleep=lambda s: None, backoff=0),
    )
    assert result.status == RunStatus.FAILED and "Ошибка СУБД" in result.rules[0].error
    assert not Counterparty.objects.filter(name="ООО Фирма Ноль").exists()
    task.refresh_from_db()
    assert task.checkpoint["rule"] == task.ordered_rules()[0].pk
    fake.faults.clear()
    assert sync(connection, task).rules[0].updated == 1


def test_an_unchanged_objects_last_sync_moves_on_once_an_hour(
    fake: FakeOneC, connection: Connection, task: SyncTask
) -> None:
    pulled(fake, connection, task, count=3)
    pull = ExchangeRun.objects.get()
    second = sync(connection, task)
    assert ExternalRef.objects.filter(seen_run=pull).count() == 3  # seen minutes ago: not rewritten
    ExchangeRun.objects.filter(pk=pull.pk).update(started_at=timezone.now() - timedelta(minutes=61))
    third = sync(connection, task)
    assert third.rules[0].unchanged == 3 and second.rules[0].unchanged == 3
    assert ExternalRef.objects.filter(seen_run_id=third.run_id).count() == 3
