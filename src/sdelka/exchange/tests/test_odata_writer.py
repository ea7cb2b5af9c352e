"""The pull writes its pages on a second connection (odata/writer.py) on PostgreSQL outside a transaction: each
page is reported only once committed with its checkpoint, and a failed write fails the run, is journalled, and
leaves the checkpoint at the last page committed, from where the next run goes on."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from sdelka.exchange.models import Connection, EventLevel, ExchangeRun, RunStatus
from sdelka.exchange.odata import sync, writer
from sdelka.exchange.odata.models import MappingRule, SyncTask
from sdelka.exchange.odata.services import check_connection, client_for, create_odata_connection, load_preset, save_task
from sdelka.parties.models import Counterparty
from tests.factories import make_inn10
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings

# Committed transactions: the writer's connection sees only what is committed (serialized: the data migrations'
# rows come back for the tests after these).
pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("odata_settings"),
]
__all__ = ["fake_bp30", "odata_settings"]

PARTIES = "Catalog_Контрагенты"
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer: no writer thread")


def parties_task_of(fake: FakeOneC) -> SyncTask:
    """A task of the ready-made counterparty rule alone, reading pages of two."""
    base = create_odata_connection(name="bp", url=fake.base_url, login=fake.login, password=fake.password, timeout=5)
    assert check_connection(connection=base).ok
    load_preset(connection=base, preset="bp30")
    rule = MappingRule.objects.get(connection=base, entity_set=PARTIES)
    return save_task(connection=base, name="parties", rules=[rule], options={"page_size": 2})


@pytest.fixture
def parties_task(fake: FakeOneC) -> SyncTask:
    rng = random.Random(11)
    for number in range(5):
        inn = make_inn10(rng)
        fake.add(PARTIES, Description=f"ООО Фирма {number}", ИНН=inn, КПП=inn[:4] + "01001",
                 ЮридическоеФизическоеЛицо="ЮридическоеЛицо")  # fmt: skip
    return parties_task_of(fake)


def pull(task: SyncTask, **kwargs: Any) -> Any:
    task.refresh_from_db()
    base: Connection = task.connection
    return sync.run_task(connection=base, task=task, client=client_for(base, sleep=lambda s: None, backoff=0), **kwargs)


@postgres_only
def test_pages_are_written_by_the_writer_and_reported_once_committed(
    parties_task: SyncTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers: list[str] = []
    write = sync.Syncer._write

    def spy(self: Any, page: Any, events: Any = None) -> None:
        writers.append(threading.current_thread().name)
        write(self, page, events)

    monkeypatch.setattr(sync.Syncer, "_write", spy)
    seen: list[tuple[int, int, int]] = []

    def on_page(outcome: Any, offset: int) -> None:  # what another connection sees when a page is reported
        checkpoint = SyncTask.objects.get(pk=parties_task.pk).checkpoint
        seen.append((offset, checkpoint.get("skip", 0), Counterparty.objects.count()))

    result = pull(parties_task, on_page=on_page)
    assert result.status == RunStatus.SUCCESS and result.totals()["created"] == 5
    assert len(writers) == 3 and all(name.startswith("odata-writer") for name in writers)
    assert seen == [(2, 2, 2), (4, 4, 4), (5, 5, 5)]
    parties_task.refresh_from_db()
    assert parties_task.checkpoint == {}


@postgres_only
def test_a_failed_page_write_fails_the_run_and_the_next_run_resumes_after_the_last_commit(
    parties_task: SyncTask, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_insert = sync.bulk.run_insert
    pages: list[int] = []

    def failing(insert: Any) -> None:
        if insert.table == connection.ops.quote_name(Counterparty._meta.db_table):
            pages.append(len(insert.rows))
            if len(pages) == 2:
                raise IntegrityError("the database refused the second page")
        run_insert(insert)

    monkeypatch.setattr(sync.bulk, "run_insert", failing)
    with pytest.raises(IntegrityError):
        pull(parties_task)
    run = ExchangeRun.objects.get()
    assert run.status == RunStatus.FAILED and "the database refused the second page" in run.message
    assert run.events.filter(level=EventLevel.ERROR, message__contains="the database refused").exists()
    assert Counterparty.objects.count() == 2
    parties_task.refresh_from_db()
    assert parties_task.checkpoint["skip"] == 2  # the first page's, committed; not the failed one's

    monkeypatch.setattr(sync.bulk, "run_insert", run_insert)
    result = pull(parties_task)
    assert result.status == RunStatus.SUCCESS and result.resumed_from["skip"] == 2
    assert result.totals()["created"] == 3 and Counterparty.objects.count() == 5


@postgres_only
def test_a_page_that_reads_what_the_page_in_flight_writes_waits_for_its_commit(fake: FakeOneC) -> None:
    """Four 1C objects with one ИНН/КПП on two pages: the second page links by that natural key, so it is decided
    only once the first page (which created the one object Sdelka keeps) is committed, as on one connection."""
    inn = make_inn10(random.Random(3))
    for number in range(4):
        fake.add(PARTIES, Description=f"ООО Двойник {number}", ИНН=inn, КПП=inn[:4] + "01001",
                 ЮридическоеФизическоеЛицо="ЮридическоеЛицо")  # fmt: skip
    result = pull(parties_task_of(fake))
    assert result.totals()["created"] == 1 and result.totals()["refused"] == 3
    assert Counterparty.objects.filter(inn=inn).count() == 1


def test_the_writer_is_left_out_where_a_second_connection_would_not_see_the_first(parties_task: SyncTask) -> None:
    rule = parties_task.ordered_rules()[0]
    assert not writer.usable(rule, dry_run=True)
    with transaction.atomic():  # a test's or a caller's transaction: its rows are invisible to another connection
        assert not writer.usable(rule, dry_run=False)
    rule.direction = "both"  # two-way rules compare with Sdelka's objects page by page: one connection
    assert not writer.usable(rule, dry_run=False)
    rule.direction = "in"
    assert writer.usable(rule, dry_run=False) == (connection.vendor == "postgresql")
