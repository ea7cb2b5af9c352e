"""First-start setup: an administrator and, in development mode (`make run`), the demo company."""

from __future__ import annotations

import argparse
import os
import secrets
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from sdelka.accounts.models import Role, User

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create the administrator on the first start. In development mode (SDELKA_DEV=1) also load the demo "
        "company into an empty database; --demo / --no-demo decide explicitly."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--demo",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Load the demo company into an empty database (default: only in development mode).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.ensure_admin()
        load_demo = settings.DEV_MODE if options["demo"] is None else options["demo"]
        if load_demo:
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
