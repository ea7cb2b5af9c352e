"""Orders with 1C (`type=sale`) end to end through the real endpoint, driven by the 1C emulator."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone

from sdelka.activities.models import Note
from sdelka.core.vat import VatRate
from sdelka.exchange.commerceml.reader import read_package
from sdelka.exchange.commerceml.session import RESTING_RELEASE
from sdelka.exchange.models import (
    EventLevel,
    ExchangeEvent,
    ExchangeRun,
    ExchangeSession,
    ExternalRef,
    OrderOrigin,
    OrderState,
    RefKind,
    RunStatus,
)
from sdelka.exchange.records import Order
from sdelka.exchange.services import create_connection
from sdelka.parties.models import Counterparty
from sdelka.sales import services as sales
from sdelka.sales.models import Invoice, InvoiceStatus, Payment, PaymentSource
from tests.factories import CounterpartyFactory, OrganisationFactory, ProductFactory
from tests.fixtures_path import fixtures_dir
from tests.onec_emulator import OneCEmulator

pytest_plugins = ["tests.onec_fixtures"]


# --- helpers ----------------------------------------------------------------------------------------------


@pytest.fixture
def shop(staff: Any, site_connection: Any) -> dict[str, Any]:
    """Our organisation, a customer and a product 1C knows (its id in this base: `1c-product-1`)."""
    organisation = OrganisationFactory()
    customer = CounterpartyFactory(
        owner=staff.manager,
        legal_address="г. Москва, ул. Тверская, д. 1",
        phones="+7 495 123-45-67",
        emails="buy@romashka.ru",
    )
    product = ProductFactory(name="Дрель ударная")
    ExternalRef.objects.create(
        connection=site_connection,
        kind=RefKind.PRODUCT,
        external_id="1c-product-1",
        content_type=ContentType.objects.get_for_model(product),
        object_id=product.pk,
    )
    return {"organisation": organisation, "customer": customer, "product": product, "user": staff.director}


def make_invoice(shop: dict[str, Any], *, issue: bool = True, quantity: str = "2", price: str = "1500.00") -> Invoice:
    invoice = sales.create_invoice(
        user=shop["user"],
        organisation=shop["organisation"],
        counterparty=shop["customer"],
        lines=[
            {"product": shop["product"], "quantity": Decimal(quantity), "price": Decimal(price), "vat_rate": "22"},
            {"description": "Доставка", "quantity": Decimal("1"), "price": Decimal("500.00"), "vat_rate": "22"},
        ],
    )
    return sales.issue_invoice(user=shop["user"], invoice=invoice) if issue else invoice


def orders_of(raw: bytes) -> list[Order]:
    return [record for record in read_package(raw) if isinstance(record, Order)]


def order_id(connection: Any, invoice: Invoice) -> str:
    return ExternalRef.objects.get(connection=connection, kind=RefKind.ORDER, object_id=invoice.pk).external_id


def requisites(values: dict[str, str]) -> str:
    items = "".join(
        f"<ЗначениеРеквизита><Наименование>{k}</Наименование><Значение>{v}</Значение></ЗначениеРеквизита>"
        for k, v in values.items()
    )
    return f"<ЗначенияРеквизитов>{items}</ЗначенияРеквизитов>"


def answer_doc(
    doc_id: str,
    number: str,
    *,
    number_1c: str = "",
    reqs: dict[str, str] | None = None,
    extra: str = "",
    total: str = "3500.00",
) -> str:
    head = f"<Ид>{doc_id}</Ид><Номер>{number}</Номер>"
    if number_1c:
        head += f"<Номер1С>{number_1c}</Номер1С><Дата1С>2026-03-02</Дата1С>"
    return (
        f"<Документ>{head}<Дата>2026-03-02</Дата><Время>10:00:00</Время><ХозОперация>Заказ товара</ХозОперация>"
        f"<Роль>Продавец</Роль><Валюта>RUB</Валюта><Курс>1</Курс><Сумма>{total}</Сумма>{extra}"
        f"{requisites(reqs or {})}</Документ>"
    )


def answer_file(*docs: str, version: str = "2.10") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<КоммерческаяИнформация ВерсияСхемы="{version}" ДатаФормирования="2026-03-02T10:00:00">'
        + "".join(docs)
        + "</КоммерческаяИнформация>"
    ).encode()


def party_xml(party_id: str, name: str, inn: str, kpp: str) -> str:
    return (
        f"<Контрагенты><Контрагент><Ид>{party_id}</Ид><Наименование>{name}</Наименование>"
        f"<ОфициальноеНаименование>{name}</ОфициальноеНаименование><Роль>Покупатель</Роль>"
        f"<ИНН>{inn}</ИНН><КПП>{kpp}</КПП></Контрагент></Контрагенты>"
    )


LINES_XML = (
    "<Товары><Товар><Ид>1c-product-1</Ид><Наименование>Дрель ударная</Наименование>"
    '<БазоваяЕдиница Код="796">шт</БазоваяЕдиница><ЦенаЗаЕдиницу>1000.00</ЦенаЗаЕдиницу>'
    "<Количество>3</Количество><Сумма>3000.00</Сумма><СтавкиНалогов><СтавкаНалога><Наименование>НДС</Наименование>"
    "<Ставка>22</Ставка></СтавкаНалога></СтавкиНалогов></Товар></Товары>"
    "<Налоги><Налог><Наименование>НДС</Наименование><УчтеноВСумме>true</УчтеноВСумме>"
    "<Сумма>540.98</Сумма></Налог></Налоги>"
)


def errors() -> list[str]:
    return list(ExchangeEvent.objects.filter(level=EventLevel.ERROR).values_list("message", flat=True))


def emulator(client: Client, login: str, password: str) -> OneCEmulator:
    return OneCEmulator(client, login=login, password=password, exchange_type="sale")


# --- query / success ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_query_sends_issued_invoices_in_windows_1251(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    invoice = make_invoice(shop)
    draft = make_invoice(shop, issue=False)
    result = onec.sale_exchange(confirm=False)
    query = result.query
    assert query is not None and query.http_status == 200
    assert query.raw.startswith(b'<?xml version="1.0" encoding="windows-1251"?>')
    assert query.charset == "windows-1251" and int(query.content_length) == len(query.raw)
    assert "Дрель ударная" in query.raw.decode("windows-1251")

    orders = orders_of(query.raw)
    assert [o.number for o in orders] == [invoice.number]  # the draft is not an order yet
    order = orders[0]
    assert order.id == order_id(onec_connection(onec), invoice)
    assert order.operation == "Заказ товара" and order.role == "Продавец"
    assert order.total == invoice.total == Decimal("3500.00") and order.currency == "RUB"
    assert order.vat_included is True and order.vat_total == invoice.vat_amount
    party = order.parties[0]
    customer = shop["customer"]
    assert (party.inn, party.kpp, party.full_name) == (customer.inn, customer.kpp, customer.full_name)
    assert party.address == customer.legal_address
    assert {c.value for c in party.contacts} == {"+7 495 123-45-67", "buy@romashka.ru"}
    product_line, delivery = order.lines
    assert product_line.product_id == "1c-product-1" and product_line.quantity == Decimal("2")
    assert product_line.price == Decimal("1500.00") and product_line.amount == Decimal("3000.00")
    assert product_line.vat_rate == VatRate.VAT_22 and product_line.unit is not None
    assert product_line.unit.code == "796"
    assert delivery.product_id == "" and delivery.name == "Доставка"
    assert order.requisites["Статуса заказа ИД"] == InvoiceStatus.ISSUED
    assert not OrderState.objects.filter(invoice=draft).exists()


def onec_connection(onec: OneCEmulator) -> Any:
    from sdelka.exchange.models import Connection

    return Connection.objects.get(login=onec.login)


@pytest.mark.django_db
def test_without_success_the_same_orders_come_again_with_the_same_id(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    invoice = make_invoice(shop)
    first = onec.sale_exchange(confirm=False).query
    second = onec.sale_exchange(confirm=True).query
    assert first is not None and second is not None
    assert [o.id for o in orders_of(first.raw)] == [o.id for o in orders_of(second.raw)]
    assert ExternalRef.objects.filter(kind=RefKind.ORDER, object_id=invoice.pk).count() == 1

    # Confirmed: not offered again …
    third = onec.sale_exchange().query
    assert third is not None and orders_of(third.raw) == []
    assert b"<\xca\xee\xec\xec\xe5\xf0\xf7\xe5\xf1\xea\xe0\xff\xc8\xed\xf4\xee\xf0\xec\xe0\xf6\xe8\xff" in third.raw

    # … until it changes in Sdelka; then again under the same Ид.
    sales.update_invoice(user=shop["user"], invoice=invoice, comment="Позвонить перед доставкой")
    fourth = onec.sale_exchange().query
    assert fourth is not None
    again = orders_of(fourth.raw)
    assert [o.id for o in again] == [orders_of(first.raw)[0].id]
    assert again[0].comment == "Позвонить перед доставкой"


@pytest.mark.django_db
def test_a_query_of_several_chunks_offers_each_invoice_once(
    onec: OneCEmulator, shop: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdelka.exchange.commerceml import writer_orders

    monkeypatch.setattr(writer_orders, "CHUNK", 2)
    monkeypatch.setattr(writer_orders, "ANALYZE_AFTER", 3)
    invoices = [make_invoice(shop, quantity=str(n)) for n in range(1, 6)]
    first = onec.sale_exchange(confirm=False).query
    assert first is not None
    orders = orders_of(first.raw)
    assert [o.number for o in orders] == [i.number for i in invoices]
    assert [o.lines[0].quantity for o in orders] == [Decimal(n) for n in range(1, 6)]
    assert len({o.id for o in orders}) == 5
    assert OrderState.objects.filter(sent_version__isnull=False).count() == 5

    second = onec.sale_exchange().query  # the same five under the same ids, then confirmed
    assert second is not None and [o.id for o in orders_of(second.raw)] == [o.id for o in orders]
    assert ExternalRef.objects.filter(kind=RefKind.ORDER).count() == 5
    third = onec.sale_exchange().query
    assert third is not None and orders_of(third.raw) == []


@pytest.mark.django_db
def test_utf8_with_bom_when_the_connection_says_so(
    onec: OneCEmulator, shop: dict[str, Any], site_connection: Any
) -> None:
    site_connection.options = {"sale_encoding": "utf-8"}
    site_connection.save()
    customer = shop["customer"]
    customer.name = "ООО «Ёлка ™»"
    customer.save()
    make_invoice(shop)
    query = onec.sale_exchange().query
    assert query is not None
    assert query.raw.startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>')
    assert query.charset == "utf-8"
    assert orders_of(query.raw)[0].parties[0].name == "ООО «Ёлка ™»"


@pytest.mark.django_db
def test_windows_1251_keeps_characters_it_cannot_hold(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    customer = shop["customer"]
    customer.name = "ООО «Ёлка ™ 中»"
    customer.save()
    make_invoice(shop)
    query = onec.sale_exchange().query
    assert query is not None
    assert b"&#20013;" in query.raw
    assert orders_of(query.raw)[0].parties[0].name == "ООО «Ёлка ™ 中»"


@pytest.mark.django_db
def test_info_lists_statuses(onec: OneCEmulator) -> None:
    onec.type = "sale"
    onec.checkauth()
    response = onec.get_raw("info")
    assert response.status_code == 200 and "windows-1251" in response["Content-Type"]
    body = b"".join(response.streaming_content).decode("windows-1251")
    assert "<Cтатусы>" in body and "<Ид>paid</Ид>" in body


# --- 1C's answer ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_answer_marks_paid_in_full_and_shipped(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    invoice = make_invoice(shop)
    connection = onec_connection(onec)
    onec.sale_exchange()
    doc = answer_doc(
        order_id(connection, invoice),
        invoice.number,
        number_1c="ТДЦУ-000042",
        reqs={
            "Проведен": "true",
            "Номер оплаты по 1С": "ПП-17",
            "Дата оплаты по 1С": "2026-03-03T12:00:00",
            "Номер отгрузки по 1С": "РТУ-5",
            "Дата отгрузки по 1С": "2026-03-04T09:30:00",
        },
    )
    result = onec.sale_exchange({"orders.xml": answer_file(doc)})
    assert result.imports["orders.xml"].status == "success", result.imports["orders.xml"].text
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.paid_amount == invoice.total
    assert invoice.shipped_date == dt.date(2026, 3, 4)
    state = OrderState.objects.get(connection=connection, invoice=invoice)
    assert (state.number_1c, state.date_1c, state.posted) == ("ТДЦУ-000042", dt.date(2026, 3, 2), True)
    assert (state.payment_number, state.shipment_number) == ("ПП-17", "РТУ-5")
    payment = Payment.objects.get()
    assert payment.source == PaymentSource.ONEC and payment.number == "ПП-17"
    assert payment.date == dt.date(2026, 3, 3)
    note = Note.objects.get(counterparty=shop["customer"])
    assert "ТДЦУ-000042" in note.text and "ПП-17" in note.text

    # 1C's own change is not echoed back to it; the same answer again changes nothing.
    query = onec.sale_exchange({"orders.xml": answer_file(doc)}).query
    assert query is not None and orders_of(query.raw) == []
    assert Payment.objects.count() == 1 and Note.objects.count() == 1


@pytest.mark.django_db
def test_payment_sub_documents_with_sums(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    invoice = make_invoice(shop)
    connection = onec_connection(onec)
    onec.sale_exchange()
    payment_doc = (
        "<ПодчиненныеДокументы><ПодчиненныйДокумент><Ид>pay-guid-1</Ид><Номер>ПКО-3</Номер>"
        "<Дата>2026-03-05</Дата><ХозОперация>Выплата безналичных денег</ХозОперация><Сумма>1000.00</Сумма>"
        f"{requisites({'Оплачен': 'true'})}</ПодчиненныйДокумент></ПодчиненныеДокументы>"
    )
    doc = answer_doc(order_id(connection, invoice), invoice.number, extra=payment_doc)
    for _round in range(2):  # idempotent: the same payment twice is one payment
        result = onec.sale_exchange({"orders.xml": answer_file(doc)})
        assert result.imports["orders.xml"].status == "success", result.imports["orders.xml"].text
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTLY_PAID and invoice.paid_amount == Decimal("1000.00")
    assert Payment.objects.get().amount == Decimal("1000.00")


@pytest.mark.django_db
def test_fixture_to_xml_is_applied_to_our_order(onec: OneCEmulator, shop: dict[str, Any], site_connection: Any) -> None:
    """1C's own example answer (to.xml: paid, delivered) for the order Sdelka sent as Ид 20."""
    invoice = make_invoice(shop)
    ExternalRef.objects.create(
        connection=site_connection,
        kind=RefKind.ORDER,
        external_id="20",
        content_type=ContentType.objects.get_for_model(Invoice),
        object_id=invoice.pk,
    )
    data = fixtures_dir("commerceml", "carono__yii2-1c-exchange", "to.xml").read_bytes()
    result = onec.sale_exchange({"to.xml": data})
    assert result.imports["to.xml"].status == "success", result.imports["to.xml"].text
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID
    state = OrderState.objects.get(invoice=invoice)
    assert state.payment_number == "ТК000000026" and state.status_name == "[F] Доставлен"
    assert state.payment_date is not None and state.paid is True


@pytest.mark.django_db
def test_fixture_to_xml_as_an_order_made_in_1c(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    data = fixtures_dir("commerceml", "carono__yii2-1c-exchange", "to.xml").read_bytes()
    result = onec.sale_exchange({"to.xml": data})
    assert result.imports["to.xml"].status == "success", result.imports["to.xml"].text
    invoice = Invoice.objects.get()
    assert invoice.counterparty.name == "Петр Петров" and invoice.counterparty.kind == "person"
    assert invoice.total == Decimal("9683.42") and invoice.lines.count() == 2
    assert invoice.status == InvoiceStatus.PAID
    assert OrderState.objects.get(invoice=invoice).origin == OrderOrigin.ONEC
    # An order that came from 1C is not sent back to it.
    query = onec.sale_exchange().query
    assert query is not None and orders_of(query.raw) == []


@pytest.mark.django_db
def test_fixture_documents_example_updates_by_site_number(
    onec: OneCEmulator, shop: dict[str, Any], site_connection: Any
) -> None:
    """Real УТ output (documents-example.xml): Номер is the site's number, Номер1С 1C's own."""
    invoices = [make_invoice(shop) for _i in range(3)]
    onec.sale_exchange()
    data = fixtures_dir("commerceml", "ArgentCrusade__commerceml", "documents-example.xml").read_bytes()
    numbers = {o.number for o in orders_of(data)}
    Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(number="0")
    matched = [number for number in numbers if number]
    for invoice, number in zip(invoices, sorted(matched), strict=False):
        Invoice.objects.filter(pk=invoice.pk).update(number=number)
    result = onec.sale_exchange({"documents.xml": data})
    assert result.imports["documents.xml"].status == "success", result.imports["documents.xml"].text
    states = OrderState.objects.filter(connection=site_connection).exclude(number_1c="")
    assert states.count() == len(matched)
    assert all(state.posted is not None for state in states)


# --- orders made in 1C and counterparties ----------------------------------------------------------------


@pytest.mark.django_db
def test_order_made_in_1c_becomes_an_invoice_of_the_right_counterparty(
    onec: OneCEmulator, shop: dict[str, Any]
) -> None:
    customer = shop["customer"]
    doc = answer_doc(
        "1c-order-guid",
        "ТДЦУ-000077",
        number_1c="ТДЦУ-000077",
        extra=party_xml("1c-party-guid", "Ромашка", customer.inn, customer.kpp) + LINES_XML,
    )
    result = onec.sale_exchange({"orders.xml": answer_file(doc)})
    assert result.imports["orders.xml"].status == "success", result.imports["orders.xml"].text
    invoice = Invoice.objects.get()
    assert invoice.counterparty == customer and invoice.status == InvoiceStatus.ISSUED
    line = invoice.lines.get()
    assert line.product == shop["product"] and line.quantity == Decimal("3") and invoice.total == Decimal("3000.00")
    assert OrderState.objects.get(invoice=invoice).number_1c == "ТДЦУ-000077"
    assert ExternalRef.objects.filter(kind=RefKind.COUNTERPARTY, external_id="1c-party-guid").exists()
    assert "ТДЦУ-000077" in Note.objects.get(counterparty=customer).text


@pytest.mark.django_db
def test_two_bases_share_one_counterparty_by_inn_kpp(
    client: Client, shop: dict[str, Any], huey_immediate: Any, exchange_media: Any
) -> None:
    first = create_connection(
        name="УТ Москва", login="msk", password="password-msk", options={"match_counterparties_by_inn_kpp": True}
    )
    second = create_connection(
        name="УТ Питер", login="spb", password="password-spb", options={"match_counterparties_by_inn_kpp": True}
    )
    party = party_xml("party-A", "ООО «Новый клиент»", "7707083893", "773601001")
    for login, password, doc_id, party_id in (
        ("msk", "password-msk", "order-msk", "party-A"),
        ("spb", "password-spb", "order-spb", "party-B"),
    ):
        doc = answer_doc(doc_id, doc_id, extra=party.replace("party-A", party_id) + LINES_XML)
        result = emulator(client, login, password).sale_exchange({"orders.xml": answer_file(doc)})
        assert result.imports["orders.xml"].status == "success", result.imports["orders.xml"].text
    assert Counterparty.objects.filter(inn="7707083893").count() == 1
    company = Counterparty.objects.get(inn="7707083893")
    assert company.kpp == "773601001" and company.invoices.count() == 2
    refs = ExternalRef.objects.filter(kind=RefKind.COUNTERPARTY, object_id=company.pk)
    assert {(ref.connection_id, ref.external_id) for ref in refs} == {(first.pk, "party-A"), (second.pk, "party-B")}


@pytest.mark.django_db
def test_without_the_option_an_existing_company_is_refused_not_duplicated(
    onec: OneCEmulator, shop: dict[str, Any], site_connection: Any
) -> None:
    site_connection.options = {"match_counterparties_by_inn_kpp": False}
    site_connection.save()
    customer = shop["customer"]
    doc = answer_doc("1c-order", "1", extra=party_xml("p", "Ромашка", customer.inn, customer.kpp) + LINES_XML)
    result = onec.sale_exchange({"orders.xml": answer_file(doc)})
    answer = result.imports["orders.xml"]
    assert answer.status == "failure" and "ИНН+КПП" in answer.text
    assert Counterparty.objects.filter(inn=customer.inn).count() == 1 and not Invoice.objects.exists()


# --- bad input -------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'<?xml version="1.0" encoding="UTF-8"?><\xd0\x9a\xd0\xbe\xd0\xbc', "orders.xml"),
        (answer_file(answer_doc("nobody-knows", "999", reqs={"Проведен": "true"})), "nobody-knows"),
        (answer_file(answer_doc("1c-neg", "5", total="-10.00", extra=LINES_XML)), "-10.00"),
    ],
    ids=["broken-xml", "unknown-order", "negative-sum"],
)
def test_bad_answers_fail_and_change_nothing(
    onec: OneCEmulator, shop: dict[str, Any], body: bytes, needle: str
) -> None:
    invoice = make_invoice(shop)
    connection = onec_connection(onec)
    onec.sale_exchange()
    good = answer_doc(order_id(connection, invoice), invoice.number, reqs={"Дата оплаты по 1С": "2026-03-03"})
    # A good document before the bad one: nothing of the file may stay applied.
    data = (
        body
        if body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><\xd0')
        else body.replace("<Документ>".encode(), (good + "<Документ>").encode(), 1)
    )
    result = onec.sale_exchange({"orders.xml": data})
    answer = result.imports["orders.xml"]
    assert answer.status == "failure" and needle in answer.text, answer.text
    assert any(needle in message for message in errors())
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED and invoice.paid_amount == 0
    assert not Payment.objects.exists() and not Note.objects.exists()
    # The next exchange works.
    fixed = onec.sale_exchange({"orders.xml": answer_file(good)})
    assert fixed.imports["orders.xml"].status == "success"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


# --- the old order protocol (no version at init): import within mode=file ---------------------------------


@pytest.fixture
def old_onec(client: Client, site_connection: Any) -> OneCEmulator:
    """An old 1C (УТ 10.3); no background worker runs: the import must happen within mode=file."""
    from tests.onec_fixtures import SITE_LOGIN, SITE_PASSWORD

    return OneCEmulator.old_1c(client, login=SITE_LOGIN, password=SITE_PASSWORD, exchange_type="sale")


def paid_and_shipped(connection: Any, invoice: Invoice) -> bytes:
    return answer_file(
        answer_doc(
            order_id(connection, invoice),
            invoice.number,
            number_1c="ТДЦУ-000007",
            reqs={"Дата оплаты по 1С": "2026-03-03 12:00:00", "Дата отгрузки по 1С": "2026-03-04T09:30:00"},
        )
    )


@pytest.mark.django_db
def test_old_1c_gets_its_file_imported_within_mode_file(old_onec: OneCEmulator, shop: dict[str, Any]) -> None:
    invoice = make_invoice(shop)
    first = old_onec.sale_exchange()
    assert first.init is not None and first.init.lines == ["zip=yes", f"file_limit={8 * 1024 * 1024}"]
    assert first.query is not None and [o.number for o in orders_of(first.query.raw)] == [invoice.number]
    assert first.success is not None and first.success.status == "success"
    assert first.complete is None  # an old 1C never says complete …

    old_onec.use_zip = False
    connection = onec_connection(old_onec)
    second = old_onec.sale_exchange({"orders.xml": paid_and_shipped(connection, invoice)})
    answer = second.imports["orders.xml"]  # … and never asks for mode=import: the answer to the file says it all
    assert answer.status == "success" and "orders.xml imported" in answer.text and "1 updated" in answer.text
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID and invoice.shipped_date == dt.date(2026, 3, 4)
    assert OrderState.objects.get(invoice=invoice).number_1c == "ТДЦУ-000007"
    # The first exchange, left without complete, gave way at once to the next one of the same 1C.
    runs = list(ExchangeRun.objects.order_by("id"))
    assert len(runs) == 2 and "without finishing" in runs[0].message


@pytest.mark.django_db
@pytest.mark.parametrize("exact_multiple", [False, True], ids=["short-last-chunk", "exact-multiple"])
def test_old_1c_answer_in_chunks_is_imported_after_the_last_one(
    old_onec: OneCEmulator, shop: dict[str, Any], site_connection: Any, exact_multiple: bool
) -> None:
    invoice = make_invoice(shop)
    old_onec.sale_exchange()
    data = paid_and_shipped(site_connection, invoice)
    if exact_multiple:
        data += b"\n" * (-len(data) % 256)  # 1C can't tell the site which chunk is the last
    site_connection.options = {"file_limit": 256}
    site_connection.save()
    old_onec.use_zip = False
    old_onec.checkauth()
    old_onec.init()
    answers = old_onec.upload("orders.xml", data)
    assert len(answers) > 2 and all(a.lines == ["success"] for a in answers[:-1])
    assert answers[-1].status == "success" and "orders.xml imported" in answers[-1].text
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


@pytest.mark.django_db
def test_old_1c_zipped_answer_is_unpacked_and_imported(old_onec: OneCEmulator, shop: dict[str, Any]) -> None:
    invoice = make_invoice(shop)
    old_onec.sale_exchange()
    result = old_onec.sale_exchange({"orders.xml": paid_and_shipped(onec_connection(old_onec), invoice)})
    answer = result.imports["orders.xml"]
    assert answer.status == "success" and "orders.xml imported" in answer.text, answer.text
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PAID


@pytest.mark.django_db
def test_old_1c_bad_answer_fails_within_mode_file_and_changes_nothing(
    old_onec: OneCEmulator, shop: dict[str, Any]
) -> None:
    invoice = make_invoice(shop)
    old_onec.sale_exchange()
    old_onec.use_zip = False
    bad = answer_file(answer_doc("nobody-knows", "999", reqs={"Проведен": "true"}))
    answer = old_onec.sale_exchange({"orders.xml": bad}).imports["orders.xml"]
    assert answer.status == "failure" and "nobody-knows" in answer.text
    assert any("nobody-knows" in message for message in errors())
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.ISSUED and not Payment.objects.exists()
    good = paid_and_shipped(onec_connection(old_onec), invoice)
    assert old_onec.sale_exchange({"orders.xml": good}).imports["orders.xml"].status == "success"


# --- an exchange left behind without complete ------------------------------------------------------------


def start_query(onec: OneCEmulator) -> Any:
    """checkauth, init, query — then 1C goes quiet (crashed, closed, or simply never says complete)."""
    onec.type = "sale"
    onec.checkauth()
    onec.init()
    return onec.query()


@pytest.mark.django_db
def test_a_new_exchange_of_the_same_1c_takes_over_at_once(
    onec: OneCEmulator, shop: dict[str, Any], client: Client
) -> None:
    invoice = make_invoice(shop)
    left = start_query(onec)
    fresh = emulator(Client(), onec.login, onec.password)
    result = fresh.sale_exchange()
    assert result.query is not None and result.success is not None and result.success.status == "success"
    # The orders the first exchange offered without confirmation come again, under the same Ид.
    assert [o.id for o in orders_of(result.query.raw)] == [o.id for o in orders_of(left.raw)]
    assert OrderState.objects.get(invoice=invoice).confirmed_version is not None
    first, second = ExchangeRun.objects.order_by("id")
    assert "without finishing" in first.message and second.status == RunStatus.SUCCESS
    # The replaced session is told so if it ever speaks again.
    late = onec.success()
    assert late.status == "failure" and "replaced by a newer exchange" in late.text


@pytest.mark.django_db
def test_another_1c_waits_for_a_resting_exchange_then_takes_over(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    make_invoice(shop)
    start_query(onec)  # 1C is storing the orders it got; its success may come any moment
    other = emulator(Client(REMOTE_ADDR="10.0.0.7"), onec.login, onec.password)
    other.checkauth()
    refused = other.init()
    assert refused.status == "failure" and "in progress" in refused.text
    ExchangeSession.objects.filter(ip="127.0.0.1").update(last_seen_at=timezone.now() - RESTING_RELEASE * 2)
    assert other.init().status.startswith("zip=")
    assert other.query().http_status == 200


@pytest.mark.django_db
def test_an_exchange_in_the_middle_is_never_taken_over(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    invoice = make_invoice(shop)
    start_query(onec)
    onec.success()
    onec.use_zip = False
    onec.upload("orders.xml", paid_and_shipped(onec_connection(onec), invoice))  # mode=import is to follow
    same_1c = emulator(Client(), onec.login, onec.password)
    same_1c.checkauth()
    refused = same_1c.init()
    assert refused.status == "failure" and "in progress" in refused.text
    # The first goes on undisturbed and finishes; then the next exchange is welcome.
    assert onec.import_file("orders.xml")[0].status == "success"
    assert onec.complete().status == "success"
    assert same_1c.sale_exchange().complete is not None
    assert ExchangeRun.objects.filter(status=RunStatus.SUCCESS).count() == 2


# --- more of the order exchange: discounts, cancellation, statuses, shipments, encodings -----------------


@pytest.mark.django_db
def test_query_carries_line_discounts_and_the_sums_after_them(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    invoice = sales.create_invoice(
        user=shop["user"],
        organisation=shop["organisation"],
        counterparty=shop["customer"],
        lines=[
            {
                "product": shop["product"],
                "quantity": Decimal("3"),
                "price": Decimal("1000.00"),
                "discount": Decimal("250.00"),
                "vat_rate": "22",
            }
        ],
    )
    sales.issue_invoice(user=shop["user"], invoice=invoice)
    query = onec.sale_exchange().query
    assert query is not None
    line = orders_of(query.raw)[0].lines[0]
    assert (line.price, line.quantity, line.discount, line.amount) == (
        Decimal("1000.00"),
        Decimal("3"),
        Decimal("250.00"),
        Decimal("2750.00"),
    )
    assert orders_of(query.raw)[0].total == Decimal("2750.00")


@pytest.mark.django_db
def test_cancelled_invoice_goes_to_1c_only_if_1c_had_it(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    known, unknown = make_invoice(shop), make_invoice(shop)
    sales.cancel_invoice(user=shop["user"], invoice=unknown)  # cancelled before 1C ever saw it
    onec.sale_exchange()
    sales.cancel_invoice(user=shop["user"], invoice=known)
    query = onec.sale_exchange().query
    assert query is not None
    orders = orders_of(query.raw)
    assert [o.number for o in orders] == [known.number]
    assert orders[0].requisites["Отменен"] == "true" and orders[0].status.cancelled is True


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mark",
    [{"reqs": {"Отменен": "true"}}, {"extra": "<ПометкаУдаления>true</ПометкаУдаления>"}],
    ids=["Отменен", "ПометкаУдаления"],
)
def test_order_cancelled_in_1c_cancels_the_invoice(
    onec: OneCEmulator, shop: dict[str, Any], mark: dict[str, Any]
) -> None:
    invoice = make_invoice(shop)
    onec.sale_exchange()
    doc = answer_doc(order_id(onec_connection(onec), invoice), invoice.number, **mark)
    answer = onec.sale_exchange({"orders.xml": answer_file(doc)}).imports["orders.xml"]
    assert answer.status == "success", answer.text
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.CANCELLED
    assert "cancelled in 1C" in Note.objects.get(counterparty=shop["customer"]).text


@pytest.mark.django_db
def test_order_status_from_1c_follows_the_connection_map(
    onec: OneCEmulator, shop: dict[str, Any], site_connection: Any
) -> None:
    site_connection.options = {"order_status_map": {"S": "sent", "[N] Принят": "nonsense"}}
    site_connection.save()
    invoice = make_invoice(shop)
    onec.sale_exchange()
    doc = answer_doc(
        order_id(site_connection, invoice),
        invoice.number,
        reqs={"Статуса заказа ИД": "S", "Статус заказа": "Отгружается"},
    )
    assert onec.sale_exchange({"orders.xml": answer_file(doc)}).imports["orders.xml"].status == "success"
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.SENT
    state = OrderState.objects.get(invoice=invoice)
    assert (state.status_id, state.status_name) == ("S", "Отгружается")
    # A map entry naming no invoice status is reported, not applied.
    doc = answer_doc(order_id(site_connection, invoice), invoice.number, reqs={"Статус заказа": "[N] Принят"})
    assert onec.sale_exchange({"orders.xml": answer_file(doc)}).imports["orders.xml"].status == "success"
    assert ExchangeEvent.objects.filter(level=EventLevel.WARNING, message__contains="nonsense").exists()
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.SENT


def shipment_doc(base: str, *, shipped: str = "true") -> str:
    return (
        "<Документ><Ид>ship-guid-1</Ид><Номер>РТУ-12</Номер><Дата>2026-03-06</Дата><Время>11:00:00</Время>"
        f"<ХозОперация>Отпуск товара</ХозОперация><Роль>Продавец</Роль><Валюта>RUB</Валюта><Сумма>3500.00</Сумма>"
        f"<Основание>{base}</Основание>{LINES_XML}{requisites({'Отгружен': shipped})}</Документ>"
    )


@pytest.mark.django_db
def test_shipment_document_of_its_own_ships_the_order_and_makes_no_invoice(
    onec: OneCEmulator, shop: dict[str, Any]
) -> None:
    invoice = make_invoice(shop)
    onec.sale_exchange()
    answer = onec.sale_exchange({"orders.xml": answer_file(shipment_doc(invoice.number))}).imports["orders.xml"]
    assert answer.status == "success", answer.text
    invoice.refresh_from_db()
    assert invoice.shipped_date == dt.date(2026, 3, 6) and Invoice.objects.count() == 1
    state = OrderState.objects.get(invoice=invoice)
    assert state.shipped is True and state.shipment_number == "РТУ-12"
    # Not shipped after all: nothing; unknown order: the file is refused.
    assert onec.sale_exchange({"orders.xml": answer_file(shipment_doc(invoice.number, shipped="false"))})
    refused = onec.sale_exchange({"orders.xml": answer_file(shipment_doc("НЕТ-1"))}).imports["orders.xml"]
    assert refused.status == "failure" and "НЕТ-1" in refused.text and Invoice.objects.count() == 1


def sub_shipment(doc_id: str, number: str, day: str, **reqs: str) -> str:
    return (
        f"<ПодчиненныйДокумент><Ид>{doc_id}</Ид><Номер>{number}</Номер><Дата>{day}</Дата><Время>12:00:00</Время>"
        f"<ХозОперация>Отпуск товара</ХозОперация><Сумма>3500.00</Сумма>{requisites(reqs)}</ПодчиненныйДокумент>"
    )


@pytest.mark.django_db
def test_shipment_sub_documents_of_an_order_ship_the_invoice(onec: OneCEmulator, shop: dict[str, Any]) -> None:
    """CommerceML 2.10: 1C puts the shipments made on the order inside it (ПодчиненныеДокументы); the latest one
    that is not cancelled gives the shipment number and date."""
    invoice = make_invoice(shop)
    connection = onec_connection(onec)
    onec.sale_exchange()
    subs = (
        sub_shipment("ship-1", "РТУ-7", "2026-03-05")
        + sub_shipment("ship-2", "РТУ-8", "2026-03-07")
        + sub_shipment("ship-3", "РТУ-9", "2026-03-09", Отменен="true")
    )
    doc = answer_doc(
        order_id(connection, invoice), invoice.number, extra=f"<ПодчиненныеДокументы>{subs}</ПодчиненныеДокументы>"
    )
    answer = onec.sale_exchange({"orders.xml": answer_file(doc)}).imports["orders.xml"]
    assert answer.status == "success", answer.text
    invoice.refresh_from_db()
    assert invoice.shipped_date == dt.date(2026, 3, 7)
    state = OrderState.objects.get(connection=connection, invoice=invoice)
    assert (state.shipped, state.shipment_number) == (True, "РТУ-8")
    assert state.shipment_date is not None and state.shipment_date.date() == dt.date(2026, 3, 7)
    assert "РТУ-8" in Note.objects.get(counterparty=shop["customer"]).text
    # The same answer again changes nothing.
    assert onec.sale_exchange({"orders.xml": answer_file(doc)}).imports["orders.xml"].status == "success"
    assert Note.objects.filter(counterparty=shop["customer"]).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("encode", "ok"),
    [
        (lambda text: text.encode("windows-1251"), True),
        (lambda text: b"\xef\xbb\xbf" + text.replace("windows-1251", "UTF-8").encode(), True),
        (lambda text: text.replace("windows-1251", "UTF-8").encode("windows-1251"), False),
    ],
    ids=["windows-1251", "utf-8-bom", "declared-utf-8-but-1251"],
)
def test_answer_file_encodings(onec: OneCEmulator, shop: dict[str, Any], encode: Any, ok: bool) -> None:
    invoice = make_invoice(shop)
    onec.sale_exchange()
    doc = answer_doc(order_id(onec_connection(onec), invoice), invoice.number, number_1c="ТДЦУ-000099")
    text = (
        '<?xml version="1.0" encoding="windows-1251"?>\n'
        f'<КоммерческаяИнформация ВерсияСхемы="2.05" ДатаФормирования="2026-03-02T10:00:00">{doc}'
        "</КоммерческаяИнформация>"
    )
    answer = onec.sale_exchange({"orders.xml": encode(text)}).imports["orders.xml"]
    state = OrderState.objects.get(invoice=invoice)
    if ok:
        assert answer.status == "success", answer.text
        assert state.number_1c == "ТДЦУ-000099"
    else:
        assert answer.status == "failure" and "orders.xml" in answer.text
        assert state.number_1c == ""


@pytest.mark.django_db
def test_a_failing_query_answers_protocol_text(onec: OneCEmulator, shop: dict[str, Any], monkeypatch: Any) -> None:
    make_invoice(shop)

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr("sdelka.exchange.commerceml.protocol.export_orders", broken)
    query = onec.sale_exchange(confirm=False).query
    assert query is not None and query.http_status == 200
    assert query.content_type.startswith("text/plain")
    assert query.raw.startswith(b"failure\n") and b"<html" not in query.raw.lower()
    assert any("mode=query" in message for message in errors())


@pytest.mark.django_db
def test_behind_a_proxy_1c_computers_are_told_apart_by_x_forwarded_for(
    onec: OneCEmulator, shop: dict[str, Any], settings: Any
) -> None:
    settings.USE_X_FORWARDED_HOST = True  # SDELKA_BEHIND_PROXY
    make_invoice(shop)
    first = emulator(Client(HTTP_X_FORWARDED_FOR="10.1.1.1, 10.0.0.5"), onec.login, onec.password)
    start_query(first)
    # Through the same proxy (same REMOTE_ADDR), but another 1C computer: it waits.
    other = emulator(Client(HTTP_X_FORWARDED_FOR="10.0.0.6"), onec.login, onec.password)
    other.checkauth()
    assert other.init().status == "failure"
    # The same computer again: it takes over at once.
    again = emulator(Client(HTTP_X_FORWARDED_FOR="10.0.0.5"), onec.login, onec.password)
    assert again.sale_exchange().complete is not None
    assert set(ExchangeSession.objects.values_list("ip", flat=True)) == {"10.0.0.5", "10.0.0.6"}
