from django.db import migrations

STAGES = [
    ("Новая заявка", "open", 10),
    ("Квалификация", "open", 20),
    ("Коммерческое предложение", "open", 40),
    ("Счёт выставлен", "open", 70),
    ("Оплачено", "won", 100),
    ("Проиграна", "lost", 0),
]


def add_pipeline(apps, schema_editor):
    Pipeline = apps.get_model("sales", "Pipeline")
    Stage = apps.get_model("sales", "Stage")
    if Pipeline.objects.exists():
        return
    pipeline = Pipeline.objects.create(name="Продажи", is_default=True)
    Stage.objects.bulk_create(
        Stage(pipeline=pipeline, name=name, kind=kind, probability=probability, order=index)
        for index, (name, kind, probability) in enumerate(STAGES, start=1)
    )


class Migration(migrations.Migration):
    dependencies = [("sales", "0001_initial")]
    operations = [migrations.RunPython(add_pipeline, migrations.RunPython.noop)]
