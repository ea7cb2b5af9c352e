"""The hub around the protocol: secrets, the connection command, safe names and archives, admin, retention."""

from __future__ import annotations

import io
import posixpath
import zlib
from datetime import timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection as db
from django.test import Client
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from sdelka.exchange.crypto import SecretKeyError, decrypt, encrypt
from sdelka.exchange.models import (
    Connection,
    ConnectionKind,
    ExchangeEvent,
    ExchangeRun,
    Route,
    RunStatus,
    SaleEncoding,
)
from sdelka.exchange.services import create_connection, log_event, remove_old_files
from sdelka.exchange.storage import ArchiveRefused, RunFolder, UnsafeName, safe_relative_name, unpack_zip
from tests.onec_emulator import OneCEmulator

pytest_plugins = ["tests.onec_fixtures"]

# --- secrets --------------------------------------------------------------------------------------------------


def test_encrypt_round_trip(settings: Any) -> None:
    settings.FERNET_KEY = Fernet.generate_key().decode()
    token = encrypt("пароль-1С")
    assert token.startswith("fernet:") and "пароль" not in token
    assert decrypt(token) == "пароль-1С"


@pytest.mark.parametrize("key", ["", "not-a-key"])
def test_missing_or_invalid_key_is_a_clear_error(settings: Any, key: str) -> None:
    settings.FERNET_KEY = key
    with pytest.raises(SecretKeyError, match="SDELKA_FERNET_KEY"):
        encrypt("x")


@pytest.mark.django_db
def test_outbound_secret_is_stored_encrypted(settings: Any) -> None:
    settings.FERNET_KEY = Fernet.generate_key().decode()
    conn = create_connection(name="OData УТ", kind=ConnectionKind.ODATA)
    conn.remote_secret = "odata-secret"
    conn.save()
    with db.cursor() as cursor:
        cursor.execute("SELECT remote_secret FROM exchange_connection WHERE id = %s", [conn.pk])
        raw = cursor.fetchone()[0]
    assert raw.startswith("fernet:") and "odata-secret" not in raw
    assert Connection.objects.get(pk=conn.pk).remote_secret == "odata-secret"


# --- connections ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_connection_add_and_list_commands(capsys: Any) -> None:
    call_command(
        "connection",
        "add",
        "--kind",
        "site",
        "--name",
        "УТ 11",
        "--login",
        "ut",
        "--password",
        "s3cret-pass",
        "--prefix",
        "УТ",
    )
    conn = Connection.objects.get()
    assert conn.login == "ut" and conn.prefix == "УТ" and conn.kind == ConnectionKind.SITE
    assert conn.password != "s3cret-pass" and conn.check_password("s3cret-pass")
    call_command("connection", "list")
    out = capsys.readouterr().out
    assert "УТ 11" in out and "ut" in out and "s3cret" not in out


@pytest.mark.django_db
def test_connection_add_refuses_duplicates_and_weak_passwords() -> None:
    call_command("connection", "add", "--name", "A", "--login", "same", "--password", "long-enough")
    with pytest.raises(CommandError, match="login"):
        call_command("connection", "add", "--name", "B", "--login", "same", "--password", "long-enough")
    with pytest.raises(CommandError, match="password"):
        call_command("connection", "add", "--name", "C", "--login", "other", "--password", "short")
    with pytest.raises(CommandError, match="options"):
        call_command(
            "connection",
            "add",
            "--name",
            "D",
            "--login",
            "d",
            "--password",
            "long-enough",
            "--options",
            '{"nonsense": 1}',
        )


@pytest.mark.django_db
def test_connection_password_command() -> None:
    call_command("connection", "add", "--name", "A", "--login", "a", "--password", "first-password")
    call_command("connection", "password", "--name", "A", "--password", "second-password")
    assert Connection.objects.get().check_password("second-password")


@pytest.mark.django_db
def test_typed_options_and_defaults() -> None:
    conn = create_connection(
        name="X",
        login="x",
        password="password-1",
        options={
            "sale_encoding": "utf-8",
            "file_limit": 1024,
            "order_status_map": {"N": "draft"},
            "deactivate_missing_products": True,
        },
    )
    assert conn.sale_encoding == SaleEncoding.UTF8 and conn.file_limit == 1024
    assert conn.order_status_map == {"N": "draft"} and conn.deactivate_missing_products
    assert conn.match_counterparties_by_inn_kpp and conn.keep_files_days == 7
    bare = Connection(name="Y", options={"file_limit": "junk", "sale_encoding": "koi8"})
    assert bare.file_limit == 8 * 1024 * 1024 and bare.sale_encoding == SaleEncoding.WINDOWS_1251
    with pytest.raises(ValidationError):
        create_connection(name="Z", login="z", password="password-1", options={"file_limit": -5})


# --- safe names -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("import.xml", "import.xml"),
        ("import_files/ab/x.jpg", "import_files/ab/x.jpg"),
        ("/tmp/import.xml", "import.xml"),
        ("/tmp/v8_1/offers.xml", "v8_1/offers.xml"),
        ("import_files\\ab\\x.png", "import_files/ab/x.png"),
        ("v8_2C7E_125d5b.zip", "v8_2C7E_125d5b.zip"),
    ],
)
def test_safe_names_accepted(raw: str, clean: str) -> None:
    assert safe_relative_name(raw) == clean


@pytest.mark.parametrize(
    "raw",
    [
        "../x.xml",
        "a/../../x.xml",
        "/etc/x.xml",
        "C:\\x.xml",
        "c:x.xml",
        "x\x00.xml",
        "x.php",
        "a//b.xml",
        "x.xml.",
        "a/./b.xml",
        "..\\x.xml",
        "x",
        "\\\\server\\share\\x.xml",
        "a:b.xml",
        " ",
    ],
)
def test_unsafe_names_refused(raw: str) -> None:
    with pytest.raises(UnsafeName):
        safe_relative_name(raw)


@given(st.text(alphabet=st.sampled_from(list("ab./\\:\x00 _-")), max_size=30).map(lambda s: s + ".xml"))
def test_any_accepted_name_stays_inside_the_folder(raw: str) -> None:
    try:
        clean = safe_relative_name(raw)
    except UnsafeName:
        return
    resolved = posixpath.normpath(posixpath.join("/run", clean))
    assert resolved.startswith("/run/") and "\x00" not in clean and "\\" not in clean


# --- archives -------------------------------------------------------------------------------------------------


def folder_with(exchange_media: Any, data: bytes) -> RunFolder:
    folder = RunFolder("exchange/1/1")
    folder.append("v8.zip", io.BytesIO(data), max_bytes=len(data) + 1)
    return folder


def test_unpack_writes_members_with_subfolders(exchange_media: Any) -> None:
    folder = folder_with(
        exchange_media, OneCEmulator.make_zip({"import.xml": b"<a/>", "import_files/ab/x.jpg": b"jpg"})
    )
    written = unpack_zip(folder, "v8.zip", max_total=10_000, max_ratio=100)
    assert sorted(written) == [("import.xml", 4, zlib.crc32(b"<a/>")), ("import_files/ab/x.jpg", 3, zlib.crc32(b"jpg"))]
    assert (exchange_media / "exchange/1/1/import_files/ab/x.jpg").read_bytes() == b"jpg"


@pytest.mark.parametrize("member", ["../evil.xml", "/evil.xml", "a/../../evil.xml", "C:/evil.xml", "evil.sh"])
def test_zip_slip_refused_before_anything_is_written(exchange_media: Any, member: str) -> None:
    folder = folder_with(exchange_media, OneCEmulator.make_zip({"good.xml": b"<a/>", member: b"x"}))
    with pytest.raises(ArchiveRefused, match="unsafe name"):
        unpack_zip(folder, "v8.zip", max_total=10_000, max_ratio=100)
    assert not (exchange_media / "exchange/1/1/good.xml").exists()
    assert not list(exchange_media.parent.rglob("evil*"))


def test_zip_bomb_refused_by_ratio_and_by_total(exchange_media: Any) -> None:
    folder = folder_with(exchange_media, OneCEmulator.make_zip({"zero.xml": b"\0" * (5 * 1024 * 1024)}))
    with pytest.raises(ArchiveRefused, match="zip bomb"):
        unpack_zip(folder, "v8.zip", max_total=10**9, max_ratio=100)
    with pytest.raises(ArchiveRefused, match="more than"):
        unpack_zip(folder, "v8.zip", max_total=1024 * 1024, max_ratio=10_000)


# --- journal, retention, admin --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_log_event_survives_nul_bytes() -> None:
    conn = create_connection(name="A", login="a", password="password-1")
    run = ExchangeRun.objects.create(connection=conn, route=Route.CATALOG)
    event = log_event(run=run, message="bad\x00name", value="x\x00y")
    assert "\x00" not in ExchangeEvent.objects.get(pk=event.pk).value
    assert event.connection == conn


@pytest.mark.django_db
def test_old_run_files_are_removed_after_keep_days(exchange_media: Any) -> None:
    conn = create_connection(name="A", login="a", password="password-1", options={"keep_files_days": 2})
    old = ExchangeRun.objects.create(
        connection=conn,
        route=Route.CATALOG,
        status=RunStatus.SUCCESS,
        folder="exchange/1/old",
        finished_at=timezone.now() - timedelta(days=3),
    )
    fresh = ExchangeRun.objects.create(
        connection=conn,
        route=Route.SALE,
        status=RunStatus.SUCCESS,
        folder="exchange/1/fresh",
        finished_at=timezone.now() - timedelta(days=1),
    )
    for run in (old, fresh):
        RunFolder(run.folder).append("import_files/a/x.jpg", io.BytesIO(b"x"), max_bytes=10)
    assert remove_old_files() == 1
    assert not (exchange_media / "exchange/1/old").exists()
    assert (exchange_media / "exchange/1/fresh/import_files/a/x.jpg").exists()
    old.refresh_from_db()
    assert old.files_removed


@pytest.mark.django_db
def test_admin_pages_load(client: Client, onec: Any, staff: Any) -> None:
    assert onec.exchange({"import.xml": b"<?xml version='1.0'?><bad"}, stop_on_failure=False).complete is not None
    client.force_login(staff.admin)
    run = ExchangeRun.objects.get()
    for url in [
        "/admin/exchange/connection/",
        "/admin/exchange/connection/add/",
        "/admin/exchange/exchangerun/",
        f"/admin/exchange/exchangerun/{run.pk}/change/",
        "/admin/exchange/exchangeevent/",
        "/admin/exchange/externalref/",
        "/admin/exchange/exchangesession/",
    ]:
        response = client.get(url)
        assert response.status_code == 200, url
    assert "refused" in client.get(f"/admin/exchange/exchangerun/{run.pk}/change/").content.decode()


@pytest.mark.django_db
def test_admin_sets_a_password_without_showing_it(client: Client, staff: Any) -> None:
    client.force_login(staff.admin)
    response = client.post(
        "/admin/exchange/connection/add/",
        {
            "name": "Из админки",
            "kind": "site",
            "is_active": "on",
            "login": "adm",
            "prefix": "",
            "url": "",
            "remote_user": "",
            "options": "{}",
            "new_password": "admin-set-password",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    conn = Connection.objects.get(login="adm")
    assert conn.check_password("admin-set-password")
    assert "admin-set-password" not in client.get(f"/admin/exchange/connection/{conn.pk}/change/").content.decode()
