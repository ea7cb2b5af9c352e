"""InvoiceReminder joins the sales app: exchange 0005 has already renamed its table to
sales_invoicereminder, so only the migration state is created here; its content type (and with it the
permissions granted on it) is moved rather than recreated."""

import django.db.models.deletion
from django.db import migrations, models


def move_content_type(apps, schema_editor, old_app: str, new_app: str) -> None:
    content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
    if not content_types.filter(app_label=new_app, model="invoicereminder").exists():
        content_types.filter(app_label=old_app, model="invoicereminder").update(app_label=new_app)


def to_sales(apps, schema_editor):
    move_content_type(apps, schema_editor, "exchange", "sales")


def to_exchange(apps, schema_editor):
    move_content_type(apps, schema_editor, "sales", "exchange")


class Migration(migrations.Migration):
    dependencies = [
        ("activities", "0002_task_completed_by"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("exchange", "0005_invoice_reminder_to_sales"),
        ("sales", "0003_invoice_status_sent"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="InvoiceReminder",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("day", models.DateField(verbose_name="day")),
                        ("kind", models.CharField(max_length=10, verbose_name="kind")),
                        ("emailed_to", models.CharField(blank=True, max_length=500, verbose_name="e-mailed to")),
                        ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created")),
                        (
                            "invoice",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="payment_reminders",
                                to="sales.invoice",
                                verbose_name="invoice",
                            ),
                        ),
                        (
                            "task",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="activities.task",
                                verbose_name="task",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "invoice payment reminder",
                        "verbose_name_plural": "invoice payment reminders",
                        "ordering": ["-day", "-id"],
                        "constraints": [
                            models.UniqueConstraint(fields=("invoice", "day"), name="invoice_reminder_once_a_day")
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(to_sales, to_exchange),
    ]
