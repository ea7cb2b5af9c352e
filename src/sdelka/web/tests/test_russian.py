"""The interface speaks Russian first: the catalogue is compiled and complete for the main screens."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from sdelka.core.requisites import validate_inn

pytestmark = pytest.mark.django_db


def test_login_page_in_russian(client):
    page = client.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Войти" in page or "Вход" in page


def test_dashboard_in_russian(client, staff):
    client.force_login(staff.manager)
    page = client.get(reverse("web:dashboard"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Контрагенты" in page


def test_validation_messages_in_russian():
    with translation.override("ru"), pytest.raises(ValidationError) as error:
        validate_inn("7707083894")
    assert "ИНН" in str(error.value)
    assert "check digit" not in str(error.value)


@pytest.mark.parametrize("english", ["Counterparties", "Deals", "Invoices", "Tasks", "Log out", "Without VAT"])
def test_main_words_are_translated(english):
    with translation.override("ru"):
        assert gettext(english) != english


def test_default_language_is_russian(settings):
    from sdelka import settings as production

    assert production.LANGUAGE_CODE == "ru"
