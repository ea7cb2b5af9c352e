"""An integrator in a real browser: the connections, a run's journal filtered to errors, a raw file downloaded,
a running run's progress bar that updates itself and stops when the run ends, and a mapping rule refused on
save with the error next to the 1C field at fault."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from sdelka.accounts.models import Role
from sdelka.exchange.models import (
    Connection,
    ConnectionKind,
    EventLevel,
    ExchangeEvent,
    ExchangeFile,
    ExchangeRun,
    Route,
    RunStatus,
    Trigger,
)
from sdelka.exchange.odata.metadata import parse_metadata
from sdelka.exchange.odata.models import MappingRule, ODataMetadata
from sdelka.exchange.odata.services import load_preset
from sdelka.exchange.storage import RunFolder, run_folder_name
from tests.factories import UserFactory
from tests.fake_odata import FakeOneC

from .conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

RAW_NAME = "Выгрузка товаров.xml"
RAW_BODY = "<?xml version='1.0' encoding='UTF-8'?><КоммерческаяИнформация/>".encode()


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def site_run(connection: Connection) -> ExchangeRun:
    """A finished catalogue upload from 1C with its raw file and a journal with a few refusals."""
    run = ExchangeRun.objects.create(
        connection=connection, route=Route.CATALOG, status=RunStatus.SUCCESS, total=1200, done=1200,
        created=1150, updated=35, unchanged=12, failed=3,
    )  # fmt: skip
    run.folder = run_folder_name(connection.pk, run.pk)
    ExchangeRun.objects.filter(pk=run.pk).update(
        folder=run.folder, finished_at=run.started_at + timedelta(minutes=2, seconds=14)
    )
    RunFolder(run.folder).save(RAW_NAME, ContentFile(RAW_BODY))
    ExchangeFile.objects.create(run=run, name=RAW_NAME, size=len(RAW_BODY), import_status="success")
    events = [
        ExchangeEvent(run=run, connection=connection, message=f"Товар записан: Кабель ВВГнг 3×{n}", object_repr="товар")
        for n in range(1, 40)
    ]
    for n, inn in enumerate(("7707083890", "500100732", "77070838931")):
        events.append(
            ExchangeEvent(
                run=run,
                connection=connection,
                level=EventLevel.ERROR,
                message=f"ИНН {inn} не проходит проверку: контрагент не записан",
                external_id=f"bd72d8f9-55bc-11d9-848a-00112f4352{n:02d}",
                object_repr=f"ООО «Поставщик {n + 1}»",
                field="inn",
                value=inn,
            )
        )
    events.append(ExchangeEvent(run=run, connection=connection, level=EventLevel.WARNING, message="Нет единицы: шт"))
    ExchangeEvent.objects.bulk_create(events)
    return run


def test_an_integrator_reads_the_exchange(
    page: Any, live_server: Any, shot: Any, settings: Any, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    UserFactory(username="integrator", first_name="Олег", last_name="Сидоров", role=Role.INTEGRATOR)
    site = Connection.objects.create(name="УТ 11: центральный офис", kind=ConnectionKind.SITE, login="ut-office")
    bank = Connection.objects.create(name="Сбербанк: выписки", kind=ConnectionKind.BANK)
    ExchangeRun.objects.create(connection=bank, route=Route.BANK, status=RunStatus.SUCCESS, trigger=Trigger.MANUAL)
    run = site_run(site)
    base = live_server.url

    log_in(page, base, "integrator")
    page.click("nav.mainnav a[href='/exchange/']")
    expect(page.locator(".exchange-connections")).to_contain_text("УТ 11: центральный офис")
    shot(page, "exchange-connections")

    page.click(f"a[href='/exchange/runs/{run.pk}/']")
    expect(page.locator("#count-error")).to_have_text("3")
    page.select_option("#j-level", "error")
    page.click("#journal form.filters button[type=submit]")
    rows = page.locator("#journal tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("ИНН 7707083890 не проходит проверку")
    expect(page.locator("#journal")).not_to_contain_text("Кабель")
    shot(page, "exchange-run")

    with page.expect_download() as download_info:
        page.click(f".files a:has-text('{RAW_NAME}')")
    download = download_info.value
    assert download.suggested_filename == RAW_NAME
    assert Path(download.path()).read_bytes() == RAW_BODY


def test_a_running_run_shows_its_progress_and_new_journal_lines_until_it_ends(
    page: Any, live_server: Any, shot: Any
) -> None:
    UserFactory(username="integrator", role=Role.INTEGRATOR)
    connection = Connection.objects.create(
        name="БП 3.0", kind=ConnectionKind.ODATA, url="http://1c/odata/standard.odata"
    )
    run = ExchangeRun.objects.create(
        connection=connection, route=Route.ODATA, status=RunStatus.RUNNING, trigger=Trigger.SCHEDULE, total=4000,
        done=1000, created=990, failed=2,
    )  # fmt: skip

    def write(message: str, level: str = EventLevel.INFO) -> None:
        ExchangeEvent.objects.create(run=run, connection=connection, level=level, message=message)

    write("Контрагент записан: ООО «Ромашка»")
    base = live_server.url

    log_in(page, base, "integrator")
    page.goto(f"{base}/exchange/runs/{run.pk}/")
    rows = page.locator("#journal-rows tr")
    expect(page.locator("#run-bar")).to_have_attribute("value", "1000")
    expect(rows).to_have_count(1)

    ExchangeRun.objects.filter(pk=run.pk).update(done=3000, created=2990)
    write("Контрагент записан: ООО «Вектор»")
    write("ИНН 500100732 не проходит проверку", EventLevel.ERROR)
    expect(page.locator("#run-bar")).to_have_attribute("value", "3000")
    expect(rows).to_have_count(3)  # appended by the progress poll, the page not reloaded
    expect(rows.last).to_contain_text("ИНН 500100732 не проходит проверку")
    expect(page.locator("#count-error")).to_have_text("0")  # counted once the run ends
    shot(page, "exchange-run-progress")

    write("Синхронизация завершена")
    ExchangeRun.objects.filter(pk=run.pk).update(
        done=4000, created=3990, status=RunStatus.SUCCESS, finished_at=timezone.now()
    )
    expect(page.locator("#run-progress .status")).to_have_class("status run-success")
    expect(rows).to_have_count(4)
    expect(rows.last).to_contain_text("Синхронизация завершена")
    expect(page.locator("#count-error")).to_have_text("1")
    expect(page.locator("#run-bar")).to_have_count(0)
    expect(page.locator("#run-progress")).not_to_have_attribute("hx-trigger", re.compile("every"))
    expect(rows.filter(has_text="ООО «Вектор»")).to_have_count(1)  # every line once


def test_an_integrator_edits_a_rule_and_sees_the_error_on_the_field(page: Any, live_server: Any, shot: Any) -> None:
    UserFactory(username="integrator", role=Role.INTEGRATOR)
    connection = Connection.objects.create(
        name="БП 3.0", kind=ConnectionKind.ODATA, url="http://1c/odata/standard.odata"
    )
    data = parse_metadata(io.BytesIO(FakeOneC("bp30").metadata))
    ODataMetadata.objects.create(connection=connection, sha1="0" * 40, configuration="bp30", data=data)
    load_preset(connection=connection, preset="bp30")
    rule = MappingRule.objects.get(name="БП: контрагенты")
    inn_row = next(i for i, pair in enumerate(rule.fields) if pair["sdelka"] == "inn")
    base = live_server.url

    log_in(page, base, "integrator")
    page.goto(f"{base}/exchange/connections/{connection.pk}/")
    page.click(f"a[href='/exchange/connections/{connection.pk}/rules/']")
    shot(page, "exchange-rules")
    page.click(f"a[href='/exchange/rules/{rule.pk}/']")
    expect(page.locator(f"#id_pairs-{inn_row}-onec")).to_have_value("ИНН")
    page.select_option(f"#id_pairs-{inn_row}-onec", "DeletionMark")
    page.click("#rule-form button[type=submit]:not([name])")

    error = page.locator(f"#id_pairs-{inn_row}-onec_error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("DeletionMark")
    expect(page.locator(f"#id_pairs-{inn_row}-onec")).to_have_value("DeletionMark")  # what was chosen is kept
    shot(page, "exchange-rule-error")
    rule.refresh_from_db()
    assert rule.fields[inn_row]["onec"] == "ИНН"

    page.select_option(f"#id_pairs-{inn_row}-onec", "ИНН")
    page.click("#rule-form button[type=submit]:not([name])")
    page.wait_for_url(f"{base}/exchange/connections/{connection.pk}/rules/")
