"""Reads of the exchange hub. Connections and runs are administrative data: the callers (admin, commands)
are staff-only, so there is no per-user visibility here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, OuterRef, Q, QuerySet, Subquery

from sdelka.parties.selectors import text_q

from .models import Connection, EventLevel, ExchangeEvent, ExchangeRun, RunStatus
from .odata.models import SyncTask


def connections() -> QuerySet[Connection]:
    last_run = ExchangeRun.objects.filter(connection=OuterRef("pk")).order_by("-started_at", "-id")
    return Connection.objects.annotate(last_run_status=Subquery(last_run.values("status")[:1])).order_by("name")


def connection_by_name(*, name: str) -> Connection | None:
    return Connection.objects.filter(name=name).first()


def run_events(*, run: ExchangeRun) -> QuerySet[ExchangeEvent]:
    return run.events.order_by("id")


# --- the exchange screens of the workspace ---------------------------------------------------------------

EVENTS_PER_PAGE = 100


def connection_overview() -> list[Connection]:
    """Every connection with its last run (`last_run`) and its last error event (`last_error_*`): two queries
    whatever the number of connections."""
    last_run = ExchangeRun.objects.filter(connection=OuterRef("pk")).order_by("-started_at", "-id")
    last_error = ExchangeEvent.objects.filter(connection=OuterRef("pk"), level=EventLevel.ERROR).order_by("-id")
    connections: list[Connection] = list(
        Connection.objects.annotate(
            last_run_id=Subquery(last_run.values("pk")[:1]),
            last_error_message=Subquery(last_error.values("message")[:1]),
            last_error_at=Subquery(last_error.values("created_at")[:1]),
        ).order_by("name")
    )
    attach_last_runs(connections)
    return connections


def attach_last_runs(connections: list[Connection]) -> None:
    ids = [c.last_run_id for c in connections if getattr(c, "last_run_id", None)]  # type: ignore[attr-defined]
    runs = ExchangeRun.objects.in_bulk(ids)
    for connection in connections:
        connection.last_run = runs.get(getattr(connection, "last_run_id", None))  # type: ignore[attr-defined]


def run_list(
    *,
    connection_id: int | None = None,
    route: str = "",
    status: str = "",
    trigger: str = "",
    has_errors: bool = False,
) -> QuerySet[ExchangeRun]:
    runs = ExchangeRun.objects.select_related("connection").order_by("-started_at", "-id")
    if connection_id:
        runs = runs.filter(connection_id=connection_id)
    if route:
        runs = runs.filter(route=route)
    if status:
        runs = runs.filter(status=status)
    if trigger:
        runs = runs.filter(trigger=trigger)
    if has_errors:
        runs = runs.filter(Q(status=RunStatus.FAILED) | Q(failed__gt=0))
    return runs


def runnable_tasks(*, user: Any) -> QuerySet[SyncTask]:
    """The active sync tasks `user` may start, with their connection and last run: `SyncTask.may_run` as one
    query (administrators and integrators: every task; others: the tasks naming their team)."""
    tasks = (
        SyncTask.objects.filter(is_active=True)
        .select_related("connection", "last_run")
        .order_by("connection__name", "name", "id")
    )
    if user.manages_exchange:
        return tasks
    if not user.is_active or user.team_id is None:
        return tasks.none()
    return tasks.filter(run_teams=user.team_id)


def connection_events(*, connection: Connection, limit: int = 20) -> list[ExchangeEvent]:
    """The connection's own journal lines, outside any run (wrong passwords, connection checks)."""
    return list(ExchangeEvent.objects.filter(connection=connection, run__isnull=True).order_by("-id")[:limit])


PROBLEM_LEVELS = (EventLevel.WARNING, EventLevel.ERROR)


def problem_counts(*, run: ExchangeRun) -> dict[str, int]:
    """How many warnings and errors the run has: one query reading only those entries of the (run, level, id)
    index. Info lines are not counted: they are most of a big run, and counting them costs a scan of it all."""
    rows = (
        ExchangeEvent.objects.filter(run=run, level__in=PROBLEM_LEVELS)
        .values("level")
        .annotate(count=Count("id"))
        .order_by()
    )
    counts: dict[str, int] = dict.fromkeys(PROBLEM_LEVELS, 0)
    counts.update({row["level"]: row["count"] for row in rows})
    return counts


@dataclass(frozen=True)
class EventFilter:
    level: str = ""
    external_id: str = ""
    text: str = ""
    obj: str = ""

    def apply(self, events: QuerySet[ExchangeEvent]) -> QuerySet[ExchangeEvent]:
        if self.level in EventLevel.values:
            events = events.filter(level=self.level)
        if self.external_id:
            events = events.filter(text_q(("external_id",), self.external_id))
        if self.text:
            events = events.filter(text_q(("message", "value"), self.text))
        if self.obj:
            events = events.filter(text_q(("object_repr",), self.obj))
        return events


@dataclass(frozen=True)
class EventPage:
    """A page of the journal read by keyset (`id > after` or `id < before`), never by OFFSET: the last page of a
    run of 100,000 lines costs what the first does."""

    items: list[ExchangeEvent]
    has_next: bool
    has_previous: bool

    @property
    def first_id(self) -> int | None:
        return self.items[0].pk if self.items else None

    @property
    def last_id(self) -> int | None:
        return self.items[-1].pk if self.items else None


def event_page(
    *,
    run: ExchangeRun,
    filters: EventFilter,
    after: int | None = None,
    before: int | None = None,
    latest: bool = False,
    per_page: int = EVENTS_PER_PAGE,
) -> EventPage:
    """A page of the run's journal: from the start, after or before a line, or (`latest`) its newest lines."""
    events = filters.apply(ExchangeEvent.objects.filter(run=run))
    if latest:
        rows = list(events.order_by("-id")[: per_page + 1])
        return EventPage(items=rows[:per_page][::-1], has_next=False, has_previous=len(rows) > per_page)
    if before is not None:
        rows = list(events.filter(id__lt=before).order_by("-id")[: per_page + 1])
        more_before = len(rows) > per_page
        return EventPage(items=rows[:per_page][::-1], has_next=True, has_previous=more_before)
    if after is not None:
        events = events.filter(id__gt=after)
    rows = list(events.order_by("id")[: per_page + 1])
    return EventPage(items=rows[:per_page], has_next=len(rows) > per_page, has_previous=bool(after))


def last_event_id(*, run: ExchangeRun) -> int:
    """The id of the run's newest journal line (0 without one): one step down the (run, id) index."""
    return ExchangeEvent.objects.filter(run=run).order_by("-id").values_list("id", flat=True).first() or 0


@dataclass(frozen=True)
class NewEvents:
    items: list[ExchangeEvent]
    cursor: int  # where the next read starts: past every line read, matching or not
    more: bool  # lines matching the filters are left after `cursor`


def events_after(*, run: ExchangeRun, filters: EventFilter, after: int, limit: int) -> NewEvents:
    """The journal lines written since line `after`, oldest first, at most `limit`: the live tail of a running
    run. Two index reads whatever the run's size; the cursor moves past lines the filters skip, so a poll with
    a text filter reads each new line once, not the whole run again. A run's lines are written by its one
    worker, so their ids grow in the order they become visible and nothing is passed over."""
    newest = last_event_id(run=run)
    if newest <= after:
        return NewEvents(items=[], cursor=after, more=False)
    lines = filters.apply(ExchangeEvent.objects.filter(run=run, id__gt=after, id__lte=newest))
    rows = list(lines.order_by("id")[: limit + 1])
    if len(rows) > limit:
        return NewEvents(items=rows[:limit], cursor=rows[limit - 1].pk, more=True)
    return NewEvents(items=rows, cursor=newest, more=False)
