"""Writing a rule's pages on a second database connection while the next page is read and decided (decision 0005).

A first pull spends about as long in PostgreSQL (COPY, index upkeep, constraint checks at commit) as in Python
(mapping, checking, preparing rows); done one after the other on the one connection, neither overlaps the other.
`PageWriter` runs each page's write — its own transaction with the page's checkpoint, as before — in a thread of
its own (Django gives the thread its own connection), one page at a time, so page N commits while page N+1 is
mapped and decided. Page N+1 reads the database before page N is committed only when it reads nothing page N
writes (`touches`: none of its external ids or natural keys; 1C's `$skip` paging repeats an object in two pages
when objects are added meanwhile); else the syncer waits for page N's commit (`wait`) first. Either way the page's
lookups see what they would on the one connection.

Only where a second connection sees what the first one does: PostgreSQL, outside any transaction of the caller's
(a test's transaction, say, which the writer's connection could not see), for a one-way read. Anywhere else the
syncer writes on its own connection (SQLite has a single writer anyway).

* The checkpoint is written in the page's own transaction: it never gets ahead of what is committed, and
  `take_committed` gives a page's next offset only after its commit (the syncer reports progress from it).
* A failed write is raised in the syncer's thread at the next `wait` (or at `close`), so it fails the rule and the
  run as a failure on the one connection does; the journal lines the page carried go back to the syncer's list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import connection

from sdelka.exchange.models import Direction

from .models import MappingRule


def usable(rule: MappingRule, *, dry_run: bool) -> bool:
    """Whether `rule`'s pages may be written by a `PageWriter` (see the module docstring)."""
    return (
        not dry_run
        and rule.direction == Direction.IN
        and connection.vendor == "postgresql"
        and not connection.in_atomic_block
    )


class PageWriter:
    """One thread writing one page at a time; see the module docstring."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="odata-writer")
        self._pending: Future[None] | None = None
        self._writing: frozenset[tuple[str, str]] = frozenset()  # what the page in flight writes (see `touches`)
        self._committed: list[int] = []  # next offsets of the pages committed, in order
        self._lock = threading.Lock()

    def submit(self, write: Callable[[], int], writing: frozenset[tuple[str, str]]) -> None:
        """Start writing a page once the previous one is committed: `write` commits it and returns its next
        offset; `writing`: the keys of what it writes (external ids, natural keys). Call `wait` first: one page in
        flight at a time."""
        assert self._pending is None, "wait for the page in flight first"
        self._writing = writing
        self._pending = self._pool.submit(self._run, write)

    def touches(self, keys: set[tuple[str, str]]) -> bool:
        """Whether the page in flight writes any of `keys`: a page reading none of them may read and decide before
        that page is committed, as it would read the same either way."""
        return self._pending is not None and not self._writing.isdisjoint(keys)

    def _run(self, write: Callable[[], int]) -> None:
        offset = write()
        with self._lock:
            self._committed.append(offset)

    def wait(self) -> None:
        """Wait for the page in flight to be committed; raises its write's error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def take_committed(self) -> list[int]:
        """The next offsets of the pages committed since the last call."""
        with self._lock:
            done, self._committed = self._committed, []
        return done

    def close(self) -> BaseException | None:
        """Wait for the page in flight and close the thread's connection. Returns (does not raise) the page's
        error: called while another error is on its way too, when the caller decides which one to raise."""
        try:
            self.wait()
            error = None
        except BaseException as exc:  # handed back to the caller, who journals it
            error = exc
        self._pool.submit(_close_connection).result()
        self._pool.shutdown()
        return error


def _close_connection() -> None:
    """Close the calling thread's connection (`connection` is per thread: resolved here, in the writer's)."""
    connection.close()
