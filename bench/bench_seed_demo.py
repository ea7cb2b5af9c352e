"""Benchmark `sdelka seed_demo` at its default size on a fresh database.

    .venv/bin/python bench/bench_seed_demo.py            # SQLite; PostgreSQL too when DATABASE_URL is set
    .venv/bin/python bench/bench_seed_demo.py --no-write # print only, leave docs/benchmarks.md alone

Each run migrates a new, empty database (SQLite in a temporary directory; on PostgreSQL a scratch
database `<name>_bench_seed` next to the one DATABASE_URL names, dropped afterwards), then loads the
demo in a child process and reports the wall time of the load and the peak resident memory of that
process. The figures go into the «seed_demo» section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
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
SECTION = "## seed_demo"
LIMIT_SECONDS = 60


def child() -> None:
    """Runs inside the measured process: load the demo and print the figures as JSON."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from sdelka.catalog.models import Product
    from sdelka.parties.models import Counterparty
    from sdelka.sales.models import Invoice

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with connection.cursor() as cursor:
        cursor.execute("select sqlite_version()" if connection.vendor == "sqlite" else "show server_version")
        version = cursor.fetchone()[0]
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "rss_growth_mb": round((peak_kb - baseline_kb) / 1024, 1),
                "vendor": connection.vendor,
                "version": version,
                "counterparties": Counterparty.objects.count(),
                "products": Product.objects.count(),
                "invoices": Invoice.objects.count(),
            }
        )
    )


def run(env: dict[str, str]) -> dict[str, Any]:
    manage = [sys.executable, "-m", "sdelka"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    out = subprocess.run(
        [sys.executable, __file__, "--child"], env=env, check=True, cwd=ROOT, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def base_env(data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SDELKA_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="sdelka.settings")
    env.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    env.setdefault("ALLOWED_HOSTS", "localhost")
    return env


def sqlite_run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir:
        return run(base_env(data_dir))


def postgres_run(url: str) -> dict[str, Any]:
    with (
        scratch_postgres(url, "_bench_seed") as scratch_url,
        tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir,
    ):
        env = base_env(data_dir)
        env["DATABASE_URL"] = scratch_url
        return run(env)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median run of several (the machine may be busy), with the worst time kept beside it."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "worst": ordered[-1]["seconds"], "runs": len(runs)}


def section(results: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        f"| {r['vendor']} {r['version']} | {r['seconds']} | {r['worst']} | {r['peak_rss_mb']} | {r['rss_growth_mb']} |"
        for r in results
    )
    first = results[0]
    return (
        f"{SECTION}\n\n"
        f"`sdelka seed_demo` at its default size ({first['counterparties']} counterparties, {first['products']} "
        f"products, {first['invoices']} invoices with lines and payments, deals, tasks, notes) into a freshly "
        f"migrated empty database; median and worst of {first['runs']} runs of `bench/bench_seed_demo.py` on "
        f"{datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs. "
        f"The load must stay under {LIMIT_SECONDS} s.\n\n"
        "| database | median, s | worst, s | peak RSS, MB | RSS growth during the load, MB |\n"
        "|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="Do not update docs/benchmarks.md.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per database (default 3).")
    args = parser.parse_args()
    if args.child:
        child()
        return
    results = [summarise([sqlite_run() for _ in range(args.repeat)])]
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        results.append(summarise([postgres_run(os.environ["DATABASE_URL"]) for _ in range(args.repeat)]))
    for r in results:
        print(
            f"{r['vendor']:<10} median {r['seconds']:>6} s, worst {r['worst']} s, "
            f"peak RSS {r['peak_rss_mb']} MB (+{r['rss_growth_mb']} MB)"
        )
    if any(r["worst"] >= LIMIT_SECONDS for r in results):
        sys.exit(f"seed_demo took {LIMIT_SECONDS} s or more")
    if not args.no_write:
        write_section(DOC, SECTION, section(results))
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
