"""Reader of 1CClientBankExchange files (bank statements, `kl_to_1c.txt`); pure Python, no database.

`read_statement(data)` takes the file's bytes and returns a `Statement`, or raises `StatementError`
naming the line and the reason: the whole file is refused, never half read. Rules (see
`spec/clientbank-format.md`):

- encoding: a UTF-8 BOM is dropped; bytes that decode as strict UTF-8 are UTF-8 whatever the file says
  (Сбербанк writes UTF-8 labelled `Windows`); else CP866 when `Кодировка=` is found in CP866 bytes; else
  CP1251. Single lines written in UTF-8 inside a CP1251 file (a known generator bug) are repaired;
- CRLF, LF and mixed endings; blank lines ignored; a value may contain `=` (split once);
- versions 1.01–1.03 (a higher one is read with a warning); unknown keys are kept in `Document.fields`;
- several `РасчСчет` header lines and several `СекцияРасчСчет` (balances) sections;
- every document type (the type never decides the direction).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

SIGNATURE = "1CClientBankExchange"
END_OF_FILE = "КонецФайла"
ACCOUNT_SECTION, ACCOUNT_SECTION_END = "СекцияРасчСчет", "КонецРасчСчет"
DOCUMENT_SECTION, DOCUMENT_SECTION_END = "СекцияДокумент", "КонецДокумента"
KNOWN_VERSIONS = ("1.01", "1.02", "1.03")

CP866_SIGNATURE = "Кодировка=".encode("cp866")
UTF8_CYRILLIC_RUN = re.compile(rb"(?:[\xd0\xd1][\x80-\xbf]){2,}")
# The same test for a whole file without a regex scan: lead bytes become "L", continuation bytes "C".
_UTF8_CLASSES = bytes(
    ord("L") if b in (0xD0, 0xD1) else ord("C") if 0x80 <= b <= 0xBF else ord(".") for b in range(256)
)
_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_LEADING_INN = re.compile(r"^(?:ИНН\s*)?\d{10,12}\s*[,;]?\s*")
_AMOUNT = re.compile(r"^\d{1,16}(?:[.,]\d{1,2})?$")

DOCUMENT_REQUIRED = ("Номер", "Дата", "Сумма")
BALANCE_AMOUNTS = ("НачальныйОстаток", "ВсегоПоступило", "ВсегоСписано", "КонечныйОстаток")


class StatementError(ValueError):
    """The file is refused as a whole; `line` is 1-based (0 when the problem is not on a line)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.reason = message
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass
class Balance:
    """One `СекцияРасчСчет`: an account's balances for a period."""

    line: int
    account: str
    start: date | None
    end: date | None
    opening: Decimal | None
    incoming: Decimal | None
    outgoing: Decimal | None
    closing: Decimal | None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Party:
    name: str
    inn: str
    kpp: str
    account: str
    bank_name: str
    bik: str
    correspondent_account: str

    @property
    def requisites(self) -> dict[str, str]:
        return {
            "name": self.name,
            "inn": self.inn,
            "kpp": self.kpp,
            "account": self.account,
            "bank_name": self.bank_name,
            "bik": self.bik,
            "correspondent_account": self.correspondent_account,
        }


@dataclass
class Document:
    """One `СекцияДокумент`; `fields` keeps every key as read, unknown ones included."""

    line: int
    kind: str
    number: str
    date: date
    amount: Decimal
    payer: Party
    recipient: Party
    payer_accounts: frozenset[str]
    recipient_accounts: frozenset[str]
    debited: datetime.date | None
    received: datetime.date | None
    purpose: str
    fields: dict[str, str]


@dataclass
class Statement:
    version: str
    encoding: str  # what the bytes were decoded as: utf-8, cp1251 or cp866
    declared_encoding: str
    header: dict[str, str]
    accounts: list[str]
    account_lines: dict[str, int]
    start: date | None
    end: date | None
    balances: list[Balance]
    documents: list[Document]
    warnings: list[tuple[int, str]]
    lines: int


# --- decoding ---------------------------------------------------------------------------------------


def _detect(data: bytes) -> tuple[str, bytes]:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8", data[3:]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8", data
    if CP866_SIGNATURE in data[:500]:
        return "cp866", data
    return "cp1251", data


def decode(data: bytes) -> tuple[str, list[str], list[tuple[int, str]]]:
    """The encoding used and the file's lines (endings stripped); warnings for repaired lines."""
    encoding, body = _detect(data)
    warnings: list[tuple[int, str]] = []
    raw_lines = body.split(b"\n")
    if encoding != "utf-8" and b"LCLC" in body.translate(_UTF8_CLASSES):
        lines = []
        for number, raw in enumerate(raw_lines, start=1):
            text = raw.decode(encoding, errors="replace")
            if UTF8_CYRILLIC_RUN.search(raw):
                try:
                    text = raw.decode("utf-8")
                    warnings.append((number, f"the line is written in UTF-8 inside a {encoding} file; read as UTF-8"))
                except UnicodeDecodeError:
                    pass
            lines.append(text.rstrip("\r"))
        return encoding, lines, warnings
    text = body.decode(encoding, errors="replace")
    return encoding, [line.rstrip("\r") for line in text.split("\n")], warnings


# --- values -------------------------------------------------------------------------------------------


def parse_date(value: str, line: int, key: str) -> date:
    text = value.strip()
    if len(text) == 10 and text[2] == text[5] == "." and (text[:2] + text[3:5] + text[6:]).isdigit():
        try:  # the usual ДД.ММ.ГГГГ without the regex: a statement has two or three dates per document
            return date(int(text[6:]), int(text[3:5]), int(text[:2]))
        except ValueError:
            pass  # an impossible date or a malformed year: the general path says which
    match = _DATE.match(text)
    if not match:
        raise StatementError(line, f"{key}={value!r} is not a date (expected ДД.ММ.ГГГГ)")
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise StatementError(line, f"{key}={value!r} is an impossible date") from None


def parse_amount(value: str, line: int, key: str) -> Decimal:
    text = value.strip().replace(" ", "")
    if not _AMOUNT.match(text):
        raise StatementError(line, f"{key}={value!r} is not a sum (expected digits with a dot, e.g. 1500.00)")
    try:
        return Decimal(text.replace(",", ".")).quantize(Decimal("0.01"))
    except InvalidOperation:  # pragma: no cover - the regex already guarantees a number
        raise StatementError(line, f"{key}={value!r} is not a sum") from None


# --- parsing --------------------------------------------------------------------------------------


@dataclass
class _Section:
    kind: str  # "account" or "document"
    line: int
    doc_type: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


def _optional_date(section: _Section, key: str) -> date | None:
    value = section.fields.get(key, "").strip()
    return parse_date(value, section.lines[key], key) if value else None


def _optional_amount(section: _Section, key: str) -> Decimal | None:
    value = section.fields.get(key, "").strip()
    return parse_amount(value, section.lines[key], key) if value else None


def _account(value: str) -> str:
    value = value or ""
    return value if value.isdigit() else "".join(value.split())


def _party(fields: dict[str, str], side: str) -> Party:
    get = fields.get
    name = (get(f"{side}1") or "").strip()
    if not name:
        # `Плательщик=7702070139, ООО "Ромашка"` or `ИНН 7702070139 ООО "Ромашка"`: drop the leading ИНН.
        full = (get(side) or "").strip()
        name = _LEADING_INN.sub("", full)
    inn = (get(f"{side}ИНН") or "").strip()
    return Party(
        name=name,
        inn="" if set(inn) <= {"0"} else inn,
        kpp=(get(f"{side}КПП") or "").strip().replace("0" * 9, ""),
        account=_account(get(f"{side}РасчСчет") or get(f"{side}2") or get(f"{side}Счет") or ""),
        bank_name=(get(f"{side}Банк1") or get(f"{side}3") or "").strip(),
        bik=(get(f"{side}БИК") or "").strip(),
        correspondent_account=_account(get(f"{side}Корсчет") or ""),
    )


def _purpose(fields: dict[str, str]) -> str:
    text = (fields.get("НазначениеПлатежа") or "").strip()
    if not text:
        text = " ".join(
            part.strip() for part in (fields.get(f"НазначениеПлатежа{i}") or "" for i in range(1, 7)) if part.strip()
        )
    return " ".join(text.split())


def _document(section: _Section) -> Document:
    fields = section.fields
    for key in DOCUMENT_REQUIRED:
        if not fields.get(key, "").strip():
            raise StatementError(section.line, f"the document has no {key}")
    payer_accounts = {_account(fields.get(k, "")) for k in ("ПлательщикСчет", "ПлательщикРасчСчет", "Плательщик2")}
    recipient_accounts = {_account(fields.get(k, "")) for k in ("ПолучательСчет", "ПолучательРасчСчет", "Получатель2")}
    payer_accounts.discard("")
    recipient_accounts.discard("")
    if not payer_accounts:
        raise StatementError(section.line, "the document has no ПлательщикСчет")
    if not recipient_accounts:
        raise StatementError(section.line, "the document has no ПолучательСчет")
    amount = parse_amount(fields["Сумма"], section.lines["Сумма"], "Сумма")
    if amount <= 0:
        raise StatementError(section.lines["Сумма"], f"Сумма={fields['Сумма']!r} must be greater than zero")
    return Document(
        line=section.line,
        kind=section.doc_type,
        number=fields["Номер"].strip(),
        date=parse_date(fields["Дата"], section.lines["Дата"], "Дата"),
        amount=amount,
        payer=_party(fields, "Плательщик"),
        recipient=_party(fields, "Получатель"),
        payer_accounts=frozenset(payer_accounts),
        recipient_accounts=frozenset(recipient_accounts),
        debited=_optional_date(section, "ДатаСписано"),
        received=_optional_date(section, "ДатаПоступило"),
        purpose=_purpose(fields),
        fields=fields,
    )


def _balance(section: _Section) -> Balance:
    account = _account(section.fields.get("РасчСчет") or section.fields.get("НомерСчета") or "")
    if not account:
        raise StatementError(section.line, "the balances section has no РасчСчет")
    opening, incoming, outgoing, closing = (_optional_amount(section, key) for key in BALANCE_AMOUNTS)
    return Balance(
        line=section.line,
        account=account,
        start=_optional_date(section, "ДатаНачала"),
        end=_optional_date(section, "ДатаКонца"),
        opening=opening,
        incoming=incoming,
        outgoing=outgoing,
        closing=closing,
        fields=section.fields,
    )


class _LineReader:
    """The statement's lines after the signature, read in order: the header's keys, the accounts it names and
    the sections (balances, documents). Raises StatementError at the first line that breaks the format."""

    def __init__(self, warnings: list[tuple[int, str]]) -> None:
        self.warnings = warnings
        self.header: dict[str, str] = {}
        self.header_lines: dict[str, int] = {}
        self.accounts: list[str] = []
        self.account_lines: dict[str, int] = {}
        self.balances: list[Balance] = []
        self.documents: list[Document] = []
        self.section: _Section | None = None
        self.ended_at = 0

    def read(self, lines: list[str]) -> None:
        for number, raw in enumerate(lines[1:], start=2):
            section = self.section
            if section is not None:  # the common line, Ключ=Значение inside a section, first
                key, sep, value = raw.partition("=")
                if sep:
                    key = key.strip()
                    if key and key != DOCUMENT_SECTION:
                        section.fields[key] = value.strip()
                        section.lines[key] = number
                        continue
            line = raw.strip()
            if not line:
                continue
            if self.ended_at:
                self.warnings.append((number, "text after КонецФайла is ignored"))
                break
            if line == END_OF_FILE:
                self._end_of_file(number)
            elif line == ACCOUNT_SECTION or line.partition("=")[0] == DOCUMENT_SECTION:
                self._open_section(number, line)
            elif line in (ACCOUNT_SECTION_END, DOCUMENT_SECTION_END):
                self._close_section(number, line)
            else:
                self._key_value(number, raw, line)
        self._check_complete(len(lines))

    def _end_of_file(self, number: int) -> None:
        if self.section is not None:
            raise StatementError(number, f"{END_OF_FILE} inside the section opened at line {self.section.line}")
        self.ended_at = number

    def _open_section(self, number: int, line: str) -> None:
        if self.section is not None:
            raise StatementError(number, f"a new section starts before the one opened at line {self.section.line} ends")
        if line == ACCOUNT_SECTION:
            self.section = _Section("account", number)
            return
        doc_type = line.partition("=")[2].strip()
        if not doc_type:
            self.warnings.append((number, "СекцияДокумент without a document type"))
        self.section = _Section("document", number, doc_type)

    def _close_section(self, number: int, line: str) -> None:
        section = self.section
        expected = ACCOUNT_SECTION_END if section and section.kind == "account" else DOCUMENT_SECTION_END
        if section is None or line != expected:
            raise StatementError(number, f"{line} without a matching section start")
        if section.kind == "account":
            self.balances.append(_balance(section))
        else:
            self.documents.append(_document(section))
        self.section = None

    def _key_value(self, number: int, raw: str, line: str) -> None:
        key, sep, value = raw.partition("=")
        key = key.strip()
        if not sep or not key:
            raise StatementError(number, f"expected Ключ=Значение, found {line[:60]!r}")
        if self.section is not None:
            self.section.fields[key] = value.strip()
            self.section.lines[key] = number
        elif key == "РасчСчет":
            self._add_account(_account(value), number)
        elif key == "Документ":
            self.header_lines.setdefault(key, number)
        else:
            self.header[key] = value.strip()
            self.header_lines[key] = number

    def _add_account(self, account: str, line: int) -> None:
        if account and account not in self.accounts:
            self.accounts.append(account)
            self.account_lines[account] = line

    def _check_complete(self, last: int) -> None:
        if self.section is not None:
            raise StatementError(
                last, f"the file ends inside the section opened at line {self.section.line} (truncated?)"
            )
        if not self.ended_at:
            raise StatementError(last, f"the file ends without {END_OF_FILE} (truncated?)")

    def add_balance_accounts(self) -> None:
        """An account named only by its balances section is the statement's account too."""
        for balance in self.balances:
            self._add_account(balance.account, balance.line)


def _check_encoding(declared: str, encoding: str, header_lines: dict[str, int],
                    warnings: list[tuple[int, str]]) -> None:  # fmt: skip
    if declared.lower() not in {"windows", "dos"}:
        warnings.append((header_lines.get("Кодировка", 0), f"unknown Кодировка={declared!r}"))
    elif {"windows": "cp1251", "dos": "cp866"}[declared.lower()] != encoding:
        warnings.append(
            (header_lines["Кодировка"], f"Кодировка={declared} but the bytes are {encoding}; read as {encoding}")
        )


def _period(header: dict[str, str], header_lines: dict[str, int]) -> tuple[date, date]:
    for key in ("ДатаНачала", "ДатаКонца"):
        if not header.get(key):
            raise StatementError(header_lines.get(key, 0) or 1, f"the header has no {key}")
    start = parse_date(header["ДатаНачала"], header_lines["ДатаНачала"], "ДатаНачала")
    end = parse_date(header["ДатаКонца"], header_lines["ДатаКонца"], "ДатаКонца")
    if end < start:
        raise StatementError(header_lines["ДатаКонца"], "ДатаКонца is before ДатаНачала")
    return start, end


def read_statement(data: bytes) -> Statement:
    """Parse a statement file; raise StatementError (line, reason) for anything that is not one."""
    if not data.strip():
        raise StatementError(0, "the file is empty")
    encoding, lines, warnings = decode(data)
    first = lines[0].strip() if lines else ""
    if first != SIGNATURE:
        raise StatementError(1, f"not a 1CClientBankExchange file: the first line must be {SIGNATURE}")
    reader = _LineReader(warnings)
    reader.read(lines)
    header = reader.header
    declared = header.get("Кодировка", "")
    _check_encoding(declared, encoding, reader.header_lines, warnings)
    version = header.get("ВерсияФормата", "")
    if version not in KNOWN_VERSIONS:
        warnings.append(
            (reader.header_lines.get("ВерсияФормата", 0), f"unknown ВерсияФормата={version!r}; read as 1.03")
        )
    start, end = _period(header, reader.header_lines)
    reader.add_balance_accounts()
    if not reader.accounts:
        raise StatementError(1, "the header has no РасчСчет: this is not a statement of an account")
    return Statement(
        version=version,
        encoding=encoding,
        declared_encoding=declared,
        header=header,
        accounts=reader.accounts,
        account_lines=reader.account_lines,
        start=start,
        end=end,
        balances=reader.balances,
        documents=reader.documents,
        warnings=warnings,
        lines=len(lines),
    )
