"""Benchmark the run page of the exchange screens: a run with 200,000 journal lines, through the real view.

    .venv/bin/python bench/bench_exchange_journal.py            # SQLite; PostgreSQL too when DATABASE_URL is set
    .venv/bin/python bench/bench_exchange_journal.py --no-write # print only, leave docs/benchmarks.md alone

Per database: a fresh migrated database (SQLite in a temporary directory; on PostgreSQL a scratch database
`<name>_bench_journal` next to the one DATABASE_URL names, dropped afterwards); one child process bulk-loads one
run with its journal (90 % info, 5 % warnings, 5 % errors), then the measured child process asks for the run page
as a logged-in integrator through Django's test client: the first page, a page 90 % deep (keyset `after=`), the
errors only, the errors 90 % deep, a text search. Each figure is the median of 5 requests. Then the composite
journal indexes are dropped and the plain index on the run column (what the table had before) is put back, and
the same pages are measured again: the "before" figures. Target: under 300 ms per page.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchdoc import write_section
from scratchdb import scratch_postgres

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## exchange journal page"
LIMIT_MS = 300
EVENTS = 200_000
OTHER_RUNS = 20  # other runs' lines, so the run's own are not the whole table
COMPOSITE = ("exchange_event_run", "exchange_event_run_level", "exchange_event_conn_level")


def seed(count: int) -> None:
    """Runs in a child process: the connection, an integrator, one run with `count` journal lines."""
    import django

    django.setup()
    from sdelka.accounts.models import Role, User
    from sdelka.exchange.models import Connection, EventLevel, ExchangeEvent, ExchangeRun, Route, RunStatus

    User.objects.create(username="bench-integrator", role=Role.INTEGRATOR)
    connection = Connection.objects.create(name="Bench УТ", login="bench")
    runs = [
        ExchangeRun.objects.create(connection=connection, route=Route.CATALOG, status=RunStatus.SUCCESS)
        for _ in range(OTHER_RUNS + 1)
    ]

    def level(n: int) -> str:
        return EventLevel.ERROR if n % 20 == 7 else EventLevel.WARNING if n % 20 == 13 else EventLevel.INFO

    batch: list[ExchangeEvent] = []
    # The measured run's lines are interleaved with the other runs', as concurrent exchanges write them.
    for n in range(count * 2):
        run = runs[0] if n % 2 == 0 else runs[1 + n % OTHER_RUNS]
        batch.append(
            ExchangeEvent(
                run=run,
                connection=connection,
                level=level(n // 2),
                message=f"Товар записан: Кабель ВВГнг 3×{n % 97} — строка {n}",
                external_id=f"bd72d8f9-55bc-11d9-848a-{n:012d}",
                object_repr=f"Товар {n % 5000}",
            )
        )
        if len(batch) == 10_000:
            ExchangeEvent.objects.bulk_create(batch)
            batch = []
    ExchangeEvent.objects.bulk_create(batch)
    print(json.dumps({"run": runs[0].pk}))


def measure(run_id: int, before: bool) -> None:
    """Runs in the measured child process: the run page, several ways, 5 times each."""
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from sdelka.accounts.models import User
    from sdelka.exchange.models import EventLevel, ExchangeEvent

    if before:
        with connection.cursor() as cursor:
            for name in COMPOSITE:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")
            cursor.execute("CREATE INDEX bench_event_run ON exchange_exchangeevent (run_id)")
            cursor.execute("CREATE INDEX bench_event_connection ON exchange_exchangeevent (connection_id)")
            cursor.execute("ANALYZE" if connection.vendor == "postgresql" else "ANALYZE exchange_exchangeevent")
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    client = Client()
    client.force_login(User.objects.get(username="bench-integrator"))
    own = ExchangeEvent.objects.filter(run_id=run_id).order_by("id").values_list("id", flat=True)
    deep = own[int(own.count() * 0.9)]
    errors = own.filter(level=EventLevel.ERROR)
    deep_error = errors[int(errors.count() * 0.9)]
    url = f"/exchange/runs/{run_id}/"
    pages = {
        "first": {},
        "deep": {"after": deep},
        "errors": {"level": "error"},
        "errors_deep": {"level": "error", "after": deep_error},
        "search": {"q": "строка 12345"},
    }
    timings: dict[str, float] = {}
    for name, params in pages.items():
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            response = client.get(url, params)
            samples.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
        timings[name] = round(statistics.median(samples) * 1000, 1)
    with connection.cursor() as cursor:
        cursor.execute("select sqlite_version()" if connection.vendor == "sqlite" else "show server_version")
        version = cursor.fetchone()[0]
    lines = ExchangeEvent.objects.filter(run_id=run_id).count()
    print(json.dumps({"vendor": connection.vendor, "version": version.split(" ")[0], "lines": lines, **timings}))


def run(env: dict[str, str], count: int) -> list[dict[str, Any]]:
    for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"]):  # pages render as in production
        subprocess.run([sys.executable, "-m", "sdelka", *command, "-v0"], env=env, check=True, cwd=ROOT)
    seeded = subprocess.run(
        [sys.executable, __file__, "--seed", str(count)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if seeded.returncode:
        sys.exit(seeded.stderr[-3000:])
    run_id = json.loads(seeded.stdout.strip().splitlines()[-1])["run"]
    results = []
    for before in (False, True):
        args = [sys.executable, __file__, "--measure", str(run_id)] + (["--before"] if before else [])
        done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        results.append(
            {**json.loads(done.stdout.strip().splitlines()[-1]), "indexes": "run only" if before else "composite"}
        )
    return results


def base_env(data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SDELKA_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="sdelka.settings")
    env.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    env["ALLOWED_HOSTS"] = "localhost,testserver"
    return env


def sqlite_run(count: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir:
        return run(base_env(data_dir), count)


def postgres_run(url: str, count: int) -> list[dict[str, Any]]:
    with (
        scratch_postgres(url, "_bench_journal") as scratch_url,
        tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir,
    ):
        env = base_env(data_dir)
        env["DATABASE_URL"] = scratch_url
        return run(env, count)


COLUMNS = ("first", "deep", "errors", "errors_deep", "search")


def section(results: list[dict[str, Any]], load: str) -> str:
    rows = "\n".join(
        f"| {r['vendor']} {r['version']} | {r['indexes']} | {r['lines']:,} | "
        + " | ".join(str(r[c]) for c in COLUMNS)
        + " |"
        for r in results
    )
    return (
        f"{SECTION}\n\n"
        f"The run page of the exchange screens (`/exchange/runs/<id>/`, Django test client, logged in as an "
        f"integrator) for one run with {results[0]['lines']:,} journal lines among twice as many in the table; "
        f"`bench/bench_exchange_journal.py` on {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average at the start: {load}. Median of 5 requests, "
        "in ms, the whole page (progress, files, warning and error counts, one page of 100 lines). Pages go by keyset "
        '(`after=<id>`), never OFFSET: "deep" is the page 90 % into the journal. "composite": the indexes '
        '(run, id), (run, level, id), (connection, level, id) of migration exchange 0006; "run only": the '
        "plain foreign-key indexes the table had before it. The text search scans the run's lines (no "
        f"full-text index). Target: under {LIMIT_MS} ms. The machine is shared: compare rows of one run, not "
        "runs of different days.\n\n"
        "| database | indexes | run's lines | first page | 90 % deep | errors | errors 90 % deep | text search |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--before", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="Do not update docs/benchmarks.md.")
    parser.add_argument("--events", type=int, default=EVENTS, help=f"Journal lines of the run (default {EVENTS}).")
    args = parser.parse_args()
    if args.seed is not None:
        seed(args.seed)
        return
    if args.measure is not None:
        measure(args.measure, args.before)
        return
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    results = sqlite_run(args.events)
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        results += postgres_run(os.environ["DATABASE_URL"], args.events)
    for r in results:
        print(
            f"{r['vendor']:<10} {r['indexes']:<9} {r['lines']:>7} lines: "
            + ", ".join(f"{c} {r[c]} ms" for c in COLUMNS)
        )
    if not args.no_write:
        write_section(DOC, SECTION, section(results, load))
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
