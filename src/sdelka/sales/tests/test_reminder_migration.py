"""InvoiceReminder moved from the exchange app to sales: the rows made before the move survive it, in
both directions."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from sdelka.sales.models import InvoiceReminder
from tests.factories import InvoiceFactory

BEFORE_MOVE = [("exchange", "0004_odata_rules_tasks"), ("sales", "0003_invoice_status_sent")]
AFTER_MOVE = [("exchange", "0005_invoice_reminder_to_sales"), ("sales", "0004_invoice_reminder")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_reminders_made_before_the_move_survive_it():
    invoice = InvoiceFactory()
    try:
        old_apps = migrate(BEFORE_MOVE)
        OldReminder = old_apps.get_model("exchange", "InvoiceReminder")
        OldReminder.objects.create(invoice_id=invoice.pk, day=datetime.date(2026, 6, 30), kind="after")
        content_type = ContentType.objects.get(app_label="exchange", model="invoicereminder")

        migrate(AFTER_MOVE)
        assert list(InvoiceReminder.objects.values_list("invoice_id", "kind")) == [(invoice.pk, "after")]
        # the same content type row, so permissions granted on reminders still apply
        assert ContentType.objects.get_for_model(InvoiceReminder).pk == content_type.pk

        old_apps = migrate(BEFORE_MOVE)
        assert old_apps.get_model("exchange", "InvoiceReminder").objects.count() == 1
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
