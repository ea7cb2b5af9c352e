"""The journal's text filters fold case once per field (Cyrillic included, on SQLite too) and keep to the run."""

from __future__ import annotations

import pytest

from sdelka.exchange.models import EventLevel, ExchangeRun, Route, RunStatus
from sdelka.exchange.selectors import EventFilter, event_page
from sdelka.exchange.services import create_connection, log_event

pytestmark = pytest.mark.django_db


def test_text_object_and_id_filters_ignore_case_and_stay_in_the_run() -> None:
    connection = create_connection(name="УТ", login="ut", password="password-1")
    run = ExchangeRun.objects.create(connection=connection, route=Route.CATALOG, status=RunStatus.SUCCESS)
    other = ExchangeRun.objects.create(connection=connection, route=Route.CATALOG, status=RunStatus.SUCCESS)
    cable = log_event(run=run, message="Товар записан: Кабель ВВГнг", object_repr="Кабель ВВГнг 3×2,5")
    price = log_event(run=run, message="Цена не задана", value="Розничная ЦЕНА", level=EventLevel.WARNING)
    log_event(run=other, message="Товар записан: кабель ещё один")
    ref = log_event(run=run, message="Контрагент записан", external_id="BD72D8F9-55BC-11D9-848A-00112F43529A")

    def found(**filters: str) -> list[int]:
        return [event.pk for event in event_page(run=run, filters=EventFilter(**filters)).items]

    assert found(text="кабель") == [cable.pk]
    assert found(text="ТОВАР ЗАПИСАН") == [cable.pk]
    assert found(text="розничная цена") == [price.pk]  # the value, not only the message
    assert found(text="цена", level=EventLevel.WARNING) == [price.pk]
    assert found(obj="вВгНг") == [cable.pk]
    assert found(external_id="bd72d8f9-55bc") == [ref.pk]
    assert found(text="нет такого") == []
