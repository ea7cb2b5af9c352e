"""Two-way rules against the fake 1C: per-field ownership, the conflict queue ("ask"), deciding a conflict,
and the dry run listing the conflicts it would raise."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from sdelka.exchange.conflicts import resolve_conflict
from sdelka.exchange.models import Conflict, ConflictStatus, Connection, ExternalRef, RunStatus
from sdelka.exchange.odata.models import SyncTask
from sdelka.exchange.odata.services import check_connection, client_for, create_odata_connection, save_rule, save_task
from sdelka.exchange.odata.sync import run_task
from sdelka.parties.models import Counterparty
from tests.factories import CounterpartyFactory, UserFactory
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("odata_settings")]
__all__ = ["fake_bp30", "odata_settings"]
PARTIES = "Catalog_Контрагенты"


def make_task(fake: FakeOneC, **ownership: str) -> SyncTask:
    connection = create_odata_connection(name="bp", url=fake.base_url, login=fake.login, password=fake.password)
    assert check_connection(connection=connection).ok
    pairs = [
        ("name", "Description"),
        ("full_name", "НаименованиеПолное"),
        ("inn", "ИНН"),
        ("kpp", "КПП"),
        ("comment", "ДополнительнаяИнформация"),
    ]
    rule = save_rule(
        connection=connection,
        name="Контрагенты в обе стороны",
        entity="counterparty",
        entity_set=PARTIES,
        direction="both",
        fields=[{"sdelka": name, "onec": onec, "ownership": ownership.get(name, "ask")} for name, onec in pairs],
    )
    return save_task(connection=connection, name="both", rules=[rule])


def sync(task: SyncTask, **kwargs: Any) -> Any:
    connection = Connection.objects.get(pk=task.connection_id)
    result = run_task(connection=connection, task=task, client=client_for(connection, sleep=lambda s: None), **kwargs)
    assert result.status == RunStatus.SUCCESS, result.message
    return result


def patches(fake: FakeOneC) -> list[Any]:
    return [r for r in fake.requests if r.method == "PATCH"]


def add_party(fake: FakeOneC) -> dict[str, Any]:
    return fake.add(
        PARTIES, Description="ООО Ромашка", ИНН="7707083893", КПП="773601001", ДополнительнаяИнформация="старый"
    )


def both_change_the_comment(fake: FakeOneC) -> tuple[SyncTask, dict[str, Any], Counterparty]:
    """A linked counterparty whose comment (owner "ask") both 1C and Sdelka then change."""
    task = make_task(fake)
    entity = add_party(fake)
    sync(task)
    party = Counterparty.objects.get()
    fake.change(PARTIES, entity["Ref_Key"], ДополнительнаяИнформация="из 1С")
    edit_in_sdelka(party, comment="из Сделки")
    return task, entity, party


def edit_in_sdelka(counterparty: Counterparty, **values: Any) -> None:
    for name, value in values.items():
        setattr(counterparty, name, value)
    counterparty.save()


def test_each_side_gets_the_other_sides_change(fake: FakeOneC) -> None:
    task = make_task(fake)
    entity = add_party(fake)
    assert sync(task).totals()["created"] == 1
    party = Counterparty.objects.get()
    ref = ExternalRef.objects.get()
    assert (ref.synced or {})["comment"] == "старый" and (ref.synced or {})["name"] == "ООО Ромашка"

    fake.change(PARTIES, entity["Ref_Key"], Description="ООО Ромашка-1С")
    edit_in_sdelka(party, comment="новый из Сделки")
    fake.requests.clear()
    result = sync(task)
    party.refresh_from_db()
    assert party.name == "ООО Ромашка-1С"  # 1C's change came in
    assert fake.data[PARTIES][entity["Ref_Key"]]["ДополнительнаяИнформация"] == "новый из Сделки"  # ours went out
    assert len(patches(fake)) == 1 and set(json.loads(patches(fake)[0].body)) == {"ДополнительнаяИнформация"}
    assert result.totals()["conflicts"] == 0 and not Conflict.objects.exists()
    ref.refresh_from_db()
    assert (ref.synced or {})["comment"] == "новый из Сделки" and (ref.synced or {})["name"] == "ООО Ромашка-1С"
    assert ref.version == fake.data[PARTIES][entity["Ref_Key"]]["DataVersion"]

    fake.requests.clear()
    quiet = sync(task)
    assert quiet.totals()["unchanged"] == 1 and patches(fake) == []


def test_both_changed_with_ask_raises_a_conflict_and_overwrites_nothing(fake: FakeOneC) -> None:
    task, entity, party = both_change_the_comment(fake)

    preview = sync(task, dry_run=True)
    change = preview.rules[0].changes[0]
    assert change.conflicts == {"comment": ("из Сделки", "из 1С")}
    assert preview.totals()["conflicts"] == 1 and not Conflict.objects.exists()

    fake.requests.clear()
    result = sync(task)
    assert result.totals()["conflicts"] == 1 and patches(fake) == []
    conflict = Conflict.objects.get()
    assert (conflict.field, conflict.onec_field) == ("comment", "ДополнительнаяИнформация")
    assert (conflict.our_value, conflict.onec_value, conflict.base_value) == ("из Сделки", "из 1С", "старый")
    assert conflict.status == ConflictStatus.OPEN and conflict.our_changed_at and conflict.onec_changed_at
    party.refresh_from_db()
    assert party.comment == "из Сделки" and fake.data[PARTIES][entity["Ref_Key"]]["ДополнительнаяИнформация"] == "из 1С"

    sync(task)  # still waiting: no second conflict, still nothing overwritten
    assert Conflict.objects.count() == 1 and patches(fake) == []
    party.refresh_from_db()
    assert party.comment == "из Сделки"


def test_keep_sdelkas_value_goes_to_1c_on_the_next_run(fake: FakeOneC) -> None:
    task, entity, _party = both_change_the_comment(fake)
    sync(task)
    user = UserFactory(role="admin")
    conflict = resolve_conflict(conflict=Conflict.objects.get(), resolution="sdelka", user=user)
    assert conflict.status == ConflictStatus.RESOLVED and conflict.resolved_by == user and conflict.resolved_at
    with pytest.raises(ValidationError):
        resolve_conflict(conflict=conflict, resolution="onec", user=user)

    fake.requests.clear()
    sync(task)
    assert fake.data[PARTIES][entity["Ref_Key"]]["ДополнительнаяИнформация"] == "из Сделки"
    assert len(patches(fake)) == 1 and Conflict.objects.filter(status="open").count() == 0


def test_take_1cs_value_is_applied_at_once(fake: FakeOneC) -> None:
    task, _entity, party = both_change_the_comment(fake)
    sync(task)
    resolve_conflict(conflict=Conflict.objects.get(), resolution="onec", user=None)
    party.refresh_from_db()
    assert party.comment == "из 1С"
    fake.requests.clear()
    result = sync(task)
    assert patches(fake) == [] and result.totals()["unchanged"] == 1 and result.totals()["conflicts"] == 0


def test_owners_win_whatever_the_other_side_did(fake: FakeOneC) -> None:
    task = make_task(fake, name="onec", comment="sdelka")
    entity = add_party(fake)
    sync(task)
    party = Counterparty.objects.get()
    edit_in_sdelka(party, name="ООО Переименовано в Сделке")  # 1C owns the name: reverted
    fake.change(
        PARTIES, entity["Ref_Key"], ДополнительнаяИнформация="правка в 1С"
    )  # Sdelka owns the comment: overwritten
    sync(task)
    party.refresh_from_db()
    assert party.name == "ООО Ромашка" and party.comment == "старый"
    assert fake.data[PARTIES][entity["Ref_Key"]]["ДополнительнаяИнформация"] == "старый"
    assert fake.data[PARTIES][entity["Ref_Key"]]["Description"] == "ООО Ромашка"


def test_newest_wins_compares_the_change_times(fake: FakeOneC) -> None:
    task = make_task(fake, comment="newest", full_name="newest")
    entity = add_party(fake)
    sync(task)
    party = Counterparty.objects.get()
    # The last sync was an hour ago; Sdelka's edit came 50 minutes ago, before the middle of that hour: 1C wins.
    ExternalRef.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    fake.change(PARTIES, entity["Ref_Key"], ДополнительнаяИнформация="из 1С", НаименованиеПолное="полное из 1С")
    Counterparty.objects.filter(pk=party.pk).update(
        comment="из Сделки", full_name="полное из Сделки", updated_at=timezone.now() - timedelta(minutes=50)
    )
    sync(task)
    party.refresh_from_db()
    assert party.comment == "из 1С" and party.full_name == "полное из 1С" and not Conflict.objects.exists()

    ExternalRef.objects.update(updated_at=timezone.now() - timedelta(hours=1))
    fake.change(PARTIES, entity["Ref_Key"], ДополнительнаяИнформация="снова из 1С")
    edit_in_sdelka(party, comment="свежая правка в Сделке")  # just now: after the middle of the window
    sync(task)
    party.refresh_from_db()
    assert party.comment == "свежая правка в Сделке"
    assert fake.data[PARTIES][entity["Ref_Key"]]["ДополнительнаяИнформация"] == "свежая правка в Сделке"


def test_new_sdelka_objects_of_a_two_way_rule_are_created_in_1c(fake: FakeOneC) -> None:
    task = make_task(fake)
    CounterpartyFactory(name="ООО Новая", inn="7736207543", kpp="773601001")
    result = sync(task)
    assert result.totals()["created"] == 1
    stored = next(iter(fake.data[PARTIES].values()))
    assert stored["Description"] == "ООО Новая"
    ref = ExternalRef.objects.get()
    assert (ref.synced or {})["name"] == "ООО Новая"
    fake.requests.clear()
    assert sync(task).totals()["unchanged"] == 1 and patches(fake) == []
