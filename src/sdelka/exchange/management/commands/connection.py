"""`sdelka connection add|list|password|check`: manage 1C connections without the UI."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from sdelka.exchange.models import ConnectionKind
from sdelka.exchange.odata.metadata import CheckReport, publish_code, publish_steps
from sdelka.exchange.odata.services import DEFAULT_TIMEOUT, check_connection, create_odata_connection
from sdelka.exchange.selectors import connection_by_name, connections
from sdelka.exchange.services import create_connection, set_connection_password, set_counterparty_owner


class Command(BaseCommand):
    help = "Manage connections to 1C bases: add, list, password, check."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a connection.")
        add.add_argument("--kind", choices=ConnectionKind.values, default=ConnectionKind.SITE)
        add.add_argument("--name", required=True)
        add.add_argument(
            "--login", default="", help="Exchange login 1C will use (site); the 1C user Sdelka logs in as (odata)."
        )
        add.add_argument(
            "--password", default="", help="Exchange password 1C will use (site); the 1C user's password (odata)."
        )
        add.add_argument("--url", default="", help="OData: the 1C base address, e.g. http://server/base.")
        add.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="OData: seconds per request.")
        add.add_argument("--prefix", default="", help="The 1C base prefix.")
        add.add_argument("--options", default="", help='Options as JSON, e.g. {"deactivate_missing_products": true}.')
        add.add_argument("--owner", default="", help="Login of the user who gets the counterparties this base brings.")
        sub.add_parser("list", help="List connections.")
        password = sub.add_parser("password", help="Set a connection's exchange password.")
        password.add_argument("--name", required=True)
        password.add_argument("--password", required=True)
        owner = sub.add_parser("owner", help="Choose who gets the counterparties a connection's base brings.")
        owner.add_argument("name")
        owner.add_argument("username", nargs="?", default="", help="A login; leave out for the exchange's own user.")
        check = sub.add_parser("check", help="Check an OData connection: reachability, login, configuration.")
        check.add_argument("name")
        check.add_argument("--json", action="store_true", help="Print the report as JSON.")
        check.add_argument("--refresh", action="store_true", help="Parse $metadata again even if it is unchanged.")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "add":
                with transaction.atomic():  # a wrong --owner leaves no half-made connection behind
                    self._add(options)
            elif action == "list":
                self._list()
            elif action == "password":
                connection = connection_by_name(name=options["name"])
                if connection is None:
                    raise CommandError(f"No connection named {options['name']!r}.")
                set_connection_password(connection=connection, password=options["password"])
                self.stdout.write(f"Password of {connection.name} changed.")
            elif action == "owner":
                self._owner(options["name"], options["username"])
            elif action == "check":
                self._check(options)
        except ValidationError as exc:
            messages = [f"{field}: {'; '.join(errors)}" for field, errors in exc.message_dict.items()]
            raise CommandError("\n".join(messages)) from exc

    def _add(self, options: dict[str, Any]) -> None:
        if options["kind"] == ConnectionKind.ODATA:
            connection = create_odata_connection(
                name=options["name"],
                url=options["url"],
                login=options["login"],
                password=options["password"],
                timeout=options["timeout"],
            )
            self._set_owner(connection, options["owner"])
            self.stdout.write(f"Connection {connection.name} (id {connection.pk}, odata) added: {connection.url}")
            self.stdout.write(f"Check it with: sdelka connection check {connection.name}")
            return
        try:
            extra = json.loads(options["options"]) if options["options"] else {}
        except json.JSONDecodeError as exc:
            raise CommandError(f"--options is not valid JSON: {exc}") from exc
        if not isinstance(extra, dict):
            raise CommandError("--options must be a JSON object.")
        connection = create_connection(
            name=options["name"],
            kind=options["kind"],
            login=options["login"],
            password=options["password"],
            prefix=options["prefix"],
            options=extra,
        )
        self._set_owner(connection, options["owner"])
        self.stdout.write(f"Connection {connection.name} (id {connection.pk}, {connection.kind}) added.")
        if connection.kind == ConnectionKind.SITE:
            self.stdout.write("In 1C, set the site address to https://<your Sdelka host>/1c/exchange")

    @staticmethod
    def _set_owner(connection: Any, username: str) -> None:
        if username:
            set_counterparty_owner(connection=connection, username=username)

    def _owner(self, name: str, username: str) -> None:
        connection = connection_by_name(name=name)
        if connection is None:
            raise CommandError(f"No connection named {name!r}.")
        set_counterparty_owner(connection=connection, username=username)
        owner = connection.counterparty_owner
        receiver = owner.username if owner else "the exchange's own user (seen by the director and administrators)"
        self.stdout.write(f"New counterparties from {connection.name} go to {receiver}.")

    def _check(self, options: dict[str, Any]) -> None:
        connection = connection_by_name(name=options["name"])
        if connection is None:
            raise CommandError(f"No connection named {options['name']!r}.")
        if connection.kind != ConnectionKind.ODATA:
            raise CommandError(f"{connection.name} is not an OData connection.")
        report = check_connection(connection=connection, refresh=options["refresh"])
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        else:
            self._print_report(report)
        if not report.ok:
            raise CommandError("The connection is not ready." if not report.error else report.error)

    def _print_report(self, report: CheckReport) -> None:
        yes = {True: "yes", False: "NO"}
        self.stdout.write(f"Address:        {report.url}")
        self.stdout.write(f"Reachable:      {yes[report.reachable]}")
        self.stdout.write(f"Login accepted: {yes[report.authorised]}")
        conf = report.configuration
        self.stdout.write(f"Configuration:  {conf.title if conf else 'not recognised'}")
        if report.published:
            self.stdout.write(f"Published:      {report.published} objects")
        if report.error:
            self.stdout.write(f"Error:          {report.error}")
        if report.missing:
            self.stdout.write("Not published (Sdelka needs them):")
            for name in report.missing:
                self.stdout.write(f"  - {name}")
            self.stdout.write("")
            steps = publish_steps(report.missing)
            for number, step in enumerate(steps, 1):
                self.stdout.write(f"{number}. {step}")
                if number == 2:
                    self.stdout.write("")
                    for line in publish_code(report.missing).splitlines():
                        self.stdout.write(f"    {line}")
                    self.stdout.write("")
        elif report.ok:
            self.stdout.write("Everything Sdelka needs is published.")

    def _list(self) -> None:
        rows = connections()
        if not rows:
            self.stdout.write("No connections.")
            return
        self.stdout.write(f"{'id':>4}  {'name':<30} {'kind':<6} {'login':<20} {'prefix':<8} {'active':<6} last run")
        for connection in rows:
            last = getattr(connection, "last_run_status", None) or "-"
            self.stdout.write(
                f"{connection.pk:>4}  {connection.name:<30} {connection.kind:<6} {connection.login or '-':<20} "
                f"{connection.prefix or '-':<8} {'yes' if connection.is_active else 'no':<6} {last}"
            )
