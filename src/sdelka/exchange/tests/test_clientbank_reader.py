"""The 1CClientBankExchange reader: real fixture files, encodings, line endings, broken files."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdelka.exchange.clientbank.matcher import invoice_refs, number_key
from sdelka.exchange.clientbank.reader import StatementError, parse_date, read_statement
from tests.fixtures_path import fixtures_dir

from .clientbank_helpers import OUR_ACCOUNT, document, statement


def fixture(*parts: str) -> bytes:
    return fixtures_dir("clientbank", *parts).read_bytes()


# --- fixture files ---------------------------------------------------------------------------------


def test_kilylabs_one_day_cp1251() -> None:
    s = read_statement(fixture("kilylabs-client-bank-exchange-php", "one_day.txt"))
    assert (s.version, s.encoding, s.declared_encoding) == ("1.02", "cp1251", "Windows")
    assert s.accounts == ["40702810200000000001"]
    assert (s.start, s.end) == (date(2016, 1, 11), date(2016, 1, 11))
    assert [d.kind for d in s.documents].count("Банковский ордер") == 6
    assert [d.kind for d in s.documents].count("Платежное поручение") == 7
    (balance,) = s.balances
    assert (balance.opening, balance.incoming, balance.outgoing, balance.closing) == (
        Decimal("45329.91"),
        Decimal("40000.00"),
        Decimal("41184.00"),
        Decimal("44145.91"),
    )
    first = s.documents[0]
    assert (first.number, first.date, first.amount, first.line) == ("697162", date(2016, 1, 11), Decimal("83.23"), 20)
    assert first.payer.name == "Some random payer" and first.payer.bik == "044525716"
    assert first.fields["КвитанцияСодержание"] == "статус документа: Внешний"
    received = [d for d in s.documents if d.received]
    assert sum(d.amount for d in received) == Decimal("40000.00")
    assert s.warnings == []


def test_utf8_labelled_windows_reads_the_same_as_cp1251() -> None:
    cp1251 = read_statement(fixture("kilylabs-client-bank-exchange-php", "one_day.txt"))
    utf8 = read_statement(fixture("kilylabs-client-bank-exchange-php", "one_day_utf8.txt"))
    assert utf8.encoding == "utf-8"
    assert utf8.documents == cp1251.documents
    assert utf8.balances == cp1251.balances
    assert utf8.warnings == [(3, "Кодировка=Windows but the bytes are utf-8; read as utf-8")]


def test_dronm_kl_to_1c_version_103() -> None:
    s = read_statement(fixture("dronm-clbnk", "kl_to_1c.txt"))
    assert (s.version, s.encoding, s.accounts) == ("1.03", "cp1251", ["40702810000000074935"])
    assert [(d.kind, d.number, d.amount) for d in s.documents] == [
        ("Банковский ордер", "69147", Decimal("6936.00")),
        ("Платежное поручение", "1", Decimal("13056.00")),
        ("Платежное поручение", "2", Decimal("150000.00")),
    ]
    order = s.documents[1]
    assert order.purpose == "Оплата по заказу клиента №9614, НДС не облагается"
    assert order.debited == date(2024, 1, 9) and order.received is None
    assert order.payer.inn == "7123456789" and order.payer.kpp == "770401001"
    assert order.recipient.inn == "7123456789012"
    # 1.03 keys (and the letter-of-credit ones) are kept as read.
    assert order.fields["КодНазПлатежа"] == "" and "НомерСчетаПоставщика" in order.fields


def test_dronm_to_bank_is_refused_as_payment_orders_not_a_statement() -> None:
    with pytest.raises(StatementError) as error:
        read_statement(fixture("dronm-clbnk", "to_bank.txt"))
    assert "no РасчСчет" in error.value.reason


# --- encodings and line endings -------------------------------------------------------------------


SAMPLE = statement([document(number="7", purpose="Оплата по счёту № 5")])


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (SAMPLE.encode("cp1251"), "cp1251"),
        (SAMPLE.replace("Кодировка=Windows", "Кодировка=DOS").encode("cp866"), "cp866"),
        (SAMPLE.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + SAMPLE.encode("utf-8"), "utf-8"),
        (SAMPLE.replace("\r\n", "\n").encode("cp1251"), "cp1251"),
        (SAMPLE.replace("Кодировка=Windows", "Кодировка=windows").encode("cp1251"), "cp1251"),
    ],
    ids=["cp1251", "dos-cp866", "utf8-labelled-windows", "bom", "lf", "lower-case-label"],
)
def test_encodings_and_endings_read_the_same(data: bytes, encoding: str) -> None:
    s = read_statement(data)
    assert s.encoding == encoding
    (doc,) = s.documents
    assert (doc.number, doc.purpose, doc.payer.name) == ("7", "Оплата по счёту № 5", 'ООО "Клиент"')


def test_a_utf8_line_inside_a_cp1251_file_is_repaired() -> None:
    head, _sep, _tail = SAMPLE.rpartition("КонецФайла")
    data = head.encode("cp1251") + "КонецФайла\n".encode()
    s = read_statement(data)
    assert s.encoding == "cp1251" and len(s.documents) == 1
    assert any("UTF-8 inside a cp1251 file" in message for _line, message in s.warnings)


def test_several_accounts_and_balances_sections() -> None:
    second = "40702810500000000002"
    balances = [
        ["СекцияРасчСчет", f"РасчСчет={a}", "НачальныйОстаток=10.00", "ВсегоПоступило=0", "ВсегоСписано=0",
         "КонечныйОстаток=10.00", "КонецРасчСчет"]
        for a in (OUR_ACCOUNT, second)
    ]  # fmt: skip
    s = read_statement(statement([], accounts=[OUR_ACCOUNT, second], balances=balances).encode("cp1251"))
    assert s.accounts == [OUR_ACCOUNT, second]
    assert [b.account for b in s.balances] == [OUR_ACCOUNT, second]
    assert s.balances[1].incoming == Decimal("0.00")


def test_unknown_keys_kept_and_versions_accepted() -> None:
    doc = document(extra={"МойБанкКлюч": "x=y"})
    for version in ("1.01", "1.02", "1.03"):
        s = read_statement(statement([doc], version=version).encode("cp1251"))
        assert s.documents[0].fields["МойБанкКлюч"] == "x=y"  # split at the first "=" only
        assert s.warnings == []
    s = read_statement(statement([doc], version="2.00").encode("cp1251"))
    assert s.warnings == [(2, "unknown ВерсияФормата='2.00'; read as 1.03")]


def test_purpose_from_numbered_lines_when_the_main_one_is_empty() -> None:
    doc = document(
        purpose="", extra={"НазначениеПлатежа1": "Оплата по счету № 9", "НазначениеПлатежа2": "от 01.02.2026"}
    )
    s = read_statement(statement([doc]).encode("cp1251"))
    assert s.documents[0].purpose == "Оплата по счету № 9 от 01.02.2026"


# --- broken files: refused whole, with the line -----------------------------------------------------


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.split("\r\n"), start=1) if line.startswith(needle))


@pytest.mark.parametrize(
    ("change", "needle", "reason"),
    [
        (lambda t: t.replace("Дата=02.02.2026", "Дата=31.02.2026"), "Дата=31.02.2026", "impossible date"),
        (lambda t: t.replace("Дата=02.02.2026", "Дата=2026-02-02"), "Дата=2026-02-02", "is not a date"),
        (lambda t: t.replace("Сумма=1000.00", "Сумма=1 ООО,00"), "Сумма=", "is not a sum"),
        (lambda t: t.replace("Сумма=1000.00", "Сумма=0.00"), "Сумма=", "greater than zero"),
        (lambda t: t.replace("Номер=1\r\n", ""), "СекцияДокумент", "has no Номер"),
        (lambda t: t.replace("ДатаНачала=01.02.2026\r\n", ""), "1CClientBankExchange", "has no ДатаНачала"),
        (lambda t: t.replace("КонецДокумента\r\n", ""), "КонецФайла", "inside the section opened at line"),
        (lambda t: t.replace("ВидОплаты=01", "ВидОплаты 01"), "ВидОплаты 01", "expected Ключ=Значение"),
    ],
    ids=[
        "impossible-date",
        "date-format",
        "non-numeric-sum",
        "zero-sum",
        "no-number",
        "no-period",
        "unclosed",
        "no-equals",
    ],
)
def test_broken_files_name_the_line(change: object, needle: str, reason: str) -> None:
    text = change(statement([document()]))  # type: ignore[operator]
    with pytest.raises(StatementError) as error:
        read_statement(text.encode("cp1251"))
    assert reason in error.value.reason
    assert error.value.line == _line_of(text, needle)


def test_truncated_file_without_end_marker() -> None:
    text = statement([document()], end_of_file=False)
    with pytest.raises(StatementError) as error:
        read_statement(text.encode("cp1251"))
    assert "without КонецФайла" in error.value.reason
    assert error.value.line == len(text.split("\r\n"))


@pytest.mark.parametrize("data", [b"", "<?xml version='1.0'?><КоммерческаяИнформация/>".encode(), b"%PDF-1.4\n..."])
def test_another_format_is_refused(data: bytes) -> None:
    with pytest.raises(StatementError):
        read_statement(data)


# --- invoice references in purposes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        ("Оплата по счету № 123 от 01.02.2026", [("123", "", date(2026, 2, 1))]),
        ("Оплата по сч.123, НДС не облагается", [("123", "", None)]),
        ("Оплата по счёту №00-123 в т.ч. НДС 22% - 1 234.56", [("123", "", None)]),
        ("Оплата по счет-договору № ТД-45 от 3 февраля 2026 г.", [("45", "тд", date(2026, 2, 3))]),
        ("Оплата по счетам № 12, 13 от 01.02.2026", [("12", "", date(2026, 2, 1)), ("13", "", date(2026, 2, 1))]),
        ("За товары, по счету №125 на сумму 175000-00", [("125", "", None)]),
        ("Оплата за металл по счету № ХИМ-ММР286 от 22.08.2018 г.", [("286", "химммр", date(2018, 8, 22))]),
        ("Оплата по счету на оплату № 9 от 1.2.26", [("9", "", date(2026, 2, 1))]),
        ("Оплата по сч 77 и 78", [("77", "", None), ("78", "", None)]),
        ("Оплата по счету №123, 2500 руб", [("123", "", None)]),
        ("Оплата по заказу клиента №9614, НДС не облагается", []),
        ("В счет оплаты по договору 15", []),
        ("Расчет за услуги", []),
        ("Счет-фактура № 5 от 01.01.2026", []),
    ],
)
def test_invoice_references(purpose: str, expected: list[tuple[str, str, date | None]]) -> None:
    assert [(r.key, r.letters, r.date) for r in invoice_refs(purpose)] == expected


@given(prefix=st.sampled_from(["", "ТД-", "БП-", "СЧ", "TД-"]), sequence=st.integers(1, 10**6), zeros=st.integers(0, 4))
def test_number_key_ignores_prefix_zeros_and_lookalikes(prefix: str, sequence: int, zeros: int) -> None:
    key, _letters = number_key(f"{prefix}{'0' * zeros}{sequence}")
    assert key == str(sequence)
    refs = invoice_refs(f"Оплата по счету № {prefix}{'0' * zeros}{sequence} от 05.03.2026")
    assert [(r.key, r.date) for r in refs] == [(str(sequence), date(2026, 3, 5))]


# --- properties -----------------------------------------------------------------------------------

TEXT = st.text(
    alphabet='абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯabcXYZ0123456789 .,-№/()"',
    min_size=1,
    max_size=60,
).filter(lambda s: s.strip() and "=" not in s)
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999999.99"), places=2)
DATES = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))


@given(
    docs=st.lists(
        st.tuples(st.from_regex(r"[0-9A-Za-zА-Я/-]{1,12}", fullmatch=True), AMOUNTS, DATES, TEXT, TEXT),
        min_size=1,
        max_size=5,
    ),
    encoding=st.sampled_from(["cp1251", "cp866", "utf-8"]),
    newline=st.sampled_from(["\r\n", "\n"]),
)
def test_written_documents_read_back_the_same(docs, encoding: str, newline: str) -> None:
    text = statement(
        [
            document(number=n, amount=f"{a:.2f}", day=f"{d:%d.%m.%Y}", purpose=p, payer_name=name)
            for n, a, d, p, name in docs
        ]
    )
    if encoding == "cp866":
        text = text.replace("Кодировка=Windows", "Кодировка=DOS")
    s = read_statement(text.replace("\r\n", newline).encode(encoding))
    if encoding == "utf-8":  # UTF-8 bytes labelled Windows: read as UTF-8, with a warning saying so
        assert [m for _line, m in s.warnings] == ["Кодировка=Windows but the bytes are utf-8; read as utf-8"]
    else:
        assert s.encoding == encoding and s.warnings == []
    read = [(d.number, d.amount, d.date, d.purpose, d.payer.name) for d in s.documents]
    assert read == [(n, a, d, " ".join(p.split()), name.strip()) for n, a, d, p, name in docs]


@given(value=st.one_of(DATES.map(lambda d: f"{d:%d.%m.%Y}"), st.from_regex(r"\d{1,3}\.\d{1,3}\.\d{1,5}"), st.text()))
def test_dates_are_exactly_dd_mm_yyyy(value: str) -> None:
    """The reader's fast path for ДД.ММ.ГГГГ accepts and refuses exactly what the general rule does."""
    import re

    match = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", value.strip())
    expected: date | None = None
    if match:
        try:
            expected = date(int(match[3]), int(match[2]), int(match[1]))
        except ValueError:
            expected = None
    try:
        got: date | None = parse_date(value, 7, "Дата")
    except StatementError as error:
        assert error.line == 7 and "Дата=" in error.reason
        got = None
    assert got == expected


@given(
    position=st.integers(min_value=0, max_value=60),
    garbage=st.one_of(st.text(max_size=40), st.sampled_from(["СекцияДокумент=X", "КонецДокумента", "КонецФайла", "="])),
)
def test_any_damage_is_refused_as_a_statement_error_or_read(position: int, garbage: str) -> None:
    """Whatever a line becomes, the reader either reads the file or refuses it naming a line of it."""
    lines = statement([document(), document(number="2")]).split("\r\n")
    lines[position % len(lines)] = garbage.replace("\r", "").replace("\n", "")
    data = "\r\n".join(lines).encode("utf-8")
    try:
        read_statement(data)
    except StatementError as error:
        assert 0 <= error.line <= len(lines) + 1
