"""Sync tasks end to end against the fake БП 3.0: the ready-made rule set, incremental runs, dry run with
diffs, refusals, natural-key linking, resume after a crash, faults, and `sdelka sync run`."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from sdelka.catalog.models import Product, Unit
from sdelka.exchange.models import Connection, ExchangeEvent, ExchangeRun, ExternalRef, Route, RunStatus
from sdelka.exchange.odata import incremental
from sdelka.exchange.odata.models import MappingRule, SyncTask
from sdelka.exchange.odata.services import check_connection, client_for, create_odata_connection, load_preset, save_task
from sdelka.exchange.odata.sync import EXCHANGE_USERNAME, SyncBusy, run_task
from sdelka.exchange.tasks import enqueue_sync
from sdelka.parties.models import Counterparty, CounterpartyKind
from tests.factories import CounterpartyFactory, make_inn10, make_inn12
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings, serve

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("odata_settings")]
__all__ = ["fake_bp30", "odata_settings"]

PARTIES = "Catalog_Контрагенты"
GOODS = "Catalog_Номенклатура"
UNITS = "Catalog_КлассификаторЕдиницИзмерения"
RNG = random.Random(5)


@pytest.fixture
def connection(fake: FakeOneC) -> Connection:
    connection = create_odata_connection(
        name="bp", url=fake.base_url, login=fake.login, password=fake.password, timeout=5
    )
    assert check_connection(connection=connection).ok
    connection.options = {**connection.options, "retries": 1}
    connection.save(update_fields=["options"])
    return connection


@pytest.fixture
def task(connection: Connection) -> SyncTask:
    return load_preset(connection=connection, preset="bp30")


def party(fake: FakeOneC, name: str, inn: str | None = None, **values: Any) -> dict[str, Any]:
    inn = make_inn10(RNG) if inn is None else inn
    values.setdefault("КПП", inn[:4] + "01001" if len(inn) == 10 else "")
    values.setdefault("ЮридическоеФизическоеЛицо", "ЮридическоеЛицо" if len(inn) == 10 else "ФизическоеЛицо")
    return fake.add(PARTIES, Description=name, НаименованиеПолное=f"{name} полное", ИНН=inn.ljust(12), **values)


def seed(fake: FakeOneC) -> dict[str, Any]:
    piece = fake.add(UNITS, Code="796", Description="шт", НаименованиеПолное="Штука")
    kilo = fake.add(UNITS, Code="166", Description="кг", НаименованиеПолное="Килограмм")
    parties = [party(fake, f"ООО Поставщик {i}") for i in range(3)]
    parties.append(party(fake, "ИП Иванов", make_inn12(RNG)))
    parties.append(party(fake, "ООО Старое", DeletionMark=True))
    fake.add(GOODS, Description="Группа", IsFolder=True)
    goods = [
        fake.add(
            GOODS, Description="Гвозди", Артикул="GV-1  ", ЕдиницаИзмерения_Key=kilo["Ref_Key"], СтавкаНДС="НДС22"
        ),
        fake.add(GOODS, Description="Доставка", Услуга=True, ЕдиницаИзмерения_Key=piece["Ref_Key"], СтавкаНДС="БезНДС"),
    ]
    return {"parties": parties, "goods": goods, "units": [piece, kilo]}


def sync(connection: Connection, task: SyncTask, **kwargs: Any) -> Any:
    task.refresh_from_db()
    kwargs.setdefault("client", client_for(connection, sleep=lambda s: None, backoff=0))
    return run_task(connection=connection, task=task, **kwargs)


def test_preset_creates_the_rules_and_task(task: SyncTask) -> None:
    rules = task.ordered_rules()
    assert [r.entity_set for r in rules][:3] == [UNITS, PARTIES, GOODS]
    assert [r.entity for r in rules][3:] == ["organisation", "price_type", "price"]
    assert rules[1].filter == ""  # the fake's (real УТ excerpt) Контрагенты is not hierarchical
    assert rules[2].filter == "IsFolder eq false"


def test_bp30_pull_end_to_end(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    data = seed(fake)
    result = sync(connection, task)
    assert result.status == RunStatus.SUCCESS, result.message
    assert result.totals() == {"created": 7, "updated": 2, "unchanged": 0, "refused": 0, "skipped": 0, "conflicts": 0}
    # the units 796 and 166 exist in Sdelka (ОКЕИ reference data): linked by code, not duplicated
    assert [r.updated + r.created for r in result.rules] == [2, 5, 2, 0, 0, 0]

    ivanov = Counterparty.objects.get(name="ИП Иванов")
    assert ivanov.kind == CounterpartyKind.PERSON and len(ivanov.inn) == 12 and ivanov.kpp == ""
    first = Counterparty.objects.get(name="ООО Поставщик 0")
    assert first.inn == data["parties"][0]["ИНН"].strip() and first.kpp == data["parties"][0]["КПП"]
    assert first.full_name == "ООО Поставщик 0 полное" and first.kind == CounterpartyKind.LEGAL
    assert first.owner.username == EXCHANGE_USERNAME
    assert Counterparty.objects.get(name="ООО Старое").is_active is False

    nails = Product.objects.get(name="Гвозди")
    assert nails.article == "GV-1" and nails.unit.okei == "166" and nails.vat_rate == "22" and nails.kind == "goods"
    delivery = Product.objects.get(name="Доставка")
    assert delivery.kind == "service" and delivery.vat_rate == "none" and delivery.unit.okei == "796"
    assert not Product.objects.filter(name="Группа").exists()

    ref = ExternalRef.objects.get(external_id=data["parties"][0]["Ref_Key"])
    assert ref.object_id == first.pk and ref.version == data["parties"][0]["DataVersion"]

    run = ExchangeRun.objects.get(pk=result.run_id)
    assert run.route == Route.ODATA and run.status == RunStatus.SUCCESS
    assert run.total == 9 and run.done == 9 and run.created == 7 and run.updated == 2 and run.failed == 0
    requests = run.events.filter(object_repr="request")
    # a $count and one page per catalogue rule; one call of the price register's SliceLast
    assert requests.count() == 11
    assert all(" → 200 in " in e.message for e in requests)
    assert SyncTask.objects.get(pk=task.pk).checkpoint == {}
    # every read was a paged $select, never $inlinecount
    pages = [r for r in fake.requests if "$top" in r.query]
    assert pages and all("$select" in r.query and "$orderby" in r.query for r in pages)
    assert not any("$inlinecount" in r.query for r in fake.requests)


def test_second_run_is_unchanged_and_writes_nothing(
    fake: FakeOneC, connection: Connection, task: SyncTask, django_assert_max_num_queries: Any
) -> None:
    data = seed(fake)
    sync(connection, task)
    stamp = Counterparty.objects.get(name="ООО Поставщик 1").updated_at
    with django_assert_max_num_queries(60):  # per page, not per record (6 rules, one page each)
        result = sync(connection, task)
    assert result.totals()["unchanged"] == 9 and result.totals()["created"] == result.totals()["updated"] == 0
    assert Counterparty.objects.get(name="ООО Поставщик 1").updated_at == stamp

    fake.change(PARTIES, data["parties"][1]["Ref_Key"], Description="ООО Поставщик Один")
    third = sync(connection, task)
    assert third.totals() == {"created": 0, "updated": 1, "unchanged": 8, "refused": 0, "skipped": 0, "conflicts": 0}
    assert Counterparty.objects.filter(name="ООО Поставщик Один").exists()
    # a DataVersion bump without a real change: compared, nothing written, the new version stored
    fake.change(PARTIES, data["parties"][2]["Ref_Key"])
    fourth = sync(connection, task)
    assert fourth.totals()["updated"] == 0 and fourth.totals()["unchanged"] == 9
    ref = ExternalRef.objects.get(external_id=data["parties"][2]["Ref_Key"])
    assert ref.version == fake.data[PARTIES][data["parties"][2]["Ref_Key"]]["DataVersion"]


def test_full_resync_compares_everything(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    seed(fake)
    sync(connection, task)
    Counterparty.objects.filter(name="ООО Поставщик 0").update(name="Изменено в обход 1С")
    assert sync(connection, task).totals()["updated"] == 0  # 1C's DataVersion did not change
    out = io.StringIO()
    call_command("sync", "run", "bp", "--full", "--json", stdout=out)
    summary = json.loads(out.getvalue())[0]
    assert summary["totals"]["updated"] == 1 and summary["totals"]["unchanged"] == 8
    assert Counterparty.objects.filter(name="ООО Поставщик 0").exists()


def test_dry_run_writes_nothing_and_shows_diffs(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    data = seed(fake)
    result = sync(connection, task, dry_run=True)
    assert result.run_id is None and result.totals()["created"] == 7
    assert Counterparty.objects.count() == 0 and ExchangeRun.objects.count() == 0
    assert ExternalRef.objects.count() == 0 and Product.objects.count() == 0
    created = next(c for c in result.rules[1].changes if c.label == "ООО Поставщик 0")
    assert created.action == "create" and created.diff["inn"] == (None, data["parties"][0]["ИНН"].strip())

    sync(connection, task)
    fake.change(PARTIES, data["parties"][0]["Ref_Key"], Description="ООО Поставщик Ноль", КПП="770101001")
    out = io.StringIO()
    call_command("sync", "run", "bp", "--dry-run", stdout=out)
    text = out.getvalue()
    assert "DRY RUN" in text
    assert "name: 'ООО Поставщик 0' → 'ООО Поставщик Ноль'" in text
    assert "kpp: '" in text and "→ '770101001'" in text
    assert Counterparty.objects.filter(name="ООО Поставщик 0").exists()
    assert ExchangeRun.objects.count() == 1  # only the real run

    out = io.StringIO()
    call_command("sync", "run", "bp", "--dry-run", "--json", stdout=out)
    summary = json.loads(out.getvalue())[0]
    assert summary["dry_run"] is True and summary["totals"]["updated"] == 1
    change = summary["rules"][1]["changes"][0]
    assert change["action"] == "update" and change["diff"]["name"] == ["ООО Поставщик 0", "ООО Поставщик Ноль"]


def test_bad_records_are_refused_with_the_field_and_value(
    fake: FakeOneC, connection: Connection, task: SyncTask
) -> None:
    seed(fake)
    bad = party(fake, "ООО Кривой ИНН", "7707083890")
    twin_inn = make_inn10(RNG)
    twins = [party(fake, "ООО Двойник А", twin_inn), party(fake, "ООО Двойник Б", twin_inn)]
    result = sync(connection, task)
    assert result.status == RunStatus.SUCCESS
    assert result.rules[1].refused == 2 and result.rules[1].created == 6
    event = ExchangeEvent.objects.get(external_id=bad["Ref_Key"])
    assert event.level == "error" and event.field == "ИНН" and event.value.strip() == "7707083890"
    assert "check digit" in event.message
    twin = ExchangeEvent.objects.get(object_repr__startswith="ООО Двойник")
    assert twin.field == "ИНН/КПП" and "has the same ИНН/КПП" in twin.message
    assert {twin.external_id, twin.message.split("(")[1].split(")")[0]} == {t["Ref_Key"] for t in twins}
    run = ExchangeRun.objects.get(pk=result.run_id)
    assert run.failed == 2 and run.status == RunStatus.SUCCESS


def test_existing_counterparty_is_linked_by_inn_kpp(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    mine = CounterpartyFactory(name="Наш клиент", comment="важный")
    item = party(fake, "ООО Клиент из 1С", mine.inn, КПП=mine.kpp)
    result = sync(connection, task)
    assert result.rules[1].updated == 1 and result.rules[1].created == 0
    mine.refresh_from_db()
    assert mine.name == "ООО Клиент из 1С" and mine.comment == "важный"
    assert ExternalRef.objects.get(external_id=item["Ref_Key"]).object_id == mine.pk


def test_update_only_task_skips_new_objects(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    seed(fake)
    SyncTask.objects.filter(pk=task.pk).update(create_allowed=False)
    result = sync(connection, task)
    assert result.totals()["created"] == 0 and result.rules[1].skipped == 5
    assert Counterparty.objects.count() == 0


def parties_only(connection: Connection, page_size: int = 2, **options: Any) -> SyncTask:
    rule = MappingRule.objects.get(connection=connection, entity_set=PARTIES)
    return save_task(connection=connection, name="parties", rules=[rule], options={"page_size": page_size, **options})


@pytest.mark.parametrize("read", ["paged", "by key"])
def test_resume_after_a_failure_mid_run(
    fake: FakeOneC, connection: Connection, task: SyncTask, read: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if read == "paged":  # as a two-way rule or a full resync resumes: at the checkpoint's offset
        monkeypatch.setattr(incremental, "applies", lambda syncer, rule: False)
    parties = [party(fake, f"ООО Фирма {i}") for i in range(5)]
    small = parties_only(connection)
    fake.fail("drop", times=10, after=2, path_contains=PARTIES)  # $count and the first page pass
    with pytest.raises(CommandError, match="dropped the connection"):
        call_command("sync", "run", "bp", "--task=parties", stdout=io.StringIO())
    small.refresh_from_db()
    failed_run = ExchangeRun.objects.get(pk=small.last_run.pk)
    assert failed_run.status == RunStatus.FAILED and failed_run.created == 2
    assert small.checkpoint["skip"] == 2
    assert ExchangeEvent.objects.filter(run=failed_run, level="error", message__contains="dropped").exists()
    assert Counterparty.objects.count() == 2

    fake.faults.clear()
    applied = set(ExternalRef.objects.values_list("external_id", flat=True))
    before = len(fake.requests)
    result = sync(connection, small)
    assert result.status == RunStatus.SUCCESS and result.resumed_from["skip"] == 2
    assert result.rules[0].created == 3 and Counterparty.objects.count() == 5
    reads = [r for r in fake.requests[before:] if r.path.endswith(PARTIES)]
    if read == "paged":
        assert reads[0].query["$skip"] == "2"
    else:  # keys and versions of all five, then in full only the three the failed run did not apply
        assert reads[0].query["$select"] == "Ref_Key,DataVersion" and "$skip" not in reads[0].query
        assert len(reads) == 2 and "$top" not in reads[1].query
        wanted = {p["Ref_Key"] for p in parties} - applied
        assert len(wanted) == 3 and set(re.findall(r"guid'([^']+)'", reads[1].query["$filter"])) == wanted
    small.refresh_from_db()
    assert small.checkpoint == {}


def test_resume_after_a_crash_and_a_stale_running_run(fake: FakeOneC, connection: Connection, task: SyncTask) -> None:
    for i in range(5):
        party(fake, f"ООО Фирма {i}")
    small = parties_only(connection)

    def crash(outcome: Any, offset: int) -> None:
        raise KeyboardInterrupt  # the process is killed after the first page is committed

    with pytest.raises(KeyboardInterrupt):
        sync(connection, small, on_page=crash)
    run = ExchangeRun.objects.get()
    assert run.status == RunStatus.RUNNING  # a killed process does not close its run
    with pytest.raises(SyncBusy):
        sync(connection, small)
    ExchangeRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(hours=1))
    ExchangeEvent.objects.filter(run=run).update(created_at=timezone.now() - timedelta(hours=1))
    result = sync(connection, small)
    assert result.status == RunStatus.SUCCESS and result.resumed_from["skip"] == 2
    assert Counterparty.objects.count() == 5
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "Interrupted" in run.message


def test_a_run_queued_but_not_taken_by_the_worker_says_so(
    fake: FakeOneC, connection: Connection, task: SyncTask
) -> None:
    queued = ExchangeRun.objects.create(connection=connection, route=Route.ODATA, status=RunStatus.QUEUED)
    with pytest.raises(SyncBusy, match=rf"Run #{queued.pk} of this connection is queued .*sdelka run_huey"):
        sync(connection, task)
    with pytest.raises(ValidationError, match="sdelka run_huey"):
        enqueue_sync(task=task)
    ExchangeRun.objects.filter(pk=queued.pk).update(status=RunStatus.RUNNING)
    with pytest.raises(SyncBusy, match=rf"Run #{queued.pk} of this connection is still going\."):
        sync(connection, task)


@pytest.mark.parametrize("mode", ["500", "503", "timeout", "drop", "malformed", "slow"])
def test_a_passing_fault_is_retried_and_the_run_succeeds(
    fake: FakeOneC, connection: Connection, task: SyncTask, mode: str
) -> None:
    fake.hang_seconds = 2
    seed(fake)
    fake.fail(mode, path_contains=PARTIES, after=1)
    result = sync(connection, task, client=client_for(connection, sleep=lambda s: None, timeout=1))
    assert result.status == RunStatus.SUCCESS, result.message
    assert Counterparty.objects.count() == 5
    run = ExchangeRun.objects.get(pk=result.run_id)
    if mode != "slow":
        assert run.events.filter(object_repr="request", level="warning").exists()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("500", "Внутренняя ошибка сервера"),
        ("503", "HTTP 503"),
        ("timeout", "did not answer within"),
        ("drop", "dropped the connection"),
        ("malformed", "not valid JSON"),
    ],
)
def test_a_lasting_fault_fails_the_run_with_1c_message(
    fake: FakeOneC, connection: Connection, task: SyncTask, mode: str, expected: str
) -> None:
    fake.hang_seconds = 1
    seed(fake)
    fake.fail(mode, times=100, path_contains=PARTIES, after=1)
    result = sync(connection, task, client=client_for(connection, sleep=lambda s: None, timeout=0.5, retries=1))
    assert result.status == RunStatus.FAILED and expected in result.message
    run = ExchangeRun.objects.get(pk=result.run_id)
    assert run.status == RunStatus.FAILED and expected in run.message
    assert run.events.filter(level="error", message__contains=expected).exists()
    assert [r.error for r in result.rules][1] and len(result.rules) == 2  # the task stops at a rule error
    fake.faults.clear()
    again = sync(connection, task)
    assert again.status == RunStatus.SUCCESS and Counterparty.objects.count() == 5


def test_on_rule_error_go_on_runs_the_next_rule_but_fails_the_run(
    fake: FakeOneC, connection: Connection, task: SyncTask
) -> None:
    seed(fake)
    SyncTask.objects.filter(pk=task.pk).update(on_rule_error="go_on")
    fake.fail("500", times=100, path_contains=PARTIES, message="Нет прав на чтение Контрагенты")
    result = sync(connection, task)
    assert result.status == RunStatus.FAILED and "Нет прав на чтение Контрагенты" in result.message
    assert [bool(r.error) for r in result.rules] == [False, True, False, False, False, False]
    assert Product.objects.count() == 2
    assert SyncTask.objects.get(pk=task.pk).checkpoint["rule"] == result_rules(task)[1].pk
    with pytest.raises(CommandError, match="Нет прав"):
        call_command("sync", "run", "bp", stdout=io.StringIO())  # resumes at the failed rule, fails again
    fake.faults.clear()
    final = sync(connection, task)
    assert final.status == RunStatus.SUCCESS and [r.name for r in final.rules][:2] == [
        "БП: контрагенты",
        "БП: номенклатура",
    ]
    assert Counterparty.objects.count() == 5


def result_rules(task: SyncTask) -> list[MappingRule]:
    return task.ordered_rules()


def test_sync_command_summary_and_errors(fake: FakeOneC, connection: Connection) -> None:
    out = io.StringIO()
    with pytest.raises(CommandError, match="no tasks"):
        call_command("sync", "run", "bp", stdout=out)
    call_command("sync", "preset", "bp", "bp30", stdout=out)
    assert "БП 3.0: справочники" in out.getvalue()
    seed(fake)
    out = io.StringIO()
    call_command("sync", "run", "bp", "--task=БП 3.0: справочники", stdout=out)
    assert "succes" in out.getvalue() and "created 5" in out.getvalue()
    with pytest.raises(CommandError, match="No active task"):
        call_command("sync", "run", "bp", "--task=nope")
    out = io.StringIO()
    call_command("sync", "tasks", "bp", stdout=out)
    assert "1. БП: единицы измерения: unit ← Catalog_КлассификаторЕдиницИзмерения" in out.getvalue()
    assert Unit.objects.filter(okei="166").exists()


def test_ut11_preset_end_to_end() -> None:
    with serve(FakeOneC("ut11")) as ut:
        connection = create_odata_connection(name="ut", url=ut.base_url, login=ut.login, password=ut.password)
        report = check_connection(connection=connection)
        assert report.ok and report.configuration is not None and report.configuration.code == "ut11"
        task = load_preset(connection=connection, preset="ut11")
        pack = ut.add("Catalog_УпаковкиЕдиницыИзмерения", Code="166", Description="кг")
        inn12 = make_inn12(RNG)
        ut.add(PARTIES, Description="ИП Петров", ИНН=inn12, ЮрФизЛицо="ИндивидуальныйПредприниматель")
        inn10 = make_inn10(RNG)
        ut.add(PARTIES, Description="ООО Север", ИНН=inn10, КПП=inn10[:4] + "01001", ЮрФизЛицо="ЮрЛицо")
        ut.add(GOODS, Description="Сахар", ЕдиницаИзмерения_Key=pack["Ref_Key"])
        result = sync(connection, task)
    assert result.status == RunStatus.SUCCESS, result.message
    assert Counterparty.objects.get(name="ИП Петров").kind == CounterpartyKind.ENTREPRENEUR
    assert Counterparty.objects.get(name="ООО Север").kind == CounterpartyKind.LEGAL
    assert Product.objects.get(name="Сахар").unit.okei == "166"
