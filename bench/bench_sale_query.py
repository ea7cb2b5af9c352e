"""Benchmark `type=sale&mode=query`: 10,000 changed invoices of 5 lines each through the real endpoint.

    .venv/bin/python bench/bench_sale_query.py            # SQLite; PostgreSQL too when DATABASE_URL is set
    .venv/bin/python bench/bench_sale_query.py --no-write # print only, leave docs/benchmarks.md alone

Per database: a fresh migrated database (SQLite in a temporary directory; on PostgreSQL a scratch database
`<name>_bench_sale` next to the one DATABASE_URL names, dropped afterwards); one child process bulk-loads the
invoices (each line's product known to 1C through an ExternalRef), then another child process — the measured
one — runs checkauth, init and `mode=query` through Django's test client as 1C would, reading the streamed
orders file and throwing it away. Reported: the wall time of `mode=query` (first export: the stable order ids
are created then), of a second `mode=query` without `success` (the same orders again), the file size, and the
peak resident memory of the measured process with its growth during the queries. Two sizes (2,000 and
10,000 invoices) show whether memory grows with the number of orders. Target: under 5 s for 10,000.
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
SECTION = "## sale query"
LIMIT_SECONDS = 5.0
LINES = 5
LOGIN, PASSWORD = "bench-1c", "bench-password"


def seed(count: int) -> None:
    """Runs in a child process: `count` issued invoices of LINES lines, bulk-inserted."""
    import django

    django.setup()
    import random
    from decimal import Decimal

    from django.contrib.contenttypes.models import ContentType
    from django.utils import timezone

    from sdelka.accounts.models import Role, User
    from sdelka.catalog.models import Product, Unit
    from sdelka.core.vat import line_amounts
    from sdelka.exchange.models import ExternalRef, RefKind
    from sdelka.exchange.services import create_connection
    from sdelka.parties.models import Counterparty
    from sdelka.sales.models import Invoice, InvoiceLine, InvoiceStatus, Organisation

    rng = random.Random(7)
    connection = create_connection(name="Bench УТ", login=LOGIN, password=PASSWORD)
    owner = User.objects.create(username="bench-owner", role=Role.DIRECTOR)
    organisation = Organisation.objects.create(name="ООО «Сделка»", inn="7707083893", kpp="773601001")
    unit = Unit.objects.get(okei="796")
    products = Product.objects.bulk_create(
        Product(name=f"Товар «Бенч» {i}", article=f"B-{i:05d}", unit=unit) for i in range(300)
    )
    product_type = ContentType.objects.get_for_model(Product)
    ExternalRef.objects.bulk_create(
        ExternalRef(
            connection=connection,
            kind=RefKind.PRODUCT,
            external_id=f"00000000-0000-0000-0000-{p.pk:012d}",
            content_type=product_type,
            object_id=p.pk,
        )
        for p in products
    )
    customers = Counterparty.objects.bulk_create(
        Counterparty(
            name=f"ООО «Покупатель {i}»",
            full_name=f"Общество с ограниченной ответственностью «Покупатель {i}»",
            inn=f"{7700000000 + i}",
            kpp="770101001",
            legal_address=f"г. Москва, ул. Ленина, д. {i}",
            phones="+7 495 000-00-00",
            emails=f"buyer{i}@example.ru",
            owner=owner,
        )
        for i in range(1000)
    )
    today = timezone.localdate()
    for start in range(0, count, 1000):
        invoices = []
        lines: list[list[InvoiceLine]] = []
        for sequence in range(start + 1, min(count, start + 1000) + 1):
            rows = []
            for position in range(1, LINES + 1):
                quantity, price = Decimal(rng.randint(1, 20)), Decimal(rng.randint(100, 99999)) / 100
                sums = line_amounts(quantity=quantity, price=price, discount=Decimal(0), rate="22", mode="included")
                rows.append(
                    InvoiceLine(
                        position=position,
                        product=rng.choice(products),
                        description=f"Товар «Бенч» {position}",
                        quantity=quantity,
                        unit=unit,
                        price=price,
                        vat_rate="22",
                        amount=sums.amount,
                        vat_amount=sums.vat,
                        total=sums.total,
                    )
                )
            lines.append(rows)
            invoices.append(
                Invoice(
                    organisation=organisation,
                    year=today.year,
                    sequence=sequence,
                    number=str(sequence),
                    date=today,
                    counterparty=rng.choice(customers),
                    owner=owner,
                    status=InvoiceStatus.ISSUED,
                    amount=sum((r.amount for r in rows), Decimal(0)),
                    vat_amount=sum((r.vat_amount for r in rows), Decimal(0)),
                    total=sum((r.total for r in rows), Decimal(0)),
                )
            )
        Invoice.objects.bulk_create(invoices)
        for invoice, rows in zip(invoices, lines, strict=True):
            for row in rows:
                row.invoice = invoice
        InvoiceLine.objects.bulk_create([row for rows in lines for row in rows])


def measure() -> None:
    """Runs in the measured child process: two `mode=query` rounds through the endpoint."""
    import django

    django.setup()
    import base64

    from django.db import connection
    from django.test import Client

    from sdelka.exchange.models import OrderState
    from sdelka.sales.models import Invoice

    client = Client()
    auth = "Basic " + base64.b64encode(f"{LOGIN}:{PASSWORD}".encode()).decode()

    def query_round() -> tuple[float, float, int]:
        answer = client.get("/1c/exchange", {"type": "sale", "mode": "checkauth"}, HTTP_AUTHORIZATION=auth)
        lines = answer.content.decode("windows-1251").split("\n")
        assert lines[0] == "success", lines
        sessid = lines[3].partition("=")[2]
        client.get("/1c/exchange", {"type": "sale", "mode": "init", "sessid": sessid, "version": "2.10"})
        started, cpu = time.perf_counter(), time.process_time()
        response = client.get("/1c/exchange", {"type": "sale", "mode": "query", "sessid": sessid})
        size = sum(len(chunk) for chunk in response.streaming_content)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        client.get("/1c/exchange", {"type": "sale", "mode": "complete", "sessid": sessid})
        assert response["Content-Type"].startswith("application/xml"), response.content[:200]
        return seconds, cpu, size

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    first, first_cpu, size = query_round()
    second, second_cpu, _size = query_round()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with connection.cursor() as cursor:
        cursor.execute("select sqlite_version()" if connection.vendor == "sqlite" else "show server_version")
        version = cursor.fetchone()[0]
    print(
        json.dumps(
            {
                "invoices": Invoice.objects.count(),
                "offered": OrderState.objects.count(),
                "first_seconds": round(first, 2),
                "first_cpu": round(first_cpu, 2),
                "second_seconds": round(second, 2),
                "second_cpu": round(second_cpu, 2),
                "load": round(os.getloadavg()[0], 1),
                "megabytes": round(size / 1024 / 1024, 1),
                "peak_rss_mb": round(peak_kb / 1024, 1),
                "rss_growth_mb": round((peak_kb - baseline_kb) / 1024, 1),
                "vendor": connection.vendor,
                "version": version.split(" ")[0],
            }
        )
    )


def run(env: dict[str, str], count: int) -> dict[str, Any]:
    subprocess.run([sys.executable, "-m", "sdelka", "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run([sys.executable, __file__, "--seed", str(count)], env=env, check=True, cwd=ROOT)
    done = subprocess.run([sys.executable, __file__, "--measure"], env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        sys.exit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def base_env(data_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    # The code of this checkout, not whatever the virtualenv's editable install points at.
    env.update(SDELKA_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="sdelka.settings", PYTHONPATH=str(ROOT / "src"))
    env.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    env["ALLOWED_HOSTS"] = "localhost,testserver"
    return env


def sqlite_run(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir:
        return run(base_env(data_dir), count)


def postgres_run(url: str, count: int) -> dict[str, Any]:
    with (
        scratch_postgres(url, "_bench_sale") as scratch_url,
        tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir,
    ):
        env = base_env(data_dir)
        env["DATABASE_URL"] = scratch_url
        return run(env, count)


def section(results: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        f"| {r['vendor']} {r['version']} | {r['invoices']:,} | {r['first_seconds']} ({r['first_cpu']}) | "
        f"{r['second_seconds']} ({r['second_cpu']}) | {r['megabytes']} | {r['peak_rss_mb']} | {r['rss_growth_mb']} | "
        f"{r['load']} |"
        for r in results
    )
    return (
        f"{SECTION}\n\n"
        f"`type=sale&mode=query` through the real endpoint (Django test client, checkauth → init → query, the "
        f"streamed file read and discarded) for issued invoices of {LINES} lines each, every line's product known "
        f"to 1C; `bench/bench_sale_query.py` on {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs. First query: stable order ids created and every order "
        "marked as offered; second: the same orders again (no `success` in between). Memory: peak RSS of the "
        "process that answered, and its growth during the two queries — the same for 2,000 and 10,000 invoices "
        f"means it does not grow with the number of orders. CPU: the processor time of that process alone (with SQLite "
        "it includes the database engine, with PostgreSQL the server's share is not in it); the wall time depends on "
        "what else runs, hence the one-minute load average when the run ended. "
        f"Target: under {LIMIT_SECONDS:g} s for 10,000.\n\n"
        "| database | invoices | first query, s (CPU s) | second query, s (CPU s) | file, MB | peak RSS, MB "
        "| RSS growth, MB | load average |\n"
        "|---|---|---|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="Do not update docs/benchmarks.md.")
    parser.add_argument("--sizes", default="2000,10000", help="Invoice counts to run (default 2000,10000).")
    args = parser.parse_args()
    if args.seed is not None:
        seed(args.seed)
        return
    if args.measure:
        measure()
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    results = [sqlite_run(size) for size in sizes]
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        results += [postgres_run(os.environ["DATABASE_URL"], size) for size in sizes]
    for r in results:
        print(
            f"{r['vendor']:<10} {r['invoices']:>6} invoices: query {r['first_seconds']} s (CPU {r['first_cpu']} s), "
            f"again {r['second_seconds']} s (CPU {r['second_cpu']} s), {r['megabytes']} MB, peak RSS "
            f"{r['peak_rss_mb']} MB (+{r['rss_growth_mb']} MB), load {r['load']}"
        )
    slow = [r for r in results if r["invoices"] >= 10_000 and r["first_seconds"] >= LIMIT_SECONDS]
    if not args.no_write:
        write_section(DOC, SECTION, section(results))
        print(f"written to {DOC.relative_to(ROOT)}")
    if slow:
        sys.exit(f"mode=query took {LIMIT_SECONDS} s or more for 10,000 invoices")


if __name__ == "__main__":
    main()
