"""The helper process that builds a catalogue's records one batch ahead: the same result as building them here,
errors raised as before, and (after the first batch) nothing sent ahead when the upload is unchanged."""

from __future__ import annotations

import pickle
from decimal import Decimal
from typing import Any

import pytest

from sdelka.catalog.models import Price, Product, ProductPropertyValue, StockLevel, Variant
from sdelka.exchange import apply as apply_module
from sdelka.exchange import expand
from sdelka.exchange import records as r
from sdelka.exchange.apply import apply_records
from sdelka.exchange.commerceml.reader import read_package
from sdelka.exchange.models import ExchangeRun, Route, RunStatus
from sdelka.exchange.tests.test_element_digest import import_xml, new_base, offer_xml, offers_xml, product_xml
from sdelka.exchange.xmlsafe import XmlError

pytestmark = pytest.mark.django_db

GOODS = [product_xml(f"a{n}", f"Товар {n}", value="v1" if n % 2 else "v2") for n in range(40)]
OFFERS = [offer_xml(f"a{n}", f"{100 + n}.50") for n in range(0, 40, 2)] + [
    offer_xml(f"a{n}#s{k}", f"{200 + n}", (k, n)) for n in range(1, 40, 2) for k in range(2)
]


@pytest.fixture
def helper(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The helper on, for batches of a few elements; returns the sizes of the batches it was sent."""
    monkeypatch.setenv("SDELKA_CATALOGUE_HELPER", "1")
    monkeypatch.setattr(expand, "SPECULATE_MIN", 3)
    monkeypatch.setattr(apply_module, "BATCH_RAW_BYTES", 4000)  # a batch every dozen elements or so
    sent: list[int] = []
    submit = expand.Expander.send_ahead

    def spy(self: expand.Expander, batch: list[Any]) -> None:
        before = len(self._pending)
        submit(self, batch)
        if len(self._pending) > before:
            sent.append(sum(isinstance(item, r.RawElement) for item in batch))

    monkeypatch.setattr(expand.Expander, "send_ahead", spy)
    take = expand.Expander._take

    def built_by_helper(self: expand.Expander, *sent: Any) -> None:
        take(self, *sent)
        BUILT.extend(records for records in self._built.values() if records is not None)

    monkeypatch.setattr(expand.Expander, "_take", built_by_helper)
    BUILT.clear()
    return sent


BUILT: list[list[Any]] = []  # records the applying side took from the helper


def apply_files(*files: bytes) -> None:
    base = new_base()
    for data in files:
        run = ExchangeRun.objects.create(connection=base, route=Route.CATALOG, status=RunStatus.RUNNING)
        apply_records(connection=base, run=run, records=read_package(data, raw=True))
        ExchangeRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS)


def catalogue_state() -> list[Any]:
    return [
        sorted(Product.objects.values_list("name", "article", "description", "is_active")),
        sorted(ProductPropertyValue.objects.values_list("product__name", "value")),
        sorted(Variant.objects.values_list("product__name", "name", "characteristics")),
        sorted(Price.objects.values_list("product__name", "variant__name", "value")),
        sorted(StockLevel.objects.values_list("product__name", "variant__name", "warehouse__name", "quantity")),
    ]


def test_records_pickle_as_they_were() -> None:
    records = [
        record
        for data in (import_xml(GOODS[:3]), offers_xml(OFFERS[:4]))
        for item in read_package(data, raw=True)
        for record in (item.records() if isinstance(item, r.RawElement) else [item])
    ]
    assert {type(record) for record in records} >= {r.Package, r.Group, r.Property, r.Product, r.Price, r.Stock}
    assert pickle.loads(pickle.dumps(records)) == records


def test_the_helper_builds_what_would_be_built_here(helper: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    apply_files(import_xml(GOODS), offers_xml(OFFERS))
    with_helper = catalogue_state()
    assert helper, "the helper was never sent a batch"
    assert len(BUILT) >= len(GOODS) // 2  # most elements came built from the other process
    assert any(isinstance(record, r.Price) for records in BUILT for record in records)
    assert with_helper[3] and Decimal("100.50") in [row[2] for row in with_helper[3]]

    Product.objects.all().delete()
    monkeypatch.setenv("SDELKA_CATALOGUE_HELPER", "0")
    apply_files(import_xml(GOODS), offers_xml(OFFERS))
    assert catalogue_state() == with_helper


def test_an_element_the_helper_cannot_build_fails_the_file_as_before(helper: list[int]) -> None:
    broken = product_xml("a39", "Сломанный").replace("<Описание>", "<Описание>&nonsense;")
    with pytest.raises(XmlError) as failure:
        apply_files(import_xml([*GOODS[:39], broken]))
    assert helper  # the broken element was in a batch sent ahead
    assert "nonsense" in str(failure.value)


def test_an_unchanged_upload_sends_next_to_nothing_ahead(helper: list[int]) -> None:
    base = new_base()

    def upload() -> Any:
        run = ExchangeRun.objects.create(connection=base, route=Route.CATALOG, status=RunStatus.RUNNING)
        outcome = apply_records(connection=base, run=run, records=read_package(import_xml(GOODS), raw=True))
        ExchangeRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS)
        return outcome.counts

    assert upload().created == 42  # a group, a property, 40 products
    assert helper and BUILT
    helper.clear()
    BUILT.clear()
    again = upload()
    assert (again.created, again.updated, again.unchanged) == (0, 0, 42)
    # The second batch went ahead before anything was known, and was not waited for: nothing changed.
    assert len(helper) == 1
    assert BUILT == []
