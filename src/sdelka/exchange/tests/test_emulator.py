"""End to end: real 1C files from ../shared/fixtures/commerceml, sent through /1c/exchange by the 1C emulator.

Expected counts are taken from the files themselves with a plain lxml pass (independent of our reader).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from lxml import etree

from sdelka.catalog.models import Price, Product, ProductGroup, Variant
from sdelka.exchange.models import ExchangeRun, ExternalRef, RefKind, RunStatus
from tests.onec_emulator import OneCEmulator

pytest_plugins = ["tests.onec_fixtures"]

FIXTURES = Path(__file__).resolve().parents[4].parent / "shared" / "fixtures" / "commerceml"
SETS = [
    "carono__yii2-1c-exchange",
    "d16izhevsk__1coutlet",
    "dobromyslov__commerceml-parser",
    "sergey-gru__django-cml",
    "bigperson__exchange1c",
    "irpsv__commerceml",
    "AlexMobiCraft__FREESPORT-B2B",
    "gillbeits__commerceml",
    "solopovsergey__bxmaker.kits",
    "stee1cat__1c-exchange",
    "carono__php-commerceml",
]
pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"1C fixtures not found at {FIXTURES}")


def catalogue_files(folder: Path) -> dict[str, bytes]:
    """The catalogue files of a fixture folder (orders, fragments and XSDs left out), names as 1C sends them."""
    files: dict[str, bytes] = {}
    for path in sorted(folder.glob("*.xml")):
        data = path.read_bytes()
        if "КоммерческаяИнформация".encode() not in data or "<Документ".encode() in data:
            continue
        if "Контрагенты".encode() in data and "<Товар".encode() not in data:
            continue
        files[path.name] = data
    return files


def local(element: Any) -> str:
    return etree.QName(element).localname


@dataclass
class Expected:
    groups: set[str] = field(default_factory=set)
    products: set[str] = field(default_factory=set)
    variants: set[str] = field(default_factory=set)
    offers: set[str] = field(default_factory=set)
    names: dict[str, str] = field(default_factory=dict)
    prices: dict[tuple[str, str], Decimal] = field(default_factory=dict)


def child_text(element: Any, name: str) -> str:
    for child in element:
        if isinstance(child.tag, str) and local(child) == name:
            return (child.text or "").strip()
    return ""


def expected(files: dict[str, bytes]) -> Expected:
    result = Expected()
    for data in files.values():
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, huge_tree=True))
        for element in root.iter():
            if not isinstance(element.tag, str):
                continue
            name = local(element)
            parent = element.getparent()
            if name == "Группа" and child_text(element, "Ид"):
                result.groups.add(child_text(element, "Ид"))
            elif (
                name == "Товар"
                and parent is not None
                and local(parent) == "Товары"
                and local(parent.getparent()) == "Каталог"
            ):
                ident = child_text(element, "Ид")
                base = ident.split("#")[0]
                result.products.add(base)
                if "#" in ident:
                    result.variants.add(ident)
                elif child_text(element, "Наименование"):
                    result.names[base] = child_text(element, "Наименование")
            elif name == "Предложение":
                ident = child_text(element, "Ид")
                result.offers.add(ident)
                if "#" in ident and child_text(element, "Наименование"):  # split prices/rests name no variant
                    result.variants.add(ident)
                for price in element.iter():
                    if isinstance(price.tag, str) and local(price) == "Цена":
                        value = (
                            child_text(price, "ЦенаЗаЕдиницу").replace(",", ".").replace(" ", "").replace("\xa0", "")
                        )
                        if value:
                            result.prices[(ident, child_text(price, "ИдТипаЦены"))] = Decimal(value)
    return result


def refs(kind: str) -> dict[str, int]:
    return dict(ExternalRef.objects.filter(kind=kind).values_list("external_id", "object_id"))


@pytest.mark.django_db
@pytest.mark.parametrize("folder", SETS)
def test_fixture_catalogue_imports_with_the_right_counts_and_values(
    client: Client, onec: OneCEmulator, folder: str
) -> None:
    files = catalogue_files(FIXTURES / folder)
    if not files:
        pytest.skip(f"no catalogue files in {folder}")
    want = expected(files)
    result = onec.exchange(files)
    assert result.ok, str(result)

    run = ExchangeRun.objects.get()
    assert run.status == RunStatus.SUCCESS
    assert ProductGroup.objects.count() == len(want.groups)
    assert Product.objects.count() == len(want.products)
    assert set(refs(RefKind.PRODUCT)) == want.products
    # A variant is stored when its product is known (offers may name products of another package).
    stored_variants = {v for v in want.variants if v.split("#")[0] in want.products}
    assert set(refs(RefKind.VARIANT)) == stored_variants
    assert Variant.objects.count() == len(stored_variants)

    products = refs(RefKind.PRODUCT)
    by_pk = Product.objects.in_bulk(list(products.values()))
    for ident, name in want.names.items():
        assert by_pk[products[ident]].name == name[:500]

    price_types = refs(RefKind.PRICE_TYPE)
    variants = refs(RefKind.VARIANT)
    stored = {(row.price_type_id, row.product_id, row.variant_id): row.value for row in Price.objects.all()}
    checked = 0
    for (offer, price_type), value in want.prices.items():
        product = products.get(offer.split("#")[0])
        if product is None or price_type not in price_types:
            continue
        variant = variants.get(offer) if "#" in offer else None
        assert stored[(price_types[price_type], product, variant)] == value.quantize(Decimal("0.01")), offer
        checked += 1
    assert checked == len(stored)


@pytest.mark.django_db
@pytest.mark.parametrize("folder", ["d16izhevsk__1coutlet", "carono__yii2-1c-exchange", "AlexMobiCraft__FREESPORT-B2B"])
def test_reimporting_the_same_package_changes_nothing(onec: OneCEmulator, folder: str) -> None:
    files = catalogue_files(FIXTURES / folder)
    assert onec.exchange(files).ok
    snapshot = (
        dict(Product.objects.values_list("pk", "updated_at")),
        sorted(Price.objects.values_list("pk", "value", "updated_at")),
    )
    second = onec.exchange(files)
    assert second.ok, str(second)
    run = ExchangeRun.objects.order_by("-id").first()
    assert run is not None
    assert (run.created, run.updated, run.failed) == (0, 0, 0)
    assert run.unchanged > 0
    assert (
        dict(Product.objects.values_list("pk", "updated_at")),
        sorted(Price.objects.values_list("pk", "value", "updated_at")),
    ) == snapshot


@pytest.mark.django_db
def test_changes_only_package_updates_only_what_it_names(onec: OneCEmulator) -> None:
    files = catalogue_files(FIXTURES / "irpsv__commerceml")
    full = {name: data for name, data in files.items() if name.startswith("umi-cms")}
    assert onec.exchange(full).ok
    before = {p.pk: (p.name, p.updated_at) for p in Product.objects.all()}
    delta = {name: data for name, data in files.items() if name.startswith("ready-script")}
    assert onec.exchange(delta).ok
    product_type = ContentType.objects.get_for_model(Product)
    touched = set(
        ExternalRef.objects.filter(
            content_type=product_type, seen_run=ExchangeRun.objects.order_by("-id").first()
        ).values_list("object_id", flat=True)
    )
    after = {p.pk: (p.name, p.updated_at) for p in Product.objects.all()}
    for pk, state in before.items():
        if pk not in touched:
            assert after[pk] == state  # products the delta does not name are untouched, not deactivated
    assert all(Product.objects.filter(pk__in=before).values_list("is_active", flat=True))
