"""The exchange screens: who may see them, connections with their last run, runs with filters, the live
progress block, the journal paged by keyset with its filters, the raw files of a run, "run now"."""

from __future__ import annotations

from datetime import timedelta
from html import unescape
from typing import Any
from urllib.parse import unquote

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone, translation

from sdelka.accounts.models import Role, Team
from sdelka.exchange.models import (
    Connection,
    ConnectionKind,
    EventLevel,
    ExchangeEvent,
    ExchangeFile,
    ExchangeRun,
    Route,
    RunStatus,
)
from sdelka.exchange.odata.models import SyncTask
from sdelka.exchange.storage import RunFolder, run_folder_name
from sdelka.exchange.tests.clientbank_helpers import OUR_ACCOUNT, statement
from tests.factories import OrganisationBankAccountFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english() -> Any:
    with translation.override("en"):
        yield


@pytest.fixture
def integrator(db: None) -> Any:
    return UserFactory(username="integrator", role=Role.INTEGRATOR)


@pytest.fixture
def site(db: None) -> Connection:
    return Connection.objects.create(name="УТ центральный офис", kind=ConnectionKind.SITE, login="ut")


def make_run(connection: Connection, **kwargs: Any) -> ExchangeRun:
    kwargs.setdefault("route", Route.CATALOG)
    kwargs.setdefault("status", RunStatus.SUCCESS)
    run = ExchangeRun.objects.create(connection=connection, **kwargs)
    if run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        ExchangeRun.objects.filter(pk=run.pk).update(finished_at=run.started_at + timedelta(seconds=75))
        run.refresh_from_db()
    return run


def journal(run: ExchangeRun, count: int, **kwargs: Any) -> None:
    ExchangeEvent.objects.bulk_create(
        ExchangeEvent(run=run, connection=run.connection, message=f"line {i}", **kwargs) for i in range(count)
    )


@pytest.mark.parametrize("role", [Role.MANAGER, Role.HEAD, Role.DIRECTOR, Role.ACCOUNTANT])
def test_only_administrators_and_integrators_see_the_exchange(client: Any, site: Connection, role: str) -> None:
    run = make_run(site)
    client.force_login(UserFactory(role=role))
    for url in (
        reverse("web:exchange-connections"),
        reverse("web:exchange-connection", args=[site.pk]),
        reverse("web:exchange-runs"),
        reverse("web:exchange-run", args=[run.pk]),
    ):
        assert client.get(url).status_code == 403, url
    assert reverse("web:exchange-connections") not in client.get(reverse("web:dashboard")).content.decode()


def test_integrator_sees_the_exchange_in_the_menu(client: Any, integrator: Any) -> None:
    client.force_login(integrator)
    page = client.get(reverse("web:dashboard")).content.decode()
    assert reverse("web:exchange-connections") in page
    client.force_login(UserFactory(role=Role.ADMIN))
    assert client.get(reverse("web:exchange-connections")).status_code == 200


def test_connections_show_last_run_and_last_error_without_a_query_per_row(
    client: Any, integrator: Any, django_assert_max_num_queries: Any
) -> None:
    connections = [Connection.objects.create(name=f"База {i}", login=f"b{i}") for i in range(6)]
    for connection in connections:
        make_run(connection, status=RunStatus.SUCCESS)
        latest = make_run(connection, route=Route.SALE, status=RunStatus.FAILED, failed=2)
        ExchangeEvent.objects.create(connection=connection, run=latest, level=EventLevel.ERROR, message="Нет ИНН")
    ExchangeEvent.objects.create(connection=connections[0], level=EventLevel.ERROR, message="Неверный пароль")
    client.force_login(integrator)

    with django_assert_max_num_queries(8):
        response = client.get(reverse("web:exchange-connections"))

    rows = response.context["connections"]
    assert [c.last_run.route for c in rows] == [Route.SALE] * 6
    assert rows[0].last_error_message == "Неверный пароль"
    assert rows[1].last_error_message == "Нет ИНН"
    assert "2 refused" in response.content.decode()


def test_runs_filtered_by_connection_status_and_errors(client: Any, integrator: Any, site: Connection) -> None:
    other = Connection.objects.create(name="Банк", kind=ConnectionKind.BANK)
    good = make_run(site)
    refused = make_run(site, failed=3, route=Route.SALE)
    failed = make_run(other, route=Route.BANK, status=RunStatus.FAILED)
    client.force_login(integrator)

    def shown(**params: Any) -> list[int]:
        return [run.pk for run in client.get(reverse("web:exchange-runs"), params).context["page"].items]

    assert shown() == [failed.pk, refused.pk, good.pk]
    assert shown(connection=site.pk) == [refused.pk, good.pk]
    assert shown(errors="1") == [failed.pk, refused.pk]
    assert shown(status="failed", route="bank") == [failed.pk]
    assert shown(status="nonsense") == [failed.pk, refused.pk, good.pk]


def test_runs_are_paged_with_few_queries(
    client: Any, integrator: Any, site: Connection, django_assert_max_num_queries: Any
) -> None:
    for _ in range(60):
        make_run(site)
    client.force_login(integrator)
    with django_assert_max_num_queries(8):
        first = client.get(reverse("web:exchange-runs"))
    assert len(first.context["page"].items) == 50 and first.context["page"].has_next
    assert len(client.get(reverse("web:exchange-runs"), {"page": 2}).context["page"].items) == 10


def poll_url(html: str) -> str:
    """The URL the progress block polls, as htmx reads it from the page or the last poll's answer."""
    block = html.split('id="run-progress"')[1].split(">")[0]
    return unescape(block.split('hx-get="')[1].split('"')[0]) if "hx-get" in block else ""


def appended(html: str) -> list[str]:
    """The journal lines a poll's answer appends (out of band) to the table."""
    if 'hx-swap-oob="beforeend:#journal-rows"' not in html:
        return []
    rows = html.split('hx-swap-oob="beforeend:#journal-rows">')[1].split("</tbody>")[0]
    return [cell.split("<")[0] for cell in rows.split("<td>")[1:] if cell.startswith("line ") or "ИНН" in cell]


def test_running_run_polls_its_progress_and_stops_when_finished(client: Any, integrator: Any, site: Connection) -> None:
    run = make_run(site, status=RunStatus.RUNNING, done=250, total=1000)
    client.force_login(integrator)

    page = client.get(reverse("web:exchange-run", args=[run.pk])).content.decode()
    progress_url = reverse("web:exchange-run-progress", args=[run.pk])
    assert poll_url(page) == f"{progress_url}?after=0&shown=0"
    assert 'value="250"' in page and "25 %" in page
    assert "." not in page.split('class="duration">')[1].split("<")[0]  # whole seconds

    ExchangeRun.objects.filter(pk=run.pk).update(done=1000, created=990, failed=10)
    fragment = client.get(poll_url(page), HTTP_HX_REQUEST="true").content.decode()
    assert 'value="1000"' in fragment and poll_url(fragment) == poll_url(page)
    assert 'id="run-files"' not in fragment

    ExchangeRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS, finished_at=timezone.now())
    finished = client.get(poll_url(fragment), HTTP_HX_REQUEST="true")
    assert "HX-Refresh" not in finished  # the page stays where the reader is; what the run left is swapped in
    html = finished.content.decode()
    assert poll_url(html) == ""
    assert '<section id="run-files" class="panel" aria-labelledby="files-title" hx-swap-oob="true">' in html
    assert '<p id="level-counts" class="meta level-counts" hx-swap-oob="true">' in html
    assert (
        "hx-trigger"
        not in client.get(reverse("web:exchange-run", args=[run.pk]))
        .content.decode()
        .split('id="run-progress"')[1]
        .split(">")[0]
    )


def test_a_running_run_opens_on_its_newest_lines_and_the_poll_appends_new_ones(
    client: Any, integrator: Any, site: Connection, django_assert_max_num_queries: Any
) -> None:
    run = make_run(site, status=RunStatus.RUNNING)
    journal(run, 150)
    client.force_login(integrator)

    response = client.get(reverse("web:exchange-run", args=[run.pk]))
    events = response.context["events"]
    assert [events.items[0].message, events.items[-1].message] == ["line 50", "line 149"]
    assert events.has_previous and not events.has_next
    page = response.content.decode()
    assert f"after={events.last_id}&shown=100" in poll_url(page)
    from_start = client.get(reverse("web:exchange-run", args=[run.pk]), {"after": 0})
    start = from_start.context["events"]
    assert start.items[0].message == "line 0" and not start.has_previous and start.has_next
    assert poll_url(from_start.content.decode()) == reverse("web:exchange-run-progress", args=[run.pk])  # no tail
    assert ">Newest</a>" in from_start.content.decode()
    assert '?after=0">Start</a>' in page and ">Newest</a>" not in page

    ExchangeEvent.objects.bulk_create(
        ExchangeEvent(run=run, connection=site, message=f"line {i}", level=level)
        for i, level in ((150, EventLevel.INFO), (151, EventLevel.ERROR), (152, EventLevel.INFO))
    )
    with django_assert_max_num_queries(5):  # session, user, run, the newest line's id, the new lines
        first = client.get(poll_url(page), HTTP_HX_REQUEST="true").content.decode()
    assert appended(first) == ["line 150", "line 151", "line 152"]
    assert "shown=103" in poll_url(first)
    again = client.get(poll_url(first), HTTP_HX_REQUEST="true").content.decode()
    assert appended(again) == [] and poll_url(again) == poll_url(first)

    # A filtered page appends only what matches, and its cursor moves past the lines it skips.
    errors = client.get(reverse("web:exchange-run", args=[run.pk]), {"level": "error"}).content.decode()
    journal(run, 3)
    ExchangeEvent.objects.create(run=run, connection=site, level=EventLevel.ERROR, message="line 200")
    polled = client.get(poll_url(errors), HTTP_HX_REQUEST="true").content.decode()
    assert appended(polled) == ["line 200"] and "level=error" in poll_url(polled)

    ExchangeEvent.objects.create(run=run, connection=site, message="line 201")
    ExchangeRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS, finished_at=timezone.now())
    last = client.get(poll_url(again), HTTP_HX_REQUEST="true").content.decode()
    assert appended(last) == ["line 0", "line 1", "line 2", "line 200", "line 201"] and poll_url(last) == ""
    assert '<p id="journal-live" class="meta" hx-swap-oob="true"></p>' in last


def test_the_live_journal_stops_growing_and_links_onwards(
    client: Any, integrator: Any, site: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdelka.web.views import exchange

    monkeypatch.setattr(exchange, "LIVE_BATCH", 2)
    monkeypatch.setattr(exchange, "LIVE_ROWS_LIMIT", 5)
    run = make_run(site, status=RunStatus.RUNNING)
    journal(run, 1)
    client.force_login(integrator)
    page = client.get(reverse("web:exchange-run", args=[run.pk])).content.decode()
    journal(run, 6)

    first = client.get(poll_url(page), HTTP_HX_REQUEST="true").content.decode()
    second = client.get(poll_url(first), HTTP_HX_REQUEST="true").content.decode()

    assert (appended(first), appended(second)) == (["line 0", "line 1"], ["line 2", "line 3"])  # two a poll
    # The page holds five lines: enough. The progress polls on alone; a link leads to the lines after.
    assert poll_url(second) == reverse("web:exchange-run-progress", args=[run.pk])
    link = unescape(second.split('id="journal-live"')[1].split('href="')[1].split('"')[0])
    assert client.get(reverse("web:exchange-run", args=[run.pk]) + link).context["events"].items[0].message == "line 4"


def test_journal_is_paged_by_keyset_with_few_queries(
    client: Any, integrator: Any, site: Connection, django_assert_max_num_queries: Any
) -> None:
    run = make_run(site)
    journal(run, 250)
    client.force_login(integrator)
    url = reverse("web:exchange-run", args=[run.pk])

    with django_assert_max_num_queries(8):
        first = client.get(url).context["events"]
    assert [e.message for e in first.items[:2]] == ["line 0", "line 1"] and len(first.items) == 100
    assert first.has_next and not first.has_previous

    second = client.get(url, {"after": first.last_id}).context["events"]
    assert second.items[0].message == "line 100" and second.has_previous
    third = client.get(url, {"after": second.last_id}).context["events"]
    assert len(third.items) == 50 and not third.has_next
    back = client.get(url, {"before": third.first_id}).context["events"]
    assert [e.pk for e in back.items] == [e.pk for e in second.items]


def test_journal_filters(client: Any, integrator: Any, site: Connection) -> None:
    run = make_run(site)
    journal(run, 30)
    ExchangeEvent.objects.create(
        run=run, connection=site, level=EventLevel.ERROR, message="ИНН 7707083890 не проходит проверку",
        external_id="bd72d8f9-55bc-11d9-848a-00112f43529a", object_repr="ООО «Вектор»", field="inn",
    )  # fmt: skip
    ExchangeEvent.objects.create(run=run, connection=site, level=EventLevel.WARNING, message="Нет единицы")
    client.force_login(integrator)
    url = reverse("web:exchange-run", args=[run.pk])

    def shown(**params: Any) -> list[str]:
        return [event.message for event in client.get(url, params).context["events"].items]

    assert shown(level="error") == ["ИНН 7707083890 не проходит проверку"]
    assert shown(external_id="55bc-11d9") == ["ИНН 7707083890 не проходит проверку"]
    assert shown(object="вектор") == ["ИНН 7707083890 не проходит проверку"]
    assert shown(q="единиц") == ["Нет единицы"]
    assert shown(level="error", q="единиц") == []
    response = client.get(url, {"level": "error"})
    assert response.context["level_counts"] == [("warning", "Warning", 1), ("error", "Error", 1)]


def test_raw_file_downloads_with_its_cyrillic_name(
    client: Any, integrator: Any, site: Connection, settings: Any, tmp_path: Any
) -> None:
    settings.MEDIA_ROOT = str(tmp_path)
    run = make_run(site)
    run.folder = run_folder_name(site.pk, run.pk)
    run.save(update_fields=["folder"])
    RunFolder(run.folder).save("import_files/Выгрузка товаров.xml", ContentFile(b"<?xml version='1.0'?><x/>"))
    record = ExchangeFile.objects.create(run=run, name="import_files/Выгрузка товаров.xml", size=25)
    other_run = make_run(site)
    client.force_login(integrator)

    response = client.get(reverse("web:exchange-run-file", args=[run.pk, record.pk]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"<?xml version='1.0'?><x/>"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert unquote(disposition.split("filename*=utf-8''")[1]) == "Выгрузка товаров.xml"
    # Another run's id with this file's id: not found, whatever is on disk.
    assert client.get(reverse("web:exchange-run-file", args=[other_run.pk, record.pk])).status_code == 404
    ExchangeRun.objects.filter(pk=run.pk).update(files_removed=True)
    assert client.get(reverse("web:exchange-run-file", args=[run.pk, record.pk])).status_code == 404


def test_run_now_queues_the_task_and_refuses_while_a_run_goes(
    client: Any, integrator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdelka.exchange import tasks

    connection = Connection.objects.create(
        name="БП", kind=ConnectionKind.ODATA, url="http://1c/base/odata/standard.odata"
    )
    task = SyncTask.objects.create(connection=connection, name="Справочники")
    queued: list[tuple[int, str]] = []
    monkeypatch.setattr(tasks, "run_sync_task", lambda task_id, trigger, full=False: queued.append((task_id, trigger)))
    client.force_login(integrator)
    url = reverse("web:exchange-task-run", args=[task.pk])

    assert client.get(url).status_code == 405
    response = client.post(url, follow=True)
    assert queued == [(task.pk, "manual")]
    assert "queued" in response.content.decode()

    running = make_run(connection, route=Route.ODATA, status=RunStatus.RUNNING)
    response = client.post(url, follow=True)
    assert queued == [(task.pk, "manual")]
    assert f"Run #{running.pk} of this connection is still going." in response.content.decode()


def test_site_connection_explains_that_1c_starts_the_exchange(client: Any, integrator: Any, site: Connection) -> None:
    client.force_login(integrator)
    page = client.get(reverse("web:exchange-connection", args=[site.pk])).content.decode()
    assert "started by 1C itself" in page
    assert "Run now" not in page


def test_check_connection_is_queued_and_reported_in_the_connection_journal(
    client: Any, integrator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdelka.exchange import tasks
    from sdelka.exchange.odata.metadata import CheckReport
    from sdelka.exchange.services import log_event
    from sdelka.web.views import exchange

    connection = Connection.objects.create(name="БП", kind=ConnectionKind.ODATA, url="http://1c/odata/standard.odata")
    checked: list[int] = []

    def fake_check(*, connection: Connection, refresh: bool) -> CheckReport:
        checked.append(connection.pk)
        log_event(connection=connection, level=EventLevel.ERROR, message="1C is not reachable: connection refused")
        return CheckReport(url=connection.url)

    monkeypatch.setattr("sdelka.exchange.odata.services.check_connection", fake_check)
    monkeypatch.setattr(exchange, "check_odata_connection", tasks.check_odata_connection.call_local)
    client.force_login(integrator)

    page = client.post(reverse("web:exchange-connection-check", args=[connection.pk]), follow=True).content.decode()

    assert checked == [connection.pk]
    assert "The check is queued" in page
    assert "1C is not reachable: connection refused" in page
    site = Connection.objects.create(name="Сайт", kind=ConnectionKind.SITE, login="s")
    assert client.post(reverse("web:exchange-connection-check", args=[site.pk])).status_code == 404


# --- bank statements keep their file --------------------------------------------------------------------

STATEMENT_BODY = statement([]).encode("cp1251")


@pytest.fixture
def bank(db: None) -> Connection:
    OrganisationBankAccountFactory(number=OUR_ACCOUNT)  # the statement's account is ours: it imports
    return Connection.objects.create(name="Сбербанк", kind=ConnectionKind.BANK, options={"keep_files_days": 5})


def test_bank_statement_upload_keeps_the_file_with_its_run(
    client: Any, settings: Any, tmp_path: Any, bank: Connection
) -> None:
    from sdelka.exchange.services import remove_old_files

    settings.MEDIA_ROOT = str(tmp_path)
    client.force_login(UserFactory(role=Role.ADMIN))

    response = client.post(
        reverse("web:exchange-statement-upload", args=[bank.pk]),
        {"file": ContentFile(STATEMENT_BODY, "kl_to_1c.txt")},
        follow=True,
    )

    run = ExchangeRun.objects.get(connection=bank)
    assert run.status == RunStatus.SUCCESS, run.message
    record = ExchangeFile.objects.get(run=run)
    assert (record.name, record.size) == ("kl_to_1c.txt", len(STATEMENT_BODY))
    assert run.folder == run_folder_name(bank.pk, run.pk)
    file_url = reverse("web:exchange-run-file", args=[run.pk, record.pk])
    assert file_url in response.content.decode()
    download = client.get(file_url)
    assert b"".join(download.streaming_content) == STATEMENT_BODY
    assert download["Content-Disposition"].startswith("attachment;")
    # The same retention as 1C's uploads: kept for the connection's keep_files_days, then removed.
    assert run.finished_at is not None
    assert remove_old_files(now=run.finished_at + timedelta(days=4)) == 0
    assert remove_old_files(now=run.finished_at + timedelta(days=6)) == 1
    assert not (tmp_path / run.folder).exists()
    assert client.get(file_url).status_code == 404


@pytest.mark.parametrize(
    ("sent_as", "kept_as"),
    [
        ("../../../etc/passwd", "passwd.txt"),
        ("C:\\Users\\buh\\Выписка за 01.02.txt", "Выписка за 01.02.txt"),
        ("x\x00y;<script>.TXT", "xy_script.txt"),
        ("..", "statement.txt"),
        ("", "statement.txt"),
        ("a" * 300 + ".txt", "a" * 100 + ".txt"),
    ],
)
def test_a_hostile_statement_name_is_stored_under_a_safe_one(
    settings: Any, tmp_path: Any, bank: Connection, sent_as: str, kept_as: str
) -> None:
    from sdelka.exchange.clientbank.importer import import_statement

    settings.MEDIA_ROOT = str(tmp_path)

    result = import_statement(data=STATEMENT_BODY, user=None, filename=sent_as, connection=bank)

    assert ExchangeFile.objects.get(run=result.run).name == kept_as
    assert [p.name for p in (tmp_path / result.run.folder).iterdir()] == [kept_as]
    assert [p.relative_to(tmp_path).parts[0] for p in tmp_path.rglob("*") if p.is_file()] == ["exchange"]


def test_a_statement_that_cannot_be_stored_is_imported_all_the_same(
    client: Any, bank: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunFolder, "save", disk_full)
    client.force_login(UserFactory(role=Role.ADMIN))

    client.post(
        reverse("web:exchange-statement-upload", args=[bank.pk]), {"file": ContentFile(STATEMENT_BODY, "a.txt")}
    )

    run = ExchangeRun.objects.get(connection=bank)
    assert run.status == RunStatus.SUCCESS and run.folder == ""
    assert not ExchangeFile.objects.filter(run=run).exists()
    warning = ExchangeEvent.objects.get(run=run, level=EventLevel.WARNING)
    assert "No space left on device" in warning.message


# --- team members run the tasks that name their team ----------------------------------------------------


@pytest.fixture
def odata(db: None) -> Connection:
    return Connection.objects.create(name="БП", kind=ConnectionKind.ODATA, url="http://1c/base/odata/standard.odata")


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    from sdelka.exchange import tasks

    started: list[tuple[int, str]] = []
    monkeypatch.setattr(tasks, "run_sync_task", lambda task_id, trigger, full=False: started.append((task_id, trigger)))
    return started


def test_a_team_member_runs_the_task_that_names_his_team(
    client: Any, odata: Connection, queued: list[tuple[int, str]]
) -> None:
    sales, other = Team.objects.create(name="Продажи"), Team.objects.create(name="Склад")
    task = SyncTask.objects.create(connection=odata, name="Контрагенты")
    task.run_teams.set([sales])
    hidden = SyncTask.objects.create(connection=odata, name="Документы")
    hidden.run_teams.set([other])
    SyncTask.objects.create(connection=odata, name="Выключенная", is_active=False).run_teams.set([sales])
    member = UserFactory(role=Role.MANAGER, team=sales)
    client.force_login(member)

    assert reverse("web:exchange-my-tasks") in client.get(reverse("web:dashboard")).content.decode()
    page = client.get(reverse("web:exchange-my-tasks"))
    assert [t.name for t in page.context["tasks"]] == ["Контрагенты"]
    assert reverse("web:exchange-task-run", args=[task.pk]) in page.content.decode()
    assert client.get(reverse("web:exchange-connection", args=[odata.pk])).status_code == 403  # only his task

    response = client.post(reverse("web:exchange-task-run", args=[task.pk]), follow=True)

    assert queued == [(task.pk, "manual")]
    assert response.redirect_chain[-1][0] == reverse("web:exchange-my-tasks")
    assert "Task “Контрагенты” queued" in response.content.decode()
    assert client.post(reverse("web:exchange-task-run", args=[hidden.pk])).status_code == 403
    assert client.get(reverse("web:exchange-task-run", args=[task.pk])).status_code == 405
    assert queued == [(task.pk, "manual")]


def test_a_user_of_another_team_may_not_run_the_task(
    client: Any, odata: Connection, queued: list[tuple[int, str]]
) -> None:
    task = SyncTask.objects.create(connection=odata, name="Контрагенты")
    task.run_teams.set([Team.objects.create(name="Продажи")])
    for user in (
        UserFactory(role=Role.MANAGER, team=Team.objects.create(name="Склад")),
        UserFactory(role=Role.ACCOUNTANT),
    ):
        client.force_login(user)
        assert reverse("web:exchange-my-tasks") not in client.get(reverse("web:dashboard")).content.decode()
        assert list(client.get(reverse("web:exchange-my-tasks")).context["tasks"]) == []
        assert client.post(reverse("web:exchange-task-run", args=[task.pk])).status_code == 403
    assert client.post(reverse("web:exchange-task-run", args=[task.pk + 100])).status_code == 404
    client.logout()
    assert client.post(reverse("web:exchange-task-run", args=[task.pk])).status_code == 302  # to the login page
    assert queued == []


def test_run_now_needs_the_csrf_token(odata: Connection, queued: list[tuple[int, str]]) -> None:
    from django.test import Client

    team = Team.objects.create(name="Продажи")
    task = SyncTask.objects.create(connection=odata, name="Контрагенты")
    task.run_teams.set([team])
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(UserFactory(role=Role.MANAGER, team=team))
    url = reverse("web:exchange-task-run", args=[task.pk])

    assert browser.post(url).status_code == 403
    assert queued == []
    page = browser.get(reverse("web:exchange-my-tasks"))
    token = page.content.decode().split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    assert browser.post(url, {"csrfmiddlewaretoken": token}).status_code == 302
    assert queued == [(task.pk, "manual")]


def test_my_tasks_show_the_running_run_and_poll_until_it_ends(
    client: Any, odata: Connection, django_assert_max_num_queries: Any
) -> None:
    team = Team.objects.create(name="Продажи")
    tasks = [SyncTask.objects.create(connection=odata, name=f"Задача {i}") for i in range(5)]
    for task in tasks:
        task.run_teams.set([team])
    run = make_run(odata, route=Route.ODATA, status=RunStatus.RUNNING, done=30, total=120)
    SyncTask.objects.filter(pk=tasks[0].pk).update(last_run=run)
    client.force_login(UserFactory(role=Role.MANAGER, team=team))

    with django_assert_max_num_queries(6):
        page = client.get(reverse("web:exchange-my-tasks")).content.decode()

    assert 'hx-trigger="every 3s"' in page and 'value="30"' in page and "25 %" in page
    assert reverse("web:exchange-run", args=[run.pk]) not in page  # the exchange journal stays closed to him
    ExchangeRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS, finished_at=timezone.now())
    page = client.get(reverse("web:exchange-my-tasks")).content.decode()
    assert "hx-trigger" not in page.split('id="my-sync-tasks"')[1].split(">")[0]
    assert "Succeeded" in page


def test_every_route_says_how_it_starts(client: Any, integrator: Any, site: Connection, odata: Connection) -> None:
    bank = Connection.objects.create(name="Банк", kind=ConnectionKind.BANK)
    task = SyncTask.objects.create(connection=odata, name="Контрагенты")
    odata_run = make_run(odata, route=Route.ODATA)
    SyncTask.objects.filter(pk=task.pk).update(last_run=odata_run)
    older_odata_run = make_run(odata, route=Route.ODATA)
    client.force_login(integrator)

    def start(run: ExchangeRun) -> str:
        page = client.get(reverse("web:exchange-run", args=[run.pk])).content.decode()
        return page.split('class="actions run-start">')[1].split("</div>")[0]

    assert "1C starts this exchange itself" in start(make_run(site, route=Route.SALE))
    assert f'action="{reverse("web:exchange-task-run", args=[task.pk])}"' in start(odata_run)
    assert "Run “Контрагенты” now" in start(odata_run)
    assert f'href="{reverse("web:exchange-connection", args=[odata.pk])}#start"' in start(older_odata_run)
    ExchangeRun.objects.filter(pk=odata_run.pk).update(status=RunStatus.RUNNING, finished_at=None)
    assert "Run “Контрагенты” now" not in start(odata_run)  # it would only be refused while the run goes
    assert f'href="{reverse("web:exchange-connection", args=[bank.pk])}#start"' in start(
        make_run(bank, route=Route.BANK)
    )

    listing = client.get(reverse("web:exchange-connections")).content.decode()
    rows = {name: listing.split(name)[1].split("</tr>")[0] for name in ("УТ центральный офис", "БП", "Банк")}
    assert "1C starts it" in rows["УТ центральный офис"]
    assert "Run a task" in rows["БП"] and "Import a statement" in rows["Банк"]


def test_an_accountant_imports_a_statement_from_the_payments_page(client: Any, bank: Connection) -> None:
    accountant = UserFactory(role=Role.ACCOUNTANT)
    client.force_login(accountant)
    url = reverse("web:statement-import")
    assert url in client.get(reverse("web:payment-list")).content.decode()

    response = client.post(url, {"file": ContentFile(STATEMENT_BODY, "kl_to_1c.txt")}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("web:payment-list")
    run = ExchangeRun.objects.get(connection=bank)
    assert run.status == RunStatus.SUCCESS and run.message in response.content.decode()
    assert ExchangeFile.objects.get(run=run).name == "kl_to_1c.txt"
    refused = client.post(url, {"file": ContentFile(b"not a statement", "x.txt")}, follow=True).content.decode()
    assert "not a statement" not in refused and 'class="error"' in refused
    assert "Choose the statement file" in client.post(url, follow=True).content.decode()

    client.force_login(UserFactory(role=Role.MANAGER))
    assert url not in client.get(reverse("web:payment-list")).content.decode()
    assert client.post(url, {"file": ContentFile(STATEMENT_BODY, "kl_to_1c.txt")}).status_code == 403
    assert ExchangeRun.objects.filter(connection=bank).count() == 2
