"""Document rules now have per-field owners, and a pair without one is "1C wins" (never written to 1C for a
document 1C has). Two-way document rules made before behaved as "newest wins" — a change on either side
travelled — so their pairs without an owner are given that owner, and keep behaving as they did."""

from django.db import migrations

DOCUMENTS = ("invoice", "payment")


def newest_wins(apps, schema_editor):
    MappingRule = apps.get_model("exchange", "MappingRule")
    for rule in MappingRule.objects.filter(entity__in=DOCUMENTS, direction="both"):
        fields = [
            pair if "const" in pair or "ownership" in pair else {**pair, "ownership": "newest"} for pair in rule.fields
        ]
        if fields != rule.fields:
            rule.fields = fields
            rule.save(update_fields=["fields"])


class Migration(migrations.Migration):
    dependencies = [("exchange", "0015_connection_counterparty_owner")]

    operations = [migrations.RunPython(newest_wins, migrations.RunPython.noop)]
