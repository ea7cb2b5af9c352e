"""pytest fixtures for exchange tests; use with `pytest_plugins = ["tests.onec_fixtures"]` in a test module."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tests.onec_emulator import OneCEmulator

SITE_LOGIN = "onec"
SITE_PASSWORD = "secret-exchange-password"


@pytest.fixture
def exchange_media(settings: Any, tmp_path: Any) -> Any:
    """Exchange files go to a fresh media folder per test."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def huey_immediate() -> Iterator[Any]:
    """Run Huey jobs in-process, at enqueue time (the import job then finishes inside the first mode=import)."""
    from huey.contrib.djhuey import HUEY

    previous = HUEY.immediate
    HUEY.immediate = True
    yield HUEY
    HUEY.immediate = previous


@pytest.fixture
def site_connection(db: None, exchange_media: Any) -> Any:
    from sdelka.exchange.services import create_connection

    return create_connection(name="УТ 11", login=SITE_LOGIN, password=SITE_PASSWORD, prefix="УТ")


@pytest.fixture
def onec(client: Client, site_connection: Any, huey_immediate: Any) -> OneCEmulator:
    return OneCEmulator(client, login=SITE_LOGIN, password=SITE_PASSWORD)
