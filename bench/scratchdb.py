"""A throwaway PostgreSQL database next to the one DATABASE_URL names, for benchmarks that need an empty one."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit


@contextlib.contextmanager
def scratch_postgres(url: str, suffix: str) -> Iterator[str]:
    """Create `<database><suffix>` (dropping a leftover first), yield its URL, drop it afterwards."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/") + suffix
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path="/" + name))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_busy(url: str) -> bool:
    """Whether another session of the database is working (autovacuum's too)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state = 'active' AND pid <> pg_backend_pid()"
        ).fetchone()
    return bool(row and row[0])


def wait_until_quiet(busy: Callable[[], bool], limit: float = 300) -> float:
    """Poll `busy` once a second until it says no twice in a row (or `limit` seconds pass); the seconds waited."""
    started, quiet = time.monotonic(), 0
    while time.monotonic() - started < limit and quiet < 2:
        time.sleep(1)
        quiet = 0 if busy() else quiet + 1
    return round(time.monotonic() - started, 1)
