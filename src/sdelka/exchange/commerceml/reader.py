"""Streaming CommerceML 2.03–3.1 reader: files in, canonical records out.

Usage (the apply engine)::

    for record in read_package(path):          # Package first, then records in file order
        if isinstance(record, RecordError): log it, go on
        ...

The reader never builds the whole tree: lxml's iterparse reports only the elements that make records (filtered
in C), each is turned into records and then freed with the siblings before it, so memory stays bounded by the
largest single record (a product, an offer, a document) plus the group tree. Tag names are matched by local
name, so files with or without a namespace read the same. Everything is parsed through :mod:`xmlsafe`.

Record order: groups (parents before children), properties, units, price types and warehouses as they appear
in the classifier / offers header; then products (a "guid#guid" product in an old import yields its base
Product once, then a Variant), then for each offer: Variant (full offers only), its Prices, its Stocks;
documents yield Order (payments inside) or Payment; a Контрагенты file yields Party.
A bad value yields a :class:`RecordError` in place of the record (or of the one price/stock at fault).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import partial
from typing import IO, Any, TypeAlias, cast

from lxml import etree

from sdelka.core.vat import VatRate
from sdelka.exchange.commerceml.detect import ROOT, detect
from sdelka.exchange.commerceml.reader_values import (
    MOSCOW,
    combine,
    is_shipment,
    parse_bool,
    parse_currency,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_vat,
    split_variant_id,
)
from sdelka.exchange.commerceml.spans import PLACEHOLDER, Span, SpanSplitter
from sdelka.exchange.records import (
    BankAccount,
    Contact,
    Group,
    Order,
    OrderLine,
    OrderStatus,
    Party,
    Payment,
    Price,
    PriceType,
    Product,
    Property,
    RawElement,
    Record,
    RecordError,
    RecordProblem,
    Shipment,
    Stock,
    Unit,
    Variant,
    Warehouse,
)
from sdelka.exchange.xmlsafe import (
    HARDENED,
    LOCAL_NAMES,
    Prolog,
    Source,
    inspect_prolog,
    local_name,
    parse_fragment,
    release,
    safe_iterparse,
)

Element: TypeAlias = etree._Element

_TAGS = tuple(
    f"{{*}}{name}"
    for name in (
        "Группы",
        "Свойство",
        "ЕдиницаИзмерения",
        "ТипЦены",
        "Склад",
        "Товар",
        "Предложение",
        "Документ",
        "Контрагент",
    )
)
_OFFER_PACKAGES = frozenset({"ПакетПредложений", "ИзмененияПакетаПредложений"})
_PAYMENT_OPERATIONS = ("выплата", "оплат", "эквайринг", "поступление")
_SERVICE_WORDS = ("услуг",)
_VARIANT_FIELDS = ("Наименование", "ХарактеристикиТовара", "Артикул", "Штрихкод", "ШтрихКод")
_RAW_KINDS = frozenset({"product", "offer"})
# Raw elements are bytes this module serialised from a tree the hardened parser built: no DTD, no entities.
_FRAGMENT_PARSER = etree.XMLParser(**HARDENED)


# --- element helpers -------------------------------------------------------------------------------------------


def _children(element: Element) -> dict[str, Element]:
    """First child per local name."""
    found: dict[str, Element] = {}
    known = LOCAL_NAMES  # local_name's cache, read inline: this runs for every element a record is made of
    for child in element:
        name = known.get(child.tag) or local_name(child)
        if name and name not in found:
            found[name] = child
    return found


def _all(element: Element | None, name: str) -> list[Element]:
    if element is None:
        return []
    return list(element.iterchildren(f"{{*}}{name}"))  # filtered in C, any namespace or none


def _text(element: Element | None) -> str:
    if element is None:
        return ""
    return (element.text or "").strip()


def _opt_text(element: Element | None) -> str | None:
    """None when the element is absent, "" when present but empty."""
    if element is None:
        return None
    return (element.text or "").strip()


def _child_text(element: Element | None, name: str) -> str:
    """Text of the first child named `name` (any namespace). The children are compared by cached local name: a
    `{*}name` filter costs lxml a tag matcher built anew on each call, several times the few children read."""
    if element is None:
        return ""
    known = LOCAL_NAMES
    for child in element:
        if (known.get(child.tag) or local_name(child)) == name:
            return (child.text or "").strip()
    return ""


def _pairs(container: Element | None, item: str, key: str = "Наименование", value: str = "Значение") -> dict[str, str]:
    """``<Контейнер><item><key/><value/></item>…`` → dict (first value per key wins for duplicates of the value).
    Each item's children are walked once for both (the first of each name counts, as in `_child_text`)."""
    result: dict[str, str] = {}
    known = LOCAL_NAMES
    for element in _all(container, item):
        name: str | None = None
        text: str | None = None
        for child in element:
            tag = known.get(child.tag) or local_name(child)
            if tag == key and name is None:
                name = (child.text or "").strip()
            elif tag == value and text is None:
                text = (child.text or "").strip()
        if name:
            result[name] = text or ""
    return result


EMPTY_REF = "00000000-0000-0000-0000-000000000000"


def _property_values(kids: dict[str, Element]) -> dict[str, str]:
    """``ЗначенияСвойств``: property id → value id or literal; 1C's empty reference becomes "" (cleared)."""
    values = _pairs(kids.get("ЗначенияСвойств"), "ЗначенияСвойства", key="Ид")
    return {key: "" if value == EMPTY_REF else value for key, value in values.items()}


def _deleted(kids: dict[str, Element], element: Element | None = None) -> bool:
    """ПометкаУдаления=true, or the old «Удален» status as a child element or a ``Статус`` attribute."""
    if parse_bool(_text(kids.get("ПометкаУдаления"))):
        return True
    status = _text(kids.get("Статус")) or (element.get("Статус") or "" if element is not None else "")
    return status.strip().lower() in ("удален", "удалён")


def _unit(element: Element | None) -> Unit | None:
    """``БазоваяЕдиница`` (2.x attributes, 3.1 code as text) or a document line's ``Единица`` with children."""
    if element is None:
        return None
    kids = _children(element)
    text = _text(element)
    code = (element.get("Код") or _text(kids.get("Код")) or "").strip()
    if not code and text.isdigit():
        code, text = text, ""
    name = text or _text(kids.get("НаименованиеКраткое"))
    full_name = (element.get("НаименованиеПолное") or _text(kids.get("НаименованиеПолное")) or "").strip()
    international = (element.get("МеждународноеСокращение") or _text(kids.get("МеждународноеСокращение")) or "").strip()
    if not (code or name or full_name):
        return None
    return Unit(code=code, name=name, full_name=full_name, international=international, id=_text(kids.get("Ид")))


def _vat(
    kids: dict[str, Element], requisites: dict[str, str], warnings: list[RecordProblem]
) -> tuple[bool, VatRate | None]:
    """VAT from СтавкиНалогов (НДС) or the «СтавкаНДС» requisite; (sent, VatRate|None)."""
    raw: str | None = None
    for rate in _all(kids.get("СтавкиНалогов"), "СтавкаНалога"):
        tax = _child_text(rate, "Наименование").upper()
        if not tax or "НДС" in tax or "VAT" in tax:
            raw = _child_text(rate, "Ставка")
            break
    if raw is None:
        for name in ("СтавкаНДС", "Ставка НДС", "НДС"):
            if name in requisites:
                raw = requisites[name]
                break
    if raw is None:
        return False, None
    try:
        return True, parse_vat(raw, field="СтавкаНалога")
    except RecordProblem as problem:
        warnings.append(problem)
        return True, None


def _kind(requisites: dict[str, str], product_id: str = "") -> str:
    if product_id == "ORDER_DELIVERY":
        return "service"
    for name in ("ТипНоменклатуры", "ВидНоменклатуры"):
        value = requisites.get(name, "").lower()
        if any(word in value for word in _SERVICE_WORDS):
            return "service"
    return "goods"


# --- the record loop -------------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, tz: tzinfo, *, raw: bool = False, line_offset: int = 0) -> None:
        self.tz = tz
        self.raw = raw
        self.line_offset = line_offset  # a re-parsed raw element starts at line 1; this maps it back to the file
        self.base_products: set[str] = set()

    def records(self, source: Source, prolog: Prolog | None) -> Iterator[Record]:
        prolog = prolog or inspect_prolog(source)
        encoding = prolog.encoding
        splitters: list[SpanSplitter] = []

        def split(stream: IO[bytes]) -> IO[bytes]:
            splitters.append(SpanSplitter(stream, encoding))
            return cast(IO[bytes], splitters[-1])

        tags = (*_TAGS, f"{{*}}{PLACEHOLDER}") if self.raw else _TAGS
        for _event, element in safe_iterparse(
            source, events=("end",), tag=tags, prolog=prolog, wrap=split if self.raw else None
        ):
            if splitters and local_name(element) == PLACEHOLDER:
                first_line = element.sourceline or 1
                for span, offset in splitters[0].take(element.get("n")):
                    raw = self._span_raw(span, first_line + offset, encoding)
                    if raw is not None:
                        yield raw
                    else:
                        yield from self._span_parsed(span, first_line + offset, encoding)
                release(element)
                continue
            handler = self._handler(element)
            if handler is None:
                continue
            kind, build = handler
            raw = self._raw(kind, element, element.sourceline) if self.raw and kind in _RAW_KINDS else None
            if raw is not None:
                yield raw
            else:
                yield from self._build(kind, build, element)
            release(element)

    def _build(
        self, kind: str, build: Callable[[Element, list[RecordProblem]], Iterator[Record]], element: Element
    ) -> Iterator[Record]:
        line = self._line_of(element)
        external_id = _child_text(element, "Ид")
        warnings: list[RecordProblem] = []
        try:
            yield from build(element, warnings)
        except RecordProblem as problem:
            yield RecordError(kind, external_id, problem.field, problem.value, problem.message, line)
        for warning in warnings:
            yield RecordError(kind, external_id, warning.field, warning.value, warning.message, line, "warning")

    def _line_of(self, element: Element) -> int | None:
        line = element.sourceline
        return line + self.line_offset if line else None

    # raw elements -------------------------------------------------------------------------------------------

    def _raw(self, kind: str, element: Element, line: int | None) -> RawElement | None:
        """The element as bytes and their digest; None for what is read at once (no Ид: the error is reported
        now; an old "guid#guid" Товар: its base product depends on the goods before it)."""
        external_id = _child_text(element, "Ид")
        if not external_id or (kind == "product" and split_variant_id(external_id)[1] is not None):
            return None
        data = etree.tostring(element, encoding="utf-8", with_tail=False)
        images = tuple(_text(p) for p in element.iterchildren("{*}Картинка") if _text(p)) if kind == "product" else ()
        return RawElement(
            kind=kind,
            external_id=external_id,
            digest=hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            data=data,
            line=line,
            images=images,
            expand=self._expand,
        )

    def _expand(self, raw: RawElement) -> Iterator[Record]:
        element = etree.fromstring(raw.data, _FRAGMENT_PARSER)
        return self._fragment_records(raw.kind, element, raw.line or 1)

    def _fragment_records(self, kind: str, element: Element, line: int) -> Iterator[Record]:
        """Records of an element parsed on its own (its lines count from 1) that starts on `line` of the file."""
        reader = _Reader(self.tz, line_offset=line - 1)
        reader.base_products = self.base_products
        return reader._build(kind, reader._product if kind == "product" else reader._offer, element)

    # elements cut from the file unparsed (see spans.py) --------------------------------------------------------

    def _span_raw(self, span: Span, line: int, encoding: str) -> RawElement | None:
        """A cut product or offer as it is, when its Ид (and pictures) can be read off its bytes; else None."""
        facts = _span_facts(span, encoding)
        if facts is None:
            return None
        external_id, images = facts
        if span.kind == "product" and split_variant_id(external_id)[1] is not None:
            return None  # an old "guid#guid" Товар: its base product depends on the goods before it
        return RawElement(
            kind=span.kind,
            external_id=external_id,
            digest=_span_digest(span, encoding),
            data=span.data,
            line=line,
            images=images,
            expand=partial(self._expand_span, encoding, span.context),
        )

    def _span_parsed(self, span: Span, line: int, encoding: str) -> Iterator[Record]:
        """A cut element parsed now and taken like an element of the tree."""
        element = parse_fragment(span.data, encoding=encoding, context=span.context, line=line)
        raw = self._raw(span.kind, element, line)
        if raw is not None:
            yield raw
        else:
            yield from self._fragment_records(span.kind, element, line)

    def _expand_span(self, encoding: str, context: bytes, raw: RawElement) -> Iterator[Record]:
        element = parse_fragment(raw.data, encoding=encoding, context=context, line=raw.line)
        return self._fragment_records(raw.kind, element, raw.line or 1)

    def _handler(
        self, element: Element
    ) -> tuple[str, Callable[[Element, list[RecordProblem]], Iterator[Record]]] | None:
        name = local_name(element)
        parent = element.getparent()
        parent_name = local_name(parent) if parent is not None else ""
        grand = parent.getparent() if parent is not None else None
        grand_name = local_name(grand) if grand is not None else ""
        if name == "Группы":
            return ("group", self._groups) if parent_name == "Классификатор" else None
        if name == "Свойство" and parent_name == "Свойства":
            return "property", self._property
        if name == "ЕдиницаИзмерения" and parent_name == "ЕдиницыИзмерения":
            return "unit", self._unit_record
        if name == "ТипЦены" and parent_name == "ТипыЦен":
            return "price_type", self._price_type
        if name == "Склад" and parent_name == "Склады" and grand_name in ("Классификатор", *_OFFER_PACKAGES):
            return "warehouse", self._warehouse
        if name == "Товар" and parent_name == "Товары" and grand_name == "Каталог":
            return "product", self._product
        if name == "Предложение" and parent_name == "Предложения":
            return "offer", self._offer
        if name == "Документ" and parent_name in (ROOT, "Контейнер"):
            return "order", self._document
        if name == "Контрагент" and parent_name == "Контрагенты" and grand_name == ROOT:
            return "party", self._party_record
        return None

    # classifier ---------------------------------------------------------------------------------------------

    def _groups(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        yield from self._group_level(element, None)

    def _group_level(self, container: Element, parent_id: str | None) -> Iterator[Record]:
        for group in _all(container, "Группа"):
            kids = _children(group)
            group_id = _text(kids.get("Ид"))
            if not group_id:
                yield RecordError("group", "", "Ид", "", "A group without Ид was skipped.", self._line_of(group))
                continue
            yield Group(
                id=group_id,
                name=_text(kids.get("Наименование")),
                parent_id=parent_id,
                deleted=_deleted(kids),
                version=_text(kids.get("НомерВерсии")),
            )
            nested = kids.get("Группы")
            if nested is not None:
                yield from self._group_level(nested, group_id)

    def _property(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        kids = _children(element)
        options: dict[str, str] = {}
        for variant in kids.get("ВариантыЗначений", ()):
            value_id = _child_text(variant, "ИдЗначения") or _child_text(variant, "Ид")
            if value_id:
                options[value_id] = _child_text(variant, "Значение")
            elif local_name(variant) == "Вариант" and _text(variant):
                options[_text(variant)] = _text(variant)
        yield Property(
            id=_required(kids, "Ид"),
            name=_text(kids.get("Наименование")),
            value_type=_text(kids.get("ТипЗначений")),
            options=options,
            for_products=parse_bool(_opt_text(kids.get("ДляТоваров"))),
            for_offers=parse_bool(_opt_text(kids.get("ДляПредложений"))),
            deleted=_deleted(kids),
        )

    def _unit_record(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        unit = _unit(element)
        if unit is not None:
            yield unit

    def _price_type(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        kids = _children(element)
        tax = kids.get("Налог")
        yield PriceType(
            id=_required(kids, "Ид"),
            name=_text(kids.get("Наименование")),
            currency=parse_currency(_text(kids.get("Валюта"))),
            vat_included=parse_bool(_child_text(tax, "УчтеноВСумме")) if tax is not None else None,
        )

    def _warehouse(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        kids = _children(element)
        yield Warehouse(
            id=_required(kids, "Ид"),
            name=_text(kids.get("Наименование")),
            address=_child_text(kids.get("Адрес"), "Представление"),
            deleted=_deleted(kids),
        )

    # catalogue ----------------------------------------------------------------------------------------------

    def _product(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        kids = _children(element)
        raw_id = _required(kids, "Ид")
        product_id, variant_id = split_variant_id(raw_id)
        requisites = _pairs(kids.get("ЗначенияРеквизитов"), "ЗначениеРеквизита")
        _sent, vat_rate = _vat(kids, requisites, warnings)
        manufacturer = kids.get("Изготовитель")
        maker = _child_text(manufacturer, "Наименование") or _text(manufacturer)
        product = Product(
            id=product_id,
            name=_text(kids.get("Наименование")),
            article=_text(kids.get("Артикул")),
            barcode=_text(kids.get("Штрихкод") if "Штрихкод" in kids else kids.get("ШтрихКод")),
            full_name=requisites.get("Полное наименование") or _text(kids.get("ПолноеНаименование")),
            description=_opt_text(kids.get("Описание")),
            group_ids=tuple(_text(g) for g in _all(kids.get("Группы"), "Ид") if _text(g)),
            unit=_unit(kids.get("БазоваяЕдиница")),
            vat_rate=vat_rate,
            kind=_kind(requisites),
            manufacturer=maker,
            country=_text(kids.get("Страна")),
            images=tuple(_text(p) for p in _all(element, "Картинка") if _text(p)),
            property_values=_property_values(kids),
            requisites=requisites,
            deleted=_deleted(kids, element),
            version=_text(kids.get("НомерВерсии")),
        )
        if variant_id is None:
            yield product
            return
        # Old (2.04) imports list only "guid#guid" goods: the base product comes from its first variant.
        if product_id not in self.base_products:
            self.base_products.add(product_id)
            yield product
        yield self._variant(variant_id, product_id, kids)

    def _variant(self, variant_id: str, product_id: str, kids: dict[str, Element]) -> Variant:
        characteristics = _pairs(kids.get("ХарактеристикиТовара"), "ХарактеристикаТовара")
        return Variant(
            id=variant_id,
            product_id=product_id,
            name=_text(kids.get("Наименование")),
            characteristics=characteristics,
            article=_text(kids.get("Артикул")),
            barcode=_text(kids.get("Штрихкод") if "Штрихкод" in kids else kids.get("ШтрихКод")),
            property_values=_property_values(kids),
            unit=_unit(kids.get("БазоваяЕдиница")),
            deleted=_deleted(kids),
        )

    def _offer(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        kids = _children(element)
        raw_id = _required(kids, "Ид")
        product_id, variant_id = split_variant_id(raw_id)
        line = self._line_of(element)
        if variant_id is not None and any(name in kids for name in _VARIANT_FIELDS):
            yield self._variant(variant_id, product_id, kids)
        for price in _all(kids.get("Цены"), "Цена"):
            try:
                yield _price(price, product_id, variant_id)
            except RecordProblem as problem:
                yield RecordError("price", raw_id, problem.field, problem.value, problem.message, self._line_of(price))
        for warehouse_id, raw_quantity, field in _stock_entries(element, kids):
            try:
                quantity = parse_decimal(raw_quantity, field=field)
            except RecordProblem as problem:
                yield RecordError("stock", raw_id, problem.field, problem.value, problem.message, line)
                continue
            if quantity is not None:
                yield Stock(product_id=product_id, variant_id=variant_id, warehouse_id=warehouse_id, quantity=quantity)

    # documents ----------------------------------------------------------------------------------------------

    def _document(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        kids = _children(element)
        operation = _text(kids.get("ХозОперация"))
        if any(word in operation.lower() for word in _PAYMENT_OPERATIONS):
            yield self._payment(element, kids, order_id="", order_number=_text(kids.get("Основание")))
            return
        requisites = _pairs(kids.get("ЗначенияРеквизитов"), "ЗначениеРеквизита")
        for loose in _all(element, "ЗначениеРеквизита"):  # old builds: no ЗначенияРеквизитов wrapper
            requisites.setdefault(_child_text(loose, "Наименование"), _child_text(loose, "Значение"))
        order_id = _required(kids, "Ид")
        number = _text(kids.get("Номер"))
        deleted = bool(parse_bool(_text(kids.get("ПометкаУдаления"))))
        tax = _first(kids.get("Налоги"), "Налог")
        subordinates = _all(kids.get("ПодчиненныеДокументы"), "ПодчиненныйДокумент")
        payments = [
            self._payment(sub, _children(sub), order_id=order_id, order_number=number)
            for sub in subordinates
            if any(word in _child_text(sub, "ХозОперация").lower() for word in _PAYMENT_OPERATIONS)
        ]
        shipments = tuple(
            self._shipment(_children(sub)) for sub in subordinates if is_shipment(_child_text(sub, "ХозОперация"))
        )
        payments += [
            Payment(
                id=_child_text(pay, "НомерТранзакции") or f"{order_id}:{index}",
                number=_child_text(pay, "НомерТранзакции"),
                date=parse_datetime(_child_text(pay, "ДатаОплаты"), field="ДатаОплаты", tz=self.tz),
                amount=parse_decimal(_child_text(pay, "СуммаОплаты"), field="СуммаОплаты"),
                operation=_child_text(pay, "СпособОплаты"),
                order_id=order_id,
                order_number=number,
                paid=True,
            )
            for index, pay in enumerate(_all(kids.get("Оплаты"), "Оплата"), start=1)
        ]
        yield Order(
            id=order_id,
            number=number,
            date=combine(_text(kids.get("Дата")), _text(kids.get("Время")), tz=self.tz),
            number_1c=_text(kids.get("Номер1С")),
            date_1c=parse_date(_text(kids.get("Дата1С")), field="Дата1С"),
            version=_text(kids.get("НомерВерсии")),
            operation=operation,
            role=_text(kids.get("Роль")),
            currency=parse_currency(_text(kids.get("Валюта"))),
            rate=parse_decimal(_opt_text(kids.get("Курс")), field="Курс"),
            total=parse_decimal(_opt_text(kids.get("Сумма")), field="Сумма"),
            vat_included=parse_bool(_child_text(tax, "УчтеноВСумме")) if tax is not None else None,
            vat_total=parse_decimal(_child_text(tax, "Сумма"), field="Налог/Сумма") if tax is not None else None,
            comment=_text(kids.get("Комментарий")),
            parties=tuple(_party(party) for party in _all(kids.get("Контрагенты"), "Контрагент")),
            lines=tuple(self._line(line, warnings) for line in _all(kids.get("Товары"), "Товар")),
            requisites=requisites,
            status=self._status(requisites, deleted, warnings),
            payments=tuple(payments),
            base_number=_text(kids.get("Основание")),
            deleted=deleted,
            shipments=shipments,
        )

    def _line(self, element: Element, warnings: list[RecordProblem]) -> OrderLine:
        kids = _children(element)
        raw_id = _text(kids.get("Ид"))
        product_id, variant_id = split_variant_id(raw_id)
        requisites = _pairs(kids.get("ЗначенияРеквизитов"), "ЗначениеРеквизита")
        quantity = parse_decimal(_text(kids.get("Количество")), field="Количество")
        if quantity is None:
            raise RecordProblem("Количество", "", f"Line {raw_id!r} has no Количество.")
        amount = parse_decimal(_text(kids.get("Сумма")), field="Сумма")
        price_element = kids.get("ЦенаЗаЕдиницу") if "ЦенаЗаЕдиницу" in kids else kids.get("Цена")
        price = parse_decimal(_text(price_element), field="ЦенаЗаЕдиницу")
        if price is None:
            price = amount / quantity if amount is not None and quantity else Decimal(0)
        if amount is None:
            amount = price * quantity
        discount = Decimal(0)
        for item in _all(kids.get("Скидки"), "Скидка"):
            discount += parse_decimal(_child_text(item, "Сумма"), field="Скидка/Сумма") or Decimal(0)
        tax = _first(kids.get("Налоги"), "Налог")
        _sent, vat_rate = _vat(kids, requisites, warnings)
        if vat_rate is None and tax is not None and _child_text(tax, "Ставка"):
            try:
                vat_rate = parse_vat(_child_text(tax, "Ставка"), field="Налог/Ставка")
            except RecordProblem as problem:
                warnings.append(problem)
        return OrderLine(
            product_id=product_id,
            variant_id=variant_id,
            name=_text(kids.get("Наименование")),
            article=_text(kids.get("Артикул")),
            unit=_unit(kids.get("БазоваяЕдиница") if "БазоваяЕдиница" in kids else kids.get("Единица")),
            quantity=quantity,
            price=price,
            amount=amount,
            discount=discount,
            vat_rate=vat_rate,
            vat_amount=parse_decimal(_child_text(tax, "Сумма"), field="Налог/Сумма") if tax is not None else None,
            kind=_kind(requisites, product_id),
            requisites=requisites,
        )

    def _status(self, requisites: dict[str, str], deleted: bool, warnings: list[RecordProblem]) -> OrderStatus:
        def moment(*names: str) -> tuple[bool, datetime | None]:
            for name in names:
                if name in requisites:
                    try:
                        return True, parse_datetime(requisites[name], field=name, tz=self.tz)
                    except RecordProblem as problem:
                        warnings.append(problem)
                        return True, None
            return False, None

        def flag(*names: str) -> bool | None:
            for name in names:
                if name in requisites:
                    return parse_bool(requisites[name])
            return None

        paid_sent, payment_date = moment("Дата оплаты по 1С", "Дата оплаты")
        shipped_sent, shipment_date = moment("Дата отгрузки по 1С", "Дата отгрузки")
        paid = flag("Заказ оплачен", "Оплачен")
        shipped = flag("Отгружен")
        cancelled = flag("Отменен", "Отменён")
        return OrderStatus(
            posted=flag("Проведен"),
            cancelled=True if deleted else cancelled,
            paid=_done(payment_date, paid, paid_sent),
            payment_number=requisites.get("Номер оплаты по 1С") or requisites.get("Номер платежного документа", ""),
            payment_date=payment_date,
            shipped=True
            if shipment_date is not None
            else (shipped if shipped is not None or not shipped_sent else False),
            shipment_number=requisites.get("Номер отгрузки по 1С", ""),
            shipment_date=shipment_date,
            status_id=requisites.get("Статуса заказа ИД") or requisites.get("Статус заказа ИД", ""),
            status_name=requisites.get("Статус заказа", ""),
            final=flag("Финальный статус"),
        )

    def _payment(self, element: Element, kids: dict[str, Element], *, order_id: str, order_number: str) -> Payment:
        requisites = _pairs(kids.get("ЗначенияРеквизитов"), "ЗначениеРеквизита")
        cancelled = parse_bool(requisites.get("Отменен")) or bool(parse_bool(_text(kids.get("ПометкаУдаления"))))
        return Payment(
            id=_required(kids, "Ид"),
            number=_text(kids.get("Номер1С")) or _text(kids.get("Номер")),
            date=combine(_text(kids.get("Дата")), _text(kids.get("Время")), tz=self.tz),
            amount=parse_decimal(_opt_text(kids.get("Сумма")), field="Сумма"),
            currency=parse_currency(_text(kids.get("Валюта"))),
            operation=_text(kids.get("ХозОперация")),
            order_id=order_id,
            order_number=order_number or _text(kids.get("Основание")),
            paid=parse_bool(requisites.get("Оплачен")) if "Оплачен" in requisites else True,
            cancelled=cancelled,
            requisites=requisites,
        )

    def _shipment(self, kids: dict[str, Element]) -> Shipment:
        requisites = _pairs(kids.get("ЗначенияРеквизитов"), "ЗначениеРеквизита")
        return Shipment(
            id=_required(kids, "Ид"),
            number=_text(kids.get("Номер1С")) or _text(kids.get("Номер")),
            date=combine(_text(kids.get("Дата")), _text(kids.get("Время")), tz=self.tz),
            shipped=parse_bool(requisites["Отгружен"]) if "Отгружен" in requisites else None,
            cancelled=bool(parse_bool(requisites.get("Отменен")) or parse_bool(_text(kids.get("ПометкаУдаления")))),
        )

    def _party_record(self, element: Element, warnings: list[RecordProblem]) -> Iterator[Record]:
        yield _party(element)


def _done(moment: datetime | None, flag: bool | None, date_sent: bool) -> bool | None:
    """Paid/shipped: a date means yes; else the explicit flag; an empty date ("T") means no; nothing sent → None."""
    if moment is not None:
        return True
    if flag is not None:
        return flag
    return False if date_sent else None


def _first(container: Element | None, name: str) -> Element | None:
    found = _all(container, name)
    return found[0] if found else None


def _required(kids: dict[str, Element], name: str) -> str:
    value = _text(kids.get(name))
    if not value:
        raise RecordProblem(name, "", f"The element has no {name}; it was skipped.")
    return value


_PRICE_PARTS = {"ИдТипаЦены": 0, "ЦенаЗаЕдиницу": 1, "Валюта": 2, "Единица": 3, "Коэффициент": 4}
_ONE = Decimal(1)


def _price(element: Element, product_id: str, variant_id: str | None) -> Price:
    # One pass over the children, the first of each name counting (as `_children`): a catalogue has a few
    # prices per offer, hundreds of thousands in all.
    parts = ["", "", "", "", ""]
    seen = 0
    known = LOCAL_NAMES
    for child in element:
        index = _PRICE_PARTS.get(known.get(child.tag) or local_name(child))
        if index is not None and not seen & (1 << index):
            seen |= 1 << index
            parts[index] = (child.text or "").strip()
    price_type_id, raw_value, currency, unit, raw_coefficient = parts
    if not price_type_id:
        raise RecordProblem("ИдТипаЦены", "", "A price without ИдТипаЦены was skipped.")
    value = parse_decimal(raw_value, field="ЦенаЗаЕдиницу")
    if value is None:
        raise RecordProblem("ЦенаЗаЕдиницу", "", "A price without ЦенаЗаЕдиницу was skipped.")
    coefficient = parse_decimal(raw_coefficient, field="Коэффициент")
    return Price(
        product_id=product_id,
        variant_id=variant_id,
        price_type_id=price_type_id,
        value=value,
        currency=parse_currency(currency),
        unit=unit,
        coefficient=_ONE if coefficient is None else coefficient,
    )


def _stock_entries(element: Element, kids: dict[str, Element]) -> Iterator[tuple[str | None, str, str]]:
    """(warehouse id or None for the total, raw quantity, field) in all four shapes 1C and Bitrix use."""
    if "Количество" in kids:
        yield None, _text(kids["Количество"]), "Количество"
    for warehouse in _all(element, "Склад"):  # 2.07: <Склад ИдСклада="…" КоличествоНаСкладе="…"/>
        warehouse_id = (warehouse.get("ИдСклада") or "").strip()
        if warehouse_id:
            yield warehouse_id, warehouse.get("КоличествоНаСкладе") or "", "КоличествоНаСкладе"
    for entry in _all(kids.get("КоличествоНаСкладах"), "КоличествоНаСкладе"):
        yield _child_text(entry, "ИдСклада") or None, _child_text(entry, "Количество"), "КоличествоНаСкладе"
    for rest in _all(kids.get("Остатки"), "Остаток"):
        places = _all(rest, "Склад")
        for place in places:
            yield _child_text(place, "Ид") or None, _child_text(place, "Количество"), "Остаток/Количество"
        if not places:
            yield None, _child_text(rest, "Количество"), "Остаток/Количество"


class _SpanPatterns:
    """What is read off a cut element's bytes without parsing it, in one encoding."""

    def __init__(self, encoding: str) -> None:
        name = "Ид".encode(encoding)
        picture = "Картинка".encode(encoding)
        # Ид as the first child (1C always writes it first), plain text without entity or character references.
        self.first_id = re.compile(rb"\s*<(?:[^\s/>:]+:)?" + name + rb"\s*>([^<&]*)</(?:[^\s/>:]+:)?" + name + rb"\s*>")
        self.picture = picture
        self.pictures = re.compile(rb"<(?:[^\s/>:]+:)?" + picture + rb"(?:\s[^>]*)?>([^<]*)</")


_SPAN_PATTERNS: dict[str, _SpanPatterns] = {}
_SPAN_HASHES: dict[tuple[str, bytes], Any] = {}


def _span_facts(span: Span, encoding: str) -> tuple[str, tuple[str, ...]] | None:
    """(Ид, Картинка paths) of a cut element, or None when they cannot be read off its bytes with certainty.
    Every Картинка in the element counts (a nested one too: it only makes the digest stricter)."""
    patterns = _SPAN_PATTERNS.get(encoding)
    if patterns is None:
        patterns = _SPAN_PATTERNS.setdefault(encoding, _SpanPatterns(encoding))
    match = patterns.first_id.match(span.data, span.body)
    if match is None:
        return None
    external_id = match.group(1).decode(encoding).strip()
    if not external_id:
        return None
    images: list[str] = []
    if span.kind == "product" and patterns.picture in span.data:
        for found in patterns.pictures.finditer(span.data):
            if b"&" in found.group(1):
                return None
            path = found.group(1).decode(encoding).strip()
            if path:
                images.append(path)
    return external_id, tuple(images)


def _span_digest(span: Span, encoding: str) -> str:
    """sha1 of the element's bytes, with the encoding and the namespace declarations they are read in."""
    base = _SPAN_HASHES.get((encoding, span.context))
    if base is None:
        base = hashlib.sha1(b"span\0" + encoding.encode() + b"\0" + span.context + b"\0", usedforsecurity=False)
        if len(_SPAN_HASHES) < 64:
            _SPAN_HASHES[(encoding, span.context)] = base
    digest = base.copy()
    digest.update(span.data)
    return digest.hexdigest()


def _party(element: Element) -> Party:
    kids = _children(element)
    address = ""
    for name in ("ЮридическийАдрес", "АдресРегистрации", "Адрес"):
        address = _child_text(kids.get(name), "Представление")
        if address:
            break
    contacts = tuple(
        Contact(kind=_child_text(contact, "Тип"), value=_child_text(contact, "Значение"))
        for contact in _all(kids.get("Контакты"), "Контакт")
        if _child_text(contact, "Значение")
    )
    accounts = tuple(
        BankAccount(
            number=_child_text(account, "НомерСчета"),
            bank_name=_child_text(_first(account, "Банк"), "Наименование"),
            bik=_child_text(_first(account, "Банк"), "БИК"),
            correspondent_account=_child_text(_first(account, "Банк"), "СчетКорреспондентский"),
        )
        for account in _all(kids.get("РасчетныеСчета"), "РасчетныйСчет")
        if _child_text(account, "НомерСчета")
    )
    persons = []
    for representative in _all(kids.get("Представители"), "Представитель"):
        inner = _first(representative, "Контрагент")  # Bitrix wraps the fields in an inner Контрагент
        name = _child_text(inner if inner is not None else representative, "Наименование")
        if name:
            persons.append(name)
    return Party(
        id=_text(kids.get("Ид")),
        name=_text(kids.get("Наименование")),
        full_name=_text(kids.get("ПолноеНаименование")) or _text(kids.get("ОфициальноеНаименование")),
        inn=_text(kids.get("ИНН")),
        kpp=_text(kids.get("КПП")),
        okpo=_text(kids.get("КодПоОКПО")) or _text(kids.get("ОКПО")),
        address=address,
        contacts=contacts,
        role=_text(kids.get("Роль")),
        last_name=_text(kids.get("Фамилия")),
        first_name=_text(kids.get("Имя")),
        middle_name=_text(kids.get("Отчество")),
        bank_accounts=accounts,
        contact_persons=tuple(persons),
        deleted=_deleted(kids),
        version=_text(kids.get("НомерВерсии")),
    )


# --- public API ------------------------------------------------------------------------------------------------


def read_records(
    source: Source, *, tz: tzinfo = MOSCOW, prolog: Prolog | None = None, raw: bool = False
) -> Iterator[Record]:
    """Stream the records of one CommerceML file (no Package). Raises XmlError subclasses for unreadable files;
    the error can come after some records were yielded (e.g. a file truncated in the middle). With ``raw``,
    catalogue products and offers come as :class:`~sdelka.exchange.records.RawElement` (records on demand)."""
    return _Reader(tz, raw=raw).records(source, prolog)


def read_package(source: Source, *, tz: tzinfo = MOSCOW, raw: bool = False) -> Iterator[Record]:
    """Stream a file: its :class:`~sdelka.exchange.records.Package` (kind by content) first, then its records."""
    prolog = inspect_prolog(source)
    yield detect(source, prolog=prolog)
    yield from read_records(source, tz=tz, prolog=prolog, raw=raw)
