"""InvoiceReminder moves to the sales app (sales 0004 takes it over): the table is renamed to the sales
app's name and the model leaves this app's state; no row is touched."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("exchange", "0004_odata_rules_tasks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name="InvoiceReminder", table="sales_invoicereminder"),
            ],
            state_operations=[
                migrations.DeleteModel(name="InvoiceReminder"),
            ],
        ),
    ]
