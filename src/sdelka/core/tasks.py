"""Huey jobs of the core. The consumer (`sdelka run_huey`) imports this module on start."""

from __future__ import annotations

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from .orphans import sweep_orphan_rows

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="41", hour="3"), name="core.sweep_orphan_rows")
def sweep_orphans() -> dict[str, int]:
    """Every night: rows left pointing at a deleted object by a deletion that raced an exchange."""
    fixed = sweep_orphan_rows()
    if fixed:
        logger.warning("Rows pointing at deleted objects removed or cleared: %s", fixed)
    return fixed
