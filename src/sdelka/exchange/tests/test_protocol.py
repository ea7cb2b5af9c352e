"""The site protocol through the real endpoint, driven as 1C drives it, including every kind of bad input."""

from __future__ import annotations

import io
import os
import zipfile
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from sdelka.catalog.models import Price, Product, StockLevel
from sdelka.exchange.commerceml import protocol
from sdelka.exchange.commerceml.session import FAILURE_LIMIT, IDLE_RELEASE, STUCK_IMPORT
from sdelka.exchange.models import (
    EventLevel,
    ExchangeEvent,
    ExchangeFile,
    ExchangeRun,
    ExchangeSession,
    ProductImage,
    RunStatus,
)
from sdelka.exchange.services import create_connection
from tests.onec_emulator import OneCEmulator

pytest_plugins = ["tests.onec_fixtures"]
SITE_LOGIN = "onec"
SITE_PASSWORD = "secret-exchange-password"

NS = "urn:1C.ru:commerceml_2"


def catalogue_xml(products: list[tuple[str, str, str]], *, changes_only: bool = False) -> bytes:
    """A 2.07 import.xml: one group, one property, the given (id, name, article) products."""
    goods = "".join(
        f"<Товар><Ид>{pid}</Ид><Артикул>{article}</Артикул><Наименование>{name}</Наименование>"
        f'<БазоваяЕдиница Код="796" НаименованиеПолное="Штука">шт</БазоваяЕдиница>'
        f"<Группы><Ид>g1</Ид></Группы>"
        f"<ЗначенияСвойств><ЗначенияСвойства><Ид>p1</Ид><Значение>v1</Значение></ЗначенияСвойства></ЗначенияСвойств>"
        f"</Товар>"
        for pid, name, article in products
    )
    flag = "true" if changes_only else "false"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация xmlns="{NS}" ВерсияСхемы="2.07">'
        f"<Классификатор><Ид>c1</Ид><Наименование>Классификатор</Наименование>"
        f"<Группы><Группа><Ид>g1</Ид><Наименование>Инструмент</Наименование></Группа></Группы>"
        f"<Свойства><Свойство><Ид>p1</Ид><Наименование>Цвет</Наименование><ТипЗначений>Справочник</ТипЗначений>"
        f"<ВариантыЗначений><Справочник><ИдЗначения>v1</ИдЗначения><Значение>Красный</Значение></Справочник>"
        f"</ВариантыЗначений></Свойство></Свойства></Классификатор>"
        f'<Каталог СодержитТолькоИзменения="{flag}"><Ид>cat1</Ид><ИдКлассификатора>c1</ИдКлассификатора>'
        f"<Наименование>Каталог</Наименование><Товары>{goods}</Товары></Каталог></КоммерческаяИнформация>"
    ).encode()


def offers_xml(prices: dict[str, str]) -> bytes:
    offers = "".join(
        f"<Предложение><Ид>{pid}</Ид><Наименование>{pid}</Наименование>"
        f"<Цены><Цена><ИдТипаЦены>pt1</ИдТипаЦены><ЦенаЗаЕдиницу>{value}</ЦенаЗаЕдиницу><Валюта>RUB</Валюта>"
        f"</Цена></Цены><Количество>5</Количество>"
        f'<Склад ИдСклада="w1" КоличествоНаСкладе="5"/></Предложение>'
        for pid, value in prices.items()
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<КоммерческаяИнформация xmlns="{NS}" ВерсияСхемы="2.07">'
        f'<ПакетПредложений СодержитТолькоИзменения="false"><Ид>op1</Ид><ИдКаталога>cat1</ИдКаталога>'
        f"<Наименование>Предложения</Наименование>"
        f"<ТипыЦен><ТипЦены><Ид>pt1</Ид><Наименование>Розничная</Наименование><Валюта>RUB</Валюта></ТипЦены></ТипыЦен>"
        f"<Склады><Склад><Ид>w1</Ид><Наименование>Основной склад</Наименование></Склад></Склады>"
        f"<Предложения>{offers}</Предложения></ПакетПредложений></КоммерческаяИнформация>"
    ).encode()


PRODUCTS = [("a1", "Дрель", "DR-1"), ("a2", "Пила", "PL-2"), ("a3", "Молоток", "ML-3")]


def package() -> dict[str, bytes]:
    return {
        "import.xml": catalogue_xml(PRODUCTS),
        "offers.xml": offers_xml({"a1": "1000.50", "a2": "2000", "a3": "300"}),
    }


def assert_protocol_text(answer: Any) -> None:
    assert answer.http_status == 200
    assert answer.content_type.startswith("text/plain")
    assert b"<html" not in answer.raw.lower()
    assert answer.status in {"success", "progress", "failure"} or answer.status.startswith("zip=")


# --- the happy path -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_checkauth_answers_cookie_sessid_and_timestamp(onec: OneCEmulator) -> None:
    answer = onec.checkauth()
    assert answer.status == "success"
    assert answer.lines[1] == "sdelka_1c"
    session = ExchangeSession.objects.get()
    assert answer.lines[2] == session.token
    assert answer.lines[3] == f"sessid={session.sessid}"
    assert answer.lines[4].startswith("timestamp=") and answer.lines[4][10:].isdigit()
    assert answer.content_type == "text/plain; charset=windows-1251"


@pytest.mark.django_db
def test_init_answers_zip_limit_sessid_version(onec: OneCEmulator, site_connection: Any) -> None:
    onec.checkauth()
    answer = onec.init()
    assert answer.lines == [
        "zip=yes",
        f"file_limit={site_connection.file_limit}",
        f"sessid={onec.sessid}",
        "version=2.10",
    ]
    assert ExchangeRun.objects.get().status == RunStatus.RUNNING


@pytest.mark.django_db
@pytest.mark.parametrize("send_sessid", [True, False], ids=["sessid", "cookie-only (old 1C)"])
@pytest.mark.parametrize("path", ["/1c/exchange", "/bitrix/admin/1c_exchange.php"])
def test_full_exchange_imports_catalogue(
    client: Client, site_connection: Any, huey_immediate: Any, send_sessid: bool, path: str
) -> None:
    onec = OneCEmulator(client, login=SITE_LOGIN, password=SITE_PASSWORD, send_sessid=send_sessid, path=path)
    result = onec.exchange(package())
    assert result.ok, result
    assert Product.objects.count() == 3
    drill = Product.objects.get(article="DR-1")
    assert drill.name == "Дрель" and drill.group is not None and drill.group.name == "Инструмент"
    assert drill.property_values.get().value == "Красный"
    assert Price.objects.get(product=drill).value == Decimal("1000.50")
    assert StockLevel.objects.get(product=drill).quantity == Decimal(5)
    run = ExchangeRun.objects.get()
    assert run.status == RunStatus.SUCCESS and run.finished_at is not None
    assert run.failed == 0
    assert ExchangeSession.objects.get().closed_at is not None


@pytest.mark.django_db
def test_reimport_changes_nothing(onec: OneCEmulator) -> None:
    assert onec.exchange(package()).ok
    stamps = dict(Product.objects.values_list("pk", "updated_at"))
    second = onec.exchange(package())
    assert second.ok
    run = ExchangeRun.objects.order_by("-id").first()
    assert run is not None and run.created == 0 and run.updated == 0 and run.unchanged > 0
    assert dict(Product.objects.values_list("pk", "updated_at")) == stamps


@pytest.mark.django_db
def test_small_file_limit_chunks_and_reassembles(onec: OneCEmulator, site_connection: Any) -> None:
    site_connection.options = {"file_limit": 1024}
    site_connection.save()
    result = onec.exchange(package())
    assert result.ok
    assert len(result.uploads) > 1  # the zip went in several chunks
    assert Product.objects.count() == 3


@pytest.mark.django_db
def test_without_zip_files_and_images_in_subfolders(onec: OneCEmulator, exchange_media: Any) -> None:
    onec.use_zip = False
    result = onec.exchange({**package(), "import_files/ab/pic.jpg": b"\xff\xd8\xff fake jpeg"})
    assert result.ok
    run = ExchangeRun.objects.get()
    assert (exchange_media / run.folder / "import_files/ab/pic.jpg").read_bytes() == b"\xff\xd8\xff fake jpeg"


@pytest.mark.django_db
def test_linux_tmp_prefix_is_stripped(onec: OneCEmulator, exchange_media: Any) -> None:
    onec.checkauth()
    onec.init()
    assert onec.post("file", b"<?xml", filename="/tmp/import.xml").status == "success"
    run = ExchangeRun.objects.get()
    assert (exchange_media / run.folder / "import.xml").read_bytes() == b"<?xml"


@pytest.mark.django_db
def test_second_init_keeps_uploaded_files(onec: OneCEmulator) -> None:
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", catalogue_xml(PRODUCTS))
    onec.init()  # newer 1C modules init again before the offers
    onec.upload("offers.xml", offers_xml({"a1": "1"}))
    assert onec.import_file("import.xml")[0].status == "success"
    assert onec.import_file("offers.xml")[0].status == "success"
    assert ExchangeRun.objects.count() == 1
    assert Product.objects.count() == 3


@pytest.mark.django_db
def test_import_answers_progress_while_the_job_runs(client: Client, site_connection: Any, monkeypatch: Any) -> None:
    queued: list[int] = []
    monkeypatch.setattr("sdelka.exchange.commerceml.views.enqueue_import", queued.append)
    onec = OneCEmulator(client, login=SITE_LOGIN, password=SITE_PASSWORD)
    onec.checkauth()
    onec.init()
    onec.upload("v8_1.zip", OneCEmulator.make_zip(package()))
    first = onec.get("import", filename="import.xml")
    assert first.status == "progress" and len(queued) == 1
    assert onec.get("import", filename="import.xml").status == "progress"
    assert len(queued) == 1  # polling does not start the job again
    protocol.process_import(file_id=queued[0])
    done = onec.get("import", filename="import.xml")
    assert done.status == "success" and "5 created" in done.text  # a group, a property, three products
    assert Product.objects.count() == 3


@pytest.mark.django_db
def test_deactivate_after_full_upload(onec: OneCEmulator, site_connection: Any) -> None:
    site_connection.options = {"deactivate_missing_products": True}
    site_connection.save()
    assert onec.exchange(package()).ok
    smaller = {"import.xml": catalogue_xml(PRODUCTS[:2]), "offers.xml": offers_xml({"a1": "1"})}
    result = onec.exchange(smaller, deactivate=True)
    assert result.ok and result.deactivate is not None
    assert result.deactivate.status == "success"
    assert not Product.objects.get(article="ML-3").is_active
    assert Product.objects.filter(is_active=True).count() == 2


@pytest.mark.django_db
def test_deactivate_is_off_by_default_and_needs_timestamp(onec: OneCEmulator) -> None:
    assert onec.exchange(package()).ok
    result = onec.exchange({"import.xml": catalogue_xml(PRODUCTS[:1])}, deactivate=True)
    assert result.deactivate is not None and result.deactivate.status == "success"
    assert "does not deactivate" in result.deactivate.text
    assert Product.objects.filter(is_active=True).count() == 3
    onec.checkauth()
    onec.init()
    assert onec.get("deactivate").status == "failure"


# --- bad input: each refused with failure, journalled, and the next exchange works ---------------------------


def next_exchange_works(client: Client) -> None:
    fresh = OneCEmulator(client, login=SITE_LOGIN, password=SITE_PASSWORD)
    result = fresh.exchange(package())
    assert result.ok, result
    assert Product.objects.count() == 3


def error_events(**filters: Any) -> list[str]:
    return list(ExchangeEvent.objects.filter(level=EventLevel.ERROR, **filters).values_list("message", flat=True))


@pytest.mark.django_db
def test_wrong_password_is_refused_and_journalled(client: Client, site_connection: Any, huey_immediate: Any) -> None:
    intruder = OneCEmulator(client, login=SITE_LOGIN, password="wrong")
    answer = intruder.checkauth()
    assert_protocol_text(answer)
    assert answer.status == "failure" and "password" in answer.text
    assert error_events(connection=site_connection)
    assert not ExchangeSession.objects.exists()
    next_exchange_works(client)


@pytest.mark.django_db
def test_lockout_after_repeated_wrong_passwords(client: Client, site_connection: Any, huey_immediate: Any) -> None:
    intruder = OneCEmulator(client, login=SITE_LOGIN, password="wrong")
    for _attempt in range(FAILURE_LIMIT):
        assert intruder.checkauth().status == "failure"
    right = OneCEmulator(client, login=SITE_LOGIN, password=SITE_PASSWORD)
    locked = right.checkauth()
    assert locked.status == "failure" and "Too many" in locked.text
    # Another address is not locked out by this one.
    other = OneCEmulator(Client(REMOTE_ADDR="10.0.0.9"), login=SITE_LOGIN, password=SITE_PASSWORD)
    assert other.checkauth().status == "success"


@pytest.mark.django_db
def test_unknown_login_and_no_credentials(client: Client, site_connection: Any) -> None:
    assert OneCEmulator(client, login="nobody", password="x").checkauth().status == "failure"
    answer = OneCEmulator(client, login="", password="").get("checkauth")
    assert answer.status == "failure" and "login" in answer.text


@pytest.mark.django_db
@pytest.mark.parametrize("params", [{}, {"sessid": "forged"}], ids=["no session", "forged sessid"])
def test_request_without_session_is_refused(
    client: Client, site_connection: Any, huey_immediate: Any, params: dict[str, str]
) -> None:
    answer = OneCEmulator(client, login=SITE_LOGIN, password=SITE_PASSWORD)._answer(
        client.get("/1c/exchange", {"type": "catalog", "mode": "init", **params})
    )
    assert_protocol_text(answer)
    assert answer.status == "failure" and "checkauth" in answer.text
    assert error_events()
    next_exchange_works(client)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "filename",
    [
        "../import.xml",
        "import_files/../../../etc/passwd.xml",
        "/etc/import.xml",
        "C:/Windows/import.xml",
        "c:import.xml",
        "..\\..\\import.xml",
        "import_files\\..\\..\\x.xml",
        "import\x00.xml",
        "shell.php",
        "import_files//x.jpg",
        "./import.xml",
        "",
    ],
)
def test_path_traversal_filenames_are_refused(
    onec: OneCEmulator, client: Client, exchange_media: Any, filename: str
) -> None:
    onec.checkauth()
    onec.init()
    answer = onec.post("file", b"<?xml evil", filename=filename)
    assert_protocol_text(answer)
    assert answer.status == "failure"
    assert error_events(run=ExchangeRun.objects.get())
    written = [os.path.join(root, name) for root, _dirs, names in os.walk(exchange_media.parent) for name in names]
    assert all(str(exchange_media / "exchange") in path for path in written)
    assert not any(path.endswith(("passwd.xml", "shell.php")) for path in written)
    onec.complete()
    next_exchange_works(client)


def raw_zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def exchange_with_archive(onec: OneCEmulator, archive: bytes, import_name: str = "import.xml") -> Any:
    onec.checkauth()
    onec.init()
    assert onec.upload("v8_bad.zip", archive)[-1].status == "success"
    answer, _rounds = onec.import_file(import_name)
    onec.complete()
    return answer


@pytest.mark.django_db
@pytest.mark.parametrize("member", ["../evil.xml", "/abs/evil.xml", "import_files/../../evil.xml", "C:\\evil.xml"])
def test_zip_slip_is_refused(onec: OneCEmulator, client: Client, exchange_media: Any, member: str) -> None:
    answer = exchange_with_archive(onec, raw_zip({"import.xml": catalogue_xml(PRODUCTS), member: b"<x/>"}))
    assert_protocol_text(answer)
    assert answer.status == "failure" and "unsafe name" in answer.text
    assert error_events()
    assert not list(exchange_media.parent.rglob("evil.xml"))
    assert Product.objects.count() == 0
    next_exchange_works(client)


@pytest.mark.django_db
def test_zip_bomb_is_refused(onec: OneCEmulator, client: Client, site_connection: Any) -> None:
    bomb = raw_zip({"import.xml": catalogue_xml(PRODUCTS), "import_files/zero.jpg": b"\0" * (30 * 1024 * 1024)})
    answer = exchange_with_archive(onec, bomb)
    assert answer.status == "failure" and "zip bomb" in answer.text
    assert error_events()
    next_exchange_works(client)


@pytest.mark.django_db
def test_archive_over_the_unpacked_cap_is_refused(onec: OneCEmulator, client: Client, site_connection: Any) -> None:
    site_connection.options = {"max_unpacked_bytes": 1000}
    site_connection.save()
    answer = exchange_with_archive(onec, raw_zip({"import.xml": catalogue_xml(PRODUCTS)}))
    assert answer.status == "failure" and "more than 1000 bytes" in answer.text
    site_connection.options = {}
    site_connection.save()
    next_exchange_works(client)


@pytest.mark.django_db
def test_broken_zip_is_refused(onec: OneCEmulator, client: Client) -> None:
    answer = exchange_with_archive(onec, b"PK\x03\x04 this is not really a zip")
    assert answer.status == "failure" and "zip" in answer.text
    next_exchange_works(client)


DTD_ENTITIES = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<\xd0\x9a\xd0\xbe\xd0\xbc\xd0\xbc\xd0\xb5\xd1\x80\xd1\x87\xd0\xb5\xd1\x81\xd0\xba\xd0\xb0\xd1\x8f"
    b"\xd0\x98\xd0\xbd\xd1\x84\xd0\xbe\xd1\x80\xd0\xbc\xd0\xb0\xd1\x86\xd0\xb8\xd1\x8f>&e;"
    b"</\xd0\x9a\xd0\xbe\xd0\xbc\xd0\xbc\xd0\xb5\xd1\x80\xd1\x87\xd0\xb5\xd1\x81\xd0\xba\xd0\xb0\xd1\x8f"
    b"\xd0\x98\xd0\xbd\xd1\x84\xd0\xbe\xd1\x80\xd0\xbc\xd0\xb0\xd1\x86\xd0\xb8\xd1\x8f>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;">]><lolz>&lol3;</lolz>'
)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content",
    [
        pytest.param(DTD_ENTITIES, id="external entity"),
        pytest.param(BILLION_LAUGHS, id="entity expansion"),
        pytest.param(catalogue_xml(PRODUCTS)[:-200], id="truncated"),
        pytest.param(b"\x89PNG not xml at all", id="not xml"),
        pytest.param(b"", id="empty"),
        pytest.param(
            b'<?xml version="1.0" encoding="windows-1251"?>' + catalogue_xml(PRODUCTS).split(b"\n", 1)[1],
            id="wrong declared encoding",
        ),
    ],
)
def test_hostile_or_broken_xml_is_refused_and_changes_nothing(
    onec: OneCEmulator, client: Client, content: bytes
) -> None:
    next_exchange_works(client)
    before = dict(Product.objects.values_list("article", "name"))
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", content)
    answer, _rounds = onec.import_file("import.xml")
    assert_protocol_text(answer)
    assert answer.status == "failure"
    assert error_events(run=ExchangeRun.objects.order_by("-id").first())
    assert dict(Product.objects.values_list("article", "name")) == before
    onec.complete()
    next_exchange_works(client)


@pytest.mark.django_db
def test_truncated_file_after_valid_records_changes_nothing(onec: OneCEmulator) -> None:
    content = catalogue_xml([(f"id{n}", f"Товар {n}", f"A{n}") for n in range(50)])
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", content[: len(content) * 3 // 4])
    assert onec.import_file("import.xml")[0].status == "failure"
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_chunk_far_over_the_size_limit_is_refused(onec: OneCEmulator, client: Client, site_connection: Any) -> None:
    onec.checkauth()
    onec.init()
    onec.file_limit = site_connection.file_limit * 3  # a client that ignores file_limit
    answers = onec.upload("v8_big.zip", b"PK\x03\x04" + b"x" * (site_connection.file_limit * 2))
    assert answers[0].status == "failure" and "file_limit" in answers[0].text
    assert error_events()
    onec.complete()
    next_exchange_works(client)


@pytest.mark.django_db
def test_file_over_the_total_upload_cap_is_refused(onec: OneCEmulator, site_connection: Any) -> None:
    site_connection.options = {"file_limit": 1000, "max_upload_bytes": 2500}
    site_connection.save()
    onec.checkauth()
    onec.init()
    answers = onec.upload("import.xml", b"<?xml " + b"x" * 5000)
    assert [a.status for a in answers] == ["success", "success", "failure"]
    assert "larger than the allowed" in answers[-1].text


@pytest.mark.django_db
def test_import_of_a_file_never_uploaded(onec: OneCEmulator) -> None:
    onec.checkauth()
    onec.init()
    answer, _rounds = onec.import_file("import.xml")
    assert answer.status == "failure" and "was not uploaded" in answer.text


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"type": "catalog", "mode": "nonsense"}, "Unknown command"),
        ({"type": "nonsense", "mode": "init"}, "Unknown exchange type"),
        ({"type": "sale", "mode": "query"}, "type=sale"),
    ],
)
def test_unknown_commands_answer_failure(
    onec: OneCEmulator, client: Client, query: dict[str, str], expected: str
) -> None:
    onec.checkauth()
    answer = onec._answer(client.get("/1c/exchange", {**query, "sessid": onec.sessid}))
    assert_protocol_text(answer)
    assert answer.status == "failure" and expected in answer.text


@pytest.mark.django_db
def test_internal_error_is_protocol_text_not_html(onec: OneCEmulator, monkeypatch: Any) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database exploded")

    monkeypatch.setattr(protocol, "init", boom)
    onec.checkauth()
    answer = onec.init()
    assert_protocol_text(answer)
    assert answer.status == "failure" and "Internal error" in answer.text
    assert "exploded" not in answer.text
    assert error_events()


@pytest.mark.django_db
def test_reader_crash_becomes_failure(onec: OneCEmulator, monkeypatch: Any) -> None:
    def crash(source: Any) -> Any:
        raise KeyError("bug")

    monkeypatch.setattr(protocol, "read_records", crash)
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", catalogue_xml(PRODUCTS))
    answer, _rounds = onec.import_file("import.xml")
    assert answer.status == "failure" and "could not be imported" in answer.text


# --- one exchange per connection at a time --------------------------------------------------------------------


@pytest.mark.django_db
def test_second_exchange_of_the_same_connection_is_refused(client: Client, onec: OneCEmulator) -> None:
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", catalogue_xml(PRODUCTS))
    other = OneCEmulator(Client(), login=SITE_LOGIN, password=SITE_PASSWORD)
    assert other.checkauth().status == "success"
    refused = other.init()
    assert refused.status == "failure" and "in progress" in refused.text
    # The first one goes on undisturbed.
    assert onec.import_file("import.xml")[0].status == "success"
    assert onec.complete().status == "success"
    assert other.exchange(package()).ok


@pytest.mark.django_db
def test_different_connections_exchange_in_parallel(client: Client, onec: OneCEmulator) -> None:
    create_connection(name="Розница", login="retail", password="another-password")
    onec.checkauth()
    onec.init()
    retail = OneCEmulator(Client(), login="retail", password="another-password")
    assert retail.exchange(package()).ok
    onec.upload("import.xml", catalogue_xml(PRODUCTS))
    assert onec.import_file("import.xml")[0].status == "success"
    assert onec.complete().status == "success"
    # Same 1C ids in two bases: each base has its own products, ids are not mixed.
    assert Product.objects.count() == 6


@pytest.mark.django_db
def test_an_abandoned_exchange_releases_the_lock(client: Client, onec: OneCEmulator) -> None:
    onec.checkauth()
    onec.init()  # 1C died here
    ExchangeSession.objects.update(last_seen_at=timezone.now() - IDLE_RELEASE * 2)
    fresh = OneCEmulator(Client(), login=SITE_LOGIN, password=SITE_PASSWORD)
    assert fresh.exchange(package()).ok
    first, second = ExchangeRun.objects.order_by("id")
    assert first.status == RunStatus.SUCCESS and "without finishing" in first.message
    assert second.status == RunStatus.SUCCESS


@pytest.mark.django_db
def test_completed_session_cannot_be_reused(onec: OneCEmulator) -> None:
    assert onec.exchange(package()).ok
    answer = onec.init()
    assert answer.status == "failure" and "already complete" in answer.text


@pytest.mark.django_db
def test_reupload_of_an_imported_file_starts_over(onec: OneCEmulator) -> None:
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", catalogue_xml(PRODUCTS[:1]))
    assert onec.import_file("import.xml")[0].status == "success"
    onec.upload("import.xml", catalogue_xml(PRODUCTS))  # a new package under the same name
    answer, _rounds = onec.import_file("import.xml")
    assert answer.status == "success"
    assert Product.objects.count() == 3
    assert ExchangeFile.objects.get(name="import.xml").chunks == 1


@pytest.mark.django_db
@pytest.mark.parametrize("started", [False, True], ids=["never picked up", "worker died"])
def test_a_dead_import_job_ends_in_failure(
    client: Client, site_connection: Any, monkeypatch: Any, started: bool
) -> None:
    queued: list[int] = []
    monkeypatch.setattr("sdelka.exchange.commerceml.views.enqueue_import", queued.append)
    onec = OneCEmulator(client, login=SITE_LOGIN, password=SITE_PASSWORD)
    onec.checkauth()
    onec.init()
    onec.upload("import.xml", catalogue_xml(PRODUCTS))
    assert onec.get("import", filename="import.xml").status == "progress"
    if started:
        ExchangeFile.objects.filter(name="import.xml").update(import_status="running")
    ExchangeFile.objects.update(updated_at=timezone.now() - STUCK_IMPORT * 2)
    answer = onec.get("import", filename="import.xml")
    assert answer.status == "failure"
    assert ("background worker" in answer.text) and error_events()


def picture_catalogue() -> bytes:
    xml = catalogue_xml(PRODUCTS).decode()
    for pid, _name, _article in PRODUCTS:
        xml = xml.replace(
            f"<Ид>{pid}</Ид><Артикул>", f"<Ид>{pid}</Ид><Картинка>import_files/ab/same.jpg</Картинка><Артикул>"
        )
    return xml.encode()


@pytest.mark.django_db
def test_images_are_stored_once_by_content(onec: OneCEmulator, exchange_media: Any) -> None:
    files = {"import.xml": picture_catalogue(), "import_files/ab/same.jpg": b"\xff\xd8\xff same picture"}
    assert onec.exchange(files).ok
    assert onec.exchange(files).ok
    assert ProductImage.objects.count() == 3
    assert ProductImage.objects.values("sha1").distinct().count() == 1
    stored = list((exchange_media / "exchange" / "images").rglob("*.jpg"))
    assert len(stored) == 1 and stored[0].read_bytes() == b"\xff\xd8\xff same picture"


@pytest.mark.django_db
@pytest.mark.parametrize("zipped", [True, False])
def test_a_picture_replaced_by_another_of_the_same_size_reaches_the_products(
    onec: OneCEmulator, exchange_media: Any, zipped: bool
) -> None:
    """The digest that skips unchanged products covers the content of their pictures (the zip's CRC-32 of a member,
    or one computed while the chunks of a file arrive), not only their size."""
    onec.use_zip = zipped
    first = {"import.xml": picture_catalogue(), "import_files/ab/same.jpg": b"\xff\xd8\xff picture one"}
    second = {**first, "import_files/ab/same.jpg": b"\xff\xd8\xff picture two"}
    assert onec.exchange(first).ok
    assert onec.exchange(second).ok
    assert ProductImage.objects.values("sha1").distinct().count() == 2
    assert ProductImage.objects.count() == 6  # each of the 3 products got the new picture
    again = onec.exchange(second)
    assert again.ok and "0 created, 0 updated" in again.imports["import.xml"].text
    assert ProductImage.objects.count() == 6


@pytest.mark.django_db
def test_statistics_are_refreshed_apart_from_a_big_file_after_it_is_reported_done(
    client: Client, site_connection: Any, monkeypatch: Any
) -> None:
    from sdelka.exchange import tasks

    queued: list[int] = []
    monkeypatch.setattr("sdelka.exchange.commerceml.views.enqueue_import", queued.append)
    monkeypatch.setattr(protocol, "ANALYZE_AFTER", 1)
    refreshed: list[str] = []

    def exchange() -> None:
        onec = OneCEmulator(client, login=SITE_LOGIN, password=SITE_PASSWORD)
        onec.checkauth()
        onec.init()
        onec.upload("v8_1.zip", OneCEmulator.make_zip(package()))
        for name in ("import.xml", "offers.xml"):
            onec.get("import", filename=name)
            monkeypatch.setattr(
                tasks,
                "refresh_catalogue_statistics",
                lambda name=name: refreshed.append(ExchangeFile.objects.filter(name=name).last().import_status),
            )
            tasks.import_file.call_local(queued.pop())
        onec.get("complete")

    exchange()
    # Asked once per file, when the file was already "success" for 1C.
    assert refreshed == ["success", "success"]
    exchange()  # the same package again: nothing created or changed, nothing to refresh
    assert refreshed == ["success", "success"]
