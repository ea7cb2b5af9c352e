"""The in-suite fake 1C OData server (see `server.py`) and its pytest fixtures.

Import the fixtures a test module uses (`from tests.fake_odata import fake_bp30, odata_settings`) and list them
in the module's `__all__`; `odata_settings` gives a Fernet key for the encrypted 1C password and English
messages, `fake_onec`/`fake` a running fake БП 3.0 with no data."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.utils import translation

from .server import EMPTY_DATE, ZERO_GUID, FakeOneC, serve

__all__ = ["EMPTY_DATE", "ZERO_GUID", "FakeOneC", "fake_bp30", "fake_onec", "odata_settings", "serve"]


@pytest.fixture
def fake_onec() -> Iterator[FakeOneC]:
    """A running fake БП 3.0 with no data; tests add objects with `fake_onec.add(...)`."""
    with serve(FakeOneC()) as fake:
        yield fake


@pytest.fixture(name="fake")
def fake_bp30() -> Iterator[FakeOneC]:
    """The same as `fake_onec`, under the name `fake`."""
    with serve(FakeOneC("bp30")) as fake:
        yield fake


@pytest.fixture
def odata_settings(settings: Any) -> Iterator[None]:
    settings.FERNET_KEY = Fernet.generate_key().decode()
    with translation.override("en"):
        yield
