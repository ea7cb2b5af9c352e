"""The printed invoice: the PDF's text (extracted with pypdf), its embedded fonts, the QR payload, VAT
per rate, other currencies, the screen view and the PDF download, and visibility (404 outside scope).

This module is also the URLconf of its view tests (`sales.urls` at "invoices/" as the project mounts it).
"""

from __future__ import annotations

import datetime
import io
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import include, path
from pypdf import PdfReader
from rest_framework.test import APIClient

from sdelka.catalog.models import Unit
from sdelka.sales import selectors, services
from sdelka.sales.models import Invoice, Organisation
from sdelka.sales.printing import invoice_pdf, qr
from sdelka.sales.tests.conftest import DATE, add_bank_account, line
from sdelka.sales.tests.test_qr import decode_png
from tests.factories import ContactPersonFactory, DealFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

urlpatterns = [
    path("invoices/", include("sdelka.sales.urls")),
    path("api/v1/", include("sdelka.api.urls")),
    path("", include("django.contrib.auth.urls")),
]
URLS = pytest.mark.urls(__name__)


def pdf_text(pdf: bytes) -> str:
    """All the text of the PDF, whitespace (including no-break spaces) collapsed to single spaces."""
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def make_invoice(user: Any, organisation: Organisation, counterparty: Any, **kwargs: Any) -> Invoice:
    kwargs.setdefault("lines", [line()])
    kwargs.setdefault("date", DATE)
    invoice = services.create_invoice(user=user, organisation=organisation, counterparty=counterparty, **kwargs)
    services.issue_invoice(user=user, invoice=invoice)
    return selectors.invoice_get(user=user, pk=invoice.pk)


@pytest.fixture
def supplier(organisation: Organisation) -> Organisation:
    organisation.full_name = "Общество с ограниченной ответственностью «Сделка»"
    organisation.name = "ООО «Сделка»"
    organisation.legal_address = "123456, г. Москва,\nул. Тверская, д. 1"
    organisation.phone = "+7 495 000-00-00"
    organisation.save()
    return organisation


@pytest.fixture
def buyer(own_counterparty: Any) -> Any:
    own_counterparty.legal_address = "191186, г. Санкт-Петербург, Невский пр., д. 2"
    own_counterparty.emails = "buh@svoya.ru"
    own_counterparty.save()
    return own_counterparty


@pytest.fixture
def piece() -> Unit:
    return Unit.objects.get(okei="796")


@pytest.fixture
def invoice(staff: Any, supplier: Organisation, buyer: Any, piece: Unit) -> Invoice:
    return make_invoice(
        staff.manager,
        supplier,
        buyer,
        basis="Договор поставки № 7 от 01.02.2026",
        due_date=datetime.date(2026, 3, 20),
        lines=[
            line(description="Бумага офисная А4", quantity=Decimal("10"), price=Decimal("450.00"), unit=piece),
            line(description="Доставка", quantity=Decimal("1"), price=Decimal("1000.00")),
        ],
    )


def test_pdf_text_has_the_whole_form(invoice: Invoice, supplier: Organisation, buyer: Any) -> None:
    bank = supplier.bank_accounts.get()
    text = pdf_text(invoice_pdf.render_pdf(invoice))
    expected = [
        "ПАО Сбербанк",
        "Банк получателя",
        f"БИК {bank.bik}",
        f"Сч. № {bank.correspondent_account}",
        f"ИНН {supplier.inn}",
        f"КПП {supplier.kpp}",
        f"Сч. № {bank.number}",
        "ООО «Сделка» Получатель",
        # The number as the client writes it: without the organisation's prefix «СД-».
        "Счет на оплату № 1 от 10 марта 2026 г.",
        "Поставщик (Исполнитель): Общество с ограниченной ответственностью «Сделка», "
        f"ИНН {supplier.inn}, КПП {supplier.kpp}, 123456, г. Москва, ул. Тверская, д. 1, тел.: +7 495 000-00-00",
        f"Покупатель (Заказчик): {buyer.full_name}, ИНН {buyer.inn}, КПП {buyer.kpp}, 191186, г. Санкт-Петербург",
        "Основание: Договор поставки № 7 от 01.02.2026",
        "№ Товары (работы, услуги) Кол-во Ед. Цена Сумма",
        "1 Бумага офисная А4 10 шт 450,00 4 500,00",
        "2 Доставка 1 1 000,00 1 000,00",
        "Итого: 5 500,00",
        "В том числе НДС (22%): 991,81",
        "Всего к оплате: 5 500,00",
        "Всего наименований 2, на сумму 5 500,00 руб.",
        "Пять тысяч пятьсот рублей 00 копеек",
        "Оплатить не позднее 20.03.2026",
        "Руководитель",
        "Иванов И. И.",
        "Бухгалтер",
        "Сидорова А. А.",
        "QR-код для оплаты",
    ]
    missing = [fragment for fragment in expected if fragment not in text]
    assert not missing, text
    assert "Ставка НДС" not in text  # one rate: no VAT columns
    assert "СД-1" not in text
    assert invoice.vat_amount == Decimal("991.81")


def test_cyrillic_fonts_are_embedded(invoice: Invoice) -> None:
    reader = PdfReader(io.BytesIO(invoice_pdf.render_pdf(invoice)))
    fonts = []
    for page in reader.pages:
        resources: Any = page["/Resources"]
        for reference in resources["/Font"].values():
            font = reference.get_object()
            descendant = font["/DescendantFonts"][0].get_object() if "/DescendantFonts" in font else font
            descriptor = descendant["/FontDescriptor"].get_object()
            embedded = {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor.keys())
            fonts.append((str(font["/BaseFont"]), bool(embedded)))
    assert fonts, "the PDF has no fonts"
    assert all(embedded for _, embedded in fonts), fonts
    assert any("DejaVu" in name for name, _ in fonts), fonts


def test_qr_payload_decodes_to_the_exact_requisites(invoice: Invoice, supplier: Organisation) -> None:
    bank = supplier.bank_accounts.get()
    document = invoice_pdf.invoice_document(invoice)
    expected = (
        f"ST00012|Name=ООО «Сделка»|PersonalAcc={bank.number}|BankName=ПАО Сбербанк|BIC=044525225"
        f"|CorrespAcc=30101810400000000225|Sum=550000"
        f"|Purpose=Оплата по счету № 1 от 10.03.2026, в т.ч. НДС 22% - 991.81"
        f"|PayeeINN={supplier.inn}|KPP={supplier.kpp}"
    )
    assert document.qr_payload == expected
    assert decode_png(qr.qr_png(document.qr_payload)) == expected
    assert document.qr_image.startswith("data:image/svg+xml;base64,")


def test_mixed_rates_get_vat_columns_and_a_line_per_rate(staff: Any, supplier: Organisation, buyer: Any) -> None:
    invoice = make_invoice(
        staff.manager,
        supplier,
        buyer,
        lines=[
            line(description="Ноутбук", price=Decimal("1220.00"), vat_rate="22"),
            line(description="Молоко", quantity=Decimal("2"), price=Decimal("55.00"), vat_rate="10"),
            line(description="Книга", price=Decimal("300.00"), vat_rate="10"),
            line(description="Экспорт", price=Decimal("100.00"), vat_rate="0"),
        ],
    )
    # 1220 × 22/122 = 220.00; (110 + 300) × 10/110 = 10.00 + 27.27 = 37.27; 0 % = 0.00.
    assert invoice_pdf.vat_breakdown(invoice.lines.all(), invoice.vat_mode) == [
        ("22", Decimal("220.00")),
        ("10", Decimal("37.27")),
        ("0", Decimal("0.00")),
    ]
    assert invoice.vat_amount == Decimal("257.27")
    text = pdf_text(invoice_pdf.render_pdf(invoice))
    for fragment in (
        "Цена Ставка НДС Сумма НДС Сумма",
        "1 Ноутбук 1 1 220,00 22% 220,00 1 220,00",
        "2 Молоко 2 55,00 10% 10,00 110,00",
        "Итого: 1 730,00",
        "В том числе НДС (22%): 220,00",
        "В том числе НДС (10%): 37,27",
        "В том числе НДС (0%): 0,00",
        "Всего к оплате: 1 730,00",
        "Одна тысяча семьсот тридцать рублей 00 копеек",
    ):
        assert fragment in text, (fragment, text)
    payload = invoice_pdf.invoice_document(invoice).qr_payload
    assert "|Purpose=Оплата по счету № 1 от 10.03.2026, в т.ч. НДС 22% - 220.00, НДС 10% - 37.27, НДС 0% - 0.00|" in (
        payload
    )


def test_vat_on_top_adds_the_vat_lines_to_the_total(staff: Any, supplier: Organisation, buyer: Any) -> None:
    invoice = make_invoice(
        staff.manager,
        supplier,
        buyer,
        vat_mode="on_top",
        lines=[line(price=Decimal("1000.00"), vat_rate="22"), line(price=Decimal("100.00"), vat_rate="10")],
    )
    text = pdf_text(invoice_pdf.render_pdf(invoice))
    assert "Итого: 1 100,00 НДС (22%): 220,00 НДС (10%): 10,00 Всего к оплате: 1 330,00" in text
    assert "В том числе" not in text
    assert "Одна тысяча триста тридцать рублей 00 копеек" in text
    assert "|Sum=133000|" in invoice_pdf.invoice_document(invoice).qr_payload


def test_without_vat(staff: Any, supplier: Organisation, buyer: Any) -> None:
    invoice = make_invoice(staff.manager, supplier, buyer, vat_mode="without", lines=[line(price=Decimal("0.01"))])
    text = pdf_text(invoice_pdf.render_pdf(invoice))
    assert "Итого: 0,01 Без налога (НДС): — Всего к оплате: 0,01" in text
    assert "Ноль рублей 01 копейка" in text
    payload = invoice_pdf.invoice_document(invoice).qr_payload
    assert "|Sum=1|Purpose=Оплата по счету № 1 от 10.03.2026, НДС не облагается|" in payload


def test_a_dollar_invoice_prints_in_dollars_without_a_qr(staff: Any, supplier: Organisation, buyer: Any) -> None:
    services.set_exchange_rate(currency="USD", date=DATE, rate="80.5000")
    add_bank_account(supplier, currency_id="USD", is_main=False)
    invoice = make_invoice(
        staff.manager, supplier, buyer, currency="USD", lines=[line(price=Decimal("1000001.99"), vat_rate="22")]
    )
    document = invoice_pdf.invoice_document(invoice)
    assert document.bank is not None and document.bank.currency_id == "USD"
    assert document.qr_payload == "" and document.qr_image == ""
    text = pdf_text(invoice_pdf.render_pdf(invoice))
    assert "Один миллион один доллар США 99 центов" in text
    assert "Всего наименований 1, на сумму 1 000 001,99 USD" in text
    assert "QR-код" not in text


def test_an_entrepreneur_signs_alone(staff: Any, buyer: Any) -> None:
    entrepreneur = OrganisationFactory(
        is_entrepreneur=True, inn="500100732259", kpp="", name="ИП Петров П. П.", director_name="Петров П. П."
    )
    add_bank_account(entrepreneur)
    invoice = make_invoice(staff.manager, entrepreneur, buyer)
    text = pdf_text(invoice_pdf.render_pdf(invoice))
    assert "Предприниматель" in text and "Петров П. П." in text
    assert "Бухгалтер" not in text and "Руководитель" not in text
    payload = invoice_pdf.invoice_document(invoice).qr_payload
    assert "|PayeeINN=500100732259" in payload and "KPP=" not in payload


def test_basis_falls_back_to_the_deal(staff: Any, supplier: Organisation, buyer: Any) -> None:
    deal = DealFactory(counterparty=buyer, owner=staff.manager, title="Поставка бумаги на 2026 год")
    invoice = make_invoice(staff.manager, supplier, buyer, deal=deal)
    assert invoice_pdf.invoice_document(invoice).basis == "Поставка бумаги на 2026 год"


def test_a_name_with_the_separator_switches_it_in_the_qr(staff: Any, supplier: Organisation, buyer: Any) -> None:
    supplier.name = "ООО «Рога | Копыта»"
    supplier.save()
    invoice = make_invoice(staff.manager, supplier, buyer)
    payload = invoice_pdf.invoice_document(invoice).qr_payload
    assert payload.startswith("ST00012#Name=ООО «Рога | Копыта»#PersonalAcc=")
    assert decode_png(qr.qr_png(payload)) == payload


def test_print_number_drops_the_prefix_and_leading_zeros(staff: Any, supplier: Organisation, buyer: Any) -> None:
    invoice = make_invoice(staff.manager, supplier, buyer)
    assert (invoice.number, invoice_pdf.print_number(invoice)) == ("СД-1", "1")
    invoice.number = "СД-000123"
    assert invoice_pdf.print_number(invoice) == "123"
    invoice.number = "0000"
    assert invoice_pdf.print_number(invoice) == "0000"  # nothing left: printed as it is
    assert invoice_pdf.pdf_filename(invoice).endswith("от_10.03.2026.pdf")


# --- Views -----------------------------------------------------------------------------------------


def web_client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@URLS
def test_screen_view_shows_the_same_form_with_a_toolbar(
    staff: Any, invoice: Invoice, django_assert_max_num_queries: Any
) -> None:
    ContactPersonFactory(counterparty=invoice.counterparty)
    client = web_client(staff.manager)
    with django_assert_max_num_queries(5):  # fixed: the lines come in one prefetch
        answer = client.get(f"/invoices/{invoice.pk}/print/")
    assert answer.status_code == 200
    html = answer.content.decode()
    assert "Счет на оплату № 1 от 10 марта 2026" in html
    assert "Пять тысяч пятьсот рублей 00 копеек" in html
    assert f'href="/invoices/{invoice.pk}/pdf/"' in html
    assert f'action="/invoices/{invoice.pk}/send/"' in html
    assert 'value="buh@svoya.ru"' in html
    assert '<img src="data:image/svg+xml;base64,' in html


@URLS
def test_pdf_download(staff: Any, invoice: Invoice) -> None:
    answer = web_client(staff.manager).get(f"/invoices/{invoice.pk}/pdf/")
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/pdf"
    assert answer["Content-Disposition"].startswith(f'attachment; filename="invoice-{invoice.pk}.pdf"; filename*=UTF-8')
    assert answer.content.startswith(b"%PDF-")
    assert "Счет на оплату № 1 от 10 марта 2026 г." in pdf_text(answer.content)


@URLS
@pytest.mark.parametrize("suffix", ["print/", "pdf/"])
def test_outside_the_scope_is_not_found(staff: Any, invoice: Invoice, suffix: str) -> None:
    assert web_client(staff.outsider).get(f"/invoices/{invoice.pk}/{suffix}").status_code == 404
    assert web_client(staff.east_manager).get(f"/invoices/{invoice.pk}/{suffix}").status_code == 404
    assert web_client(staff.head).get(f"/invoices/{invoice.pk}/{suffix}").status_code == 200
    assert web_client(staff.manager).get(f"/invoices/{invoice.pk + 1000}/{suffix}").status_code == 404
    assert Client().get(f"/invoices/{invoice.pk}/{suffix}").status_code == 302  # to the login page


@URLS
def test_api_pdf_and_its_visibility(staff: Any, invoice: Invoice) -> None:
    api = APIClient()
    api.force_authenticate(staff.manager)
    answer = api.get(f"/api/v1/invoices/{invoice.pk}/pdf/")
    assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    assert "Всего к оплате: 5 500,00" in pdf_text(answer.content)
    api.force_authenticate(staff.outsider)
    assert api.get(f"/api/v1/invoices/{invoice.pk}/pdf/").status_code == 404
