"""Benchmark the OData pull: 100,000 counterparties from the fake 1C, against the fake's own serving speed.

    DATABASE_URL=postgres://… .venv/bin/python bench/bench_odata_pull.py            # PostgreSQL (the target)
    .venv/bin/python bench/bench_odata_pull.py --sqlite --records 20000 --no-write    # a quick look on SQLite

In a freshly migrated scratch database (PostgreSQL: `<name>_bench_odata`, dropped afterwards) the in-suite fake
1C (tests/fake_odata, БП 3.0, built from the real `$metadata` excerpt in ../shared/fixtures/odata) is filled
with counterparties carrying valid ИНН/КПП. Then, through the real HTTP client and server:

* the floor: every page of the rule's `$select`, ordered by Ref_Key, fetched and JSON-decoded, nothing applied
  (the fake's raw serving speed). The fake runs in a process of its own, as a real 1C does (on another
  machine, even): its work of sorting and serving a page does not compete with Sdelka's for one interpreter;
* the initial pull: `run_task` of the ready-made БП counterparty rule into an empty Sdelka;
* an incremental run after 1 % of the objects changed in 1C (new DataVersion), and one with nothing changed.

Targets: the initial pull at ≥ 70 % of the floor's records/s; the 1 % incremental run under 10 % of the
initial pull's time. Figures go to the «OData pull» section of docs/benchmarks.md with the machine's load.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchdoc import write_section
from scratchdb import database_busy, scratch_postgres, wait_until_quiet

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## OData pull"
RECORDS = 100_000
CHANGED_SHARE = 0.01
FLOOR_SHARE_TARGET = 0.70
INCREMENTAL_SHARE_TARGET = 0.10
PARTIES = "Catalog_Контрагенты"

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from bench_bank_import import _inn10  # noqa: E402
from bench_seed_demo import base_env  # noqa: E402


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _fill(fake: Any, records: int) -> list[str]:
    rng = random.Random(20261127)
    inns: set[str] = set()
    while len(inns) < records:
        inns.add(_inn10(rng))
    keys = []
    for number, inn in enumerate(sorted(inns)):
        entity = fake.add(
            PARTIES,
            Description=f"ООО Клиент {number}",
            НаименованиеПолное=f"Общество с ограниченной ответственностью «Клиент {number}»",
            ИНН=inn,
            КПП=inn[:4] + "01001",
            КодПоОКПО=f"{number:08d}",
            ЮридическоеФизическоеЛицо="ЮридическоеЛицо",
        )
        keys.append(entity["Ref_Key"])
    return keys


def _serve_fake(records: int, pipe: Any) -> None:
    """The fake 1C in a process of its own: filled, then serving until the bench says it is done."""
    from tests.fake_odata.server import FakeOneC, serve

    fake = FakeOneC("bp30")
    keys = _fill(fake, records)
    gc.freeze()  # 100,000 objects that never die: out of the cyclic collector's passes
    with serve(fake):
        pipe.send((fake.base_url, fake.login, fake.password, keys))
        pipe.recv()


def _settle(database_url: str, limit: float = 300) -> float:
    """Wait for PostgreSQL to finish what the pull left it (autovacuum of the new rows): a scheduled incremental
    run comes an hour later, not on the pull's heels. Two idle seconds in a row; returns the seconds waited."""
    if not database_url.startswith("postgres"):
        return 0.0
    return wait_until_quiet(lambda: database_busy(database_url), limit)


def _timed(function: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    value = function()
    return value, time.perf_counter() - started


def child(records: int, profile: str = "") -> None:
    """Runs inside a fresh database: fill the fake, measure the floor and the runs, print the figures as JSON."""
    import django
    from cryptography.fernet import Fernet
    from django.conf import settings

    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=_serve_fake, args=(records, theirs), daemon=True)
    server.start()  # before Django opens anything a fork would share
    base_url, login, password, keys = ours.recv()
    django.setup()
    settings.FERNET_KEY = Fernet.generate_key().decode()
    from django.db import connection as db

    from sdelka.exchange.odata.rules import PRESETS, select_fields
    from sdelka.exchange.odata.services import (
        check_connection,
        client_for,
        create_odata_connection,
        save_rule,
        save_task,
    )
    from sdelka.exchange.odata.sync import run_task
    from sdelka.parties.models import Counterparty

    spec = next(rule for rule in PRESETS["bp30"]["rules"] if rule["entity_set"] == PARTIES)
    try:
        connection = create_odata_connection(name="bench", url=base_url, login=login, password=password)
        assert check_connection(connection=connection).ok
        rule = save_rule(
            connection=connection,
            name=spec["name"],
            entity=spec["entity"],
            entity_set=PARTIES,
            fields=spec["fields"],
            key_fields=spec["key_fields"],
            filter="",  # the excerpt's Catalog_Контрагенты is not hierarchical
            direction=spec.get("direction", "in"),
        )
        task = save_task(connection=connection, name="bench", rules=[rule])
        client = client_for(connection)

        def floor() -> int:
            pages = client.pages(PARTIES, select=select_fields(rule), filter=rule.filter, page_size=task.page_size)
            return sum(len(rows) for _offset, rows in pages)

        def pull() -> Any:
            result = run_task(connection=connection, task=task, client=client_for(connection))
            assert result.status == "success", result.message
            return result

        served, floor_seconds = _timed(floor)
        if profile:  # cProfile of the initial pull, for `python -m pstats`
            profiler = cProfile.Profile()
            initial, initial_seconds = _timed(lambda: profiler.runcall(pull))
            profiler.dump_stats(profile)
        else:
            initial, initial_seconds = _timed(pull)
        assert Counterparty.objects.count() == records == served, (Counterparty.objects.count(), served)
        for number in random.Random(7).sample(range(records), int(records * CHANGED_SHARE)):
            client.update(PARTIES, keys[number], {"Description": f"ООО Клиент {number} (изм.)"})
        settled = _settle(os.environ.get("DATABASE_URL", ""))
        if profile:  # and of the 1 % run, next to it
            incremental_profiler = cProfile.Profile()
            incremental, incremental_seconds = _timed(lambda: incremental_profiler.runcall(pull))
            incremental_profiler.dump_stats(profile + ".incremental")
        else:
            incremental, incremental_seconds = _timed(pull)
        quiet, quiet_seconds = _timed(pull)
    finally:
        ours.send("done")
        server.join(timeout=10)
    floor_rate = served / floor_seconds
    initial_rate = records / initial_seconds
    print(
        json.dumps(
            {
                "vendor": db.vendor,
                "version": str(db.connection.info.server_version // 10000)
                if db.vendor == "postgresql"
                else db.Database.sqlite_version,
                "records": records,
                "page_size": task.page_size,
                "floor_seconds": round(floor_seconds, 1),
                "floor_rate": round(floor_rate),
                "initial_seconds": round(initial_seconds, 1),
                "initial_rate": round(initial_rate),
                "initial_created": initial.totals()["created"],
                "share_of_floor": round(initial_rate / floor_rate, 2),
                "incremental_seconds": round(incremental_seconds, 1),
                "incremental_updated": incremental.totals()["updated"],
                "incremental_share": round(incremental_seconds / initial_seconds, 3),
                "quiet_seconds": round(quiet_seconds, 1),
                "quiet_unchanged": quiet.totals()["unchanged"],
                "settled_seconds": settled,
                "load": _load(),
            }
        )
    )


def run(env: dict[str, str], records: int, profile: str = "") -> dict[str, Any]:
    subprocess.run([sys.executable, "-m", "sdelka", "migrate", "--noinput", "-v0"], env=env, check=True, cwd=ROOT)
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--records", str(records), "--profile", profile],
        env=env,
        check=True,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def sqlite_run(records: int, profile: str = "") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir:
        return run(base_env(data_dir), records, profile)


def postgres_run(url: str, records: int, profile: str = "") -> dict[str, Any]:
    with (
        scratch_postgres(url, "_bench_odata") as scratch_url,
        tempfile.TemporaryDirectory(prefix="sdelka-bench-") as data_dir,
    ):
        env = base_env(data_dir)
        env["DATABASE_URL"] = scratch_url
        return run(env, records, profile)


def section(results: list[dict[str, Any]]) -> str:
    rows = "\n".join(
        f"| {r['vendor']} {r['version']} | {r['records']:,} | {r['floor_rate']:,} | {r['initial_seconds']} "
        f"| {r['initial_rate']:,} | {r['share_of_floor']:.0%} | {r['incremental_seconds']} "
        f"({r['incremental_updated']:,} updated) | {r['incremental_share']:.1%} | {r['quiet_seconds']} | {r['load']} |"
        for r in results
    )
    return (
        f"{SECTION}\n\n"
        "A first pull of counterparties from the in-suite fake 1C (БП 3.0, JSON over HTTP on localhost, pages of "
        f"{results[0]['page_size']} ordered by Ref_Key with the rule's `$select`, `$top`/`$skip` paging, which the "
        "fake answers by sorting the whole set for every page as 1C does) through `run_task` of the ready-made БП "
        "counterparty rule into a freshly migrated, empty database; the pull requests the next page while it "
        "writes the current one. *Floor* is the fake's raw serving speed: the same pages fetched one after the "
        "other and JSON-decoded by the same client, nothing applied. The fake serves from a process of its own in "
        "both, as a real 1C is another program (usually on another machine), so its sorting and serving do not "
        "compete with Sdelka for one Python interpreter; on these 2 CPUs they still share the machine. "
        f"*Incremental*: {CHANGED_SHARE:.0%} of the objects changed in 1C (new DataVersion); *quiet*: nothing "
        "changed; both read `Ref_Key,DataVersion` of every object (pages of 20,000) and, alongside, the changed ones "
        "by key; they start once PostgreSQL is idle after the pull (its autovacuum of the new rows took "
        f"{results[0]['settled_seconds']} s of waiting), as a scheduled run would. "
        "`bench/bench_odata_pull.py` on "
        f"{datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} "
        f"CPUs shared with other work (the load average is the machine's at the end). Targets (PostgreSQL): the "
        f"pull at ≥ {FLOOR_SHARE_TARGET:.0%} of the floor; the 1 % run under {INCREMENTAL_SHARE_TARGET:.0%} of "
        "the pull's time.\n\n"
        "| database | records | floor, rec/s | pull, s | pull, rec/s | of floor | 1 % changed, s | of pull "
        "| nothing changed, s | load average |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        f"{rows}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--records", type=int, default=RECORDS)
    parser.add_argument("--sqlite", action="store_true", help="Also run on SQLite.")
    parser.add_argument("--no-write", action="store_true", help="Do not update docs/benchmarks.md.")
    parser.add_argument(
        "--profile", default="", help="cProfile the initial pull into FILE, the 1 %% run into FILE.incremental."
    )
    args = parser.parse_args()
    if args.child:
        child(args.records, args.profile)
        return
    profile = str(Path(args.profile).resolve()) if args.profile else ""
    results = [sqlite_run(args.records, profile)] if args.sqlite else []
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        results.append(postgres_run(os.environ["DATABASE_URL"], args.records, profile))
    for r in results:
        print(
            f"{r['vendor']:<10} floor {r['floor_rate']} rec/s; pull {r['initial_seconds']} s = {r['initial_rate']} "
            f"rec/s ({r['share_of_floor']:.0%} of floor); 1 % changed {r['incremental_seconds']} s "
            f"({r['incremental_share']:.1%}); nothing changed {r['quiet_seconds']} s; load {r['load']}"
        )
    if not args.no_write and results:
        write_section(DOC, SECTION, section(results))
        print(f"written to {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
