"""Browser tests: Playwright's sync API driving Debian's chromium against pytest-django's live server.

The live server runs in a thread of this process and shares the test database (a file on SQLite, a real
database on PostgreSQL), so the tests are transactional and restore the reference data afterwards.
Playwright's sync API keeps an event loop in this thread; Django refuses ORM calls from a thread with a
running loop unless told otherwise, which is safe here because nothing else runs concurrently in it.

Screenshots of the main screens go to docs/screenshots/ only when SDELKA_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("SDELKA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
BROWSER_LANGUAGE = "ru"  # the browser asks for Russian, as our users' browsers do
PASSWORD = "secret-pass-123"  # tests.factories.UserFactory


def _chromium() -> str:
    found = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if not found:
        pytest.skip("chromium is not installed (deps/apt-test.txt installs it)")
    return found


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        locale=f"{BROWSER_LANGUAGE}-RU", viewport={"width": 1366, "height": 900}, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


REFERENCE_MIGRATIONS = (
    ("sdelka.core.migrations.0002_reference_currencies", "add_currencies"),
    ("sdelka.catalog.migrations.0002_reference_units", "add_units"),
    ("sdelka.sales.migrations.0002_default_pipeline", "add_pipeline"),
)


@pytest.fixture(autouse=True)
def reference_data(transactional_db: None) -> None:
    """The currencies, units and default pipeline the data migrations load. `serialized_rollback`
    restores them after an earlier transactional test flushed the database, but not reliably when a
    live-server test follows another in a mixed run; loading them again when missing is idempotent.
    The flush also recreates content types under new ids, so the cached ones are dropped first."""
    import importlib

    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    from sdelka.sales.models import Pipeline

    ContentType.objects.clear_cache()
    if Pipeline.objects.exists():
        return
    for module, function in REFERENCE_MIGRATIONS:
        getattr(importlib.import_module(module), function)(apps, None)


class Shots:
    """Saves a full-page screenshot under docs/screenshots/ when SDELKA_SCREENSHOTS=1; otherwise nothing."""

    def __init__(self) -> None:
        self.enabled = os.environ.get("SDELKA_SCREENSHOTS") == "1"

    def __call__(self, page: Any, name: str) -> None:
        if self.enabled:
            if page.locator("#notifications").count():
                page.locator("#notifications .bell").wait_for()  # the header's reminders load after the page
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def shot() -> Shots:
    return Shots()


def log_in(page: Any, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"{base_url}/")
