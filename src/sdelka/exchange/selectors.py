"""Reads of the exchange hub. Connections and runs are administrative data: the callers (admin, commands)
are staff-only, so there is no per-user visibility here."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from .models import Connection, ExchangeEvent, ExchangeRun


def connections() -> QuerySet[Connection]:
    last_run = ExchangeRun.objects.filter(connection=OuterRef("pk")).order_by("-started_at", "-id")
    return Connection.objects.annotate(last_run_status=Subquery(last_run.values("status")[:1])).order_by("name")


def connection_by_name(*, name: str) -> Connection | None:
    return Connection.objects.filter(name=name).first()


def run_events(*, run: ExchangeRun) -> QuerySet[ExchangeEvent]:
    return run.events.order_by("id")
