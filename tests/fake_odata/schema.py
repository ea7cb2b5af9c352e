"""The fake 1C's `$metadata`: the real УТ 11 excerpt from ../shared/fixtures/odata plus, per configuration, the
entity types that configuration is recognised by (written in the form 1C emits: `_Key` Edm.Guid references,
`Collection(…_RowType)` tabular parts, enums as plain Edm.String with a same-named `EnumType`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

EDM = "http://schemas.microsoft.com/ado/2009/11/edm"
EDMX = "http://schemas.microsoft.com/ado/2007/06/edmx"
META = "http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"

P = tuple[str, str]  # (name, Edm type)

_CATALOG = [
    ("Ref_Key", "Edm.Guid"),
    ("DataVersion", "Edm.String"),
    ("DeletionMark", "Edm.Boolean"),
    ("Predefined", "Edm.Boolean"),
    ("PredefinedDataName", "Edm.String"),
    ("Code", "Edm.String"),
    ("Description", "Edm.String"),
]
_DOCUMENT = [
    ("Ref_Key", "Edm.Guid"),
    ("DataVersion", "Edm.String"),
    ("DeletionMark", "Edm.Boolean"),
    ("Number", "Edm.String"),
    ("Date", "Edm.DateTime"),
    ("Posted", "Edm.Boolean"),
]
_ROWS = [("Ref_Key", "Edm.Guid"), ("LineNumber", "Edm.Int64")]
_BP_GOODS_ROW = [
    ("LineNumber", "Edm.Int64"),
    ("Номенклатура_Key", "Edm.Guid"),
    ("Содержание", "Edm.String"),
    ("Количество", "Edm.Double"),
    ("Цена", "Edm.Double"),
    ("Сумма", "Edm.Double"),
    ("СтавкаНДС", "Edm.String"),
    ("СуммаНДС", "Edm.Double"),
]
_UT_GOODS_ROW = [
    ("LineNumber", "Edm.Int64"),
    ("Номенклатура_Key", "Edm.Guid"),
    ("Количество", "Edm.Double"),
    ("Цена", "Edm.Double"),
    ("Сумма", "Edm.Double"),
    ("СтавкаНДС_Key", "Edm.Guid"),
    ("СуммаНДС", "Edm.Double"),
]


@dataclass
class Type:
    properties: list[P]
    keys: list[str] = field(default_factory=lambda: ["Ref_Key"])
    rows: dict[str, list[P]] = field(default_factory=dict)  # tabular part → row properties
    # Registers: "accounting", "accumulation" (Balance) or "information" (SliceLast); the virtual table's
    # properties (the `_Balance` ComplexType) for Balance.
    register: str = ""
    balance: list[P] = field(default_factory=list)


def _product(vat: P) -> Type:
    return Type(
        [
            *_CATALOG,
            ("Parent_Key", "Edm.Guid"),
            ("IsFolder", "Edm.Boolean"),
            ("Артикул", "Edm.String"),
            ("НаименованиеПолное", "Edm.String"),
            ("ЕдиницаИзмерения_Key", "Edm.Guid"),
            vat,
            ("Услуга", "Edm.Boolean"),
            ("Комментарий", "Edm.String"),
        ]
    )


_UNITS = Type([*_CATALOG, ("НаименованиеПолное", "Edm.String"), ("МеждународноеСокращение", "Edm.String")])
_CONTRACTS = Type([*_CATALOG, ("Owner_Key", "Edm.Guid"), ("ВидДоговора", "Edm.String")])
_CONTRACT_TERMS: list[P] = [
    ("Организация_Key", "Edm.Guid"),
    ("Номер", "Edm.String"),
    ("Дата", "Edm.DateTime"),
    ("ВалютаВзаиморасчетов_Key", "Edm.Guid"),
    ("Комментарий", "Edm.String"),
]
# БП 3.0: subordinate to the counterparty (Owner), with folders; УТ 11: a plain catalogue naming the counterparty
# and its partner, with a status and a term.
_BP_CONTRACTS = Type(
    [
        *_CATALOG,
        ("Owner_Key", "Edm.Guid"),
        ("Parent_Key", "Edm.Guid"),
        ("IsFolder", "Edm.Boolean"),
        ("ВидДоговора", "Edm.String"),
        *_CONTRACT_TERMS,
        ("СрокДействия", "Edm.DateTime"),
    ]
)
_UT_CONTRACTS = Type(
    [
        *_CATALOG,
        ("Контрагент_Key", "Edm.Guid"),
        ("Партнер_Key", "Edm.Guid"),
        ("ТипДоговора", "Edm.String"),
        ("Статус", "Edm.String"),
        *_CONTRACT_TERMS,
        ("ДатаНачалаДействия", "Edm.DateTime"),
        ("ДатаОкончанияДействия", "Edm.DateTime"),
    ]
)
_BANK_ACCOUNTS = Type(
    [
        *_CATALOG,
        ("Owner", "Edm.String"),
        ("Owner_Type", "Edm.String"),
        ("НомерСчета", "Edm.String"),
        ("Банк_Key", "Edm.Guid"),
    ]
)
_BANKS = Type([*_CATALOG, ("КоррСчет", "Edm.String"), ("Город", "Edm.String")])
_UT_BANK_ACCOUNTS = Type([*_CATALOG, ("Owner_Key", "Edm.Guid"), ("НомерСчета", "Edm.String"), ("Банк_Key", "Edm.Guid")])
_CONTACTS = Type(
    [
        *_CATALOG,
        ("ОбъектВладелец", "Edm.String"),
        ("ОбъектВладелец_Type", "Edm.String"),
        ("Фамилия", "Edm.String"),
        ("Имя", "Edm.String"),
        ("Отчество", "Edm.String"),
        ("ДолжностьПоВизитке", "Edm.String"),
        ("ДатаРождения", "Edm.DateTime"),
    ]
)
_ORGANISATIONS = Type([*_CATALOG, ("НаименованиеПолное", "Edm.String"), ("ИНН", "Edm.String"), ("КПП", "Edm.String")])
_CURRENCIES = Type([*_CATALOG, ("НаименованиеПолное", "Edm.String")])
_VAT_RATES = Type([*_CATALOG, ("Ставка", "Edm.Double")])
_ACCOUNTS = Type([*_CATALOG])


def _price_kinds() -> Type:
    return Type([*_CATALOG, ("ЦенаВключаетНДС", "Edm.Boolean"), ("ВалютаЦены_Key", "Edm.Guid")])


def _prices(kind: str, extra: list[P]) -> Type:
    keys = ["Period", kind, "Номенклатура_Key", *(name for name, _edm in extra)]
    props = [("Period", "Edm.DateTime"), (kind, "Edm.Guid"), ("Номенклатура_Key", "Edm.Guid"), *extra]
    return Type([*props, ("Цена", "Edm.Double")], keys=keys, register="information")


_BP_INVOICE = Type(
    [
        *_DOCUMENT,
        ("Организация_Key", "Edm.Guid"),
        ("Контрагент_Key", "Edm.Guid"),
        ("ДоговорКонтрагента_Key", "Edm.Guid"),
        ("ВалютаДокумента_Key", "Edm.Guid"),
        ("СуммаВключаетНДС", "Edm.Boolean"),
        ("СуммаДокумента", "Edm.Double"),
        ("Комментарий", "Edm.String"),
    ],
    rows={"Товары": _BP_GOODS_ROW},
)
_UT_ORDER = Type(
    [
        *_DOCUMENT,
        ("Организация_Key", "Edm.Guid"),
        ("Партнер_Key", "Edm.Guid"),
        ("Контрагент_Key", "Edm.Guid"),
        ("Договор_Key", "Edm.Guid"),
        ("Валюта_Key", "Edm.Guid"),
        ("ЦенаВключаетНДС", "Edm.Boolean"),
        ("СуммаДокумента", "Edm.Double"),
        ("Комментарий", "Edm.String"),
    ],
    rows={"Товары": _UT_GOODS_ROW},
)


def _invoice(rows: str = "Товары") -> Type:
    return Type(
        [*_DOCUMENT, ("Контрагент_Key", "Edm.Guid"), ("СуммаДокумента", "Edm.Double"), ("Комментарий", "Edm.String")],
        rows={rows: _UT_GOODS_ROW},
    )


_BP_RECEIPT = Type(
    [
        *_DOCUMENT,
        ("ВидОперации", "Edm.String"),
        ("Организация_Key", "Edm.Guid"),
        ("Контрагент", "Edm.String"),
        ("Контрагент_Type", "Edm.String"),
        ("ВалютаДокумента_Key", "Edm.Guid"),
        ("СуммаДокумента", "Edm.Double"),
        ("НазначениеПлатежа", "Edm.String"),
        ("НомерВходящегоДокумента", "Edm.String"),
        ("ДатаВходящегоДокумента", "Edm.DateTime"),
    ],
    rows={
        "РасшифровкаПлатежа": [
            ("LineNumber", "Edm.Int64"),
            ("ДоговорКонтрагента_Key", "Edm.Guid"),
            ("СчетНаОплату_Key", "Edm.Guid"),
            ("СуммаПлатежа", "Edm.Double"),
        ]
    },
)
_UT_RECEIPT = Type(
    [
        *_DOCUMENT,
        ("ХозяйственнаяОперация", "Edm.String"),
        ("Организация_Key", "Edm.Guid"),
        ("Контрагент_Key", "Edm.Guid"),
        ("Валюта_Key", "Edm.Guid"),
        ("СуммаДокумента", "Edm.Double"),
        ("НазначениеПлатежа", "Edm.String"),
        ("НомерВходящегоДокумента", "Edm.String"),
        ("ДатаВходящегоДокумента", "Edm.DateTime"),
    ],
    rows={
        "РасшифровкаПлатежа": [
            ("LineNumber", "Edm.Int64"),
            ("Партнер_Key", "Edm.Guid"),
            ("ОснованиеПлатежа", "Edm.String"),
            ("ОснованиеПлатежа_Type", "Edm.String"),
            ("Сумма", "Edm.Double"),
        ]
    },
)
_PAYMENT = Type(
    [*_DOCUMENT, ("Контрагент", "Edm.String"), ("Контрагент_Type", "Edm.String"), ("СуммаДокумента", "Edm.Double")]
)
# Records of a register subordinate to a recorder; the Balance virtual table sums them.
_LEDGER = Type(
    [
        ("Recorder_Key", "Edm.Guid"),
        ("LineNumber", "Edm.Int64"),
        ("Period", "Edm.DateTime"),
        ("AccountDr_Key", "Edm.Guid"),
        ("AccountCr_Key", "Edm.Guid"),
        ("ExtDimensionDr1", "Edm.String"),
        ("ExtDimensionDr1_Type", "Edm.String"),
        ("ExtDimensionCr1", "Edm.String"),
        ("ExtDimensionCr1_Type", "Edm.String"),
        ("Сумма", "Edm.Double"),
    ],
    keys=["Recorder_Key", "LineNumber"],
    register="accounting",
    balance=[
        ("Account_Key", "Edm.Guid"),
        ("ExtDimension1", "Edm.String"),
        ("ExtDimension1_Type", "Edm.String"),
        ("СуммаBalance", "Edm.Double"),
        ("СуммаBalanceDr", "Edm.Double"),
        ("СуммаBalanceCr", "Edm.Double"),
    ],
)
_CUSTOMER_SETTLEMENTS = Type(
    [
        ("Recorder_Key", "Edm.Guid"),
        ("LineNumber", "Edm.Int64"),
        ("Period", "Edm.DateTime"),
        ("RecordType", "Edm.String"),
        ("АналитикаУчетаПоПартнерам_Key", "Edm.Guid"),
        ("Валюта_Key", "Edm.Guid"),
        ("Сумма", "Edm.Double"),
    ],
    keys=["Recorder_Key", "LineNumber"],
    register="accumulation",
    balance=[("АналитикаУчетаПоПартнерам_Key", "Edm.Guid"), ("Валюта_Key", "Edm.Guid"), ("СуммаBalance", "Edm.Double")],
)
_PARTNER_KEYS = Type(
    [
        ("Ref_Key", "Edm.Guid"),
        ("DataVersion", "Edm.String"),
        ("Партнер_Key", "Edm.Guid"),
        ("Контрагент_Key", "Edm.Guid"),
        ("Организация_Key", "Edm.Guid"),
    ]
)

CONFIGURATIONS: dict[str, dict[str, Type]] = {
    "bp30": {
        "Catalog_Номенклатура": _product(("СтавкаНДС", "Edm.String")),
        "Catalog_КлассификаторЕдиницИзмерения": _UNITS,
        "Catalog_ДоговорыКонтрагентов": _BP_CONTRACTS,
        "Catalog_БанковскиеСчета": _BANK_ACCOUNTS,
        "Catalog_Банки": _BANKS,
        "Catalog_КонтактныеЛица": _CONTACTS,
        "Catalog_Организации": _ORGANISATIONS,
        "Catalog_Валюты": _CURRENCIES,
        "Catalog_ТипыЦенНоменклатуры": _price_kinds(),
        "ChartOfAccounts_Хозрасчетный": _ACCOUNTS,
        "InformationRegister_ЦеныНоменклатуры": _prices("ТипЦен_Key", []),
        "Document_СчетНаОплатуПокупателю": _BP_INVOICE,
        "Document_ПоступлениеНаРасчетныйСчет": _BP_RECEIPT,
        "AccountingRegister_Хозрасчетный": _LEDGER,
    },
    "ut11": {
        "Catalog_Партнеры": Type([*_CATALOG]),
        "Catalog_Номенклатура": _product(("СтавкаНДС_Key", "Edm.Guid")),
        "Catalog_УпаковкиЕдиницыИзмерения": _UNITS,
        "Catalog_ДоговорыКонтрагентов": _UT_CONTRACTS,
        "Catalog_БанковскиеСчетаКонтрагентов": _UT_BANK_ACCOUNTS,
        "Catalog_КлассификаторБанков": _BANKS,
        "Catalog_Организации": _ORGANISATIONS,
        "Catalog_Валюты": _CURRENCIES,
        "Catalog_СтавкиНДС": _VAT_RATES,
        "Catalog_ВидыЦен": _price_kinds(),
        "Catalog_КлючиАналитикиУчетаПоПартнерам": _PARTNER_KEYS,
        "InformationRegister_ЦеныНоменклатуры": _prices("ВидЦены_Key", [("Характеристика_Key", "Edm.Guid")]),
        "Document_ЗаказКлиента": _UT_ORDER,
        "Document_СчетНаОплатуКлиенту": _invoice(),
        "Document_ПоступлениеБезналичныхДенежныхСредств": _UT_RECEIPT,
        "AccumulationRegister_РасчетыСКлиентами": _CUSTOMER_SETTLEMENTS,
    },
    "unf": {
        "Catalog_Номенклатура": _product(("СтавкаНДС_Key", "Edm.Guid")),
        "Catalog_ДоговорыКонтрагентов": _CONTRACTS,
        "Document_ЗаказПокупателя": _invoice("Запасы"),
        "Document_ПоступлениеНаСчет": _PAYMENT,
    },
}
CONFIGURATIONS["erp"] = {**CONFIGURATIONS["ut11"], "AccountingRegister_Хозрасчетный": _LEDGER}

ENUMS = {
    "ЮридическоеФизическоеЛицо": ["ЮридическоеЛицо", "ФизическоеЛицо"],
    "СтавкиНДС": ["БезНДС", "НДС0", "НДС10", "НДС20", "НДС22", "НДС10_110", "НДС20_120"],
    "ВидыОперацийПоступлениеДенежныхСредств": ["ОплатаПокупателя", "ВозвратОтПоставщика", "ПрочееПоступление"],
    "ХозяйственныеОперации": ["ПоступлениеОплатыОтКлиента", "ВозвратДенежныхСредствОтПоставщика"],
}


def excerpt_path() -> Path:
    from tests.fixtures_path import fixtures_dir

    return fixtures_dir("odata", "Romandredan-odata1c-gate", "ut-real.excerpt.edmx")


def _property(parent: etree._Element, name: str, edm: str, nullable: bool = True) -> None:
    etree.SubElement(parent, f"{{{EDM}}}Property", Name=name, Type=edm, Nullable="true" if nullable else "false")


def _function(container: etree._Element, name: str, binding: str, returns: str, params: list[P]) -> None:
    function = etree.SubElement(
        container,
        f"{{{EDM}}}FunctionImport",
        Name=name,
        IsBindable="true",
        IsSideEffecting="false",
        ReturnType=f"Collection(StandardODATA.{returns})",
    )
    etree.SubElement(function, f"{{{EDM}}}Parameter", Name="bindingParameter", Type=f"StandardODATA.{binding}")
    for param, edm in params:
        etree.SubElement(function, f"{{{EDM}}}Parameter", Name=param, Type=edm)


def _virtual_tables(schema: etree._Element, container: etree._Element, name: str, spec: Type) -> None:
    """Bound functions as 1C declares them: Balance returns a `<register>_Balance` ComplexType, SliceLast the
    register's own type."""
    condition = [("Condition", "Edm.String"), ("Period", "Edm.DateTime")]
    if spec.register == "information":
        _function(container, "SliceLast", name, name, condition)
        _function(container, "SliceFirst", name, name, condition)
    elif spec.register:
        balance = etree.Element(f"{{{EDM}}}ComplexType", Name=f"{name}_Balance")
        for prop, edm in spec.balance:
            _property(balance, prop, edm)
        schema.insert(0, balance)
        params = [*condition, ("Dimensions", "Edm.String")]
        if spec.register == "accounting":
            params += [("AccountCondition", "Edm.String"), ("ExtraDimensions", "Edm.String")]
        _function(container, "Balance", name, f"{name}_Balance", params)


def build_metadata(configuration: str, *, omit: Iterable[str] = ()) -> tuple[bytes, dict[str, Type]]:
    """The `$metadata` document and the entity types by set name. `omit` drops sets (not published)."""
    root = etree.parse(str(excerpt_path())).getroot()
    schema = root.find(f".//{{{EDM}}}Schema")
    container = root.find(f".//{{{EDM}}}EntityContainer")
    assert schema is not None and container is not None
    types: dict[str, Type] = {}
    for entity in schema.findall(f"{{{EDM}}}EntityType"):
        name = entity.get("Name", "")
        keys = [ref.get("Name", "") for ref in entity.findall(f"{{{EDM}}}Key/{{{EDM}}}PropertyRef")]
        props = [
            (p.get("Name", ""), p.get("Type", ""))
            for p in entity.findall(f"{{{EDM}}}Property")
            if not p.get("Type", "").startswith("Collection(")
        ]
        rows: dict[str, list[P]] = {
            p.get("Name", ""): []
            for p in entity.findall(f"{{{EDM}}}Property")
            if p.get("Type", "").startswith("Collection(")
        }
        types[name] = Type(props, keys=keys, rows=rows)
    first_set = container.find(f"{{{EDM}}}EntitySet")
    at = list(container).index(first_set) if first_set is not None else 0
    for name, spec in CONFIGURATIONS[configuration].items():
        entity = etree.Element(f"{{{EDM}}}EntityType", Name=name)
        key = etree.SubElement(entity, f"{{{EDM}}}Key")
        for k in spec.keys:
            etree.SubElement(key, f"{{{EDM}}}PropertyRef", Name=k)
        for prop, edm in spec.properties:
            _property(entity, prop, edm, nullable=prop not in spec.keys)
        for part, row in spec.rows.items():
            row_type = etree.Element(f"{{{EDM}}}ComplexType", Name=f"{name}_{part}_RowType")
            for prop, edm in row:
                _property(row_type, prop, edm)
            schema.insert(0, row_type)
            _property(entity, part, f"Collection(StandardODATA.{name}_{part}_RowType)")
            row_set = etree.Element(f"{{{EDM}}}EntityType", Name=f"{name}_{part}")
            row_key = etree.SubElement(row_set, f"{{{EDM}}}Key")
            for k in ("Ref_Key", "LineNumber"):
                etree.SubElement(row_key, f"{{{EDM}}}PropertyRef", Name=k)
            for prop, edm in [*_ROWS, *row[1:]]:
                _property(row_set, prop, edm, nullable=prop not in ("Ref_Key", "LineNumber"))
            schema.insert(schema.index(container), row_set)
            types[f"{name}_{part}"] = Type([*_ROWS, *row[1:]], keys=["Ref_Key", "LineNumber"])
        schema.insert(schema.index(container), entity)
        types[name] = spec
        _virtual_tables(schema, container, name, spec)
        for set_name in (name, *(f"{name}_{part}" for part in spec.rows)):
            element = etree.Element(f"{{{EDM}}}EntitySet", Name=set_name, EntityType=f"StandardODATA.{set_name}")
            container.insert(at, element)
            at += 1
    for enum, members in ENUMS.items():
        element = etree.Element(f"{{{EDM}}}EnumType", Name=enum, UnderlyingType="Edm.Int32")
        for i, member in enumerate(members):
            etree.SubElement(element, f"{{{EDM}}}Member", Name=member, Value=str(i))
        schema.insert(0, element)
    for entity_set in list(container.findall(f"{{{EDM}}}EntitySet")):
        if entity_set.get("Name") in set(omit):
            container.remove(entity_set)
    published = {s.get("Name", "") for s in container.findall(f"{{{EDM}}}EntitySet")}
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return body, {name: spec for name, spec in types.items() if name in published}
