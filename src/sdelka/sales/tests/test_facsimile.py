"""Facsimile signatures and stamp: what an upload must be (hostile files refused with a clear reason), how
it is stored (a made-up name, the replaced file deleted), and the printed invoice with and without them —
the PDF's embedded images, the screen form, the e-mailed PDF and the API."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core import mail as django_mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image
from pypdf import PdfReader
from rest_framework.test import APIClient

from sdelka.sales import mail, services
from sdelka.sales.facsimile import MAX_BYTES, validate_facsimile
from sdelka.sales.models import Invoice, Organisation
from sdelka.sales.printing import invoice_pdf
from sdelka.sales.tests.conftest import line
from sdelka.sales.tests.test_print import URLS, make_invoice
from sdelka.sales.tests.test_print import urlpatterns as urlpatterns  # this module is a URLconf too

pytestmark = pytest.mark.django_db


def picture(fmt: str = "PNG", size: tuple[int, int] = (300, 120), colour: str = "navy") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


def upload(name: str, content: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> Any:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def signed(staff: Any, organisation: Organisation) -> Organisation:
    return services.save_organisation(
        user=staff.admin,
        organisation=organisation,
        director_signature=upload("подпись директора.png", picture(size=(301, 121))),
        accountant_signature=upload("buh.jpg", picture("JPEG", size=(302, 122)), "image/jpeg"),
        stamp=upload("stamp.PNG", picture(size=(400, 400), colour="blue")),
    )


@pytest.fixture
def invoice(staff: Any, organisation: Organisation, own_counterparty: Any) -> Invoice:
    own_counterparty.emails = "buh@svoya.ru"
    own_counterparty.save()
    return make_invoice(staff.manager, organisation, own_counterparty, lines=[line()])


def pdf_images(pdf: bytes) -> list[tuple[int, int]]:
    """(width, height) of every raster image embedded in the PDF (the QR code is vector, not counted)."""
    reader = PdfReader(io.BytesIO(pdf))
    return sorted(image.image.size for page in reader.pages for image in page.images)


# --- what an upload must be -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, content", [("a.png", picture()), ("a.jpeg", picture("JPEG")), ("A.JPG", picture("JPEG"))]
)
def test_png_and_jpeg_are_accepted(name: str, content: bytes) -> None:
    validate_facsimile(upload(name, content))


HTML = b"<html><script>alert(document.cookie)</script></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="10" height="10"/></svg>'


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("evil.png", HTML, "is not a PNG or JPEG image"),
        ("stamp.svg", SVG, "Only PNG and JPEG images are accepted"),
        ("stamp.gif", picture("GIF"), "Only PNG and JPEG images are accepted"),
        ("stamp", picture(), "Only PNG and JPEG images are accepted"),
        ("stamp.png.exe", picture(), "Only PNG and JPEG images are accepted"),
        ("stamp.jpg", picture("PNG"), "named .jpg but contains a PNG image"),
        ("cut.png", picture()[:60], "damaged or not a real image"),
        ("cut.jpg", picture("JPEG")[:200], "damaged or not a real image"),
        ("huge.png", picture(size=(5000, 20)), "each side must be from 16 to 4000"),
        ("dot.png", picture(size=(4, 4)), "each side must be from 16 to 4000"),
        ("big.png", b"\x89PNG\r\n\x1a\n" + b"\0" * MAX_BYTES, "larger than 1024 KB"),
    ],
)
def test_hostile_or_wrong_uploads_are_refused_with_the_reason(name: str, content: bytes, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_facsimile(upload(name, content))
    assert reason in " ".join(caught.value.messages)


def test_stored_under_a_made_up_name_and_the_replaced_file_is_deleted(
    staff: Any, signed: Organisation, media: Any, django_capture_on_commit_callbacks: Any
) -> None:
    names = [signed.director_signature.name, signed.accountant_signature.name, signed.stamp.name]
    assert [n.rsplit("-", 1)[0] for n in names] == [
        f"facsimiles/{signed.pk}/director",
        f"facsimiles/{signed.pk}/accountant",
        f"facsimiles/{signed.pk}/stamp",
    ]
    assert names[0].endswith(".png") and names[1].endswith(".jpg") and "подпись" not in names[0]
    old = media / names[2]
    assert old.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.save_organisation(user=staff.admin, organisation=signed, stamp=upload("new.png", picture()))
    assert not old.exists() and (media / Organisation.objects.get(pk=signed.pk).stamp.name).exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.save_organisation(user=staff.admin, organisation=signed, director_signature=False)
    assert not Organisation.objects.get(pk=signed.pk).director_signature
    assert not (media / names[0]).exists()


def test_the_service_refuses_a_hostile_file_and_keeps_the_stored_one(staff: Any, signed: Organisation) -> None:
    stored = signed.stamp.name
    with pytest.raises(ValidationError) as caught:
        services.save_organisation(user=staff.admin, organisation=signed, stamp=upload("x.png", HTML))
    assert "stamp" in caught.value.message_dict
    assert Organisation.objects.get(pk=signed.pk).stamp.name == stored


def organisation_form(organisation: Organisation) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(organisation, name) for name in services.ORGANISATION_FIELDS}
    data = {k: ("on" if v is True else v) for k, v in data.items() if v not in (False, None)}
    for name in ("director_signature", "accountant_signature", "stamp"):
        data.pop(name, None)
    accounts = list(organisation.bank_accounts.all())
    data.update(
        {
            "bank_accounts-TOTAL_FORMS": str(len(accounts)),
            "bank_accounts-INITIAL_FORMS": str(len(accounts)),
            "bank_accounts-MIN_NUM_FORMS": "0",
            "bank_accounts-MAX_NUM_FORMS": "1000",
        }
    )
    for n, account in enumerate(accounts):
        for field in ("id", "bik", "bank_name", "correspondent_account", "number", "currency"):
            data[f"bank_accounts-{n}-{field}"] = getattr(account, "currency_id" if field == "currency" else field)
        data[f"bank_accounts-{n}-organisation"] = organisation.pk
        data[f"bank_accounts-{n}-is_main"] = "on" if account.is_main else ""
    return data


def test_admin_upload_shows_the_picture_and_refuses_a_hostile_file(staff: Any, organisation: Organisation) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff.admin)
    url = reverse("admin:sales_organisation_change", args=[organisation.pk])
    data = organisation_form(organisation)
    answer = client.post(url, {**data, "stamp": upload("stamp.png", HTML)})
    assert answer.status_code == 200
    assert "is not a PNG or JPEG image" in " ".join(answer.context["adminform"].form.errors["stamp"])
    assert not Organisation.objects.get(pk=organisation.pk).stamp

    answer = client.post(url, {**data, "stamp": upload("stamp.png", picture())})
    assert answer.status_code == 302
    assert Organisation.objects.get(pk=organisation.pk).stamp.name.startswith(f"facsimiles/{organisation.pk}/stamp-")
    page = client.get(url).content.decode()
    assert 'src="data:image/png;base64,' in page and 'accept="image/png,image/jpeg"' in page
    assert "/media/" not in page  # facsimiles are never linked by URL


# --- the printed invoice ----------------------------------------------------------------------------


def test_pdf_with_facsimile_embeds_the_signatures_and_the_stamp(signed: Organisation, invoice: Invoice) -> None:
    assert pdf_images(invoice_pdf.render_pdf(invoice, facsimile=True)) == [(301, 121), (302, 122), (400, 400)]
    assert pdf_images(invoice_pdf.render_pdf(invoice)) == []


def test_pdf_with_facsimile_of_an_organisation_without_pictures(invoice: Invoice) -> None:
    assert pdf_images(invoice_pdf.render_pdf(invoice, facsimile=True)) == []


def test_entrepreneur_prints_one_signature_and_the_stamp(signed: Organisation, invoice: Invoice) -> None:
    invoice.organisation.is_entrepreneur = True
    assert pdf_images(invoice_pdf.render_pdf(invoice, facsimile=True)) == [(301, 121), (400, 400)]


def test_a_lost_file_prints_without_it(signed: Organisation, invoice: Invoice, media: Any) -> None:
    (media / signed.stamp.name).unlink()
    assert pdf_images(invoice_pdf.render_pdf(invoice, facsimile=True)) == [(301, 121), (302, 122)]


@URLS
def test_screen_form_toggles_the_facsimile_and_its_links_follow(
    staff: Any, signed: Organisation, invoice: Invoice
) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff.manager)
    plain = client.get(f"/invoices/{invoice.pk}/print/").content.decode()
    assert "data:image/png" not in plain and f'href="/invoices/{invoice.pk}/print/?facsimile=1"' in plain
    signed_page = client.get(f"/invoices/{invoice.pk}/print/?facsimile=1").content.decode()
    assert signed_page.count('class="facsimile"') == 2 and 'class="stamp"' in signed_page
    assert f'href="/invoices/{invoice.pk}/pdf/?facsimile=1"' in signed_page
    assert 'name="facsimile" value="1" checked' in signed_page
    answer = client.get(f"/invoices/{invoice.pk}/pdf/?facsimile=1")
    assert pdf_images(answer.content) == [(301, 121), (302, 122), (400, 400)]


@URLS
def test_no_toggle_for_an_organisation_without_pictures(staff: Any, invoice: Invoice) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff.manager)
    page = client.get(f"/invoices/{invoice.pk}/print/?facsimile=1").content.decode()
    assert 'id="facsimile-toggle"' not in page and 'name="facsimile"' not in page


@URLS
def test_sent_with_facsimile_only_when_asked(staff: Any, signed: Organisation, invoice: Invoice) -> None:
    client = Client()
    client.force_login(staff.manager)
    answer = client.post(f"/invoices/{invoice.pk}/send/", {"to": "buh@svoya.ru", "facsimile": "1"})
    assert answer["Location"] == f"/invoices/{invoice.pk}/print/?facsimile=1"
    ((_name, pdf, _type),) = django_mail.outbox[-1].attachments
    assert len(pdf_images(pdf)) == 3
    mail.send_invoice(user=staff.manager, invoice=invoice)
    ((_name, pdf, _type),) = django_mail.outbox[-1].attachments
    assert pdf_images(pdf) == []


@URLS
def test_api_pdf_and_send_take_the_option(staff: Any, signed: Organisation, invoice: Invoice) -> None:
    api = APIClient()
    api.force_authenticate(staff.manager)
    assert len(pdf_images(api.get(f"/api/v1/invoices/{invoice.pk}/pdf/?facsimile=1").content)) == 3
    assert pdf_images(api.get(f"/api/v1/invoices/{invoice.pk}/pdf/").content) == []
    answer = api.post(f"/api/v1/invoices/{invoice.pk}/send/", {"facsimile": True}, format="json")
    assert answer.status_code == 200
    ((_name, pdf, _type),) = django_mail.outbox[-1].attachments
    assert len(pdf_images(pdf)) == 3
