"""Who owns what a 1C base brings: the connection's chosen user (and its invoices, so payments notify him), or
the exchange's own user; set by `sdelka connection add --owner` / `connection owner`, the admin and shown on
the connection's page."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from sdelka.exchange.models import Connection
from sdelka.parties.models import Counterparty
from sdelka.sales.models import Invoice
from tests.factories import UserFactory
from tests.fake_odata import FakeOneC, fake_bp30, odata_settings
from tests.fixtures_path import fixtures_dir
from tests.onec_emulator import OneCEmulator

from .test_odata_documents import bp, run, seed_bp
from .test_sale import shop

pytest_plugins = ["tests.onec_fixtures"]
__all__ = ["bp", "fake_bp30", "odata_settings", "shop"]


@pytest.mark.django_db
def test_connection_owner_command_sets_checks_and_clears(capsys: Any) -> None:
    manager = UserFactory.create(username="ivanov")
    call_command("connection", "add", "--name", "УТ", "--login", "ut", "--password", "long-enough", "--owner", "ivanov")
    connection = Connection.objects.get()
    assert connection.counterparty_owner == manager
    with pytest.raises(CommandError, match="No active user"):
        call_command("connection", "add", "--name", "Б", "--login", "b", "--password", "long-enough", "--owner", "x")
    assert Connection.objects.count() == 1  # the refused add left nothing behind
    with pytest.raises(CommandError, match="No active user"):
        call_command("connection", "owner", "УТ", "1c-exchange")
    call_command("connection", "owner", "УТ")
    connection.refresh_from_db()
    assert connection.counterparty_owner is None
    assert "exchange's own user" in capsys.readouterr().out


@pytest.mark.django_db
@pytest.mark.usefixtures("odata_settings")
def test_odata_counterparties_and_invoices_go_to_the_chosen_manager(fake: FakeOneC, bp: Connection) -> None:
    manager = UserFactory.create()
    bp.counterparty_owner = manager
    bp.save(update_fields=["counterparty_owner"])
    seed_bp(fake)
    run("bp")
    buyer = Counterparty.objects.get(name="ООО Покупатель")
    assert buyer.owner == manager
    assert Counterparty.objects.visible_to(manager).filter(pk=buyer.pk).exists()
    assert Invoice.objects.get().owner == manager


@pytest.mark.django_db
def test_a_site_order_made_in_1c_goes_to_the_chosen_manager(
    onec: OneCEmulator, shop: dict[str, Any], site_connection: Any
) -> None:
    manager = UserFactory.create()
    site_connection.counterparty_owner = manager
    site_connection.save(update_fields=["counterparty_owner"])
    data = fixtures_dir("commerceml", "carono__yii2-1c-exchange", "to.xml").read_bytes()
    result = onec.sale_exchange({"to.xml": data})
    assert result.imports["to.xml"].status == "success", result.imports["to.xml"].text
    invoice = Invoice.objects.get()
    assert invoice.counterparty.name == "Петр Петров" and invoice.counterparty.owner == manager
    assert invoice.owner == manager


@pytest.mark.django_db
def test_without_a_chosen_owner_the_exchange_user_keeps_them(
    onec: OneCEmulator, shop: dict[str, Any], site_connection: Any
) -> None:
    inactive = UserFactory.create(is_active=False)
    site_connection.counterparty_owner = inactive  # left the company: his successor is not guessed
    site_connection.save(update_fields=["counterparty_owner"])
    data = fixtures_dir("commerceml", "carono__yii2-1c-exchange", "to.xml").read_bytes()
    onec.sale_exchange({"to.xml": data})
    assert Invoice.objects.get().counterparty.owner.username == "1c-exchange"


@pytest.mark.django_db
def test_connection_page_names_who_gets_new_counterparties(client: Any, staff: Any, site_connection: Any) -> None:
    manager = UserFactory.create(first_name="Анна", last_name="Петрова")
    client.force_login(staff.admin)
    page = client.get(reverse("web:exchange-connection", args=[site_connection.pk]))
    assert "the exchange&#x27;s own user" in page.content.decode()
    site_connection.counterparty_owner = manager
    site_connection.save(update_fields=["counterparty_owner"])
    page = client.get(reverse("web:exchange-connection", args=[site_connection.pk]))
    assert "Анна Петрова" in page.content.decode()
