"""Documents and registers through OData, end to end against the fake 1C and through `sdelka sync run`: invoices
(БП СчетНаОплатуПокупателю, УТ ЗаказКлиента) with their rows both ways, posting and 1C's refusal, read-back
mismatches, incoming payments allocated to invoices (and not duplicated when a bank statement brought them
first), prices from the price register, counterparty debt from the settlement registers, and the dry run."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from sdelka.catalog.models import Price, PriceType, Product
from sdelka.exchange.models import Connection, ExchangeEvent, ExternalRef, RefKind
from sdelka.exchange.odata import values as v
from sdelka.exchange.odata.models import CounterpartyDebt, SyncTask
from sdelka.exchange.odata.services import check_connection, create_odata_connection, load_preset
from sdelka.parties.models import ContactPerson, Counterparty, CounterpartyBankAccount
from sdelka.sales import services as sales
from sdelka.sales.models import Invoice, InvoiceStatus, Organisation, Payment, PaymentSource
from tests import fake_odata
from tests.factories import make_inn10
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings, serve

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("odata_settings")]
__all__ = ["fake_bp30", "odata_settings"]

RNG = random.Random(11)
INVOICES = "Document_СчетНаОплатуПокупателю"
RECEIPTS = "Document_ПоступлениеНаРасчетныйСчет"
KONTRAGENT = "StandardODATA.Catalog_Контрагенты"
ACCOUNT = "40702810938000012345"  # valid for БИК 044525225


def run(connection: str, *args: str) -> list[dict[str, Any]]:
    out = io.StringIO()
    with contextlib.suppress(CommandError):  # a failed run exits non-zero; its summary is still printed
        call_command("sync", "run", connection, "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def rule_of(results: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(rule for result in results for rule in result["rules"] if rule["rule"] == name)


def _party(fake: FakeOneC, name: str) -> dict[str, Any]:
    inn = make_inn10(RNG)
    return fake.add(
        "Catalog_Контрагенты",
        Description=name,
        ИНН=inn.ljust(12),
        КПП=inn[:4] + "01001",
        ЮридическоеФизическоеЛицо="ЮридическоеЛицо",
    )


def seed_bp(fake: FakeOneC) -> dict[str, Any]:
    chart_of_accounts(fake)
    piece = fake.add("Catalog_КлассификаторЕдиницИзмерения", Code="796", Description="шт")
    inn = make_inn10(RNG)
    org = fake.add("Catalog_Организации", Description="ООО Наша", ИНН=inn, КПП=inn[:4] + "01001")
    rub = fake.add("Catalog_Валюты", Code="643", Description="руб.")
    buyer = _party(fake, "ООО Покупатель")
    nails = fake.add(
        "Catalog_Номенклатура", Description="Гвозди", ЕдиницаИзмерения_Key=piece["Ref_Key"], СтавкаНДС="НДС22"
    )
    delivery = fake.add(
        "Catalog_Номенклатура",
        Description="Доставка",
        Услуга=True,
        ЕдиницаИзмерения_Key=piece["Ref_Key"],
        СтавкаНДС="БезНДС",
    )
    retail = fake.add("Catalog_ТипыЦенНоменклатуры", Description="Розничная", ЦенаВключаетНДС=True)
    prices = "InformationRegister_ЦеныНоменклатуры"
    fake.add(prices, Period="2026-01-01T00:00:00", ТипЦен_Key=retail["Ref_Key"], Номенклатура_Key=nails["Ref_Key"],
             Цена=Decimal("110"))  # fmt: skip
    fake.add(prices, Period="2026-06-01T00:00:00", ТипЦен_Key=retail["Ref_Key"], Номенклатура_Key=nails["Ref_Key"],
             Цена=Decimal("122.50"))  # fmt: skip
    invoice = fake.add(
        INVOICES,
        Number="0000-000017",
        Date="2026-11-20T10:00:00",
        Организация_Key=org["Ref_Key"],
        Контрагент_Key=buyer["Ref_Key"],
        ВалютаДокумента_Key=rub["Ref_Key"],
        СуммаВключаетНДС=True,
        СуммаДокумента=Decimal("3665"),
        Товары=[
            {
                "LineNumber": 1,
                "Номенклатура_Key": nails["Ref_Key"],
                "Содержание": "Гвозди",
                "Количество": Decimal(10),
                "Цена": Decimal("122.50"),
                "Сумма": Decimal("1225"),
                "СтавкаНДС": "НДС22",
                "СуммаНДС": Decimal("220.90"),
            },
            {
                "LineNumber": 2,
                "Номенклатура_Key": delivery["Ref_Key"],
                "Содержание": "Доставка",
                "Количество": Decimal(1),
                "Цена": Decimal(2440),
                "Сумма": Decimal(2440),
                "СтавкаНДС": "БезНДС",
                "СуммаНДС": Decimal(0),
            },
        ],
    )
    bank = fake.add("Catalog_Банки", Code="044525225", Description="ПАО СБЕРБАНК", КоррСчет="30101810400000000225")
    fake.add("Catalog_БанковскиеСчета", Owner=buyer["Ref_Key"], Owner_Type=KONTRAGENT, Банк_Key=bank["Ref_Key"],
             НомерСчета=ACCOUNT, Description="Основной")  # fmt: skip
    fake.add("Catalog_БанковскиеСчета", Owner=org["Ref_Key"], Owner_Type="StandardODATA.Catalog_Организации",
             Банк_Key=bank["Ref_Key"], НомерСчета="40702810900000000001")  # fmt: skip
    fake.add("Catalog_КонтактныеЛица", ОбъектВладелец=buyer["Ref_Key"], ОбъектВладелец_Type=KONTRAGENT,
             Description="Смирнова Анна", Фамилия="Смирнова", Имя="Анна", Отчество="Петровна",
             ДолжностьПоВизитке="Главный бухгалтер", ДатаРождения="1985-03-08T00:00:00")  # fmt: skip
    return {"org": org, "rub": rub, "buyer": buyer, "nails": nails, "delivery": delivery, "invoice": invoice}


def receipt(fake: FakeOneC, data: dict[str, Any], amount: str, number: str = "125", **rows: Any) -> dict[str, Any]:
    return fake.add(
        RECEIPTS,
        **{"Date": "2026-11-21T00:00:00", "Posted": True, **rows},
        ВидОперации="ОплатаПокупателя",
        Организация_Key=data["org"]["Ref_Key"],
        Контрагент=data["buyer"]["Ref_Key"],
        Контрагент_Type=KONTRAGENT,
        ВалютаДокумента_Key=data["rub"]["Ref_Key"],
        СуммаДокумента=Decimal(amount),
        НомерВходящегоДокумента=number,
        НазначениеПлатежа=f"Оплата по счету 17 от 20.11.2026, сумма {amount}",
        РасшифровкаПлатежа=[
            {"LineNumber": 1, "СчетНаОплату_Key": data["invoice"]["Ref_Key"], "СуммаПлатежа": Decimal(amount)}
        ],
    )


def chart_of_accounts(fake: FakeOneC) -> dict[str, dict[str, Any]]:
    names = {"62": "Расчеты с покупателями", "62.01": "Расчеты с покупателями и заказчиками",
             "51": "Расчетные счета", "90.01.1": "Выручка"}  # fmt: skip
    return {code: fake.add("ChartOfAccounts_Хозрасчетный", Code=code, Description=name) for code, name in names.items()}


def ledger(fake: FakeOneC, buyer: str) -> None:
    accounts = {v.text(a["Code"]): a for a in fake.data["ChartOfAccounts_Хозрасчетный"].values()}
    a6201, a51, a90 = accounts["62.01"], accounts["51"], accounts["90.01.1"]
    register = "AccountingRegister_Хозрасчетный"
    sale, pay = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    fake.add(register, Recorder_Key=sale, LineNumber=1, Period="2026-11-20T12:00:00", AccountDr_Key=a6201["Ref_Key"],
             AccountCr_Key=a90["Ref_Key"], ExtDimensionDr1=buyer, ExtDimensionDr1_Type=KONTRAGENT,
             Сумма=Decimal("3665"))  # fmt: skip
    fake.add(register, Recorder_Key=pay, LineNumber=1, Period="2026-11-21T00:00:00", AccountDr_Key=a51["Ref_Key"],
             AccountCr_Key=a6201["Ref_Key"], ExtDimensionCr1=buyer, ExtDimensionCr1_Type=KONTRAGENT,
             Сумма=Decimal("1000"))  # fmt: skip


@pytest.fixture
def bp(fake: FakeOneC) -> Connection:
    connection = create_odata_connection(name="bp", url=fake.base_url, login=fake.login, password=fake.password)
    assert check_connection(connection=connection).ok
    connection.options = {**connection.options, "retries": 1}
    connection.save(update_fields=["options"])
    load_preset(connection=connection, preset="bp30-documents")
    return connection


def test_bp30_invoices_payments_prices_and_debt_from_1c(fake: FakeOneC, bp: Connection) -> None:
    data = seed_bp(fake)
    receipt(fake, data, "1000")
    ledger(fake, data["buyer"]["Ref_Key"])
    results = run("bp")
    assert [r["status"] for r in results] == ["success", "success"], results

    invoice = Invoice.objects.get()
    assert invoice.counterparty.name == "ООО Покупатель" and invoice.organisation.name == "ООО Наша"
    assert invoice.currency_id == "RUB" and invoice.date == dt.date(2026, 11, 20)
    assert [(line.product.name, line.quantity, line.price, line.vat_rate) for line in invoice.lines.all()] == [
        ("Гвозди", Decimal("10.000"), Decimal("122.50"), "22"),
        ("Доставка", Decimal("1.000"), Decimal("2440.00"), "none"),
    ]
    assert invoice.total == Decimal("3665.00")
    ref = ExternalRef.objects.get(kind=RefKind.INVOICE)
    assert ref.external_id == data["invoice"]["Ref_Key"] and ref.code == "0000-000017"
    assert "0000-000017" in invoice.comment

    payment = Payment.objects.get()
    assert payment.source == PaymentSource.ONEC and payment.number == "125" and payment.amount == Decimal(1000)
    assert payment.allocations.get().invoice == invoice
    invoice.refresh_from_db()
    assert invoice.status == InvoiceStatus.PARTLY_PAID and invoice.paid_amount == Decimal(1000)

    price = Price.objects.get()
    assert price.value == Decimal("122.50") and price.product.name == "Гвозди"  # the last slice, not the older
    assert PriceType.objects.get().name == "Розничная"

    account = CounterpartyBankAccount.objects.get()  # the organisation's own account is not a counterparty's
    assert (account.counterparty, account.number, account.bik) == (invoice.counterparty, ACCOUNT, "044525225")
    assert account.bank_name == "ПАО СБЕРБАНК" and account.correspondent_account == "30101810400000000225"
    contact = ContactPerson.objects.get()
    assert str(contact) == "Смирнова Анна Петровна" and contact.position == "Главный бухгалтер"
    assert contact.birthday == dt.date(1985, 3, 8) and contact.counterparty == invoice.counterparty

    debt = CounterpartyDebt.objects.get()
    assert debt.counterparty == invoice.counterparty and debt.amount == Decimal("2665.00")
    assert debt.register == "AccountingRegister_Хозрасчетный" and debt.as_of is not None
    balance_call = next(r for r in fake.requests if "/Balance(" in r.path)
    assert "AccountCondition=" in balance_call.raw_query or "AccountCondition" in balance_call.path

    # Nothing changed in 1C: the second run reads, writes nothing, creates nothing.
    fake.requests.clear()
    again = run("bp")
    assert rule_of(again, "БП: счета покупателям")["unchanged"] == 2  # read: same DataVersion; write: same body
    assert Invoice.objects.count() == 1 and Payment.objects.count() == 1
    assert not [r for r in fake.requests if r.method in ("POST", "PATCH")]


def test_bp30_change_in_1c_dry_run_then_applied(fake: FakeOneC, bp: Connection) -> None:
    data = seed_bp(fake)
    run("bp")
    rows = [dict(row) for row in fake.data[INVOICES][data["invoice"]["Ref_Key"]]["Товары"]]
    rows[0].update(Количество=Decimal(20), Сумма=Decimal(2450))
    fake.change(INVOICES, data["invoice"]["Ref_Key"], Товары=rows, Комментарий="Срочно")
    account = next(a for a in fake.data["Catalog_БанковскиеСчета"].values() if a["НомерСчета"] == ACCOUNT)
    fake.change("Catalog_БанковскиеСчета", account["Ref_Key"], DeletionMark=True)
    assert CounterpartyBankAccount.objects.count() == 1

    dry = run("bp", "--dry-run")
    change = rule_of(dry, "БП: счета покупателям")["changes"][0]
    assert change["action"] == "update" and change["diff"]["lines"] == [2, 2]
    assert change["diff"]["comment"][1] == "Срочно"
    invoice = Invoice.objects.get()
    assert invoice.lines.first().quantity == Decimal(10)  # the dry run wrote nothing

    run("bp")
    invoice.refresh_from_db()
    assert invoice.lines.first().quantity == Decimal(20) and invoice.comment == "Срочно"
    assert invoice.status == InvoiceStatus.ISSUED and invoice.total == Decimal("4890.00")
    assert not CounterpartyBankAccount.objects.exists()  # marked for deletion in 1C


def test_bp30_deleted_in_1c_cancels_a_paid_invoice_never(fake: FakeOneC, bp: Connection) -> None:
    data = seed_bp(fake)
    receipt(fake, data, "500")
    run("bp")
    fake.change(INVOICES, data["invoice"]["Ref_Key"], DeletionMark=True)
    results = run("bp")
    assert results[1]["status"] == "success"
    assert rule_of(results, "БП: счета покупателям")["refused"] == 1
    assert Invoice.objects.get().status == InvoiceStatus.PARTLY_PAID
    event = ExchangeEvent.objects.filter(level="error").latest("id")
    assert "Remove the payments" in event.message


def test_bp30_payment_from_a_bank_statement_is_linked_not_duplicated(fake: FakeOneC, bp: Connection) -> None:
    data = seed_bp(fake)
    run("bp")  # the invoice and the catalogue first
    invoice = Invoice.objects.get()
    from sdelka.exchange.apply_orders import exchange_user

    bank = sales.register_payment(
        user=exchange_user(),
        organisation=invoice.organisation,
        date=dt.date(2026, 11, 21),
        amount="1000.00",
        counterparty=invoice.counterparty,
        source=PaymentSource.BANK,
        number="125",
        purpose="Оплата по счету",
    )
    sales.allocate_payment(user=exchange_user(), payment=bank, invoice=invoice, amount="1000.00")
    receipt(fake, data, "1000")
    results = run("bp")
    assert rule_of(results, "БП: оплаты покупателей")["updated"] == 1
    assert Payment.objects.count() == 1
    bank.refresh_from_db()
    assert bank.source == PaymentSource.BANK and bank.allocated_amount == Decimal(1000)
    assert ExternalRef.objects.get(kind=RefKind.PAYMENT).object_id == bank.pk


def _bank_statement(data: dict[str, Any], *lines: tuple[str, str, str]) -> Any:
    """Import a statement of incoming payments (number, day, amount) from the 1C buyer into our organisation."""
    from sdelka.exchange.clientbank.importer import import_statement

    from .clientbank_helpers import document, statement

    buyer = data["buyer"]
    docs = [
        document(number=number, day=day, amount=amount, payer_inn=buyer["ИНН"].strip(), payer_kpp=buyer["КПП"],
                 payer_account=ACCOUNT, purpose="Оплата по счету 17")
        for number, day, amount in lines
    ]  # fmt: skip
    result = import_statement(
        data=statement(docs, start="01.11.2026", end="30.11.2026").encode("cp1251"),
        user=None,
        organisation=Organisation.objects.get(),
    )
    assert result.ok, result.error
    return result


def test_bank_statement_after_1c_links_to_the_1c_payment(fake: FakeOneC, bp: Connection) -> None:
    from sdelka.exchange.models import BankDocument, BankDocumentStatus

    data = seed_bp(fake)
    receipt(fake, data, "1000")  # 1C's document of 21.11, payment order № 125
    run("bp")
    onec = Payment.objects.get()
    # The bank dates the receipt a day later and writes the number with zeros.
    result = _bank_statement(data, ("000125", "22.11.2026", "1000.00"))
    assert result.linked == 1 and result.payments == []
    assert Payment.objects.get() == onec
    line = BankDocument.objects.get()
    assert line.payment_id == onec.pk and line.status == BankDocumentStatus.LINKED
    onec.refresh_from_db()
    assert onec.payer_account == ACCOUNT and onec.allocated_amount == Decimal(1000)
    invoice = Invoice.objects.get()
    assert invoice.paid_amount == Decimal(1000)  # paid once, not twice
    assert ExchangeEvent.objects.filter(message__contains="already recorded from 1C").count() == 1
    # A second statement with the same line is a duplicate line, the payment is still one.
    _bank_statement(data, ("000125", "22.11.2026", "1000.00"))
    assert Payment.objects.count() == 1


def test_1c_after_bank_statement_links_to_the_bank_payment(fake: FakeOneC, bp: Connection) -> None:
    data = seed_bp(fake)
    run("bp")
    _bank_statement(data, ("125", "20.11.2026", "1000.00"))  # a day before 1C's date
    bank = Payment.objects.get()
    assert bank.source == PaymentSource.BANK
    receipt(fake, data, "1000")
    results = run("bp")
    assert rule_of(results, "БП: оплаты покупателей")["updated"] == 1, results
    assert Payment.objects.get() == bank
    bank.refresh_from_db()
    assert bank.date == dt.date(2026, 11, 20) and bank.source == PaymentSource.BANK  # the bank's date stays
    assert ExternalRef.objects.get(kind=RefKind.PAYMENT).object_id == bank.pk
    assert Invoice.objects.get().paid_amount == Decimal(1000)
    assert ExchangeEvent.objects.filter(message__contains="linked, not recorded again").count() == 1


def test_two_payments_of_one_sum_on_one_day_stay_two(fake: FakeOneC, bp: Connection) -> None:
    """Same payer, sum and day, different payment order numbers: two payments, whichever side comes first."""
    from sdelka.exchange.models import BankDocument, BankDocumentStatus

    data = seed_bp(fake)
    receipt(fake, data, "1000", number="125")
    run("bp")
    _bank_statement(data, ("125", "21.11.2026", "1000.00"), ("126", "21.11.2026", "1000.00"))
    statuses = dict(BankDocument.objects.values_list("number", "status"))
    assert statuses["125"] == BankDocumentStatus.LINKED and statuses["126"] != BankDocumentStatus.LINKED
    assert sorted(Payment.objects.values_list("number", "source")) == [("125", "1c"), ("126", "bank")]
    # 1C's document for № 127 finds only № 126 from the bank (already its own payment, other number): a new one.
    receipt(fake, data, "1000", number="127")
    results = run("bp")
    assert rule_of(results, "БП: оплаты покупателей")["created"] == 1, results
    assert sorted(Payment.objects.values_list("number", flat=True)) == ["125", "126", "127"]


@pytest.mark.parametrize(
    ("withdrawal", "reason"),
    [({"Posted": False}, "1C unposted the document"), ({"Posted": False, "DeletionMark": True}, "marked the document")],
)
def test_payment_unposted_or_deleted_in_1c_is_cancelled_and_the_invoice_released(
    fake: FakeOneC, bp: Connection, withdrawal: dict[str, Any], reason: str
) -> None:
    data = seed_bp(fake)
    document = receipt(fake, data, "3665")
    run("bp")
    payment, invoice = Payment.objects.get(), Invoice.objects.get()
    assert invoice.status == InvoiceStatus.PAID and not payment.cancelled

    fake.change(RECEIPTS, document["Ref_Key"], **withdrawal)
    results = run("bp", "--dry-run")
    assert rule_of(results, "БП: оплаты покупателей")["updated"] == 1, results
    assert not Payment.objects.get().cancelled  # a dry run writes nothing
    results = run("bp")
    assert rule_of(results, "БП: оплаты покупателей")["updated"] == 1, results
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.cancelled and reason in payment.cancel_reason  # kept, marked, never deleted
    assert payment.allocated_amount == 0 and not payment.allocations.exists()
    assert invoice.status == InvoiceStatus.ISSUED and invoice.paid_amount == 0
    event = ExchangeEvent.objects.get(message__contains="is cancelled")
    assert reason in event.message and f"№ {invoice.number}" in event.message and event.level == "warning"
    run("bp")  # nothing more happens to a cancelled payment
    assert Payment.objects.get().cancelled
    assert ExchangeEvent.objects.filter(message__contains="is cancelled").count() == 1

    # Posted again in 1C: valid again and allocated anew.
    fake.change(RECEIPTS, document["Ref_Key"], Posted=True, DeletionMark=False)
    run("bp")
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert not payment.cancelled and payment.allocated_amount == Decimal("3665")
    assert invoice.status == InvoiceStatus.PAID


def test_unposted_1c_payment_never_brought_is_not_created(fake: FakeOneC, bp: Connection) -> None:
    data = seed_bp(fake)
    receipt(fake, data, "1000", Posted=False)
    results = run("bp")
    assert rule_of(results, "БП: оплаты покупателей")["created"] == 0, results
    assert not Payment.objects.exists()


def test_cancelled_payment_cannot_be_allocated(fake: FakeOneC, bp: Connection) -> None:
    from django.core.exceptions import ValidationError

    from sdelka.exchange.apply_orders import exchange_user

    data = seed_bp(fake)
    document = receipt(fake, data, "1000")
    run("bp")
    fake.change(RECEIPTS, document["Ref_Key"], Posted=False)
    run("bp")
    with pytest.raises(ValidationError, match="cancelled"):
        sales.allocate_payment(user=exchange_user(), payment=Payment.objects.get(), invoice=Invoice.objects.get(),
                               amount="10.00")  # fmt: skip


def _sdelka_invoice(connection: Connection) -> Invoice:
    from sdelka.exchange.apply_orders import exchange_user

    user = exchange_user()
    invoice = sales.create_invoice(
        user=user,
        organisation=Organisation.objects.get(),
        counterparty=Counterparty.objects.get(),
        lines=[
            {"product": Product.objects.get(name="Гвозди").pk, "quantity": "3", "price": "100.00"},
            {"description": "Упаковка", "quantity": "1", "price": "50.00", "vat_rate": "22"},
            {"product": Product.objects.get(name="Доставка").pk, "quantity": "1", "price": "500.00"},
        ],
        date=dt.date(2026, 11, 25),
    )
    return sales.issue_invoice(user=user, invoice=invoice)


def test_bp30_invoice_to_1c_with_rows_posted_and_read_back(fake: FakeOneC, bp: Connection) -> None:
    seed_bp(fake)
    del fake.data[INVOICES][next(iter(fake.data[INVOICES]))]  # only the catalogue from 1C
    run("bp")
    SyncTask.objects.filter(name="БП 3.0: учёт счетов, оплат и долгов").update(post_documents=True)
    invoice = _sdelka_invoice(bp)
    results = run("bp", "--task", "БП 3.0: учёт счетов, оплат и долгов")
    assert rule_of(results, "БП: счета покупателям")["created"] == 1, results
    stored = next(iter(fake.data[INVOICES].values()))
    assert stored["Posted"] is True and stored["СуммаВключаетНДС"] is True
    assert [row["LineNumber"] for row in stored["Товары"]] == [1, 2, 3]
    assert [row["СтавкаНДС"] for row in stored["Товары"]] == ["НДС22", "НДС22", "БезНДС"]
    assert stored["Товары"][1]["Номенклатура_Key"] == fake_odata.ZERO_GUID  # a line without a product
    assert Decimal(str(stored["Товары"][0]["Сумма"])) == Decimal(300)
    ref = ExternalRef.objects.get(kind=RefKind.INVOICE, object_id=invoice.pk)
    assert ref.code == stored["Number"] and ref.external_id == stored["Ref_Key"]
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/Post")]
    assert len(posts) == 1 and "PostingModeOperational=false" in posts[0].raw_query

    # Unchanged: nothing sent; a changed comment: a PATCH with the rows sent whole again.
    fake.requests.clear()
    run("bp", "--task", "БП 3.0: учёт счетов, оплат и долгов")
    assert not [r for r in fake.requests if r.method in ("POST", "PATCH")]
    sales.update_invoice(user=invoice.owner, invoice=invoice, comment="Доставка до двери")
    run("bp", "--task", "БП 3.0: учёт счетов, оплат и долгов")
    patch = next(r for r in fake.requests if r.method == "PATCH")
    body = json.loads(patch.body)
    assert body["Комментарий"] == "Доставка до двери" and len(body["Товары"]) == 3

    # Cancelled in Sdelka: unposted, then marked for deletion in 1C (never deleted).
    sales.cancel_invoice(user=invoice.owner, invoice=invoice)
    fake.requests.clear()
    run("bp", "--task", "БП 3.0: учёт счетов, оплат и долгов")
    stored = fake.data[INVOICES][ref.external_id]
    assert stored["DeletionMark"] is True and stored["Posted"] is False
    assert [r.path.rpartition("/")[2] for r in fake.requests if r.method in ("POST", "PATCH")][:1] == ["Unpost"]
    assert not [r for r in fake.requests if r.method == "DELETE"]


def test_bp30_refused_posting_and_a_truncated_row_are_errors(
    fake: FakeOneC, bp: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_bp(fake)
    fake.data[INVOICES].clear()
    run("bp")
    SyncTask.objects.filter(name="БП 3.0: учёт счетов, оплат и долгов").update(post_documents=True)
    _sdelka_invoice(bp)
    fake.fail("refuse", path_contains="/Post", message="Период закрыт для изменений: 30.11.2026")
    results = run("bp", "--task", "БП 3.0: учёт счетов, оплат и долгов")
    assert results[0]["status"] == "success" or results[0]["status"] == "failed"
    outcome = rule_of(results, "БП: счета покупателям")
    assert outcome["refused"] == 1 and outcome["created"] == 0
    event = ExchangeEvent.objects.filter(level="error").latest("id")
    assert "Период закрыт для изменений" in event.message and event.field == "Posted"
    assert ExternalRef.objects.get(kind=RefKind.INVOICE).content_hash == ""  # sent again next time

    # 1C cuts a row's text: the read-back comparison reports it, row and field named.
    monkeypatch.setitem(fake_odata.server.STRING_LENGTHS, "Содержание", 5)
    results = run("bp", "--task", "БП 3.0: учёт счетов, оплат и долгов")
    assert rule_of(results, "БП: счета покупателям")["refused"] == 1
    fields = set(ExchangeEvent.objects.filter(level="error").values_list("field", flat=True))
    assert "Товары/Содержание (1)" in fields


# --- ownership and conflicts of document fields ---------------------------------------------------------


def _own(connection: Connection, rule_name: str, ownership: str, *fields: str) -> None:
    from sdelka.exchange.odata.models import MappingRule

    rule = MappingRule.objects.get(connection=connection, name=rule_name)
    rule.fields = [{**pair, "ownership": ownership} if pair["sdelka"] in fields else pair for pair in rule.fields]
    rule.save(update_fields=["fields"])


def _both_change_the_comment(fake: FakeOneC, data: dict[str, Any]) -> Invoice:
    from sdelka.exchange.apply_orders import exchange_user

    invoice = Invoice.objects.get()
    sales.update_invoice(user=exchange_user(), invoice=invoice, comment="Sdelka's note")
    fake.change(INVOICES, data["invoice"]["Ref_Key"], Комментарий="1C note")
    return invoice


def test_document_field_owned_ask_raises_a_conflict_and_overwrites_nothing(fake: FakeOneC, bp: Connection) -> None:
    from sdelka.exchange.conflicts import resolve_conflict
    from sdelka.exchange.models import Conflict, ConflictStatus

    data = seed_bp(fake)
    _own(bp, "БП: счета покупателям", "ask", "comment")
    run("bp")
    invoice = _both_change_the_comment(fake, data)
    dry = rule_of(run("bp", "--dry-run"), "БП: счета покупателям")
    assert dry["conflicts"] == 1 and not Conflict.objects.exists()
    results = run("bp")
    assert rule_of(results, "БП: счета покупателям")["conflicts"] == 1, results
    conflict = Conflict.objects.get()
    assert (conflict.field, conflict.onec_field, conflict.status) == ("comment", "Комментарий", ConflictStatus.OPEN)
    assert (conflict.our_value, conflict.onec_value) == ("Sdelka's note", "1C note")
    invoice.refresh_from_db()
    assert invoice.comment == "Sdelka's note"  # neither side overwritten
    assert fake.data[INVOICES][data["invoice"]["Ref_Key"]]["Комментарий"] == "1C note"
    assert ExchangeEvent.objects.filter(message__contains="conflict waits for a decision").count() == 1
    run("bp")  # still waiting: no second conflict, still nothing overwritten
    assert Conflict.objects.count() == 1 and fake.data[INVOICES][data["invoice"]["Ref_Key"]]["Комментарий"] == "1C note"

    resolve_conflict(conflict=conflict, resolution="onec", user=None)
    run("bp")
    invoice.refresh_from_db()
    assert invoice.comment == "1C note" and not Conflict.objects.filter(status=ConflictStatus.OPEN).exists()


def test_document_rows_owned_ask_are_one_field(fake: FakeOneC, bp: Connection) -> None:
    from sdelka.exchange.apply_orders import exchange_user
    from sdelka.exchange.conflicts import resolve_conflict
    from sdelka.exchange.models import Conflict

    data = seed_bp(fake)
    _own(bp, "БП: счета покупателям", "ask", "lines.product")
    run("bp")
    invoice = Invoice.objects.get()
    Invoice.objects.filter(pk=invoice.pk).update(status=InvoiceStatus.DRAFT)
    lines = [{"product": line.product_id, "quantity": "12" if n == 0 else line.quantity, "price": line.price,
              "vat_rate": line.vat_rate} for n, line in enumerate(invoice.lines.all())]  # fmt: skip
    sales.update_invoice(user=exchange_user(), invoice=Invoice.objects.get(), lines=lines)
    sales.issue_invoice(user=exchange_user(), invoice=Invoice.objects.get())
    key = data["invoice"]["Ref_Key"]
    first, second = fake.data[INVOICES][key]["Товары"]
    goods = [{**first, "Количество": Decimal(20)}, second]
    fake.change(INVOICES, key, Товары=goods)
    run("bp")
    conflict = Conflict.objects.get()
    assert (conflict.field, conflict.onec_field) == ("rows", "Товары")
    assert "× 12 ×" in str(conflict.our_value) and "× 20 ×" in str(conflict.onec_value)
    assert Invoice.objects.get().lines.first().quantity == Decimal(12)
    assert fake.data[INVOICES][key]["Товары"][0]["Количество"] == Decimal(20)
    resolve_conflict(conflict=conflict, resolution="sdelka", user=None)
    run("bp")
    assert Decimal(str(fake.data[INVOICES][key]["Товары"][0]["Количество"])) == Decimal(12)  # Sdelka's rows sent


@pytest.mark.parametrize(
    ("owner", "kept"), [("onec", "1C note"), ("sdelka", "Sdelka's note")], ids=["1C wins", "Sdelka wins"]
)
def test_document_field_owned_by_one_side_takes_its_value_on_both(
    fake: FakeOneC, bp: Connection, owner: str, kept: str
) -> None:
    data = seed_bp(fake)
    _own(bp, "БП: счета покупателям", owner, "comment")
    run("bp")
    invoice = _both_change_the_comment(fake, data)
    results = run("bp")
    assert rule_of(results, "БП: счета покупателям")["conflicts"] == 0, results
    invoice.refresh_from_db()
    assert invoice.comment == kept
    assert fake.data[INVOICES][data["invoice"]["Ref_Key"]]["Комментарий"] == kept


def test_payment_fields_follow_their_owner(fake: FakeOneC, bp: Connection) -> None:
    """Purpose owned by Sdelka stays Sdelka's; the amount owned "ask" waits for a decision when both changed."""
    from sdelka.exchange.apply_orders import exchange_user
    from sdelka.exchange.models import Conflict

    data = seed_bp(fake)
    rule = "БП: оплаты покупателей"
    _own(bp, rule, "sdelka", "purpose")
    _own(bp, rule, "ask", "amount")
    document = receipt(fake, data, "1000")
    run("bp")
    payment = Payment.objects.get()
    sales.update_payment(user=exchange_user(), payment=payment, purpose="Сделка: аванс", amount="1500.00")
    fake.change(RECEIPTS, document["Ref_Key"], НазначениеПлатежа="1С: оплата", СуммаДокумента=Decimal(1200))
    results = run("bp")
    assert rule_of(results, rule)["conflicts"] == 1, results
    payment.refresh_from_db()
    assert payment.purpose == "Сделка: аванс" and payment.amount == Decimal(1500)
    conflict = Conflict.objects.get()
    assert (conflict.field, conflict.our_value, conflict.onec_value) == ("amount", "1500.00", "1200.00")


# --- УТ 11 --------------------------------------------------------------------------------------------------


def _ut_base(ut: FakeOneC) -> dict[str, Any]:
    """A connection to the fake УТ 11 with the documents set, and the catalogue an order needs."""
    connection = create_odata_connection(name="ut", url=ut.base_url, login=ut.login, password=ut.password)
    assert check_connection(connection=connection).ok
    load_preset(connection=connection, preset="ut11-documents", post_documents=True)
    pack = ut.add("Catalog_УпаковкиЕдиницыИзмерения", Code="796", Description="шт")
    inn = make_inn10(RNG)
    org = ut.add("Catalog_Организации", Description="ООО Торг", ИНН=inn, КПП=inn[:4] + "01001")
    rub = ut.add("Catalog_Валюты", Code="643", Description="руб.")
    vat22 = ut.add("Catalog_СтавкиНДС", Description="22%", Ставка=Decimal(22))
    ut.add("Catalog_СтавкиНДС", Description="Без НДС")
    buyer_inn = make_inn10(RNG)
    buyer = ut.add("Catalog_Контрагенты", Description="ООО Клиент", ИНН=buyer_inn, КПП=buyer_inn[:4] + "01001",
                   ЮрФизЛицо="ЮрЛицо")  # fmt: skip
    sugar = ut.add("Catalog_Номенклатура", Description="Сахар", ЕдиницаИзмерения_Key=pack["Ref_Key"])
    return {"org": org, "rub": rub, "vat22": vat22, "buyer": buyer, "sugar": sugar}


def _ut_order(ut: FakeOneC, base: dict[str, Any], number: str, **header: Any) -> dict[str, Any]:
    return ut.add(
        "Document_ЗаказКлиента",
        **{"Контрагент_Key": base["buyer"]["Ref_Key"], **header},
        Number=number,
        Date="2026-11-22T09:00:00",
        Организация_Key=base["org"]["Ref_Key"],
        Валюта_Key=base["rub"]["Ref_Key"],
        ЦенаВключаетНДС=True,
        Товары=[
            {
                "LineNumber": 1,
                "Номенклатура_Key": base["sugar"]["Ref_Key"],
                "Количество": Decimal(100),
                "Цена": Decimal("79.90"),
                "Сумма": Decimal(7990),
                "СтавкаНДС_Key": base["vat22"]["Ref_Key"],
                "СуммаНДС": Decimal("1440.82"),
            }
        ],
    )


def test_ut11_order_without_counterparty_falls_back_to_the_partners_one() -> None:
    """Контрагент_Key is the counterparty; an order that has none yet (empty or the zero GUID) takes the one
    counterparty 1C has for its partner (Catalog_Контрагенты.Партнер_Key); no partner, or a partner with two
    counterparties, is a clear refusal."""
    with serve(FakeOneC("ut11")) as ut:
        base = _ut_base(ut)
        partner = ut.add("Catalog_Партнеры", Description="Клиент (партнёр)")
        ut.change("Catalog_Контрагенты", base["buyer"]["Ref_Key"], Партнер_Key=partner["Ref_Key"])
        twice = ut.add("Catalog_Партнеры", Description="Холдинг")
        for name in ("ООО Холдинг-1", "ООО Холдинг-2"):
            inn = make_inn10(RNG)
            ut.add("Catalog_Контрагенты", Description=name, ИНН=inn, КПП=inn[:4] + "01001", ЮрФизЛицо="ЮрЛицо",
                   Партнер_Key=twice["Ref_Key"])  # fmt: skip
        _ut_order(ut, base, "ТД00-000001", Партнер_Key=v.ZERO_GUID)  # a counterparty, no partner
        _ut_order(ut, base, "ТД00-000002", Контрагент_Key=v.ZERO_GUID, Партнер_Key=partner["Ref_Key"])
        _ut_order(ut, base, "ТД00-000003", Контрагент_Key=None, Партнер_Key=partner["Ref_Key"])
        _ut_order(ut, base, "ТД00-000004", Контрагент_Key=v.ZERO_GUID, Партнер_Key=twice["Ref_Key"])
        _ut_order(ut, base, "ТД00-000005", Контрагент_Key=v.ZERO_GUID, Партнер_Key=v.ZERO_GUID)
        results = run("ut")
        orders = rule_of(results, "УТ: заказы клиентов")
        assert (orders["created"], orders["refused"]) == (3, 2), results
        assert set(Invoice.objects.values_list("counterparty__name", flat=True)) == {"ООО Клиент"}
        errors = {e.object_repr: e.message for e in ExchangeEvent.objects.filter(level="error", field="Контрагент_Key")}
        assert "has no single object with Партнер_Key" in errors["ТД00-000004"]
        assert errors["ТД00-000005"] == "Empty in 1C; Sdelka needs it."


def test_ut11_orders_payments_prices_and_debt() -> None:
    with serve(FakeOneC("ut11")) as ut:
        base = _ut_base(ut)
        org, rub, vat22, buyer, sugar = (base[k] for k in ("org", "rub", "vat22", "buyer", "sugar"))
        bank = ut.add("Catalog_КлассификаторБанков", Code="044525225", Description="ПАО СБЕРБАНК",
                      КоррСчет="30101810400000000225")  # fmt: skip
        ut.add("Catalog_БанковскиеСчетаКонтрагентов", Owner_Key=buyer["Ref_Key"], Банк_Key=bank["Ref_Key"],
               НомерСчета=ACCOUNT)  # fmt: skip
        ut.add(
            "Catalog_БанковскиеСчетаКонтрагентов",
            Owner_Key=buyer["Ref_Key"],
            Банк_Key=bank["Ref_Key"],
            НомерСчета="40702810938000012346",
        )  # fmt: skip  (a wrong control key: refused)
        kind = ut.add("Catalog_ВидыЦен", Description="Оптовая", ЦенаВключаетНДС=True)
        ut.add("InformationRegister_ЦеныНоменклатуры", Period="2026-10-01T00:00:00", ВидЦены_Key=kind["Ref_Key"],
               Номенклатура_Key=sugar["Ref_Key"], Цена=Decimal("79.90"))  # fmt: skip
        order = _ut_order(ut, base, "ТД00-000003")
        ut.add(
            "Document_ПоступлениеБезналичныхДенежныхСредств",
            Date="2026-11-23T00:00:00",
            Posted=True,
            ХозяйственнаяОперация="ПоступлениеОплатыОтКлиента",
            Организация_Key=org["Ref_Key"],
            Контрагент_Key=buyer["Ref_Key"],
            Валюта_Key=rub["Ref_Key"],
            СуммаДокумента=Decimal(7990),
            НомерВходящегоДокумента="77",
            РасшифровкаПлатежа=[
                {
                    "LineNumber": 1,
                    "ОснованиеПлатежа": order["Ref_Key"],
                    "ОснованиеПлатежа_Type": "StandardODATA.Document_ЗаказКлиента",
                    "Сумма": Decimal(7990),
                }
            ],
        )
        key = ut.add("Catalog_КлючиАналитикиУчетаПоПартнерам", Контрагент_Key=buyer["Ref_Key"])
        settlements = "AccumulationRegister_РасчетыСКлиентами"
        ut.add(settlements, Recorder_Key=order["Ref_Key"], LineNumber=1, Period="2026-11-22T09:00:00",
               RecordType="Receipt", АналитикаУчетаПоПартнерам_Key=key["Ref_Key"], Валюта_Key=rub["Ref_Key"],
               Сумма=Decimal(9000))  # fmt: skip
        ut.add(settlements, Recorder_Key=order["Ref_Key"], LineNumber=2, Period="2026-11-23T00:00:00",
               RecordType="Expense", АналитикаУчетаПоПартнерам_Key=key["Ref_Key"], Валюта_Key=rub["Ref_Key"],
               Сумма=Decimal(7990))  # fmt: skip
        results = run("ut")
        assert [r["status"] for r in results] == ["success", "success"], results

        invoice = Invoice.objects.get()
        line = invoice.lines.get()
        assert (line.product.name, line.quantity, line.vat_rate) == ("Сахар", Decimal("100.000"), "22")
        assert invoice.status == InvoiceStatus.PAID and Payment.objects.get().number == "77"
        assert Price.objects.get().value == Decimal("79.90")
        debt = CounterpartyDebt.objects.get()
        assert debt.amount == Decimal("1010.00") and debt.currency_id == "RUB"
        assert debt.counterparty.name == "ООО Клиент"
        assert list(CounterpartyBankAccount.objects.values_list("number", flat=True)) == [ACCOUNT]
        refused = ExchangeEvent.objects.get(level="error")
        assert refused.field == "НомерСчета" and "control key is wrong" in refused.message

        # An order made in Sdelka goes to 1C with the VAT rate as a catalog reference, and is posted.
        from sdelka.exchange.apply_orders import exchange_user

        made = sales.create_invoice(
            user=exchange_user(), organisation=invoice.organisation, counterparty=invoice.counterparty,
            lines=[{"product": line.product_id, "quantity": "5", "price": "80.00", "vat_rate": "22"}],
            date=dt.date(2026, 11, 26),
        )  # fmt: skip
        sales.issue_invoice(user=exchange_user(), invoice=made)
        results = run("ut", "--task", "УТ 11: учёт заказов, оплат и долгов")
        assert rule_of(results, "УТ: заказы клиентов")["created"] == 1, results
        sent = next(o for o in ut.data["Document_ЗаказКлиента"].values() if o["Ref_Key"] != order["Ref_Key"])
        assert sent["Товары"][0]["СтавкаНДС_Key"] == vat22["Ref_Key"] and sent["Posted"] is True
        assert sent["Контрагент_Key"] == buyer["Ref_Key"] and sent["Валюта_Key"] == rub["Ref_Key"]


def test_bp30_bank_account_deleted_in_sdelka_comes_back_linked_when_1c_changes_it(
    fake: FakeOneC, bp: Connection
) -> None:
    seed_bp(fake)
    run("bp")
    CounterpartyBankAccount.objects.all().delete()  # the ExternalRef stays, pointing to the deleted row
    account = next(a for a in fake.data["Catalog_БанковскиеСчета"].values() if a["НомерСчета"] == ACCOUNT)
    fake.change("Catalog_БанковскиеСчета", account["Ref_Key"], Description="Основной счёт")

    results = run("bp")
    assert all(r["status"] == "success" for r in results), results
    restored = CounterpartyBankAccount.objects.get()
    assert restored.number == ACCOUNT
    ref = ExternalRef.objects.get(kind=RefKind.BANK_ACCOUNT, external_id=account["Ref_Key"])
    assert ref.object_id == restored.pk

    fake.change("Catalog_БанковскиеСчета", account["Ref_Key"], Description="Расчётный счёт")
    assert all(r["status"] == "success" for r in run("bp"))
    assert CounterpartyBankAccount.objects.get().pk == restored.pk
