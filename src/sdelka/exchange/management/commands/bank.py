"""`sdelka bank import FILE [--organisation INN|id] [--user USERNAME]`: import a bank statement."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from sdelka.accounts.models import User
from sdelka.exchange.clientbank.importer import import_statement
from sdelka.exchange.models import Trigger
from sdelka.sales.models import Organisation


class Command(BaseCommand):
    help = "Bank statements (1CClientBankExchange, kl_to_1c.txt): import."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("import", help="Import a statement file.")
        add.add_argument("file", help="The statement file the bank client exported (kl_to_1c.txt).")
        add.add_argument(
            "--organisation",
            default="",
            help="ИНН or id of our organisation, for accounts not yet entered in the CRM.",
        )
        add.add_argument("--user", default="", help="Record the import as made by this user.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        organisation = None
        if options["organisation"]:
            key = options["organisation"].strip()
            lookup = Q(inn=key) | Q(pk=int(key)) if key.isdigit() and len(key) < 10 else Q(inn=key)
            organisation = Organisation.objects.filter(lookup).first()
            if organisation is None:
                raise CommandError(f"No organisation with ИНН or id {key!r}.")
        user = None
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
        try:
            result = import_statement(
                data=path.read_bytes(), user=user, filename=path.name, organisation=organisation, trigger=Trigger.MANUAL
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if not result.ok:
            raise CommandError(f"{path.name}: {result.error} (run #{result.run.pk})")
        self.stdout.write(f"{path.name}: {result.summary()} (run #{result.run.pk})")
        if result.warnings:
            self.stdout.write(f"{result.warnings} warning(s): see the run's journal.")
