"""An index for the ids a user sees by ownership, and on PostgreSQL trigram indexes on the search documents of
counterparties and contact persons (parties.selectors builds the same expressions for its queries)."""

from django.conf import settings
from django.db import migrations, models

from sdelka.core.trigram import add_trigram_index, remove_trigram_index

INDEXES = {
    "counterparty": "counterparty_search_trgm",
    "contactperson": "contact_search_trgm",
}


def documents() -> dict:
    from sdelka.parties.selectors import contact_document, counterparty_document

    return {"counterparty": counterparty_document(), "contactperson": contact_document()}


def add_search_indexes(apps, schema_editor):
    for model_name, expression in documents().items():
        add_trigram_index(schema_editor, apps.get_model("parties", model_name), INDEXES[model_name], expression)


def remove_search_indexes(apps, schema_editor):
    for name in INDEXES.values():
        remove_trigram_index(schema_editor, name)


class Migration(migrations.Migration):

    dependencies = [
        ('parties', '0002_one_main_bank_account'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='counterparty',
            index=models.Index(fields=['owner', 'id'], name='counterparty_owner_ids'),
        ),
        migrations.RunPython(add_search_indexes, remove_search_indexes),
    ]
