"""Background jobs of the exchange hub (Huey)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from .commerceml.protocol import process_import
from .services import remove_old_files


@db_task(name="exchange.import_file")
def import_file(file_id: int) -> None:
    process_import(file_id=file_id)


def enqueue_import(file_id: int) -> None:
    import_file(file_id)


@db_periodic_task(crontab(minute="17", hour="3"), name="exchange.remove_old_files")
def remove_old_exchange_files() -> None:
    remove_old_files()
