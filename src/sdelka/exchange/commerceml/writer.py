"""CommerceML 2.x writer for `type=sale`: canonical Order records → the orders file 1C reads (`mode=query`),
and the `mode=info` directory.

Pure and streaming: `write_orders` writes one `Документ` at a time to a binary file, so memory does not grow
with the number of orders. The bytes are windows-1251 (characters 1251 cannot hold become numeric character
references, which every XML parser reads back) or UTF-8 with a BOM, and the XML declaration always names the
encoding the bytes are in.

Shape follows 1C's own example `from.xml` and Bitrix's `sale.export.1c` (commerceml-format.md §6.1):
Документ → Ид, Номер, Дата, Время, ХозОперация «Заказ товара», Роль «Продавец», Валюта, Курс, Сумма,
Контрагенты, Комментарий, Налоги, Товары, ЗначенияРеквизитов.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import BinaryIO

from sdelka.core.vat import VatRate
from sdelka.exchange.records import Order, OrderLine, Party, Unit

UTF8 = "utf-8"
WINDOWS_1251 = "windows-1251"
BOM = b"\xef\xbb\xbf"
ORDER_OPERATION = "Заказ товара"
SELLER = "Продавец"
BUYER = "Покупатель"
VAT = "НДС"
WITHOUT_VAT = "Без НДС"
# Characters XML 1.0 does not allow at all (control characters other than tab, LF, CR).
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})


_SPECIAL = re.compile('[&<>"\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]')


def escape(value: object) -> str:
    """Text safe inside an element or a double-quoted attribute."""
    text = "" if value is None else str(value)
    if not _SPECIAL.search(text):
        return text
    return _INVALID.sub("", text).translate(_ESCAPES)


def _el(name: str, value: object) -> str:
    return f"<{name}>{escape(value)}</{name}>"


def amount(value: Decimal | None) -> str:
    """A sum or quantity as 1C writes it: plain decimal notation, never an exponent."""
    if value is None:
        return ""
    text = str(value)  # the same as format(value, "f") unless it has an exponent, and three times faster
    return format(value, "f") if "E" in text else text


def flag(value: bool | None) -> str:
    return "true" if value else "false"


def vat_rate_text(rate: VatRate | str | None) -> str:
    if rate is None or rate == VatRate.WITHOUT:
        return WITHOUT_VAT
    return str(VatRate(rate).value)


def normalise_encoding(encoding: str) -> str:
    return UTF8 if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else WINDOWS_1251


def encode(text: str, encoding: str) -> bytes:
    """`text` in the target encoding; in windows-1251 what it cannot hold becomes `&#NNNN;`."""
    if normalise_encoding(encoding) == UTF8:
        return text.encode(UTF8)
    return text.encode(WINDOWS_1251, errors="xmlcharrefreplace")


def declaration(encoding: str) -> bytes:
    """The first bytes of a file: the BOM for UTF-8, then the declaration naming that very encoding."""
    enc = normalise_encoding(encoding)
    prefix = BOM if enc == UTF8 else b""
    label = "UTF-8" if enc == UTF8 else WINDOWS_1251
    return prefix + f'<?xml version="1.0" encoding="{label}"?>\n'.encode("ascii")


def document_head(*, version: str, generated_at: datetime) -> str:
    return (
        f'<КоммерческаяИнформация ВерсияСхемы="{escape(version)}" '
        f'ДатаФормирования="{generated_at.replace(microsecond=0, tzinfo=None).isoformat()}">\n'
    )


DOCUMENT_TAIL = "</КоммерческаяИнформация>\n"


# --- one order ------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _requisite(name: str, value: str) -> str:
    """One ЗначениеРеквизита; most of an order's pairs repeat from order to order, hence the cache."""
    return f"<ЗначениеРеквизита>{_el('Наименование', name)}{_el('Значение', value)}</ЗначениеРеквизита>"


def _requisites(values: Mapping[str, str]) -> str:
    if not values:
        return ""
    items = "".join(_requisite(name, value) for name, value in values.items())
    return f"<ЗначенияРеквизитов>{items}</ЗначенияРеквизитов>"


@lru_cache(maxsize=4096)
def _party(party: Party) -> str:
    parts = [_el("Ид", party.id), _el("Наименование", party.name), _el("Роль", party.role or BUYER)]
    parts.append(_el("ПолноеНаименование", party.full_name or party.name))
    if party.inn:
        # A company or an entrepreneur: 1C looks the counterparty up by ИНН (and КПП).
        parts.append(_el("ОфициальноеНаименование", party.full_name or party.name))
        parts.append(_el("ИНН", party.inn))
        if party.kpp:
            parts.append(_el("КПП", party.kpp))
        if party.okpo:
            parts.append(_el("ОКПО", party.okpo))
    if party.last_name or party.first_name:
        parts.append(_el("Фамилия", party.last_name))
        parts.append(_el("Имя", party.first_name))
        if party.middle_name:
            parts.append(_el("Отчество", party.middle_name))
    if party.address:
        tag = "ЮридическийАдрес" if party.kpp else "АдресРегистрации"
        parts.append(f"<{tag}>{_el('Представление', party.address)}</{tag}>")
    if party.bank_accounts:
        accounts = "".join(
            f"<РасчетныйСчет>{_el('НомерСчета', account.number)}<Банк>{_el('Наименование', account.bank_name)}"
            f"{_el('СчетКорреспондентский', account.correspondent_account)}{_el('БИК', account.bik)}</Банк>"
            "</РасчетныйСчет>"
            for account in party.bank_accounts
        )
        parts.append(f"<РасчетныеСчета>{accounts}</РасчетныеСчета>")
    if party.contacts:
        contacts = "".join(
            f"<Контакт>{_el('Тип', contact.kind)}{_el('Значение', contact.value)}</Контакт>"
            for contact in party.contacts
        )
        parts.append(f"<Контакты>{contacts}</Контакты>")
    if party.contact_persons:
        people = "".join(
            f"<Представитель><Контрагент><Отношение>Контактное лицо</Отношение>{_el('Ид', f'{party.id}#{index}')}"
            f"{_el('Наименование', name)}</Контрагент></Представитель>"
            for index, name in enumerate(party.contact_persons, start=1)
        )
        parts.append(f"<Представители>{people}</Представители>")
    return "<Контрагент>" + "".join(parts) + "</Контрагент>"


@lru_cache(maxsize=4096)
def _unit(unit: Unit) -> str:
    attributes = f' Код="{escape(unit.code)}"' if unit.code else ""
    if unit.full_name:
        attributes += f' НаименованиеПолное="{escape(unit.full_name)}"'
    if unit.international:
        attributes += f' МеждународноеСокращение="{escape(unit.international)}"'
    return f"<БазоваяЕдиница{attributes}>{escape(unit.name)}</БазоваяЕдиница>"


@lru_cache(maxsize=64)
def _line_tail(kind: str, rate: VatRate | str | None, vat_included: bool | None) -> tuple[str, str, str, str]:
    """The parts of a line that depend only on its kind and VAT: the rate text, the rates element, the head
    and tail of the line's tax element, and the requisites."""
    text = vat_rate_text(rate)
    rates = f"<СтавкиНалогов><СтавкаНалога><Наименование>{VAT}</Наименование><Ставка>{text}</Ставка>"
    rates += "</СтавкаНалога></СтавкиНалогов>"
    word = "Услуга" if kind == "service" else "Товар"
    if text == WITHOUT_VAT:
        tax_head = tax_tail = ""
    else:
        tax_head = (
            f"<Налоги><Налог><Наименование>{VAT}</Наименование><УчтеноВСумме>{flag(vat_included)}</УчтеноВСумме><Сумма>"
        )
        tax_tail = f"</Сумма><Ставка>{text}</Ставка></Налог></Налоги>"
    return rates, tax_head, tax_tail, _requisites({"ВидНоменклатуры": word, "ТипНоменклатуры": word})


def _line(line: OrderLine, vat_included: bool | None) -> str:
    """One `Товар`; numbers need no escaping, only the texts."""
    product_id = line.variant_id or line.product_id
    rates, tax_head, tax_tail, requisites = _line_tail(line.kind, line.vat_rate, vat_included)
    if line.requisites:
        word = "Услуга" if line.kind == "service" else "Товар"
        requisites = _requisites({"ВидНоменклатуры": word, "ТипНоменклатуры": word, **line.requisites})
    discount = (
        f"<Скидки><Скидка><Наименование>Скидка</Наименование><Сумма>{amount(line.discount)}</Сумма>"
        "<УчтеноВСумме>true</УчтеноВСумме></Скидка></Скидки>"
        if line.discount
        else ""
    )
    tax = f"{tax_head}{amount(line.vat_amount)}{tax_tail}" if tax_head and line.vat_amount is not None else ""
    return (
        f"<Товар>{f'<Ид>{escape(product_id)}</Ид>' if product_id else ''}"
        f"{f'<Артикул>{escape(line.article)}</Артикул>' if line.article else ''}"
        f"<Наименование>{escape(line.name)}</Наименование>{_unit(line.unit) if line.unit is not None else ''}"
        f"<ЦенаЗаЕдиницу>{amount(line.price)}</ЦенаЗаЕдиницу><Количество>{amount(line.quantity)}</Количество>"
        f"<Сумма>{amount(line.amount)}</Сумма>{discount}{rates}{tax}{requisites}</Товар>"
    )


def order_xml(order: Order) -> str:
    """One `Документ` (an order from the site to 1C) as text."""
    moment = order.date
    when = (
        f"<Дата>{moment.date().isoformat()}</Дата><Время>{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}</Время>"
        if moment is not None
        else ""
    )
    parties = "".join(_party(party) for party in order.parties)
    taxes = (
        f"<Налоги><Налог><Наименование>{VAT}</Наименование><УчтеноВСумме>{flag(order.vat_included)}</УчтеноВСумме>"
        f"<Сумма>{amount(order.vat_total)}</Сумма></Налог></Налоги>"
        if order.vat_total is not None
        else ""
    )
    lines = "".join(_line(line, order.vat_included) for line in order.lines)
    return (
        f"<Документ>{_el('Ид', order.id)}{_el('Номер', order.number)}{when}"
        f"{_el('ХозОперация', order.operation or ORDER_OPERATION)}{_el('Роль', order.role or SELLER)}"
        f"{_el('Валюта', order.currency)}<Курс>{amount(order.rate) if order.rate is not None else '1'}</Курс>"
        f"<Сумма>{amount(order.total)}</Сумма>{f'<Контрагенты>{parties}</Контрагенты>' if parties else ''}"
        f"{_el('Комментарий', order.comment)}{taxes}<Товары>{lines}</Товары>{_requisites(order.requisites)}"
        "</Документ>\n"
    )


def write_orders(
    orders: Iterable[Order],
    out: BinaryIO,
    *,
    encoding: str,
    generated_at: datetime,
    version: str = "2.05",
) -> int:
    """Write a whole orders file to `out`, one document at a time; returns the number of documents."""
    out.write(declaration(encoding))
    out.write(encode(document_head(version=version, generated_at=generated_at), encoding))
    count = 0
    buffer: list[str] = []
    for order in orders:
        buffer.append(order_xml(order))
        count += 1
        if len(buffer) >= 200:
            out.write(encode("".join(buffer), encoding))
            buffer = []
    if buffer:
        out.write(encode("".join(buffer), encoding))
    out.write(encode(DOCUMENT_TAIL, encoding))
    return count


# --- mode=info --------------------------------------------------------------------------------------------


def info_xml(
    *, statuses: Sequence[tuple[str, str]], payment_systems: Sequence[tuple[str, str]], encoding: str
) -> bytes:
    """The directory 1C-Bitrix's module loads to prefill its status mapping. `Cтатусы` starts with a Latin
    "C" exactly as Bitrix writes it (onec-site-protocol.md §4.6)."""

    def items(pairs: Sequence[tuple[str, str]]) -> str:
        return "".join(f"<Элемент>{_el('Ид', key)}{_el('Название', name)}</Элемент>" for key, name in pairs)

    body = (
        f"<Справочник><Cтатусы>{items(statuses)}</Cтатусы>"
        f"<ПлатежныеСистемы>{items(payment_systems)}</ПлатежныеСистемы></Справочник>\n"
    )
    return declaration(encoding) + encode(body, encoding)
