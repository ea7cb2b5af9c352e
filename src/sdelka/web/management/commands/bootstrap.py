"""First-start setup for `make run`: an administrator and, into an empty database, the demo data."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from sdelka.accounts.models import Role, User

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Create the administrator on the first start and load demo data into an empty database."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-demo", action="store_true", help="Do not load the demo company.")

    def handle(self, *args: Any, **options: Any) -> None:
        self.ensure_admin()
        if not options["no_demo"]:
            call_command("seed_demo", stdout=self.stdout, stderr=self.stderr)

    @transaction.atomic
    def ensure_admin(self) -> None:
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("Administrator exists; login as before.")
            return
        password = os.environ.get("SDELKA_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=ADMIN_USERNAME, email="", password=password, role=Role.ADMIN, first_name="Администратор"
        )
        shown = password if not os.environ.get("SDELKA_ADMIN_PASSWORD") else "(from SDELKA_ADMIN_PASSWORD)"
        self.stdout.write(self.style.SUCCESS(f"Administrator created. Login: {ADMIN_USERNAME}  Password: {shown}"))
