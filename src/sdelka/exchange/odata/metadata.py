"""`$metadata` of a 1C base: streamed, hardened parsing into a compact form; configuration recognition; what
Sdelka needs that is not published, and the 1C code that publishes it.

The compact form (JSON, stored in `ODataMetadata.data`)::

    {"entity_sets": {"Catalog_Контрагенты": {
         "keys": ["Ref_Key"], "properties": {"ИНН": ["Edm.String", true], …},
         "rows": {"КонтактнаяИнформация": "Catalog_Контрагенты_КонтактнаяИнформация_RowType"}}},
     "complex_types": {"…_RowType": {"LineNumber": ["Edm.Int64", true], …}},
     "enums": {"ЮридическоеФизическоеЛицо": ["ЮридическоеЛицо", "ФизическоеЛицо"]},
     "functions": 4}

Entity types are matched to sets through the container, never by splitting names on ``_`` (1C names contain
underscores). Types referenced but absent (a trimmed document) are tolerated. A repeated `EnumType` (seen in
real УТ 11 documents) keeps the first.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from sdelka.exchange.models import Connection
from sdelka.exchange.xmlsafe import Source, local_name, release, safe_iterparse

from .client import ODataClient
from .models import ODataMetadata

_TAGS = ("{*}EntityType", "{*}ComplexType", "{*}EnumType", "{*}EntitySet", "{*}FunctionImport")


def _properties(element: Any) -> tuple[dict[str, list[Any]], dict[str, str]]:
    props: dict[str, list[Any]] = {}
    rows: dict[str, str] = {}
    for child in element:
        if local_name(child) != "Property":
            continue
        name, edm = child.get("Name", ""), child.get("Type", "")
        if edm.startswith("Collection(") and edm.endswith(")"):
            rows[name] = edm[len("Collection(") : -1].rpartition(".")[2]
        else:
            props[name] = [edm, child.get("Nullable", "true") != "false"]
    return props, rows


def parse_metadata(source: Source) -> dict[str, Any]:
    """Stream the EDMX once; memory stays bounded by one element (elements are released as consumed)."""
    entity_types: dict[str, dict[str, Any]] = {}
    complex_types: dict[str, dict[str, list[Any]]] = {}
    enums: dict[str, list[str]] = {}
    sets: dict[str, str] = {}
    functions = 0
    for _event, element in safe_iterparse(source, tag=_TAGS):
        tag = local_name(element)
        name = element.get("Name", "")
        if tag == "EntityType":
            props, rows = _properties(element)
            keys = [ref.get("Name", "") for key in element if local_name(key) == "Key" for ref in key]
            entity_types[name] = {"keys": keys, "properties": props, "rows": rows}
        elif tag == "ComplexType":
            complex_types[name] = _properties(element)[0]
        elif tag == "EnumType":
            enums.setdefault(name, [m.get("Name", "") for m in element if local_name(m) == "Member"])
        elif tag == "EntitySet":
            sets[name] = element.get("EntityType", "").rpartition(".")[2]
        elif tag == "FunctionImport":
            functions += 1
        release(element)
    entity_sets = {
        name: entity_types.get(type_name, {"keys": [], "properties": {}, "rows": {}})
        for name, type_name in sets.items()
    }
    return {"entity_sets": entity_sets, "complex_types": complex_types, "enums": enums, "functions": functions}


# --- configurations ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Configuration:
    code: str
    title: str
    signature: frozenset[str]  # entity sets only this configuration has (together)
    needed: tuple[str, ...]  # what Sdelka reads/writes in it


_COMMON = ("Catalog_Контрагенты", "Catalog_Номенклатура", "Catalog_ДоговорыКонтрагентов")
_UT_MORE = (
    "Catalog_Организации",
    "Catalog_Валюты",
    "Catalog_СтавкиНДС",
    "Catalog_ВидыЦен",
    "InformationRegister_ЦеныНоменклатуры",
    "AccumulationRegister_РасчетыСКлиентами",
    "Catalog_КлючиАналитикиУчетаПоПартнерам",
    "Catalog_БанковскиеСчетаКонтрагентов",
    "Catalog_КлассификаторБанков",
)
CONFIGURATIONS = (
    Configuration(
        "erp",
        "1С:ERP Управление предприятием 2",
        frozenset({"Catalog_Партнеры", "Document_ЗаказКлиента", "AccountingRegister_Хозрасчетный"}),
        (
            *_COMMON,
            "Catalog_Партнеры",
            "Catalog_УпаковкиЕдиницыИзмерения",
            "Document_ЗаказКлиента",
            "Document_СчетНаОплатуКлиенту",
            "Document_ПоступлениеБезналичныхДенежныхСредств",
        ),
    ),
    Configuration(
        "bp30",
        "1С:Бухгалтерия предприятия 3.0",
        frozenset(
            {
                "Document_СчетНаОплатуПокупателю",
                "Document_ПоступлениеНаРасчетныйСчет",
                "AccountingRegister_Хозрасчетный",
            }
        ),
        (
            *_COMMON,
            "Catalog_КлассификаторЕдиницИзмерения",
            "Catalog_БанковскиеСчета",
            "Document_СчетНаОплатуПокупателю",
            "Document_ПоступлениеНаРасчетныйСчет",
            "AccountingRegister_Хозрасчетный",
            "Catalog_Организации",
            "Catalog_Валюты",
            "Catalog_ТипыЦенНоменклатуры",
            "InformationRegister_ЦеныНоменклатуры",
            "ChartOfAccounts_Хозрасчетный",
            "Catalog_Банки",
            "Catalog_КонтактныеЛица",
        ),
    ),
    Configuration(
        "ut11",
        "1С:Управление торговлей 11",
        frozenset({"Catalog_Партнеры", "Document_ЗаказКлиента", "Document_СчетНаОплатуКлиенту"}),
        (
            *_COMMON,
            "Catalog_Партнеры",
            "Catalog_УпаковкиЕдиницыИзмерения",
            "Document_ЗаказКлиента",
            "Document_СчетНаОплатуКлиенту",
            "Document_ПоступлениеБезналичныхДенежныхСредств",
            *_UT_MORE,
        ),
    ),
    Configuration(
        "unf",
        "1С:Управление нашей фирмой",
        frozenset({"Document_ЗаказПокупателя", "Document_ПоступлениеНаСчет"}),
        (*_COMMON, "Document_ЗаказПокупателя", "Document_ПоступлениеНаСчет"),
    ),
)
BY_CODE = {c.code: c for c in CONFIGURATIONS}


def recognise(entity_sets: set[str] | dict[str, Any]) -> Configuration | None:
    """The configuration whose whole signature is published (ERP before УТ: ERP is УТ plus accounting);
    None when no signature is complete (too little is published to tell)."""
    names = set(entity_sets)
    for configuration in CONFIGURATIONS:
        if configuration.signature <= names:
            return configuration
    return None


_COLLECTIONS = {
    "Catalog": "Справочники",
    "Document": "Документы",
    "DocumentJournal": "ЖурналыДокументов",
    "Constant": "Константы",
    "ExchangePlan": "ПланыОбмена",
    "ChartOfAccounts": "ПланыСчетов",
    "ChartOfCalculationTypes": "ПланыВидовРасчета",
    "ChartOfCharacteristicTypes": "ПланыВидовХарактеристик",
    "InformationRegister": "РегистрыСведений",
    "AccumulationRegister": "РегистрыНакопления",
    "CalculationRegister": "РегистрыРасчета",
    "AccountingRegister": "РегистрыБухгалтерии",
    "BusinessProcess": "БизнесПроцессы",
    "Task": "Задачи",
}


def metadata_path(entity_set: str) -> str:
    """`Catalog_Контрагенты` → `Метаданные.Справочники.Контрагенты` (the prefix never has an underscore)."""
    prefix, _sep, name = entity_set.partition("_")
    return f"Метаданные.{_COLLECTIONS.get(prefix, prefix)}.{name}"


def publish_code(missing: list[str]) -> str:
    """BSL that adds the missing objects to the published set (read–merge–write: the method replaces it)."""
    lines = ["Состав = ПолучитьСоставСтандартногоИнтерфейсаOData();"]
    for entity_set in missing:
        path = metadata_path(entity_set)
        lines.append(f"Если Состав.Найти({path}) = Неопределено Тогда")
        lines.append(f"    Состав.Добавить({path});")
        lines.append("КонецЕсли;")
    lines.append("УстановитьСоставСтандартногоИнтерфейсаOData(Состав);")
    return "\n".join(lines)


def publish_steps(missing: list[str]) -> list[str]:
    return [
        _("In 1C open Administration → Data synchronization → Standard OData interface settings (БСП), tick: %s.")
        % ", ".join(missing),
        _(
            "Or run this code once as an administrator (external data processor, or "
            "«Выполнить произвольный код» in the «Консоль кода»); it keeps what is already published:"
        ),
        _("Then give the OData user the right to read (and, for two-way rules, to change) these objects."),
    ]


# --- cache -------------------------------------------------------------------------------------------------


def fetch_metadata(*, connection: Connection, client: ODataClient, force: bool = False) -> ODataMetadata:
    """Download `$metadata` into a temporary file and parse it unless its sha1 equals the cached one."""
    with tempfile.TemporaryFile() as sink:
        sha1 = client.metadata(sink)
        cached = ODataMetadata.objects.filter(connection=connection).first()
        if cached is not None and cached.sha1 == sha1 and not force:
            return cached
        data = parse_metadata(sink)
        size = sink.seek(0, 2)
    configuration = recognise(data["entity_sets"])
    with transaction.atomic():
        cached, _created = ODataMetadata.objects.update_or_create(
            connection=connection,
            defaults={
                "sha1": sha1,
                "size": size,
                "data": data,
                "configuration": configuration.code if configuration else "",
            },
        )
    return cached


def cached_metadata(*, connection: Connection) -> ODataMetadata | None:
    return ODataMetadata.objects.filter(connection=connection).first()


@dataclass
class CheckReport:
    url: str
    reachable: bool = False
    authorised: bool = False
    configuration: Configuration | None = None
    published: int = 0
    missing: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.reachable and self.authorised and self.configuration is not None and not self.missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "reachable": self.reachable,
            "authorised": self.authorised,
            "configuration": self.configuration.code if self.configuration else None,
            "configuration_title": self.configuration.title if self.configuration else None,
            "published": self.published,
            "missing": self.missing,
            "publish_code": publish_code(self.missing) if self.missing else "",
            "error": self.error,
            "ok": self.ok,
        }
