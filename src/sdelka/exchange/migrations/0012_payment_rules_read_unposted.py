"""The ready-made payment rules read unposted documents too (their payments are cancelled in Sdelka): rules still
carrying the old preset filter lose its "and Posted eq true"; filters a person wrote are left alone."""

from django.db import migrations

OLD_FILTERS = {
    "ВидОперации eq 'ОплатаПокупателя' and Posted eq true": "ВидОперации eq 'ОплатаПокупателя'",
    "ХозяйственнаяОперация eq 'ПоступлениеОплатыОтКлиента' and Posted eq true": (
        "ХозяйственнаяОперация eq 'ПоступлениеОплатыОтКлиента'"
    ),
}


def read_unposted(apps, schema_editor):
    MappingRule = apps.get_model("exchange", "MappingRule")
    for old, new in OLD_FILTERS.items():
        MappingRule.objects.filter(entity="payment", filter=old).update(filter=new)


class Migration(migrations.Migration):
    dependencies = [("exchange", "0011_bank_document_linked_to_1c_payment")]

    operations = [migrations.RunPython(read_unposted, migrations.RunPython.noop)]
