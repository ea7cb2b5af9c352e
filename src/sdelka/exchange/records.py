"""Canonical exchange records: what every reader yields and every writer consumes.

Readers (CommerceML, OData, client-bank, EnterpriseData) turn 1C's data into these plain, immutable records; the
apply engine maps them onto domain models. They carry 1C's ids as opaque strings (GUIDs, ``guid#guid``, ``#guid``,
integers, ``1#admin# admin``) and never a database id.

Conventions:
* Money and quantities are :class:`~decimal.Decimal`, never float.
* Datetimes are timezone-aware (1C sends local time without an offset; readers attach the connection's zone).
* ``""`` means "1C sent the element empty" (clear the field in a full package); ``None`` means "not sent"
  (leave the stored value alone). Readers keep that distinction where the format has it.
* Mapping fields (``dict``) must not be mutated by consumers; the dataclasses are frozen but dicts are not.
* A problem with one record is a :class:`RecordError` yielded in the stream in place of that record, so the apply
  engine logs it (1C id, field, value) and goes on with the rest of the file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sdelka.core.vat import VatRate


class PackageKind(StrEnum):
    """What one CommerceML file holds, told by content (root children), never by file name."""

    IMPORT = "import"  # Классификатор and/or Каталог with Товары (import.xml, goods.xml, import___*.xml)
    CLASSIFIER = "classifier"  # Классификатор (or a Каталог shell) without Товары: groups/properties/units only
    OFFERS = "offers"  # ПакетПредложений with full Предложения (offers.xml, offers___*.xml)
    PRICES = "prices"  # ПакетПредложений whose Предложения hold only Ид + Цены (prices___*.xml, prices.xml)
    RESTS = "rests"  # ПакетПредложений whose Предложения hold only Ид + Остатки (rests___*.xml, rests.xml)
    GROUPS = "groups"  # 3.1 groups.xml: Классификатор with Группы only
    PROPERTIES = "properties"  # 3.1 propertiesGoods_*/propertiesOffers_*: Классификатор with Свойства only
    UNITS = "units"  # 3.1 units.xml: Классификатор with ЕдиницыИзмерения only
    STORAGES = "storages"  # 3.1 storages.xml: Классификатор with Склады only
    PRICE_LISTS = "pricelists"  # 3.1 priceLists.xml: Классификатор with ТипыЦен only
    PARTIES = "parties"  # Контрагенты at the root (3.1 contragents.xml)
    DOCUMENTS = "documents"  # Документ / Контейнер: orders, payments, shipments
    EMPTY = "empty"  # a valid КоммерческаяИнформация with nothing we read


@dataclass(frozen=True, slots=True)
class Package:
    """Summary of one file, read from its head before any record.

    kind: what the file holds (see :class:`PackageKind`).
    schema_version: ``ВерсияСхемы`` as written ("2.07", "3.1"), "" when absent.
    namespace: the root's XML namespace ("urn:1C.ru:commerceml_2", …) or "" when none.
    generated_at: ``ДатаФормирования``, aware; None when absent or unreadable.
    changes_only: ``СодержитТолькоИзменения`` of the catalogue/offers/classifier (True = delta, absence of an
        object means "unchanged"; False = full snapshot); None when the file does not say.
    classifier_id: ``Классификатор/Ид`` or ``ИдКлассификатора``; "" when absent.
    catalog_id: ``Каталог/Ид`` or ``ИдКаталога`` of an offers package; "" when absent.
    offers_package_id: ``ПакетПредложений/Ид``; "" when absent.
    name: the catalogue's or offers package's ``Наименование``; "" when absent.
    """

    kind: PackageKind
    schema_version: str = ""
    namespace: str = ""
    generated_at: datetime | None = None
    changes_only: bool | None = None
    classifier_id: str = ""
    catalog_id: str = ""
    offers_package_id: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True)
class RecordError:
    """One record that could not be read; yielded in the stream instead of the record.

    kind: the record kind that failed ("product", "price", "stock", "order", …).
    external_id: 1C's id of the object at fault ("" when even the id is missing).
    field: the CommerceML element at fault (e.g. "ЦенаЗаЕдиницу").
    value: the raw text found there (cut to 200 characters).
    message: a sentence a 1C user can act on (English msgid; the caller translates).
    line: source line of the element, when known.
    level: "error" = the record (or that one price/stock line) was skipped; "warning" = the record was yielded
        with this field left out (e.g. an unknown VAT rate becomes ``vat_rate=None``).
    """

    kind: str
    external_id: str
    field: str
    value: str
    message: str
    line: int | None = None
    level: str = "error"


class RecordProblem(ValueError):
    """Raised inside a reader for a bad field; converted to a :class:`RecordError` by the record loop."""

    def __init__(self, field: str, value: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.value = value[:200]
        self.message = message


@dataclass(frozen=True, slots=True)
class Group:
    """A product group (folder). The tree comes from nesting; readers flatten it, parents first.

    id: 1C id. name: ``Наименование``. parent_id: the enclosing group's id, None at the top.
    deleted: ``ПометкаУдаления``. version: ``НомерВерсии`` (opaque), "" when absent.
    """

    id: str
    name: str
    parent_id: str | None = None
    deleted: bool = False
    version: str = ""


@dataclass(frozen=True, slots=True)
class Property:
    """A product/offer property (Свойство).

    value_type: ``ТипЗначений`` as written ("Справочник", "Строка", "Число", "Булево", "Дата"), "" when absent.
    options: reference values ``ИдЗначения → Значение`` (ВариантыЗначений/Справочник or /Вариант).
    for_products / for_offers: ``ДляТоваров`` / ``ДляПредложений``; None when not said.
    deleted: ``ПометкаУдаления``.
    """

    id: str
    name: str
    value_type: str = ""
    options: dict[str, str] = field(default_factory=dict)
    for_products: bool | None = None
    for_offers: bool | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of measure (ЕдиницаИзмерения, БазоваяЕдиница).

    code: ОКЕИ code ("796"), "" when 1C sent none. id: ``Ид`` in 3.1 unit lists, else "".
    name: short name ("шт"). full_name: ``НаименованиеПолное`` ("Штука").
    international: ``МеждународноеСокращение`` ("PCE").
    """

    code: str
    name: str = ""
    full_name: str = ""
    international: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True)
class PriceType:
    """A price type (ТипЦены).

    currency: ISO-4217 letter code after mapping ("руб" → "RUB"); "" when absent.
    vat_included: ``Налог/УчтеноВСумме``; None when the price type does not say.
    """

    id: str
    name: str
    currency: str = ""
    vat_included: bool | None = None


@dataclass(frozen=True, slots=True)
class Warehouse:
    """A warehouse (Склад). address: ``Адрес/Представление``, "" when absent."""

    id: str
    name: str
    address: str = ""
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Product:
    """A product or service from ``Каталог/Товары/Товар``.

    id: 1C id (a plain GUID; "guid#guid" ids never become products).
    article: ``Артикул``. barcode: ``Штрихкод``/``ШтрихКод``. name: ``Наименование``.
    full_name: requisite «Полное наименование». description: ``Описание`` (HTML as text).
    group_ids: ``Группы/Ид``. unit: ``БазоваяЕдиница`` (None when absent).
    vat_rate: from ``СтавкиНалогов`` or the «СтавкаНДС» requisite, mapped to VatRate; None when not sent.
    kind: "goods" or "service" (requisites ТипНоменклатуры/ВидНоменклатуры = Услуга → service).
    manufacturer: ``Изготовитель/Наименование``. country: ``Страна``.
    images: ``Картинка`` paths exactly as given (relative to the upload folder).
    property_values: ``ЗначенияСвойств``: property id → value id (reference properties) or literal; "" = cleared.
    requisites: ``ЗначенияРеквизитов`` name → value (last one wins).
    deleted: ``ПометкаУдаления=true`` or ``Статус=Удален``. version: ``НомерВерсии``.
    """

    id: str
    name: str
    article: str = ""
    barcode: str = ""
    full_name: str = ""
    description: str | None = None
    group_ids: tuple[str, ...] = ()
    unit: Unit | None = None
    vat_rate: VatRate | None = None
    kind: str = "goods"
    manufacturer: str = ""
    country: str = ""
    images: tuple[str, ...] = ()
    property_values: dict[str, str] = field(default_factory=dict)
    requisites: dict[str, str] = field(default_factory=dict)
    deleted: bool = False
    version: str = ""


@dataclass(frozen=True, slots=True)
class Variant:
    """A characteristic of a product (offer with a "guid#guid" id).

    id: the full 1C id "productguid#variantguid". product_id: the part before "#".
    characteristics: ``ХарактеристикиТовара``: name → value ("Размер" → "40").
    property_values: offer-level ``ЗначенияСвойств``. unit: ``БазоваяЕдиница`` of the offer, when sent.
    """

    id: str
    product_id: str
    name: str = ""
    characteristics: dict[str, str] = field(default_factory=dict)
    article: str = ""
    barcode: str = ""
    property_values: dict[str, str] = field(default_factory=dict)
    unit: Unit | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Price:
    """One price of a product or variant for one price type.

    variant_id: the full "guid#guid" id for a variant, None for the product itself.
    value: ``ЦенаЗаЕдиницу``. currency: mapped ISO code ("" = the price type's).
    unit: ``Единица`` as written ("шт", "796"), "" when absent. coefficient: ``Коэффициент`` (default 1).
    """

    product_id: str
    variant_id: str | None
    price_type_id: str
    value: Decimal
    currency: str = ""
    unit: str = ""
    coefficient: Decimal = Decimal(1)


@dataclass(frozen=True, slots=True)
class Stock:
    """Quantity in stock of a product or variant. warehouse_id None = total over all warehouses."""

    product_id: str
    variant_id: str | None
    warehouse_id: str | None
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact of a party: kind as 1C writes it ("Телефон рабочий", "Электронная почта", "Почта"), value."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class BankAccount:
    """A settlement account of a party (РасчетныйСчет)."""

    number: str
    bank_name: str = ""
    bik: str = ""
    correspondent_account: str = ""


@dataclass(frozen=True, slots=True)
class Party:
    """A counterparty (Контрагент) of an order or of a Контрагенты file.

    name: ``Наименование``. full_name: ``ПолноеНаименование`` or ``ОфициальноеНаименование``.
    inn / kpp / okpo: as written (not validated here). address: ``Представление`` of the legal/registration
    address (or ``Адрес``). role: ``Роль`` ("Покупатель", "Продавец"). last/first/middle_name: for persons.
    contact_persons: names of ``Представители`` (1C's and Bitrix's shapes).
    """

    id: str
    name: str
    full_name: str = ""
    inn: str = ""
    kpp: str = ""
    okpo: str = ""
    address: str = ""
    contacts: tuple[Contact, ...] = ()
    role: str = ""
    last_name: str = ""
    first_name: str = ""
    middle_name: str = ""
    bank_accounts: tuple[BankAccount, ...] = ()
    contact_persons: tuple[str, ...] = ()
    deleted: bool = False
    version: str = ""


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One line of a document's ``Товары``.

    product_id: the 1C id as sent (plain, or the product part of "guid#guid"); variant_id: full id or None.
    price: ``ЦенаЗаЕдиницу``; quantity: ``Количество``; amount: ``Сумма`` (after discounts, as in the file).
    discount: sum of ``Скидки/Скидка/Сумма``. vat_rate: mapped from ``СтавкиНалогов``.
    vat_amount: the line's ``Налоги/Налог/Сумма``.
    kind: "goods" or "service" (ORDER_DELIVERY and ТипНоменклатуры=Услуга are services).
    """

    product_id: str
    name: str
    quantity: Decimal
    price: Decimal
    amount: Decimal
    variant_id: str | None = None
    article: str = ""
    unit: Unit | None = None
    discount: Decimal = Decimal(0)
    vat_rate: VatRate | None = None
    vat_amount: Decimal | None = None
    kind: str = "goods"
    requisites: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OrderStatus:
    """1C's answer about an order, from the document's ``ЗначенияРеквизитов`` (None = not said).

    posted: «Проведен». cancelled: «Отменен» or the document's ``ПометкаУдаления``.
    paid: «Заказ оплачен» / «Оплачен» or a «Дата оплаты по 1С». payment_number/date: «Номер/Дата оплаты по 1С».
    shipped: a «Дата отгрузки по 1С» or «Отгружен». shipment_number/date: «Номер/Дата отгрузки по 1С».
    status_id: «Статуса заказа ИД». status_name: «Статус заказа». final: «Финальный статус».
    Empty dates ("T", "", 0001-01-01) are None.
    """

    posted: bool | None = None
    cancelled: bool | None = None
    paid: bool | None = None
    payment_number: str = ""
    payment_date: datetime | None = None
    shipped: bool | None = None
    shipment_number: str = ""
    shipment_date: datetime | None = None
    status_id: str = ""
    status_name: str = ""
    final: bool | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    """A payment: a 2.10 ``ПодчиненныйДокумент`` / payment ``Документ`` (ХозОперация = Выплата…/Эквайринг…),
    or a 2.09 ``Оплаты/Оплата``.

    amount: ``Сумма``/``СуммаОплаты``; None when 1C sent no sum ("paid" then means paid in full).
    order_id / order_number: the order it belongs to (parent document's Ид / ``Основание``).
    """

    id: str
    number: str = ""
    date: datetime | None = None
    amount: Decimal | None = None
    currency: str = ""
    operation: str = ""
    order_id: str = ""
    order_number: str = ""
    paid: bool | None = None
    cancelled: bool | None = None
    requisites: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Shipment:
    """A 2.10 shipment ``ПодчиненныйДокумент`` of an order (ХозОперация «Отпуск товара» and the like).

    number: ``Номер1С``, else ``Номер``. date: ``Дата`` + ``Время``. shipped: «Отгружен» (None = not said).
    cancelled: «Отменен» or ``ПометкаУдаления``.
    """

    id: str
    number: str = ""
    date: datetime | None = None
    shipped: bool | None = None
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Order:
    """A ``Документ`` with ХозОперация «Заказ товара» (either direction) or any other top-level document.

    id: ``Ид`` (the id the site sent, or 1C's own for orders made in 1C). number: ``Номер``; date: ``Дата``+``Время``.
    number_1c / date_1c: ``Номер1С`` / ``Дата1С``. version: ``НомерВерсии``. operation: ``ХозОперация``.
    role: ``Роль``. currency: mapped ISO code. rate: ``Курс``. total: ``Сумма``.
    vat_included: ``Налоги/Налог/УчтеноВСумме``; vat_total: its ``Сумма``. parties: ``Контрагенты``.
    requisites: ``ЗначенияРеквизитов`` name → value (wrapper optional). status: 1C's answer, parsed from them.
    payments: subordinate payment documents. shipments: subordinate shipment documents. base_number: ``Основание``.
    deleted: ``ПометкаУдаления``.
    """

    id: str
    number: str = ""
    date: datetime | None = None
    number_1c: str = ""
    date_1c: dt.date | None = None
    version: str = ""
    operation: str = ""
    role: str = ""
    currency: str = ""
    rate: Decimal | None = None
    total: Decimal | None = None
    vat_included: bool | None = None
    vat_total: Decimal | None = None
    comment: str = ""
    parties: tuple[Party, ...] = ()
    lines: tuple[OrderLine, ...] = ()
    requisites: dict[str, str] = field(default_factory=dict)
    status: OrderStatus = field(default_factory=OrderStatus)
    payments: tuple[Payment, ...] = ()
    base_number: str = ""
    deleted: bool = False
    shipments: tuple[Shipment, ...] = ()


@dataclass(frozen=True, slots=True)
class RawElement:
    """A catalogue product (``Товар``) or offer (``Предложение``) not yet turned into records.

    A reader asked for raw elements yields these instead, so the apply engine can compare ``digest`` with what it
    stored the last time and build records (``records()``) only for what changed.
    kind: "product" or "offer". external_id: the element's ``Ид`` as written.
    digest: sha1 of the element's bytes as serialised from the parsed tree (same file → same bytes).
    data: those bytes (re-parsed by ``records()``). line: the element's line in the file, for errors.
    images: ``Картинка`` paths (their files are part of what the product means).
    """

    kind: str
    external_id: str
    digest: str
    data: bytes
    line: int | None
    images: tuple[str, ...]
    expand: Callable[[RawElement], Iterator[Record]]

    def records(self) -> Iterator[Record]:
        return self.expand(self)


Record = (
    Package
    | Group
    | Property
    | Unit
    | PriceType
    | Warehouse
    | Product
    | Variant
    | Price
    | Stock
    | Party
    | Order
    | Payment
    | RecordError
    | RawElement
)
"""Anything a reader yields."""
