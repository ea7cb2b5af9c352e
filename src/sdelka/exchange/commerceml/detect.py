"""Tell CommerceML files apart by content (root children and their first children), never by file name.

:func:`detect` streams the head of the file and stops as soon as the kind is certain (the first ``Товар``, the
first ``Предложение``, the first ``Документ``), so it costs little even on a 600 MB import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree

from sdelka.exchange.commerceml.reader_values import MOSCOW, parse_bool, parse_datetime
from sdelka.exchange.records import Package, PackageKind, RecordProblem
from sdelka.exchange.xmlsafe import BadXmlError, Prolog, Source, inspect_prolog, local_name, safe_iterparse

ROOT = "КоммерческаяИнформация"
_OFFER_HEADER = frozenset({"Ид", "НомерВерсии", "ПометкаУдаления"})
_SECTION_KINDS = {
    "Группы": PackageKind.GROUPS,
    "Свойства": PackageKind.PROPERTIES,
    "ЕдиницыИзмерения": PackageKind.UNITS,
    "Склады": PackageKind.STORAGES,
    "ТипыЦен": PackageKind.PRICE_LISTS,
}
_HEADER_FIELDS = {
    ("Классификатор", "Ид"): "classifier_id",
    ("Каталог", "Ид"): "catalog_id",
    ("Каталог", "ИдКлассификатора"): "classifier_id",
    ("Каталог", "Наименование"): "name",
    ("ПакетПредложений", "Ид"): "offers_package_id",
    ("ПакетПредложений", "ИдКаталога"): "catalog_id",
    ("ПакетПредложений", "ИдКлассификатора"): "classifier_id",
    ("ПакетПредложений", "Наименование"): "name",
}


@dataclass
class _Scan:
    kind: PackageKind | None = None
    version: str = ""
    namespace: str = ""
    generated_at: datetime | None = None
    changes_only: bool | None = None
    classifier_changes_only: bool | None = None
    header: dict[str, str] = field(default_factory=dict)
    sections: set[str] = field(default_factory=set)
    offer_sections: set[str] = field(default_factory=set)
    top: set[str] = field(default_factory=set)

    def package(self) -> Package:
        changes_only = self.changes_only if self.changes_only is not None else self.classifier_changes_only
        return Package(
            kind=self.kind or self._kind_without_records(),
            schema_version=self.version,
            namespace=self.namespace,
            generated_at=self.generated_at,
            changes_only=changes_only,
            classifier_id=self.header.get("classifier_id", ""),
            catalog_id=self.header.get("catalog_id", ""),
            offers_package_id=self.header.get("offers_package_id", ""),
            name=self.header.get("name", ""),
        )

    def _kind_without_records(self) -> PackageKind:
        """No Товар, Предложение or Документ: a classifier-type package, told by which sections it holds."""
        sections = self.sections | self.offer_sections
        if len(sections) == 1 and not self.offer_sections:
            return _SECTION_KINDS.get(next(iter(sections)), PackageKind.CLASSIFIER)
        if self.sections:
            return PackageKind.CLASSIFIER
        if "ПакетПредложений" in self.top:
            return PackageKind.OFFERS
        if "Каталог" in self.top:
            return PackageKind.IMPORT
        if "Контрагенты" in self.top:
            return PackageKind.PARTIES
        return PackageKind.EMPTY


def _root_header(scan: _Scan, root: etree._Element) -> None:
    if local_name(root) not in (ROOT, "Классификатор"):
        raise BadXmlError(f"This is not a CommerceML file: the root element is <{local_name(root)}>.")
    tag = root.tag if isinstance(root.tag, str) else ""
    scan.namespace = tag[1:].partition("}")[0] if tag.startswith("{") else ""
    scan.version = (root.get("ВерсияСхемы") or "").strip()
    try:
        scan.generated_at = parse_datetime(root.get("ДатаФормирования"), field="ДатаФормирования", tz=MOSCOW)
    except RecordProblem:
        scan.generated_at = None
    if local_name(root) == "Классификатор":  # a bare classifier fragment (test helpers write these)
        scan.top.add("Классификатор")


def detect(source: Source, *, prolog: Prolog | None = None) -> Package:
    """Read the head of a CommerceML file and say what it is. Raises XmlError subclasses for unreadable files."""
    prolog = prolog or inspect_prolog(source)
    scan = _Scan()
    path: list[str] = []
    children: list[set[str]] = []
    events = safe_iterparse(source, events=("start", "end"), prolog=prolog)
    try:
        for event, element in events:
            name = local_name(element)
            if event == "start":
                if not path:
                    _root_header(scan, element)
                    if name == "Классификатор":
                        path.append(ROOT)
                        children.append(set())
                path.append(name)
                children.append(set())
                if _on_start(scan, path, element):
                    break
                continue
            own = children.pop()
            path.pop()
            if children:
                children[-1].add(name)
            if _on_end(scan, path, name, element, own):
                break
            if len(path) >= 2:
                element.clear(keep_tail=False)
    finally:
        events.close()
    return scan.package()


def _on_start(scan: _Scan, path: list[str], element: etree._Element) -> bool:
    """Handle an opening tag; True when the kind is settled."""
    depth = len(path)
    name = path[-1]
    if depth == 2:
        scan.top.add(name)
        if name in ("Документ", "Контейнер"):
            scan.kind = PackageKind.DOCUMENTS
            return True
        flag = parse_bool(element.get("СодержитТолькоИзменения"))
        if name == "Классификатор":
            scan.classifier_changes_only = flag
        elif name in ("Каталог", "ПакетПредложений", "ИзмененияПакетаПредложений", "Контрагенты"):
            scan.changes_only = flag if flag is not None else scan.changes_only
    elif depth == 3 and path[1] == "Классификатор" and name in _SECTION_KINDS:
        scan.sections.add(name)
    elif depth == 3 and path[1] in ("ПакетПредложений", "ИзмененияПакетаПредложений") and name in ("ТипыЦен", "Склады"):
        scan.offer_sections.add(name)
    elif depth == 3 and path[1] == "Контрагенты" and name == "Контрагент":
        scan.kind = PackageKind.PARTIES
        return True
    elif depth == 4 and path[1] == "Каталог" and name == "Товар":
        scan.kind = PackageKind.IMPORT
        return True
    return False


def _on_end(scan: _Scan, path: list[str], name: str, element: etree._Element, own: set[str]) -> bool:
    """Handle a closing tag (``path`` no longer holds it); True when the kind is settled."""
    depth = len(path) + 1
    if depth == 3:
        key = _HEADER_FIELDS.get((path[1], name))
        if key and not scan.header.get(key):
            scan.header[key] = (element.text or "").strip()
    elif depth == 4 and name == "Предложение" and path[1] in ("ПакетПредложений", "ИзмененияПакетаПредложений"):
        content = own - _OFFER_HEADER
        if content == {"Цены"}:
            scan.kind = PackageKind.PRICES
        elif content and content <= {"Остатки", "Количество", "КоличествоНаСкладах", "Склад"}:
            scan.kind = PackageKind.RESTS
        else:
            scan.kind = PackageKind.OFFERS
        return True
    return False
