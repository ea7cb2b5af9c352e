from django.db import migrations

# ОКЕИ code, short name, full name, international code
UNITS = [
    ("796", "шт", "Штука", "PCE"),
    ("166", "кг", "Килограмм", "KGM"),
    ("163", "г", "Грамм", "GRM"),
    ("168", "т", "Тонна", "TNE"),
    ("006", "м", "Метр", "MTR"),
    ("055", "м2", "Квадратный метр", "MTK"),
    ("113", "м3", "Кубический метр", "MTQ"),
    ("112", "л", "Литр", "LTR"),
    ("778", "упак", "Упаковка", "NMP"),
    ("704", "компл", "Комплект", "SET"),
    ("356", "ч", "Час", "HUR"),
    ("359", "сут", "Сутки", "DAY"),
    ("362", "мес", "Месяц", "MON"),
    ("839", "усл. ед", "Условная единица", ""),
]


def add_units(apps, schema_editor):
    Unit = apps.get_model("catalog", "Unit")
    for okei, name, full_name, international in UNITS:
        Unit.objects.update_or_create(
            okei=okei, defaults={"name": name, "full_name": full_name, "international": international}
        )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]
    operations = [migrations.RunPython(add_units, migrations.RunPython.noop)]
