"""Enqueueing Huey jobs from code that writes to the database.

A job enqueued inside a transaction could start before the transaction commits (and see nothing) or
after it rolled back (and act on data that never existed). `enqueue_on_commit` hands the job to Huey
only once the current transaction has committed; outside a transaction (autocommit) it enqueues at once.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from huey.api import TaskWrapper

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: TaskWrapper, *args: Any, **kwargs: Any) -> None:
    """Enqueue `task(*args, **kwargs)` after the current transaction commits, never if it rolls back.

    The callback is robust: if the queue is unreachable when the transaction has already committed, the
    failure is logged (the write stays) and the other on-commit callbacks still run.
    """

    def enqueue() -> None:
        task(*args, **kwargs)
        logger.debug("Enqueued %s", task.name)

    transaction.on_commit(enqueue, robust=True)
