"""The in-suite fake 1C OData server (see `server.py`) and its pytest fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import EMPTY_DATE, ZERO_GUID, FakeOneC, serve

__all__ = ["EMPTY_DATE", "ZERO_GUID", "FakeOneC", "fake_onec", "serve"]


@pytest.fixture
def fake_onec() -> Iterator[FakeOneC]:
    """A running fake БП 3.0 with no data; tests add objects with `fake_onec.add(...)`."""
    with serve(FakeOneC()) as fake:
        yield fake
