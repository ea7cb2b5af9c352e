import pytest
from django.core.management import call_command

from sdelka.accounts.models import Role, User

pytestmark = pytest.mark.django_db


def test_first_start_creates_admin_with_generated_password(capsys):
    call_command("bootstrap", "--no-demo")

    out = capsys.readouterr().out
    admin = User.objects.get(username="admin")
    password = out.split("Password:")[1].split()[0]
    assert admin.is_superuser and admin.role == Role.ADMIN
    assert admin.check_password(password)
    assert len(password) >= 12


def test_admin_password_from_environment_is_not_printed(monkeypatch, capsys):
    monkeypatch.setenv("SDELKA_ADMIN_PASSWORD", "Very-Secret-42")

    call_command("bootstrap", "--no-demo")

    assert "Very-Secret-42" not in capsys.readouterr().out
    assert User.objects.get(username="admin").check_password("Very-Secret-42")


def test_second_start_keeps_the_admin(capsys):
    call_command("bootstrap", "--no-demo")
    first_hash = User.objects.get(username="admin").password

    call_command("bootstrap", "--no-demo")

    assert User.objects.get(username="admin").password == first_hash
    assert "Administrator exists" in capsys.readouterr().out


def test_demo_is_not_loaded_outside_development_mode(settings):
    from sdelka.parties.models import Counterparty

    settings.DEV_MODE = False
    call_command("bootstrap")

    assert not Counterparty.objects.exists()


def test_demo_loads_when_asked(settings):
    from sdelka.parties.models import Counterparty

    settings.DEV_MODE = False
    call_command("bootstrap", "--demo")

    assert Counterparty.objects.exists()
