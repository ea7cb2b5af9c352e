"""`sdelka seed_demo`: load the demo company into an empty database (`make run` calls it on every start)."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from sdelka.web import demo

ALREADY_LOADED = "The database already has counterparties; demo data not loaded."


class Command(BaseCommand):
    help = (
        "Load a demo company (staff, counterparties, catalogue, deals, invoices, payments, tasks) into a "
        "database that has no counterparties yet; otherwise do nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=demo.DEFAULT_SEED, help="Random seed; same seed, same data.")
        parser.add_argument("--password", default=demo.DEFAULT_PASSWORD, help="Password of every demo user.")
        parser.add_argument("--counterparties", type=int, default=demo.DEFAULT_COUNTERPARTIES)
        parser.add_argument("--products", type=int, default=demo.DEFAULT_PRODUCTS)

    def handle(self, *args: Any, **options: Any) -> None:
        if demo.database_has_data():  # the cheap answer for every start after the first
            self.stdout.write(ALREADY_LOADED)
            return
        started = time.monotonic()
        result = demo.load_demo(
            demo.DemoOptions(
                seed=options["seed"],
                password=options["password"],
                counterparties=max(options["counterparties"], 1),
                products=max(options["products"], 1),
            )
        )
        if result is None:
            self.stdout.write(ALREADY_LOADED)
            return
        counts = ", ".join(f"{name} {count}" for name, count in result.counts.items())
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded in {time.monotonic() - started:.1f} s: {counts}."))
        for line in demo.format_logins(result.logins, options["password"]):
            self.stdout.write(line)
