import pytest
from django.conf import settings
from django.db import connection


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite tuning")
def test_sqlite_runs_in_wal_with_busy_timeout_and_immediate_transactions():
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == 20000
    assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_huey_backend_follows_redis_url():
    expected = "huey.RedisHuey" if settings.REDIS_URL else "huey.SqliteHuey"
    assert settings.HUEY["huey_class"] == expected
    assert settings.HUEY["immediate"] is False


def test_production_defaults_refuse_to_start_without_secret_key(tmp_path):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "SDELKA_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "sdelka.settings"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def _settings_say(tmp_path, expression: str, **env: str) -> str:
    """`expression` over the settings module (as `s`) printed by a fresh interpreter with only `env` set."""
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "SDELKA_DATA_DIR": str(tmp_path), "SECRET_KEY": "x" * 50, **env}
    code = f"import sdelka.settings as s; print({expression})"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_debug_is_off_unless_asked(tmp_path):
    assert _settings_say(tmp_path, "s.DEBUG, s.ALLOWED_HOSTS") == "False ['127.0.0.1', 'localhost']"


def test_jit_off_is_added_to_the_options_of_a_postgresql_url(tmp_path):
    for url, options in [
        ("postgres://u@db:5432/crm", "-c jit=off"),
        ("postgres://u@db:5432/crm?options=-c%20search_path%3Dcrm", "-c search_path=crm -c jit=off"),
    ]:
        assert _settings_say(tmp_path, "s.DATABASES['default']['OPTIONS']['options']", DATABASE_URL=url) == options


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's JIT")
def test_postgresql_sessions_run_without_jit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"


def test_a_started_sdelka_collects_cyclic_garbage_after_ten_thousand_allocations():
    import gc

    from sdelka.core.apps import GC_FIRST_GENERATION_THRESHOLD

    assert gc.get_threshold()[0] == GC_FIRST_GENERATION_THRESHOLD == 10_000
