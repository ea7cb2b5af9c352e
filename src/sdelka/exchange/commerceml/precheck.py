"""The first pass over an uploaded CommerceML file: read all of it, hardened, before anything is stored.

A truncated file, a DTD or an entity bomb fails here, so the apply pass that follows never starts on a file
that would break half-way. Used for orders, and for catalogues on SQLite (on PostgreSQL a catalogue file is
applied in one transaction instead, which a broken file rolls back whole). The pass is lxml alone (the tag
filter and the parsing run in C; nothing is turned into records), about a quarter of the cost of reading
records. It also estimates how many records the apply
pass will meet, for the progress 1C is shown: each counted element makes about one record.
"""

from __future__ import annotations

from sdelka.exchange.xmlsafe import Source, release, safe_iterparse

# Elements that become one record each (an offer: its variant; a price; a stock line; a product; …).
_RECORD_TAGS = tuple(
    f"{{*}}{name}"
    for name in (
        "Группа",
        "Свойство",
        "ЕдиницаИзмерения",
        "ТипЦены",
        "Склад",
        "Товар",
        "Предложение",
        "Цена",
        "КоличествоНаСкладе",
        "Остаток",
        "Документ",
        "Контрагент",
    )
)
# Containers of many records: freed as soon as each child is read, so memory stays bounded.
_TOP_LEVEL = frozenset({"Товар", "Предложение", "Документ", "Контрагент"})


def precheck(source: Source) -> int:
    """Read the whole file through the hardened parser (raising its errors); returns the estimated records."""
    count = 0
    for _event, element in safe_iterparse(source, events=("end",), tag=_RECORD_TAGS):
        count += 1
        tag = element.tag
        if isinstance(tag, str) and tag.rpartition("}")[2] in _TOP_LEVEL:
            release(element)
    return count
