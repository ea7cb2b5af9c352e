"""Building 1CClientBankExchange statements in tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

OUR_ACCOUNT = "40702810200000000001"
# Valid for БИК 044525225 (control key checked), so the payer can be created from the statement.
PAYER_ACCOUNT = "40702810938000000001"


def document(
    *,
    number: str = "1",
    day: str = "02.02.2026",
    amount: Decimal | str = "1000.00",
    payer_inn: str = "7707083893",
    payer_kpp: str = "770701001",
    payer_name: str = 'ООО "Клиент"',
    payer_account: str = PAYER_ACCOUNT,
    recipient_account: str = OUR_ACCOUNT,
    purpose: str = "Оплата по счету",
    kind: str = "Платежное поручение",
    extra: Mapping[str, str] | None = None,
) -> list[str]:
    incoming = recipient_account == OUR_ACCOUNT
    lines = [
        f"СекцияДокумент={kind}",
        f"Номер={number}",
        f"Дата={day}",
        f"Сумма={amount}",
        f"ПлательщикСчет={payer_account}",
        f"ДатаСписано={'' if incoming else day}",
        f"Плательщик={payer_inn}, {payer_name}",
        f"ПлательщикИНН={payer_inn}",
        f"Плательщик1={payer_name}",
        f"ПлательщикРасчСчет={payer_account}",
        "ПлательщикБанк1=ПАО СБЕРБАНК",
        "ПлательщикБИК=044525225",
        "ПлательщикКорсчет=30101810400000000225",
        f"ПлательщикКПП={payer_kpp}",
        f"ПолучательСчет={recipient_account}",
        f"ДатаПоступило={day if incoming else ''}",
        "ПолучательИНН=7700000000",
        "Получатель1=Получатель",
        f"ПолучательРасчСчет={recipient_account}",
        "ПолучательБИК=044525716",
        "ВидОплаты=01",
        "Очередность=5",
        f"НазначениеПлатежа={purpose}",
    ]
    lines += [f"{k}={v}" for k, v in (extra or {}).items()]
    lines.append("КонецДокумента")
    return lines


def statement(
    documents: Sequence[list[str]],
    *,
    accounts: Sequence[str] = (OUR_ACCOUNT,),
    version: str = "1.03",
    encoding_label: str = "Windows",
    start: str = "01.02.2026",
    end: str = "28.02.2026",
    balances: Sequence[list[str]] = (),
    end_of_file: bool = True,
) -> str:
    lines = [
        "1CClientBankExchange",
        f"ВерсияФормата={version}",
        f"Кодировка={encoding_label}",
        "Отправитель=Банк Клиент Онлайн",
        "Получатель=1С:Предприятие",
        f"ДатаНачала={start}",
        f"ДатаКонца={end}",
    ]
    lines += [f"РасчСчет={a}" for a in accounts]
    for balance in balances:
        lines += balance
    for doc in documents:
        lines += doc
    if end_of_file:
        lines.append("КонецФайла")
    return "\r\n".join(lines) + "\r\n"


def encode(text: str, encoding: str = "cp1251") -> bytes:
    return text.encode(encoding)
