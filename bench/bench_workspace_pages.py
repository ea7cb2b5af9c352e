"""Benchmark the manager's workspace with 200,000 counterparties on PostgreSQL.

    DATABASE_URL=postgres://… .venv/bin/python bench/bench_workspace_pages.py             # seed, measure, write
    DATABASE_URL=postgres://… .venv/bin/python bench/bench_workspace_pages.py --no-write  # print only

A scratch database `<name>_bench_workspace` next to the one DATABASE_URL names is migrated and bulk-loaded by
one child process (two teams of ten managers under two heads and a director; 200,000 counterparties, an eleventh
tagged, one in a hundred co-owned; contacts, deals, invoices and payments), then another child process — the
measured one — requests the main pages through Django's test client as a manager, as a head and as the
director: the dashboard, the counterparty list (default, sorted, filtered by debt, tag and owner, the page
after a thousand rows and the one in the middle of the list, forwards and backwards, a search), a counterparty
card, the global search, the invoice and payment lists. Every page is requested once to warm up, then
REPEAT times; the median and the worst time are reported with the number of SQL queries. Target: under
500 ms for every page.
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
SECTION = "## workspace pages"
LIMIT_MS = 500
REPEAT = 5
COUNTERPARTIES = 200_000
MANAGERS_PER_TEAM = 10
BATCH = 5_000


def seed(count: int) -> None:
    """Runs in a child process: the users, `count` counterparties and what hangs off them, bulk-inserted."""
    import django

    django.setup()
    import random
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from sdelka.accounts.models import Role, Team, User
    from sdelka.parties.models import ContactPerson, Counterparty, Tag
    from sdelka.sales.models import Deal, Invoice, InvoiceStatus, Organisation, Payment, Pipeline

    rng = random.Random(11)
    User.objects.create(username="director", role=Role.DIRECTOR)
    managers: list[User] = []
    for team_index in range(2):
        head = User.objects.create(username=f"head{team_index}", role=Role.HEAD)
        team = Team.objects.create(name=f"Отдел {team_index}", head=head)
        head.team = team
        head.save(update_fields=["team"])
        managers += User.objects.bulk_create(
            User(username=f"m{team_index}{i}", role=Role.MANAGER, team=team, first_name=f"Менеджер {i}")
            for i in range(MANAGERS_PER_TEAM)
        )
    tags = Tag.objects.bulk_create(Tag(name=name) for name in ("опт", "розница", "госзаказ", "дилер", "VIP-клиент"))
    words = ["Альфа", "Бета", "Гамма", "Дельта", "Омега", "Север", "Юг", "Восток", "Запад", "Центр", "Строй", "Торг"]
    now = timezone.now()
    ids: list[int] = []
    for start in range(0, count, BATCH):
        batch = [
            Counterparty(
                name=f"ООО «{rng.choice(words)} {rng.choice(words)} {i}»",
                full_name=f"Общество с ограниченной ответственностью «{i}»",
                inn=f"{7700000000 + i}",
                kpp="770101001",
                phones=f"+7 495 {i % 1000:03d}-{i % 100:02d}-{(i // 100) % 100:02d}",
                emails=f"client{i}@example.ru",
                owner=managers[i % len(managers)],
                is_active=i % 17 != 0,  # moduli prime to the 20 managers: every one gets some of each
                created_at=now - timedelta(minutes=count - i),
            )
            for i in range(start, min(count, start + BATCH))
        ]
        ids += [c.pk for c in Counterparty.objects.bulk_create(batch)]
    Tagged = Counterparty.tags.through
    Tagged.objects.bulk_create(
        (Tagged(counterparty_id=pk, tag_id=tags[n % len(tags)].pk) for n, pk in enumerate(ids[::11])),
        batch_size=BATCH,
    )
    CoOwned = Counterparty.co_owners.through
    CoOwned.objects.bulk_create(
        (CoOwned(counterparty_id=pk, user_id=managers[(n + 3) % len(managers)].pk) for n, pk in enumerate(ids[::101])),
        batch_size=BATCH,
    )
    ContactPerson.objects.bulk_create(
        (
            ContactPerson(counterparty_id=pk, first_name="Иван", last_name=f"Петров{n}", phones=f"+7 916 {n:07d}")
            for n, pk in enumerate(ids[::3])
        ),
        batch_size=BATCH,
    )
    owner_of = {pk: managers[n % len(managers)] for n, pk in enumerate(ids)}
    pipeline = Pipeline.objects.get(is_default=True)
    stages = list(pipeline.stages.order_by("order"))
    Deal.objects.bulk_create(
        (
            Deal(
                title=f"Поставка {n}",
                pipeline=pipeline,
                stage=stages[n % len(stages)],
                counterparty_id=pk,
                owner=owner_of[pk],
                amount=Decimal(rng.randint(1_000, 900_000)),
                closed_at=now if stages[n % len(stages)].kind != "open" else None,
            )
            for n, pk in enumerate(ids[::9])
        ),
        batch_size=BATCH,
    )
    organisation = Organisation.objects.create(name="ООО «Сделка»", inn="7707083893", kpp="773601001")
    today = timezone.localdate()
    statuses = [InvoiceStatus.ISSUED, InvoiceStatus.PAID, InvoiceStatus.PARTLY_PAID, InvoiceStatus.DRAFT]
    invoice_owners = ids[::7]
    invoices = Invoice.objects.bulk_create(
        (
            Invoice(
                organisation=organisation,
                year=today.year,
                sequence=n + 1,
                number=f"СД-{n + 1}",
                date=today - timedelta(days=n % 730),
                due_date=today - timedelta(days=n % 730) + timedelta(days=10),
                counterparty_id=pk,
                owner=owner_of[pk],
                status=statuses[n % len(statuses)],
                total=Decimal(rng.randint(1_000, 500_000)),
                paid_amount=Decimal(0),
            )
            for n, pk in enumerate(invoice_owners)
        ),
        batch_size=BATCH,
    )
    Payment.objects.bulk_create(
        (
            Payment(
                organisation=organisation,
                counterparty_id=invoice.counterparty_id,
                date=invoice.date,
                number=str(n),
                amount=invoice.total,
                payer_name="ООО «Плательщик»",
            )
            for n, invoice in enumerate(invoices[1::4])
        ),
        batch_size=BATCH,
    )
    with django.db.connection.cursor() as cursor:
        # As autovacuum would have by then: statistics, and the visibility map that lets the visibility filter read
        # a user's counterparty ids from the (owner, id) index alone.
        cursor.execute("VACUUM ANALYZE")


PAGES: list[tuple[str, str, dict[str, str]]] = [
    ("dashboard", "/", {}),
    ("counterparties", "/counterparties/", {}),
    ("counterparties sorted by newest", "/counterparties/", {"sort": "-created"}),
    ("counterparties with debt", "/counterparties/", {"debt": "1"}),
    ("counterparties by tag", "/counterparties/", {"tag": "{tag}"}),
    ("counterparties by owner", "/counterparties/", {"owner": "{owner}"}),
    ("counterparties after 1,000 rows", "/counterparties/", {"after": "{after_1000}"}),
    ("counterparties, the middle", "/counterparties/", {"after": "{middle}"}),
    ("counterparties, back from the middle", "/counterparties/", {"before": "{middle}"}),
    ("counterparties search", "/counterparties/", {"q": "Омега Центр"}),
    ("counterparty card", "/counterparties/{card}/", {}),
    ("global search", "/search/", {"q": "Петров12"}),
    ("invoices", "/invoices/", {}),
    ("payments", "/payments/", {}),
]


def measure() -> None:
    """Runs in the measured child process: every page as a manager, a head and the director."""
    import django

    django.setup()
    from django.conf import settings

    # Production settings want collected, hashed assets (minutes of collectstatic); the URL of a stylesheet
    # costs the same either way, so the plain storage stands in.
    settings.STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from sdelka.accounts.models import User
    from sdelka.parties.models import Counterparty, Tag
    from sdelka.sales.models import Invoice
    from sdelka.web.selectors import encode_cursor

    results = []
    for username in ("m00", "head0", "director"):
        user = User.objects.get(username=username)
        client = Client()
        client.force_login(user)
        visible = Counterparty.objects.visible_to(user)
        owner = visible.values_list("owner_id", flat=True).order_by("owner_id").last()
        card = Invoice.objects.visible_to(user).values_list("counterparty_id", flat=True).order_by("pk").first()
        active = visible.filter(is_active=True).order_by("name", "pk")
        at_1000, middle = active[1000], active[active.count() // 2]
        values = {
            "tag": str(Tag.objects.get(name="опт").pk),
            "owner": str(owner),
            "after_1000": encode_cursor(at_1000.name, at_1000.pk),
            "middle": encode_cursor(middle.name, middle.pk),
            "card": str(card),
        }
        for name, path, params in PAGES:
            url = path.format(**values)
            query = {key: value.format(**values) for key, value in params.items()}
            client.get(url, query)
            times = []
            for _ in range(REPEAT):
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = client.get(url, query)
                    times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (url, query, response.status_code)
            results.append(
                {
                    "user": username,
                    "page": name,
                    "url": url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""),
                    "median_ms": round(statistics.median(times)),
                    "worst_ms": round(max(times)),
                    "queries": len(captured.captured_queries),
                }
            )
    with connection.cursor() as cursor:
        cursor.execute("show server_version")
        version = cursor.fetchone()[0].split(" ")[0]
    print(json.dumps({"version": version, "counterparties": Counterparty.objects.count(), "pages": results}))


def base_env(data_dir: str, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SDELKA_DATA_DIR=data_dir, DJANGO_SETTINGS_MODULE="sdelka.settings", DATABASE_URL=url)
    env.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    env["ALLOWED_HOSTS"] = "localhost,testserver"
    env.pop("REDIS_URL", None)
    # Measure the code of this tree, whichever checkout the virtualenv's editable install points at.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH", "")]))
    return env


def run(url: str, count: int) -> dict[str, Any]:
    def child(env: dict[str, str], *args: str) -> str:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        print(f"{' '.join(args[-2:])}: {time.perf_counter() - started:.0f} s", flush=True)
        return done.stdout

    with (
        scratch_postgres(url, "_bench_workspace") as scratch_url,
        tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir,
    ):
        env = base_env(data_dir, scratch_url)
        child(env, "-m", "sdelka", "migrate", "--noinput", "-v0")
        child(env, __file__, "--seed", str(count))
        return json.loads(child(env, __file__, "--measure").strip().splitlines()[-1])


def section(result: dict[str, Any], load: str, before: dict[tuple[str, str], int], before_note: str) -> str:
    rows = "\n".join(
        f"| {r['user']} | {r['page']} | `{r['url']}` | {r['median_ms']} | {r['worst_ms']} | {r['queries']} | "
        f"{before.get((r['user'], r['page']), '—')} |"
        for r in result["pages"]
    )
    return (
        f"{SECTION}\n\n"
        f"The main workspace pages through Django's test client with {result['counterparties']:,} counterparties "
        f"on PostgreSQL {result['version']} (two teams of ten managers; an eleventh of the counterparties tagged, one "
        "in a hundred co-owned, 66,667 contacts, 22,223 deals, 28,572 invoices, 7,143 payments); "
        f"`bench/bench_workspace_pages.py` on {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average at the start: {load}. "
        f"`m00` is a manager (10,000 counterparties), `head0` the head of his team (100,000), `director` sees all. "
        f"Each page once to warm up, then {REPEAT} times: median and worst time of the whole request "
        f"(rendering included) and the SQL queries of one request. Target: under {LIMIT_MS} ms.{before_note}\n\n"
        "| user | page | URL | median, ms | worst, ms | queries | before, median ms |\n"
        "|---|---|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="Do not update docs/benchmarks.md.")
    parser.add_argument("--count", type=int, default=COUNTERPARTIES, help="Counterparties to load.")
    parser.add_argument("--before", help="JSON of an earlier --measure run (the code before an optimisation).")
    parser.add_argument("--before-note", default="", help="What the earlier run measured, for the document.")
    args = parser.parse_args()
    if args.seed is not None:
        seed(args.seed)
        return
    if args.measure:
        measure()
        return
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL server: the benchmark loads a scratch database next to it.")
    load = " / ".join(f"{value:.2f}" for value in os.getloadavg())
    result = run(url, args.count)
    for r in result["pages"]:
        print(f"{r['user']:<9} {r['page']:<34} {r['median_ms']:>5} ms (worst {r['worst_ms']:>5}) {r['queries']:>3} q")
    slow = [r for r in result["pages"] if r["median_ms"] >= LIMIT_MS]
    if not args.no_write:
        before = {}
        if args.before:
            earlier = json.loads(Path(args.before).read_text(encoding="utf-8").strip().splitlines()[-1])
            before = {(r["user"], r["page"]): r["median_ms"] for r in earlier["pages"]}
        note = f" {args.before_note}" if args.before_note else ""
        write_section(DOC, SECTION, section(result, load, before, note))
        print(f"written to {DOC.relative_to(ROOT)}")
    if slow:
        sys.exit(f"{len(slow)} page(s) took {LIMIT_MS} ms or more: " + ", ".join(r["page"] for r in slow))


if __name__ == "__main__":
    main()
