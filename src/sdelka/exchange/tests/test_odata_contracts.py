"""Contracts through OData against the fake 1C: БП's Catalog_ДоговорыКонтрагентов (subordinate to the counterparty,
with folders) and УТ's (naming the counterparty), the invoice's contract both ways, a contract 1C does not know."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from sdelka.exchange.apply_orders import exchange_user
from sdelka.exchange.models import Connection, ExchangeEvent, ExternalRef, RefKind
from sdelka.exchange.odata import values as v
from sdelka.sales import services as sales
from sdelka.sales.models import Contract, ContractKind, Invoice
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings, serve

from .test_odata_documents import INVOICES, _ut_base, _ut_order, bp, rule_of, run, seed_bp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("odata_settings")]
__all__ = ["bp", "fake_bp30", "odata_settings"]

CONTRACTS = "Catalog_ДоговорыКонтрагентов"


def bp_contracts(fake: FakeOneC, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    buyer, org, rub = data["buyer"]["Ref_Key"], data["org"]["Ref_Key"], data["rub"]["Ref_Key"]
    common = {"Owner_Key": buyer, "Организация_Key": org, "ВалютаВзаиморасчетов_Key": rub, "IsFolder": False}
    return {
        "sale": fake.add(CONTRACTS, **common, Description="Договор поставки № 15", ВидДоговора="СПокупателем",
                         Номер="15", Дата="2026-01-10T00:00:00", СрокДействия="2026-12-31T00:00:00"),
        "purchase": fake.add(CONTRACTS, **common, Description="Договор закупки", ВидДоговора="СПоставщиком",
                             Номер="З-3", Дата="2026-02-01T00:00:00", СрокДействия=v.EMPTY_DATE),
        "agency": fake.add(CONTRACTS, **common, Description="Агентский", ВидДоговора="СКомитентом", Номер="А-1",
                           Дата=v.EMPTY_DATE, СрокДействия=v.EMPTY_DATE),
        "deleted": fake.add(CONTRACTS, **common, Description="Старый", ВидДоговора="СПокупателем", Номер="1",
                            Дата="2020-01-01T00:00:00", DeletionMark=True),
        "folder": fake.add(CONTRACTS, Owner_Key=buyer, IsFolder=True, Description="Архив"),
    }  # fmt: skip


def test_bp30_contracts_come_from_1c_and_the_invoice_names_its_own(fake: FakeOneC, bp: Connection) -> None:
    data = seed_bp(fake)
    contracts = bp_contracts(fake, data)
    fake.change(INVOICES, data["invoice"]["Ref_Key"], ДоговорКонтрагента_Key=contracts["sale"]["Ref_Key"])
    results = run("bp")
    assert [r["status"] for r in results] == ["success", "success"], results
    assert rule_of(results, "БП: договоры контрагентов")["created"] == 3  # not the folder, not the deleted one

    stored = {c.number: c for c in Contract.objects.all()}
    sale = stored["15"]
    assert sale.name == "Договор поставки № 15" and sale.kind == ContractKind.SALE
    assert (sale.date, sale.valid_until) == (dt.date(2026, 1, 10), dt.date(2026, 12, 31))
    assert sale.organisation.name == "ООО Наша" and sale.counterparty.name == "ООО Покупатель"
    assert sale.currency_id == "RUB" and sale.is_active
    assert stored["З-3"].kind == ContractKind.PURCHASE and stored["З-3"].valid_until is None
    assert stored["А-1"].kind == ContractKind.OTHER and stored["А-1"].date is None
    assert ExternalRef.objects.get(kind=RefKind.CONTRACT, object_id=sale.pk).external_id == contracts["sale"]["Ref_Key"]
    assert Invoice.objects.get().contract == sale

    # Another contract chosen on the invoice in 1C reaches the linked invoice; then back.
    fake.change(INVOICES, data["invoice"]["Ref_Key"], ДоговорКонтрагента_Key=contracts["agency"]["Ref_Key"])
    run("bp")
    assert Invoice.objects.get().contract == stored["А-1"]
    fake.change(INVOICES, data["invoice"]["Ref_Key"], ДоговорКонтрагента_Key=contracts["sale"]["Ref_Key"])
    run("bp")
    assert Invoice.objects.get().contract == sale

    # Closed in 1C (marked for deletion): closed in Sdelka, kept on the invoice; an unchanged run changes nothing.
    fake.change(CONTRACTS, contracts["sale"]["Ref_Key"], DeletionMark=True)
    again = run("bp")
    assert rule_of(again, "БП: договоры контрагентов")["updated"] == 1
    sale.refresh_from_db()
    assert not sale.is_active and Invoice.objects.get().contract == sale
    assert rule_of(run("bp"), "БП: договоры контрагентов")["unchanged"] == 4


def test_bp30_invoice_made_in_sdelka_goes_to_1c_with_its_contract(fake: FakeOneC, bp: Connection) -> None:
    data = seed_bp(fake)
    contracts = bp_contracts(fake, data)
    run("bp")
    sale = Contract.objects.get(number="15")
    known = Invoice.objects.get()
    user = exchange_user()
    header = {"user": user, "organisation": known.organisation, "counterparty": known.counterparty}
    made = sales.create_invoice(
        **header, contract=sale, lines=[{"description": "Монтаж", "quantity": 1, "price": 5000}]
    )
    sales.issue_invoice(user=user, invoice=made)
    # A contract typed in Sdelka, unknown to 1C: the invoice still goes, without it, and the journal says why.
    local = sales.create_contract(user=user, counterparty=known.counterparty, number="77", date=dt.date(2026, 3, 1))
    other = sales.create_invoice(
        **header, contract=local, lines=[{"description": "Наладка", "quantity": 1, "price": 70}]
    )
    sales.issue_invoice(user=user, invoice=other)
    results = run("bp")
    assert rule_of(results, "БП: счета покупателям")["created"] == 2, results

    def written(invoice: Invoice) -> dict[str, Any]:
        key = ExternalRef.objects.get(kind=RefKind.INVOICE, object_id=invoice.pk).external_id
        return fake.data[INVOICES][key]

    assert written(made)["ДоговорКонтрагента_Key"] == contracts["sale"]["Ref_Key"]
    assert written(other)["ДоговорКонтрагента_Key"] == v.ZERO_GUID
    warning = ExchangeEvent.objects.get(level="warning", field="contract")
    assert "Договор № 77 от 01.03.2026" in warning.message and "1C does not know that contract" in warning.message


def test_ut11_contracts_and_the_orders_contract() -> None:
    with serve(FakeOneC("ut11")) as ut:
        base = _ut_base(ut)
        contract = ut.add(CONTRACTS, Description="Договор с клиентом", Контрагент_Key=base["buyer"]["Ref_Key"],
                          Организация_Key=base["org"]["Ref_Key"], ТипДоговора="СПокупателем", Статус="Действует",
                          Номер="Д-5", Дата="2026-05-05T00:00:00", ДатаОкончанияДействия="2027-05-05T00:00:00",
                          ВалютаВзаиморасчетов_Key=base["rub"]["Ref_Key"])  # fmt: skip
        _ut_order(ut, base, "ТД00-000009", Договор_Key=contract["Ref_Key"])
        results = run("ut")
        assert rule_of(results, "УТ: договоры с контрагентами")["created"] == 1, results
        stored = Contract.objects.get()
        assert (stored.number, stored.kind, stored.valid_until) == ("Д-5", ContractKind.SALE, dt.date(2027, 5, 5))
        assert stored.counterparty.name == "ООО Клиент"
        assert Invoice.objects.get().contract == stored
