"""`$metadata`: parsing the real excerpt, hardening, cache, configuration recognition, `connection check`."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection as db

from sdelka.exchange.models import Connection, ConnectionKind, ExchangeEvent
from sdelka.exchange.odata import metadata as md
from sdelka.exchange.odata.models import ODataMetadata
from sdelka.exchange.odata.services import check_connection, client_for, create_odata_connection
from sdelka.exchange.xmlsafe import UnsafeXmlError
from tests.fake_odata import FakeOneC, odata_settings, serve
from tests.fake_odata.schema import excerpt_path

pytestmark = pytest.mark.usefixtures("odata_settings")
__all__ = ["odata_settings"]


def make_connection(fake: FakeOneC, name: str = "bp", password: str | None = None) -> Connection:
    return create_odata_connection(
        name=name,
        url=fake.base_url,
        login=fake.login,
        password=fake.password if password is None else password,
        timeout=5,
    )


@pytest.fixture
def bp() -> Iterator[FakeOneC]:
    with serve(FakeOneC("bp30")) as fake:
        yield fake


def test_parses_the_real_ut11_excerpt() -> None:
    data = md.parse_metadata(str(excerpt_path()))
    sets = data["entity_sets"]
    assert set(sets) == {
        "Catalog_Контрагенты",
        "Catalog_Контрагенты_КонтактнаяИнформация",
        "InformationRegister_ПоследнийОбменСБанками",
        "InformationRegister_КурсыВалют",
        "Constant_Xx_АвтоматическиСоздаватьАктыРасхождений",
    }
    parties = sets["Catalog_Контрагенты"]
    assert parties["keys"] == ["Ref_Key"]
    assert parties["properties"]["Ref_Key"] == ["Edm.Guid", False]
    assert parties["properties"]["ИНН"] == ["Edm.String", True]
    # tabular parts whose row types are not in the (trimmed) document are kept by name
    assert parties["rows"]["КонтактнаяИнформация"] == "Catalog_Контрагенты_КонтактнаяИнформация_RowType"
    assert sets["InformationRegister_КурсыВалют"]["keys"] == ["Period", "Валюта_Key"]
    assert sets["Catalog_Контрагенты_КонтактнаяИнформация"]["properties"]["LineNumber"][0] == "Edm.Int64"
    assert data["functions"] == 4
    assert md.recognise(sets) is None  # an excerpt this small does not tell the configuration


def test_doctype_in_metadata_is_refused() -> None:
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><edmx:Edmx xmlns:edmx="e">&a;</edmx:Edmx>'
    with pytest.raises(UnsafeXmlError):
        md.parse_metadata(evil)


@pytest.mark.parametrize("configuration", ["bp30", "ut11", "erp", "unf"])
def test_configurations_are_recognised(configuration: str) -> None:
    fake = FakeOneC(configuration)
    data = md.parse_metadata(io.BytesIO(fake.metadata))
    recognised = md.recognise(data["entity_sets"])
    assert recognised is not None and recognised.code == configuration
    assert data["enums"]["ЮридическоеФизическоеЛицо"] == ["ЮридическоеЛицо", "ФизическоеЛицо"]
    assert data["complex_types"]  # tabular-part row types


def test_publish_code_reads_merges_and_writes() -> None:
    code = md.publish_code(
        ["Catalog_Номенклатура", "Document_СчетНаОплатуПокупателю", "AccountingRegister_Хозрасчетный"]
    )
    lines = code.splitlines()
    assert lines[0] == "Состав = ПолучитьСоставСтандартногоИнтерфейсаOData();"
    assert "    Состав.Добавить(Метаданные.Справочники.Номенклатура);" in lines
    assert "    Состав.Добавить(Метаданные.Документы.СчетНаОплатуПокупателю);" in lines
    assert "    Состав.Добавить(Метаданные.РегистрыБухгалтерии.Хозрасчетный);" in lines
    assert lines[-1] == "УстановитьСоставСтандартногоИнтерфейсаOData(Состав);"
    assert (
        md.metadata_path("InformationRegister_см_ОчередьДействий") == "Метаданные.РегистрыСведений.см_ОчередьДействий"
    )


@pytest.mark.django_db
def test_metadata_is_cached_by_hash(bp: FakeOneC, monkeypatch: pytest.MonkeyPatch) -> None:
    connection = make_connection(bp)
    parsed: list[Any] = []
    real = md.parse_metadata

    def counting(source: Any) -> dict[str, Any]:
        parsed.append(source)
        return real(source)

    monkeypatch.setattr(md, "parse_metadata", counting)
    first = md.fetch_metadata(connection=connection, client=client_for(connection))
    second = md.fetch_metadata(connection=connection, client=client_for(connection))
    assert len(parsed) == 1 and first.pk == second.pk
    assert first.configuration == "bp30" and first.size == len(bp.metadata)
    assert "Catalog_Контрагенты" in first.data["entity_sets"]
    md.fetch_metadata(connection=connection, client=client_for(connection), force=True)
    assert len(parsed) == 2
    assert ODataMetadata.objects.count() == 1


@pytest.mark.django_db
def test_add_command_stores_the_password_encrypted(bp: FakeOneC) -> None:
    out = io.StringIO()
    call_command(
        "connection",
        "add",
        "--kind=odata",
        "--name=bp",
        f"--url={bp.base_url.removesuffix('/odata/standard.odata')}",
        f"--login={bp.login}",
        f"--password={bp.password}",
        stdout=out,
    )
    connection = Connection.objects.get(name="bp")
    assert connection.kind == ConnectionKind.ODATA
    assert connection.url == bp.base_url  # /odata/standard.odata appended
    assert connection.remote_secret == bp.password
    with db.cursor() as cursor:
        cursor.execute("SELECT remote_secret FROM exchange_connection WHERE id = %s", [connection.pk])
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and bp.password not in stored
    assert "connection check bp" in out.getvalue()


@pytest.mark.django_db
def test_add_command_refuses_a_bad_url() -> None:
    with pytest.raises(CommandError, match="url"):
        call_command("connection", "add", "--kind=odata", "--name=x", "--url=not a url", "--login=a", "--password=b")


@pytest.mark.django_db
def test_check_ok(bp: FakeOneC) -> None:
    make_connection(bp)
    out = io.StringIO()
    call_command("connection", "check", "bp", stdout=out)
    text = out.getvalue()
    assert "Reachable:      yes" in text and "Login accepted: yes" in text
    assert "1С:Бухгалтерия предприятия 3.0" in text
    assert "Everything Sdelka needs is published." in text


@pytest.mark.django_db
def test_check_lists_what_is_not_published_with_the_code_to_publish_it() -> None:
    with serve(FakeOneC("bp30", omit={"Catalog_Номенклатура", "Catalog_БанковскиеСчета"})) as fake:
        make_connection(fake)
        out = io.StringIO()
        with pytest.raises(CommandError, match="not ready"):
            call_command("connection", "check", "bp", stdout=out)
    text = out.getvalue()
    assert "  - Catalog_Номенклатура" in text and "  - Catalog_БанковскиеСчета" in text
    assert "Состав.Добавить(Метаданные.Справочники.Номенклатура);" in text
    assert "УстановитьСоставСтандартногоИнтерфейсаOData(Состав);" in text
    assert "Standard OData interface settings" in text
    event = ExchangeEvent.objects.get()
    assert event.level == "warning" and "Catalog_Номенклатура" in event.value


@pytest.mark.django_db
def test_check_json_for_a_wrong_password(bp: FakeOneC) -> None:
    make_connection(bp, password="wrong")
    out = io.StringIO()
    with pytest.raises(CommandError, match="refused the login"):
        call_command("connection", "check", "bp", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert report["reachable"] is True and report["authorised"] is False and report["ok"] is False


@pytest.mark.django_db
def test_check_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connection = create_odata_connection(name="gone", url=f"http://127.0.0.1:{port}/base", login="a", password="b")
    report = check_connection(connection=connection, client=client_for(connection, retries=0, timeout=1))
    assert not report.reachable and "not reachable" in report.error


@pytest.mark.django_db
def test_check_unrecognised_configuration() -> None:
    with serve(FakeOneC("bp30", omit={"Document_СчетНаОплатуПокупателю", "AccountingRegister_Хозрасчетный"})) as fake:
        connection = make_connection(fake)
        report = check_connection(connection=connection)
    assert report.authorised and report.configuration is None and "not recognised" in report.error
