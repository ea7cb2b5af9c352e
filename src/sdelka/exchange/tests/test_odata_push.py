"""Writing to 1C (rules of direction "to 1C") against the fake: POST/PATCH of changed objects only, re-read and
compare (1C's silent truncation is an error), 1C's refusal text, dry run without a single write."""

from __future__ import annotations

from typing import Any

import pytest

from sdelka.exchange.models import Connection, ExchangeEvent, ExchangeRun, ExternalRef, RunStatus
from sdelka.exchange.odata.models import SyncTask
from sdelka.exchange.odata.services import check_connection, client_for, create_odata_connection, save_rule, save_task
from sdelka.exchange.odata.sync import run_task
from sdelka.parties.models import Counterparty, CounterpartyKind
from tests.factories import CounterpartyFactory, UserFactory
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("odata_settings")]
__all__ = ["fake_bp30", "odata_settings"]
PARTIES = "Catalog_Контрагенты"


@pytest.fixture
def task(fake: FakeOneC) -> SyncTask:
    connection = create_odata_connection(name="bp", url=fake.base_url, login=fake.login, password=fake.password)
    assert check_connection(connection=connection).ok
    rule = save_rule(
        connection=connection,
        name="В 1С: контрагенты",
        entity="counterparty",
        entity_set=PARTIES,
        direction="out",
        fields=[
            {"sdelka": "name", "onec": "Description"},
            {"sdelka": "full_name", "onec": "НаименованиеПолное"},
            {"sdelka": "inn", "onec": "ИНН"},
            {"sdelka": "kpp", "onec": "КПП"},
            {
                "sdelka": "kind",
                "onec": "ЮридическоеФизическоеЛицо",
                "map": {"ЮридическоеЛицо": "legal", "ФизическоеЛицо": "person"},
            },
            {"sdelka": "is_active", "onec": "DeletionMark", "invert": True},
        ],
    )
    return save_task(connection=connection, name="push", rules=[rule])


def push(task: SyncTask, **kwargs: Any) -> Any:
    connection = Connection.objects.get(pk=task.connection_id)
    return run_task(connection=connection, task=task, client=client_for(connection, sleep=lambda s: None), **kwargs)


def writes(fake: FakeOneC) -> list[str]:
    return [r.method for r in fake.requests if r.method in ("POST", "PATCH")]


def test_new_and_changed_objects_are_written_and_checked(fake: FakeOneC, task: SyncTask) -> None:
    owner = UserFactory()
    first = CounterpartyFactory(owner=owner, name="ООО Первый")
    CounterpartyFactory(owner=owner, name="ООО Второй", is_active=False)
    result = push(task)
    assert result.status == RunStatus.SUCCESS, result.message
    assert result.totals()["created"] == 2 and writes(fake) == ["POST", "POST"]
    stored = {e["Description"]: e for e in fake.data[PARTIES].values()}
    assert stored["ООО Первый"]["ИНН"] == first.inn and stored["ООО Первый"]["КПП"] == first.kpp
    assert stored["ООО Первый"]["ЮридическоеФизическоеЛицо"] == "ЮридическоеЛицо"
    assert stored["ООО Второй"]["DeletionMark"] is True
    ref = ExternalRef.objects.get(object_id=first.pk)
    assert ref.external_id == stored["ООО Первый"]["Ref_Key"]
    assert ref.version == stored["ООО Первый"]["DataVersion"]

    fake.requests.clear()
    again = push(task)
    assert again.totals()["unchanged"] == 2 and writes(fake) == []

    Counterparty.objects.filter(pk=first.pk).update(name="ООО Первый и Ко", kind=CounterpartyKind.LEGAL)
    third = push(task)
    assert third.totals()["updated"] == 1 and writes(fake) == ["PATCH"]
    patch = next(r for r in fake.requests if r.method == "PATCH")
    assert ref.external_id in patch.path
    assert fake.data[PARTIES][ref.external_id]["Description"] == "ООО Первый и Ко"
    run = ExchangeRun.objects.get(pk=third.run_id)
    assert run.updated == 1 and run.unchanged == 1


def test_silent_truncation_is_an_error_not_a_success(fake: FakeOneC, task: SyncTask) -> None:
    long_name = "ООО " + "Очень" * 30
    CounterpartyFactory(name=long_name[:255])
    result = push(task)
    assert result.totals()["refused"] == 1 and result.totals()["created"] == 0
    event = ExchangeEvent.objects.get(level="error")
    assert event.field == "Description" and "1C stored" in event.message
    assert len(event.value) == 100  # what 1C kept
    ref = ExternalRef.objects.get()
    assert ref.content_hash == ""  # sent again next time, and reported again
    fake.requests.clear()
    assert push(task).totals()["refused"] == 1 and writes(fake) == ["PATCH"]


def test_a_refused_write_carries_1c_text_and_is_not_retried(fake: FakeOneC, task: SyncTask) -> None:
    CounterpartyFactory(name="ООО Отказ")
    fake.fail("refuse", method="POST", message="Не удалось записать: нет прав на изменение")
    result = push(task)
    assert result.totals()["refused"] == 1 and writes(fake) == ["POST"]
    event = ExchangeEvent.objects.get(level="error", object_repr="ООО Отказ")
    assert "нет прав на изменение" in event.message
    assert not ExternalRef.objects.exists() and not fake.data[PARTIES]
    assert push(task).totals()["created"] == 1  # the next run completes


def test_dry_run_writes_nothing(fake: FakeOneC, task: SyncTask) -> None:
    CounterpartyFactory(name="ООО Проба")
    result = push(task, dry_run=True)
    change = result.rules[0].changes[0]
    assert change.action == "create" and change.diff["Description"] == (None, "ООО Проба")
    assert writes(fake) == [] and not ExternalRef.objects.exists() and not ExchangeRun.objects.exists()
