"""`sdelka sync run|preset|tasks|export|import`: OData sync tasks of a 1C connection from the command line."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from sdelka.accounts.models import User
from sdelka.exchange.models import Connection, ConnectionKind, Trigger
from sdelka.exchange.odata.client import ODataError
from sdelka.exchange.odata.models import SyncTask
from sdelka.exchange.odata.rules import PRESETS
from sdelka.exchange.odata.services import client_for, export_setup, import_setup, load_preset
from sdelka.exchange.odata.sync import RuleResult, SyncBusy, SyncResult, run_task
from sdelka.exchange.selectors import connection_by_name


class Command(BaseCommand):
    help = "OData sync with a 1C base: run tasks (or a dry run), load a ready-made rule set, list tasks."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        run = sub.add_parser("run", help="Run the connection's tasks (or one) now.")
        run.add_argument("connection")
        run.add_argument("--task", default="", help="Run only this task.")
        run.add_argument("--dry-run", action="store_true", help="Show what would change; write nothing.")
        run.add_argument("--json", action="store_true", help="Print the summary as JSON.")
        run.add_argument(
            "--full", action="store_true", help="Full resync: compare every object, even those 1C reports unchanged."
        )
        run.add_argument(
            "--user",
            default="",
            help="Run as this Sdelka user: refused unless the task lets the user's team run it (administrators may).",
        )
        preset = sub.add_parser("preset", help="Load a ready-made rule set and its task.")
        preset.add_argument("connection")
        preset.add_argument("name", choices=sorted(PRESETS))
        preset.add_argument(
            "--post-documents",
            choices=["yes", "no"],
            help="Post the documents the task writes to 1C (kept as it was when not given).",
        )
        tasks = sub.add_parser("tasks", help="List the connection's tasks and their rules.")
        tasks.add_argument("connection")
        export = sub.add_parser("export", help="Print the connection's rules and tasks as JSON.")
        export.add_argument("connection")
        load = sub.add_parser("import", help="Create or replace rules and tasks from an exported JSON file.")
        load.add_argument("connection")
        load.add_argument("file")

    def _connection(self, name: str) -> Connection:
        connection = connection_by_name(name=name)
        if connection is None:
            raise CommandError(f"No connection named {name!r}.")
        if connection.kind != ConnectionKind.ODATA:
            raise CommandError(f"{connection.name} is not an OData connection.")
        return connection

    def handle(self, *args: Any, **options: Any) -> None:
        connection = self._connection(options["connection"])
        try:
            if options["action"] == "preset":
                post = options.get("post_documents")
                task = load_preset(
                    connection=connection,
                    preset=options["name"],
                    post_documents=None if post is None else post == "yes",
                )
                names = ", ".join(rule.name for rule in task.ordered_rules())
                self.stdout.write(f"Task {task.name!r} loaded with rules: {names}.")
            elif options["action"] == "tasks":
                self._tasks(connection)
            elif options["action"] == "export":
                self.stdout.write(json.dumps(export_setup(connection=connection), ensure_ascii=False, indent=2))
            elif options["action"] == "import":
                self._import(connection, options["file"])
            else:
                self._run(connection, options)
        except ValidationError as exc:
            messages = [f"{field}: {'; '.join(errors)}" for field, errors in exc.message_dict.items()]
            raise CommandError("\n".join(messages)) from exc

    def _import(self, connection: Connection, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        tasks = import_setup(connection=connection, data=data)
        self.stdout.write(f"Imported into {connection.name}: " + ", ".join(task.name for task in tasks))

    def _tasks(self, connection: Connection) -> None:
        tasks = SyncTask.objects.filter(connection=connection).order_by("name")
        if not tasks:
            self.stdout.write("No tasks. Load one with: sdelka sync preset CONNECTION bp30")
        for task in tasks:
            state = "active" if task.is_active else "inactive"
            resume = f", resumes at {task.checkpoint}" if task.checkpoint else ""
            self.stdout.write(f"{task.name} ({state}{resume})")
            for number, rule in enumerate(task.ordered_rules(), 1):
                self.stdout.write(f"  {number}. {rule.name}: {rule.entity} ← {rule.entity_set} [{rule.direction}]")

    def _run(self, connection: Connection, options: dict[str, Any]) -> None:
        tasks = SyncTask.objects.filter(connection=connection, is_active=True).order_by("name")
        if options["task"]:
            tasks = tasks.filter(name=options["task"])
            if not tasks:
                raise CommandError(f"No active task named {options['task']!r} in {connection.name}.")
        elif not tasks:
            raise CommandError(
                f"{connection.name} has no tasks. Load one with: sdelka sync preset {connection.name} bp30"
            )
        user = None
        if options["user"]:
            user = User.objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
        results: list[SyncResult] = []
        for task in tasks:
            try:
                results.append(
                    run_task(
                        connection=connection,
                        task=task,
                        client=client_for(connection),
                        dry_run=options["dry_run"],
                        trigger=Trigger.MANUAL,
                        full=options["full"],
                        user=user,
                        on_page=self._progress,
                    )
                )
            except (SyncBusy, ODataError, PermissionDenied) as exc:
                raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps([r.as_dict() for r in results], ensure_ascii=False, indent=2))
        else:
            for result in results:
                self._print(result)
        failed = [r for r in results if r.failed]
        if failed:
            raise CommandError("; ".join(f"{r.task}: {r.message}" for r in failed))

    def _progress(self, rule: RuleResult, done: int) -> None:
        """Done/total while the run goes, on stderr (stdout stays the summary, or the JSON)."""
        self.stderr.write(f"  {rule.name}: {done}/{rule.total}", ending="\r" if done < rule.total else "\n")

    def _print(self, result: SyncResult) -> None:
        head = "DRY RUN — nothing written. " if result.dry_run else f"Run #{result.run_id}: "
        self.stdout.write(f"{head}{result.task}: {result.status}")
        if result.resumed_from:
            self.stdout.write(f"  resumed from {result.resumed_from}")
        for rule in result.rules:
            self.stdout.write(
                f"  {rule.name} ({rule.entity_set}): {rule.total} in 1C; created {rule.created}, "
                f"updated {rule.updated}, unchanged {rule.unchanged}, refused {rule.refused}, skipped {rule.skipped}"
                f", in conflict {rule.conflicts}" + (f", no longer in 1C {rule.gone}" if rule.gone else "")
            )
            if rule.error:
                self.stdout.write(f"    ERROR: {rule.error}")
            if not result.dry_run:
                continue
            for change in rule.changes:
                self.stdout.write(f"    {change.action:<8} {change.label} [{change.external_id}]")
                for name, (old, new) in change.diff.items():
                    self.stdout.write(f"        {name}: {old!r} → {new!r}")
                for name, value in change.to_onec.items():
                    self.stdout.write(f"        to 1C {name}: {value!r}")
                for name, (ours, theirs) in change.conflicts.items():
                    self.stdout.write(f"        CONFLICT {name}: Sdelka {ours!r} / 1C {theirs!r}")
                for field, message in change.errors.items():
                    self.stdout.write(f"        {field}: {message}")
        self.stdout.write(f"  {result.message}")
