"""Turning catalogue elements into records in a helper process, one batch ahead of the batch being applied.

A first upload changes every element, and turning an element into records (parsing its bytes, building the
product, its prices and stock) is about 40 % of the worker's time, all of it Python holding the interpreter.
While a batch is applied (the database's work and the apply engine's), a helper process on the other CPU turns
the next batch's elements into records; the applying side then unpickles them instead of building them.

The helper only does ahead of time what `RawElement.records()` would do anyway, from the element's bytes alone:
which elements are applied is still decided by their digests, batch by batch, so an element that turns out
unchanged is not applied (the helper's work on it is dropped), and any element the helper could not turn into
records (a broken fragment) is expanded again here, raising its error where it always has. Elements are sent
ahead while the batches are mostly changed (a first upload); an unchanged re-upload sends only its second batch,
before anything is known, and does not wait for it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from . import records as r

logger = logging.getLogger(__name__)

SPECULATE_MIN = 500  # elements in a batch below which the helper is not worth sending them
SPECULATE_SHARE = 0.5  # share of a batch's elements that changed for the next batch to be sent ahead

_pool: ProcessPoolExecutor | None = None
_pool_lock = threading.Lock()


def helper_available() -> bool:
    """A second CPU to run the helper on, unless switched off (SDELKA_CATALOGUE_HELPER=0)."""
    return (os.cpu_count() or 1) > 1 and os.environ.get("SDELKA_CATALOGUE_HELPER", "1") != "0"


def _helper() -> ProcessPoolExecutor:
    """One helper process per worker process, started on first use and kept (spawned, not forked: the worker
    runs threads and holds database connections)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return _pool


def expand_all(raws: list[r.RawElement]) -> list[list[r.Record] | None]:
    """In the helper: each element's records, or None where they could not be built (the caller builds those
    itself and gets the error there)."""
    built: list[list[r.Record] | None] = []
    for raw in raws:
        try:
            built.append(list(raw.records()))
        except Exception:  # reported by the caller, which builds it again
            built.append(None)
    return built


_Sent = tuple[list[r.RawElement], Future[list[list[r.Record] | None]]]


class Expander:
    """The records of the elements of the batch being applied, built ahead by the helper where it could."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        # Whether the last batch applied was mostly changed; before the first one, assumed (the second batch is
        # sent ahead while the first is applied, and waited for only if some of its elements changed).
        self._ahead = True
        self._pending: dict[int, _Sent] = {}
        self._current: _Sent | None = None
        self._built: dict[int, list[r.Record] | None] = {}

    def send_ahead(self, batch: list[Any]) -> None:
        """Have the helper build the records of `batch` (the one after the batch about to be applied)."""
        if not (self.enabled and self._ahead):
            return
        raws = [item for item in batch if isinstance(item, r.RawElement)]
        if len(raws) < SPECULATE_MIN:
            return
        try:
            self._pending[id(batch)] = (raws, _helper().submit(expand_all, raws))
        except Exception:  # a helper that cannot start: everything is built here, as without it
            logger.exception("The catalogue helper process could not be used")
            self.enabled = False

    def start(self, batch: list[Any]) -> None:
        """`batch` is about to be applied: its records built ahead, if it was sent, are taken when first needed
        (a batch found unchanged never waits for them)."""
        self._built = {}
        self._current = self._pending.pop(id(batch), None)

    def records(self, raw: r.RawElement) -> Iterable[r.Record]:
        if self._current is not None:
            self._take(*self._current)
            self._current = None
        built = self._built.get(id(raw))
        return built if built is not None else raw.records()

    def _take(self, raws: list[r.RawElement], future: Future[list[list[r.Record] | None]]) -> None:
        try:
            built = future.result()
        except Exception:  # a helper that died or could not pickle something: built here instead
            logger.exception("The catalogue helper process failed; building the records here")
            self.enabled = False
            return
        self._built = {id(raw): records for raw, records in zip(raws, built, strict=True)}

    def observe(self, elements: int, changed: int) -> None:
        """What the applied batch was like decides whether the next ones are sent ahead."""
        self._ahead = elements >= SPECULATE_MIN and changed >= elements * SPECULATE_SHARE
