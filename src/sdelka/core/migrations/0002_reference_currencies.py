from django.db import migrations

# code, numeric, name, symbol, unit words (one, few, many), subunit words (one, few, many)
CURRENCIES = [
    ("RUB", "643", "Российский рубль", "₽", "рубль,рубля,рублей", "копейка,копейки,копеек"),
    ("USD", "840", "Доллар США", "$", "доллар США,доллара США,долларов США", "цент,цента,центов"),
    ("EUR", "978", "Евро", "€", "евро,евро,евро", "евроцент,евроцента,евроцентов"),
    ("CNY", "156", "Китайский юань", "¥", "юань,юаня,юаней", "фэнь,фэня,фэней"),
    ("KZT", "398", "Казахстанский тенге", "₸", "тенге,тенге,тенге", "тиын,тиына,тиынов"),
    ("BYN", "933", "Белорусский рубль", "Br", "белорусский рубль,белорусских рубля,белорусских рублей",
     "копейка,копейки,копеек"),
]


def add_currencies(apps, schema_editor):
    Currency = apps.get_model("core", "Currency")
    for code, numeric, name, symbol, unit, subunit in CURRENCIES:
        Currency.objects.update_or_create(
            code=code,
            defaults={"numeric_code": numeric, "name": name, "symbol": symbol, "words_unit": unit,
                      "words_subunit": subunit},
        )


class Migration(migrations.Migration):
    dependencies = [("core", "0001_initial")]
    operations = [migrations.RunPython(add_currencies, migrations.RunPython.noop)]
