"""Data migrations of OData rules: the payment rules stop filtering out unposted documents, and two-way document
rules keep their behaviour when a pair without an owner becomes "1C wins"."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from sdelka.exchange.odata.models import MappingRule

BEFORE = [("exchange", "0011_bank_document_linked_to_1c_payment")]
AFTER = [("exchange", "0016_document_rules_newest_wins")]


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_old_preset_filters_and_owners_are_brought_up_to_date() -> None:
    try:
        apps = migrate(BEFORE)
        Connection = apps.get_model("exchange", "Connection")
        Rule = apps.get_model("exchange", "MappingRule")
        base = Connection.objects.create(name="bp", kind="odata")
        pairs = [{"sdelka": "date", "onec": "Date"}, {"sdelka": "comment", "onec": "Комментарий", "ownership": "ask"},
                 {"sdelka": "organisation", "const": "x"}]  # fmt: skip
        Rule.objects.create(connection=base, name="invoices", entity="invoice", direction="both", fields=pairs,
                            entity_set="Document_СчетНаОплатуПокупателю")  # fmt: skip
        Rule.objects.create(connection=base, name="payments", entity="payment", direction="in", fields=pairs[:1],
                            entity_set="Document_ПоступлениеНаРасчетныйСчет",
                            filter="ВидОперации eq 'ОплатаПокупателя' and Posted eq true")  # fmt: skip
        Rule.objects.create(connection=base, name="mine", entity="payment", direction="in", fields=pairs[:1],
                            entity_set="Document_ПоступлениеНаРасчетныйСчет", filter="Posted eq true")  # fmt: skip
        migrate(AFTER)
        invoices, payments, mine = (MappingRule.objects.get(name=n) for n in ("invoices", "payments", "mine"))
        assert [pair.get("ownership") for pair in invoices.fields] == ["newest", "ask", None]
        assert payments.fields == pairs[:1]  # a rule from 1C: "1C wins" as before
        assert payments.filter == "ВидОперации eq 'ОплатаПокупателя'"
        assert mine.filter == "Posted eq true"  # a filter a person wrote is left alone
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
