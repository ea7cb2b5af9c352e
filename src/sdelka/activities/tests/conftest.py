from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from sdelka.parties.models import Counterparty
from tests.factories import CounterpartyFactory


@pytest.fixture
def huey_queue() -> Iterator[Any]:
    """The Huey instance configured in settings (SqliteHuey, or RedisHuey when REDIS_URL is set) on its
    real storage, under a queue name of its own so that a running consumer never takes the test's jobs
    and parallel runs never see each other's. Emptied before and after each test."""
    from huey.contrib.djhuey import HUEY

    saved = HUEY.name, HUEY.storage, HUEY._immediate
    HUEY.name = f"{saved[0]}-test-{os.getpid()}"
    HUEY._immediate = False
    HUEY.storage = HUEY.get_storage(**HUEY.storage_kwargs)
    HUEY.flush()
    try:
        yield HUEY
    finally:
        HUEY.flush()
        HUEY.name, HUEY.storage, HUEY._immediate = saved


@pytest.fixture
def own_counterparty(staff: Any) -> Counterparty:
    return CounterpartyFactory.create(name="Своя", owner=staff.manager)
