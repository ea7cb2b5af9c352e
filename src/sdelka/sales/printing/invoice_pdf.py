"""«Счет на оплату»: what the printed invoice shows, its HTML and its PDF (ru-requisites §7).

`invoice_document(invoice)` gathers everything the form prints into a plain `InvoiceDocument`, so the
template only lays it out; `render_html` is what the screen shows, `render_pdf` is the same HTML
through WeasyPrint. Read the invoice through `sales.selectors.invoice_get` (visibility, related rows
in a fixed number of queries) before calling these.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.staticfiles import finders
from django.http import HttpRequest
from django.template.loader import render_to_string

from sdelka.core.vat import VatMode, VatRate

from ..facsimile import data_uri
from ..models import Invoice, InvoiceLine, Organisation, OrganisationBankAccount
from . import qr
from .words import amount_in_words, currency_forms, date_in_words, format_money, format_quantity

TEMPLATE = "sales/invoice_print.html"
STYLESHEET = "sales/invoice_print.css"
RUB = "RUB"
WITHOUT_VAT = "Без налога (НДС)"
# Rates in the order the totals list them.
RATE_ORDER = [VatRate.VAT_22, VatRate.VAT_20, VatRate.VAT_10, VatRate.VAT_7, VatRate.VAT_5, VatRate.VAT_0]


@dataclass(frozen=True)
class Party:
    """A supplier or buyer as one line of requisites: «ООО «Ромашка», ИНН …, КПП …, адрес, тел.: …»."""

    name: str
    inn: str
    kpp: str
    address: str
    phone: str = ""

    @property
    def line(self) -> str:
        parts = [self.name]
        parts += [f"ИНН {self.inn}"] if self.inn else []
        parts += [f"КПП {self.kpp}"] if self.kpp else []
        parts += [self.address] if self.address else []
        parts += [f"тел.: {self.phone}"] if self.phone else []
        return ", ".join(parts)


@dataclass(frozen=True)
class PrintedLine:
    position: int
    description: str
    quantity: str
    unit: str
    price: str
    amount: str
    vat_rate: str
    vat_amount: str


@dataclass(frozen=True)
class VatTotal:
    label: str
    amount: str


@dataclass(frozen=True)
class Signature:
    title: str
    name: str
    image: str = field(default="", repr=False)
    """A data: URI of the signature's facsimile, empty when printed without it."""


@dataclass
class InvoiceDocument:
    title: str
    number: str
    date: str
    currency: str
    bank: OrganisationBankAccount | None
    recipient: str
    recipient_inn: str
    recipient_kpp: str
    supplier: Party
    buyer: Party
    basis: str
    lines: list[PrintedLine]
    mixed_rates: bool
    subtotal: str
    vat_totals: list[VatTotal]
    total: str
    count_line: str
    total_in_words: str
    due_line: str
    comment: str
    signatures: list[Signature]
    qr_payload: str = ""
    qr_image: str = field(default="", repr=False)
    """A data: URI of the QR code's SVG, empty when the invoice gets no QR."""
    stamp: str = field(default="", repr=False)
    """A data: URI of the organisation's stamp, empty when printed without facsimile."""


def print_number(invoice: Invoice) -> str:
    """The number as printed and as the client writes it in the payment: without the organisation's
    prefix and leading zeros, like 1C's «НомерНаПечать» (СД-000123 → 123)."""
    number = invoice.number
    prefix = invoice.organisation.invoice_prefix
    if prefix and number.startswith(prefix):
        number = number[len(prefix) :]
    return number.lstrip("0") or invoice.number


def short_date(invoice: Invoice) -> str:
    return f"{invoice.date:%d.%m.%Y}"


def _rate_label(rate: str) -> str:
    return WITHOUT_VAT if rate == VatRate.WITHOUT else f"{rate}%"


def vat_breakdown(lines: Iterable[InvoiceLine], vat_mode: str) -> list[tuple[str, Decimal]]:
    """(rate, VAT amount) per rate present on the invoice, general rate first; `[("none", 0)]` when
    nothing carries VAT (an invoice «Без НДС»)."""
    sums: dict[str, Decimal] = {}
    for line in lines:
        rate = VatRate.WITHOUT if vat_mode == VatMode.WITHOUT else line.vat_rate
        sums[rate] = sums.get(rate, Decimal("0.00")) + line.vat_amount
    taxed = [(rate.value, sums[rate]) for rate in RATE_ORDER if rate in sums]
    return taxed or [(VatRate.WITHOUT.value, Decimal("0.00"))]


def vat_totals(breakdown: Sequence[tuple[str, Decimal]], vat_mode: str) -> list[VatTotal]:
    """«В том числе НДС (22%)» (VAT inside the prices) or «НДС (22%)» (added on top), one per rate."""
    if breakdown == [(VatRate.WITHOUT.value, Decimal("0.00"))]:
        return [VatTotal(WITHOUT_VAT, "—")]
    prefix = "НДС" if vat_mode == VatMode.ON_TOP else "В том числе НДС"
    return [VatTotal(f"{prefix} ({rate}%)", format_money(amount)) for rate, amount in breakdown]


def vat_purpose(breakdown: Sequence[tuple[str, Decimal]]) -> str:
    """The VAT part of a payment purpose: «в т.ч. НДС 22% - 180.33», «НДС не облагается»."""
    if breakdown == [(VatRate.WITHOUT.value, Decimal("0.00"))]:
        return "НДС не облагается"
    return "в т.ч. " + ", ".join(f"НДС {rate}% - {amount:.2f}" for rate, amount in breakdown)


def payment_purpose(invoice: Invoice, breakdown: Sequence[tuple[str, Decimal]]) -> str:
    return f"Оплата по счету № {print_number(invoice)} от {short_date(invoice)}, {vat_purpose(breakdown)}"


def _organisation_bank(invoice: Invoice) -> OrganisationBankAccount | None:
    if invoice.bank_account is not None:
        return invoice.bank_account
    accounts = [a for a in invoice.organisation.bank_accounts.all() if a.currency_id == invoice.currency_id]
    return accounts[0] if accounts else None


def qr_payload(invoice: Invoice, bank: OrganisationBankAccount, breakdown: Sequence[tuple[str, Decimal]]) -> str:
    organisation = invoice.organisation
    return qr.build_payload(
        [
            ("Name", organisation.name),
            ("PersonalAcc", bank.number),
            ("BankName", bank.bank_name),
            ("BIC", bank.bik),
            ("CorrespAcc", bank.correspondent_account or "0"),
            ("Sum", qr.sum_in_kopecks(invoice.total)),
            ("Purpose", payment_purpose(invoice, breakdown)),
            ("PayeeINN", organisation.inn),
            ("KPP", organisation.kpp),
        ]
    )


def _signatures(organisation: Organisation, facsimile: bool) -> list[Signature]:
    def image(file: Any) -> str:
        return data_uri(file) if facsimile else ""

    director = Signature(
        "Предприниматель" if organisation.is_entrepreneur else "Руководитель",
        organisation.director_name,
        image(organisation.director_signature),
    )
    if organisation.is_entrepreneur:
        return [director]
    return [director, Signature("Бухгалтер", organisation.accountant_name, image(organisation.accountant_signature))]


def _party(entity: Any, phone: str = "") -> Party:
    """An organisation or a counterparty (same requisite fields) as the form names it."""
    address = re.sub(r"\s+", " ", entity.legal_address or entity.postal_address).strip()
    return Party(name=entity.full_name or entity.name, inn=entity.inn, kpp=entity.kpp, address=address, phone=phone)


def _default_basis(invoice: Invoice) -> str:
    if invoice.contract is not None:
        return invoice.contract.basis
    return invoice.deal.title if invoice.deal is not None else ""


def invoice_document(invoice: Invoice, *, facsimile: bool = False) -> InvoiceDocument:
    """Everything the printed invoice shows, computed from the invoice and its stored lines; with
    `facsimile`, the organisation's signature and stamp images too (those it has)."""
    organisation, counterparty = invoice.organisation, invoice.counterparty
    lines = list(invoice.lines.all())
    rates = {line.vat_rate for line in lines}
    breakdown = vat_breakdown(lines, invoice.vat_mode)
    currency = invoice.currency
    unit, subunit = currency_forms(currency)
    currency_short = "руб." if invoice.currency_id == RUB else invoice.currency_id
    bank = _organisation_bank(invoice)
    number = print_number(invoice)
    subtotal = sum((line.amount for line in lines), Decimal("0.00"))
    basis = invoice.basis or _default_basis(invoice)
    document = InvoiceDocument(
        title=f"Счет на оплату № {number} от {date_in_words(invoice.date)}",
        number=number,
        date=short_date(invoice),
        currency=str(invoice.currency_id),
        bank=bank,
        recipient=organisation.name,
        recipient_inn=organisation.inn,
        recipient_kpp=organisation.kpp,
        supplier=_party(organisation, phone=organisation.phone),
        buyer=_party(counterparty),
        basis=basis,
        lines=[
            PrintedLine(
                position=line.position,
                description=line.description,
                quantity=format_quantity(line.quantity),
                unit=line.unit.name if line.unit is not None else "",
                price=format_money(line.price),
                amount=format_money(line.amount),
                vat_rate=_rate_label(VatRate.WITHOUT if invoice.vat_mode == VatMode.WITHOUT else line.vat_rate),
                vat_amount=format_money(line.vat_amount) if line.vat_amount else "—",
            )
            for line in lines
        ],
        mixed_rates=len(rates) > 1 and invoice.vat_mode != VatMode.WITHOUT,
        subtotal=format_money(subtotal),
        vat_totals=vat_totals(breakdown, invoice.vat_mode),
        total=format_money(invoice.total),
        count_line=f"Всего наименований {len(lines)}, на сумму {format_money(invoice.total)} {currency_short}",
        total_in_words=amount_in_words(invoice.total, unit=unit, subunit=subunit),
        due_line=f"Оплатить не позднее {invoice.due_date:%d.%m.%Y}" if invoice.due_date else "",
        comment=invoice.comment,
        signatures=_signatures(organisation, facsimile),
        stamp=data_uri(organisation.stamp) if facsimile else "",
    )
    # The ГОСТ Р 56042 QR pays roubles to a Russian account: only rouble invoices carry it.
    if bank is not None and invoice.currency_id == RUB:
        try:
            document.qr_payload = qr_payload(invoice, bank, breakdown)
        except qr.QrPayloadError:
            document.qr_payload = ""
        if document.qr_payload:
            svg = qr.qr_svg(document.qr_payload).encode("utf-8")
            document.qr_image = "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
    return document


def render_html(
    invoice: Invoice,
    *,
    pdf: bool = False,
    facsimile: bool = False,
    extra: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> str:
    """The form as HTML: for the screen (with the `request` and `extra` context of its toolbar) or for
    WeasyPrint."""
    document = invoice_document(invoice, facsimile=facsimile)
    context = {"doc": document, "invoice": invoice, "pdf": pdf, "facsimile": facsimile, **(extra or {})}
    return render_to_string(TEMPLATE, context, request=request)


def render_pdf(invoice: Invoice, *, facsimile: bool = False) -> bytes:
    """The PDF of the form, with the organisation's facsimile images or without; fonts are embedded
    (subsets) by WeasyPrint."""
    from weasyprint import CSS, HTML  # heavy import, only where a PDF is made

    stylesheet = finders.find(STYLESHEET)
    if not isinstance(stylesheet, str):
        raise RuntimeError(f"static file {STYLESHEET} not found")
    pdf = HTML(string=render_html(invoice, pdf=True, facsimile=facsimile)).write_pdf(
        stylesheets=[CSS(filename=stylesheet)]
    )
    assert pdf is not None
    return bytes(pdf)


def pdf_filename(invoice: Invoice) -> str:
    """«Счет_123_от_10.03.2026.pdf»."""
    return f"Счет_{print_number(invoice)}_от_{short_date(invoice)}.pdf".replace("/", "-")
