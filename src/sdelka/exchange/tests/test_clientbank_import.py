"""Importing statements: fixture files, directions, duplicates, refusals, every matching rule, the queue."""

from __future__ import annotations

import datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from sdelka.activities.models import Notification
from sdelka.activities.selectors import timeline
from sdelka.exchange import bulk
from sdelka.exchange.clientbank.importer import import_statement
from sdelka.exchange.models import BankDocument, BankDocumentStatus, EventLevel, ExchangeRun, RunStatus
from sdelka.parties.models import Counterparty
from sdelka.sales.models import Invoice, InvoiceStatus, Payment, PaymentAllocation
from tests.factories import CounterpartyFactory, InvoiceFactory, OrganisationBankAccountFactory
from tests.fixtures_path import fixtures_dir

from .clientbank_helpers import OUR_ACCOUNT, PAYER_ACCOUNT, document, statement

pytestmark = pytest.mark.django_db

D = Decimal
PAYER_INN, PAYER_KPP = "7707083893", "770701001"


@pytest.fixture
def org_account(staff):
    return OrganisationBankAccountFactory(number=OUR_ACCOUNT, organisation__invoice_prefix="")


@pytest.fixture
def client_cp(staff):
    return CounterpartyFactory(inn=PAYER_INN, kpp=PAYER_KPP, owner=staff.manager, emails="buh@client.ru")


def invoice(
    org_account, counterparty, *, sequence, total, date=datetime.date(2026, 2, 1), status=InvoiceStatus.ISSUED, **kw
):
    organisation = org_account.organisation
    return InvoiceFactory(
        organisation=organisation,
        counterparty=counterparty,
        sequence=sequence,
        number=f"{organisation.invoice_prefix}{sequence}",
        year=date.year,
        date=date,
        total=D(total),
        status=status,
        **kw,
    )


def run_import(staff, *docs, **kwargs):
    return import_statement(data=statement(list(docs)).encode("cp1251"), user=staff.accountant, **kwargs)


# --- fixture statements -------------------------------------------------------------------------------


def test_kilylabs_one_day_directions_counts_and_no_duplicates(staff):
    OrganisationBankAccountFactory(number="40702810200000000001")
    data = fixtures_dir("clientbank", "kilylabs-client-bank-exchange-php", "one_day.txt").read_bytes()

    result = import_statement(data=data, user=staff.accountant, filename="one_day.txt")

    assert result.ok, result.error
    assert (result.documents, result.incoming, result.outgoing, result.internal) == (13, 3, 10, 0)
    assert (result.matched, result.advance, result.queued) == (0, 0, 3)  # the payer is not in the CRM
    incoming = Payment.objects.filter(direction="in")
    assert sorted(p.amount for p in incoming) == [D("6000.00"), D("14000.00"), D("20000.00")]
    assert sum(p.amount for p in Payment.objects.filter(direction="out")) == D("41184.00")  # = ВсегоСписано
    run = ExchangeRun.objects.get()
    assert (run.route, run.status, run.total, run.created) == ("bank", RunStatus.SUCCESS, 13, 13)
    assert BankDocument.objects.queued().count() == 3
    # The UTF-8 copy labelled Windows is the same statement: nothing new.
    utf8 = fixtures_dir("clientbank", "kilylabs-client-bank-exchange-php", "one_day_utf8.txt").read_bytes()
    again = import_statement(data=utf8, user=staff.accountant)
    assert (again.ok, again.duplicates, again.payments) == (True, 13, [])
    assert Payment.objects.count() == 13


def test_dronm_kl_to_1c_only_outgoing(staff):
    OrganisationBankAccountFactory(number="40702810000000074935")
    data = fixtures_dir("clientbank", "dronm-clbnk", "kl_to_1c.txt").read_bytes()

    result = import_statement(data=data, user=staff.accountant)

    assert result.ok, result.error
    assert (result.documents, result.incoming, result.outgoing) == (3, 0, 3)
    assert sorted(Payment.objects.values_list("amount", flat=True)) == [D("6936.00"), D("13056.00"), D("150000.00")]
    assert set(BankDocument.objects.values_list("status", flat=True)) == {BankDocumentStatus.OUTGOING}
    messages = list(ExchangeRun.objects.get().events.values_list("message", flat=True))
    assert any("taken as outgoing (ДатаСписано)" in m for m in messages)
    assert any("the balances section says 616050.00" in m for m in messages)


def test_payment_orders_file_is_refused_and_nothing_saved(staff):
    data = fixtures_dir("clientbank", "dronm-clbnk", "to_bank.txt").read_bytes()
    result = import_statement(data=data, user=staff.accountant)
    assert not result.ok and "no РасчСчет" in result.error
    run = ExchangeRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert run.events.filter(level=EventLevel.ERROR).count() == 1
    assert Payment.objects.count() == 0 and BankDocument.objects.count() == 0


# --- refusals -----------------------------------------------------------------------------------


def test_unknown_account_refused_naming_its_line_unless_an_organisation_is_chosen(staff, org_account):
    other = "40702810300000000003"
    data = statement([document(recipient_account=other)], accounts=[other]).encode("cp1251")
    refused = import_statement(data=data, user=staff.accountant)
    assert not refused.ok and refused.line == 8 and other in refused.error
    assert Payment.objects.count() == 0

    accepted = import_statement(data=data, user=staff.accountant, organisation=org_account.organisation)
    assert accepted.ok and Payment.objects.get().bank_account is None


def test_broken_file_nothing_half_imported(staff, org_account):
    text = statement([document(number="1"), document(number="2", day="30.02.2026")])
    result = import_statement(data=text.encode("cp1251"), user=staff.accountant)
    assert not result.ok and "impossible date" in result.error
    assert result.line == next(i for i, line in enumerate(text.split("\r\n"), 1) if line == "Дата=30.02.2026")
    assert Payment.objects.count() == 0 and BankDocument.objects.count() == 0
    event = ExchangeRun.objects.get().events.get()
    assert event.field == f"line {result.line}"


def test_account_failing_its_control_key_is_warned_with_the_line_and_still_imported(staff, org_account):
    bad = PAYER_ACCOUNT[:-1] + str((int(PAYER_ACCOUNT[-1]) + 1) % 10)
    text = statement([document(number="1", payer_account=bad), document(number="2", payer_account=bad)])
    result = import_statement(data=text.encode("cp1251"), user=staff.accountant)
    assert result.ok and len(result.payments) == 2
    starts = [i for i, line in enumerate(text.split("\r\n"), 1) if line.startswith("СекцияДокумент")]
    events = ExchangeRun.objects.get().events.filter(level=EventLevel.WARNING, message__contains=bad).order_by("pk")
    assert [(e.field, "control key is wrong" in e.message) for e in events] == [(f"line {n}", True) for n in starts]
    assert Payment.objects.filter(payer_account=bad).count() == 2


# --- duplicates ---------------------------------------------------------------------------------


def test_overlapping_statements_create_no_duplicates(staff, org_account, client_cp):
    a, b, c = (document(number=n, amount="10.00") for n in ("1", "2", "3"))
    run_import(staff, a, b)
    second = run_import(staff, b, c)
    assert (second.duplicates, len(second.payments)) == (1, 1)
    assert Payment.objects.count() == 3
    # Same number and date but another payer is another payment.
    other = run_import(staff, document(number="1", amount="10.00", payer_inn="7736207543", payer_kpp=""))
    assert other.duplicates == 0 and Payment.objects.count() == 4


# --- matching rules -------------------------------------------------------------------------------


def test_by_number_and_date_pays_the_invoice_notifies_and_shows_on_the_timeline(staff, org_account, client_cp):
    inv = invoice(org_account, client_cp, sequence=123, total="1000.00")
    result = run_import(staff, document(amount="1000.00", purpose="Оплата по счету № 123 от 01.02.2026"))
    assert (result.matched, result.queued) == (1, 0)
    inv.refresh_from_db()
    assert (inv.status, inv.paid_amount) == (InvoiceStatus.PAID, D("1000.00"))
    assert inv.history.first().status == InvoiceStatus.PAID
    payment = Payment.objects.get()
    assert (payment.counterparty, payment.allocated_amount, payment.source) == (client_cp, D("1000.00"), "bank")
    note = Notification.objects.get(user=staff.manager)
    assert "123" in note.text and note.url == f"/invoices/{inv.pk}/"
    refs = {item.ref for item in timeline(user=staff.manager, counterparty_id=client_cp.pk)}
    assert {f"payment:{payment.pk}", f"allocation:{payment.allocations.get().pk}"} <= refs


def test_a_large_statement_keeps_history_documents_and_notifications(staff, org_account, client_cp):
    """Above the bulk threshold rows go by COPY on PostgreSQL and history is copied inside the database: every
    payment and invoice still gets its simple_history record by the importing user, and the documents keep
    every field as read."""
    count = bulk.COPY_THRESHOLD + 5
    invoices = [invoice(org_account, client_cp, sequence=n, total="100.00") for n in range(1, count + 1)]
    docs = [
        document(
            number=str(n), amount="100.00" if n % 2 else "40.00", purpose=f"Оплата по счету № {n}", extra={"Х": "y"}
        )
        for n in range(1, count + 1)
    ]
    result = run_import(staff, *docs)
    assert (result.matched, len(result.payments)) == (count, count)
    payments = Payment.objects.filter(pk__in=result.payments)
    created = Payment.history.filter(id__in=result.payments, history_type="+", history_user=staff.accountant)
    assert created.count() == count and payments.count() == count
    assert set(created.values_list("amount", flat=True)) == {D("100.00"), D("40.00")}
    changed = Invoice.history.filter(id__in=[i.pk for i in invoices], history_type="~", history_user=staff.accountant)
    assert sorted(changed.values_list("status", flat=True)) == sorted(
        InvoiceStatus.PAID if n % 2 else InvoiceStatus.PARTLY_PAID for n in range(1, count + 1)
    )
    assert Invoice.objects.filter(status=InvoiceStatus.PARTLY_PAID, paid_amount=D("40.00")).count() == count // 2
    assert PaymentAllocation.objects.filter(payment__in=payments).count() == count
    assert all(d.fields["Х"] == "y" and d.payment_id for d in BankDocument.objects.all())
    # one summary instead of a notification per invoice
    note = Notification.objects.get(user=staff.manager)
    assert str(count) in note.text and note.url == "/invoices/"


@pytest.mark.parametrize(
    "purpose",
    ["Оплата по сч.45, НДС не облагается", "Оплата по счёту №00-45", "Оплата по счет-договору № 45 от 01.02.2026"],
)
def test_real_spellings_match(staff, org_account, client_cp, purpose):
    inv = invoice(org_account, client_cp, sequence=45, total="500.00")
    invoice(org_account, client_cp, sequence=46, total="500.00")
    assert run_import(staff, document(amount="500.00", purpose=purpose)).matched == 1
    inv.refresh_from_db()
    assert inv.status == InvoiceStatus.PAID


def test_prefixed_numbers(staff, org_account, client_cp):
    org_account.organisation.invoice_prefix = "ТД-"
    org_account.organisation.save()
    inv = invoice(org_account, client_cp, sequence=7, total="700.00")
    assert inv.number == "ТД-7"
    assert run_import(staff, document(amount="700.00", purpose="Оплата по счету ТД-000007")).matched == 1
    inv.refresh_from_db()
    assert inv.status == InvoiceStatus.PAID


def test_partial_payment(staff, org_account, client_cp):
    inv = invoice(org_account, client_cp, sequence=5, total="1000.00")
    run_import(staff, document(amount="400.00", purpose="Аванс по счету № 5"))
    inv.refresh_from_db()
    assert (inv.status, inv.paid_amount, inv.open_amount) == (InvoiceStatus.PARTLY_PAID, D("400.00"), D("600.00"))
    run_import(staff, document(number="2", amount="600.00", purpose="Доплата по счету № 5"))
    inv.refresh_from_db()
    assert inv.status == InvoiceStatus.PAID


def test_one_payment_for_several_invoices(staff, org_account, client_cp):
    first = invoice(org_account, client_cp, sequence=12, total="100.00")
    second = invoice(org_account, client_cp, sequence=13, total="250.00")
    run_import(staff, document(amount="350.00", purpose="Оплата по счетам № 12, 13 от 01.02.2026"))
    assert set(PaymentAllocation.objects.values_list("invoice_id", "amount")) == {
        (first.pk, D("100.00")),
        (second.pk, D("250.00")),
    }
    assert set(Invoice.objects.values_list("status", flat=True)) == {InvoiceStatus.PAID}


def test_overpayment_is_kept_as_advance(staff, org_account, client_cp):
    inv = invoice(org_account, client_cp, sequence=9, total="900.00")
    result = run_import(staff, document(amount="1000.00", purpose="Оплата по счету № 9"))
    assert result.matched == 1
    payment = Payment.objects.get()
    inv.refresh_from_db()
    assert (inv.status, payment.allocated_amount, payment.unallocated_amount) == (
        InvoiceStatus.PAID,
        D("900.00"),
        D("100.00"),
    )
    assert "advance" in BankDocument.objects.get().reason


def test_by_inn_and_amount_without_a_number(staff, org_account, client_cp):
    invoice(org_account, client_cp, sequence=1, total="300.00")
    target = invoice(org_account, client_cp, sequence=2, total="480.00")
    assert run_import(staff, document(amount="480.00", purpose="Оплата за товар")).matched == 1
    target.refresh_from_db()
    assert target.status == InvoiceStatus.PAID


def test_by_inn_amount_equal_to_all_open_invoices(staff, org_account, client_cp):
    invoice(org_account, client_cp, sequence=1, total="300.00")
    invoice(org_account, client_cp, sequence=2, total="200.00")
    assert run_import(staff, document(amount="500.00", purpose="Оплата за товар")).matched == 1
    assert set(Invoice.objects.values_list("status", flat=True)) == {InvoiceStatus.PAID}


def test_branch_kpp_picks_the_right_counterparty(staff, org_account, client_cp):
    branch = CounterpartyFactory(inn=PAYER_INN, kpp="771001001", owner=staff.other_manager)
    invoice(org_account, client_cp, sequence=1, total="100.00")
    theirs = invoice(org_account, branch, sequence=2, total="100.00")
    assert run_import(staff, document(amount="100.00", payer_kpp="771001001", purpose="Оплата")).matched == 1
    theirs.refresh_from_db()
    assert theirs.status == InvoiceStatus.PAID
    assert Payment.objects.get().counterparty == branch


def test_ambiguous_amount_goes_to_the_queue_with_candidates(staff, org_account, client_cp):
    a = invoice(org_account, client_cp, sequence=1, total="100.00")
    b = invoice(org_account, client_cp, sequence=2, total="100.00")
    result = run_import(staff, document(amount="100.00", purpose="Оплата"))
    assert (result.matched, result.queued) == (0, 1)
    queued = BankDocument.objects.queued().get()
    assert queued.candidates == [a.pk, b.pk]
    assert Payment.objects.get().counterparty == client_cp  # known payer, money not yet allocated


def test_invoice_of_another_counterparty_is_not_matched_silently(staff, org_account, client_cp):
    stranger = CounterpartyFactory(owner=staff.manager)
    theirs = invoice(org_account, stranger, sequence=77, total="100.00")
    result = run_import(staff, document(amount="100.00", purpose="Оплата по счету № 77 от 01.02.2026"))
    assert result.queued == 1
    assert BankDocument.objects.queued().get().candidates == [theirs.pk]


def test_known_payer_with_nothing_open_pays_an_advance(staff, org_account, client_cp):
    result = run_import(staff, document(amount="100.00", purpose="Предоплата"))
    assert (result.advance, result.queued) == (1, 0)
    assert BankDocument.objects.get().status == BankDocumentStatus.ADVANCE


def test_outgoing_payment_is_recorded_as_outgoing(staff, org_account, client_cp):
    doc = document(payer_account=OUR_ACCOUNT, recipient_account="40702810900000000099", purpose="Оплата поставщику")
    result = run_import(staff, doc)
    assert (result.incoming, result.outgoing) == (0, 1)
    payment = Payment.objects.get()
    assert payment.direction == "out" and payment.allocated_amount == 0


# --- the queue and its API ----------------------------------------------------------------------


def test_unknown_payer_is_offered_and_matched_in_two_clicks(staff, org_account, client, django_assert_max_num_queries):
    someone = CounterpartyFactory(owner=staff.manager)
    inv = invoice(org_account, someone, sequence=31, total="250.00")
    run_import(staff, document(amount="250.00", payer_inn="7736207543", payer_kpp="773601001",
                               purpose="Оплата по счету № 31"))  # fmt: skip
    client.force_login(staff.manager)
    assert client.get("/api/v1/payment-queue/").json()["count"] == 0  # unknown payer: not the manager's
    client.force_login(staff.accountant)
    with django_assert_max_num_queries(8):
        listing = client.get("/api/v1/payment-queue/").json()
    (item,) = listing["results"]
    assert item["counterparty"] is None
    assert item["counterparty_offer"]["data"] == {
        "kind": "legal",
        "name": 'ООО "Клиент"',
        "inn": "7736207543",
        "kpp": "773601001",
    }
    assert [c["id"] for c in item["candidates"]] == [inv.pk]

    response = client.post(
        f"/api/v1/payment-queue/{item['id']}/match/",
        {"invoices": [{"invoice": inv.pk}]},
        content_type="application/json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == BankDocumentStatus.RESOLVED
    inv.refresh_from_db()
    assert inv.status == InvoiceStatus.PAID
    assert client.get("/api/v1/payment-queue/").json()["count"] == 0


def test_create_counterparty_from_the_statement(staff, org_account, client):
    run_import(staff, document(amount="50.00", payer_inn="7736207543", payer_kpp="773601001", purpose="Оплата"))
    queued = BankDocument.objects.queued().get()
    client.force_login(staff.accountant)
    response = client.post(
        f"/api/v1/payment-queue/{queued.pk}/match/", {"create_counterparty": True}, content_type="application/json"
    )
    assert response.status_code == 200, response.json()
    created = Counterparty.objects.get(inn="7736207543")
    assert (created.kpp, created.name) == ("773601001", 'ООО "Клиент"')
    assert created.bank_accounts.get().number == PAYER_ACCOUNT
    assert Payment.objects.get().counterparty == created
    assert response.json()["status"] == BankDocumentStatus.QUEUED  # still to choose an invoice (or advance)
    advance = client.post(
        f"/api/v1/payment-queue/{queued.pk}/match/", {"keep_as_advance": True}, content_type="application/json"
    )
    assert advance.json()["status"] == BankDocumentStatus.RESOLVED


def test_upload_api_is_for_accountants(staff, org_account, client_cp, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = statement([document(amount="10.00")]).encode("cp1251")
    client.force_login(staff.manager)
    upload = SimpleUploadedFile("kl_to_1c.txt", data)
    assert client.post("/api/v1/bank-statements/", {"file": upload}).status_code == 403
    client.force_login(staff.accountant)
    response = client.post("/api/v1/bank-statements/", {"file": SimpleUploadedFile("kl_to_1c.txt", data)})
    assert response.status_code == 201, response.json()
    assert (response.json()["incoming"], response.json()["advance"]) == (1, 1)
    broken = client.post("/api/v1/bank-statements/", {"file": SimpleUploadedFile("x.txt", b"hello")})
    assert broken.status_code == 400 and broken.json()["line"] == 1


def test_command(staff, org_account, client_cp, tmp_path):
    path = tmp_path / "kl_to_1c.txt"
    path.write_bytes(statement([document(amount="10.00")]).encode("cp1251"))
    out = StringIO()
    call_command("bank", "import", str(path), stdout=out)
    assert "run #" in out.getvalue()
    assert Payment.objects.get().direction == "in"
    path.write_bytes(b"1CClientBankExchange\r\n")
    with pytest.raises(CommandError, match="line"):
        call_command("bank", "import", str(path))


def test_queue_screen_two_clicks_create_the_payer_and_keep_an_advance(staff, org_account, client_cp, client):
    a = invoice(org_account, client_cp, sequence=1, total="100.00")
    invoice(org_account, client_cp, sequence=2, total="100.00")
    run_import(
        staff,
        document(number="1", amount="100.00", purpose="Оплата"),  # two invoices of 100: queued
        document(number="2", amount="70.00", purpose="Оплата"),  # no invoice of 70: queued
        document(number="3", amount="5.00", payer_inn="7736207543", payer_kpp="773601001", purpose="Долг"),
    )
    client.force_login(staff.manager)
    page = client.get("/payments/queue/").content.decode()
    assert page.count('id="queued-') == 2 and "7736207543" not in page  # the unknown payer is not his
    assert client.get("/payments/").content.decode().count('href="/payments/queue/"') == 1

    client.force_login(staff.accountant)
    page = client.get("/payments/queue/").content.decode()
    assert page.count('id="queued-') == 3 and f'name="invoice" value="{a.pk}"' in page
    ambiguous, owed, unknown = BankDocument.objects.queued().order_by("number")

    answer = client.post(f"/payments/queue/{ambiguous.pk}/match/", {"invoice": a.pk}, follow=True)
    assert answer.redirect_chain == [("/payments/queue/", 302)]
    a.refresh_from_db()
    assert (a.status, a.paid_amount) == (InvoiceStatus.PAID, D("100.00"))
    assert BankDocument.objects.get(pk=ambiguous.pk).status == BankDocumentStatus.RESOLVED

    client.post(f"/payments/queue/{owed.pk}/match/", {"action": "advance"})
    assert BankDocument.objects.get(pk=owed.pk).status == BankDocumentStatus.RESOLVED

    client.post(f"/payments/queue/{unknown.pk}/match/", {"action": "create"})
    assert Counterparty.objects.filter(inn="7736207543").exists()
    assert Payment.objects.get(pk=unknown.payment_id).counterparty.inn == "7736207543"

    answer = client.post(f"/payments/queue/{ambiguous.pk}/match/", {"invoice": a.pk}, follow=True)
    message = list(answer.context["messages"])[-1]
    assert message.level_tag == "error" and "already been matched" in str(message)
