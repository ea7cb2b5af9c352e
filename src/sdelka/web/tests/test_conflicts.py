"""The conflict queue screen: administrators only, both values side by side, each decision applied."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from sdelka.accounts.models import Role
from sdelka.exchange.models import Conflict, Connection, ConnectionKind, ExternalRef
from sdelka.parties.models import Counterparty
from tests.factories import CounterpartyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def conflict(staff: Any) -> Conflict:
    party = CounterpartyFactory(owner=staff.manager, name="ООО Ромашка", comment="из Сделки")
    connection = Connection.objects.create(name="БП", kind=ConnectionKind.ODATA, url="http://1c.local/odata")
    ref = ExternalRef.objects.create(
        connection=connection,
        kind="counterparty",
        external_id="0e7b5ab4-5b9a-11e6-80c5-00155d000a04",
        content_type=ContentType.objects.get_for_model(Counterparty),
        object_id=party.pk,
        synced={"comment": "старый"},
    )
    return Conflict.objects.create(
        connection=connection,
        external_ref=ref,
        object_repr="ООО Ромашка",
        field="comment",
        onec_field="ДополнительнаяИнформация",
        base_value="старый",
        our_value="из Сделки",
        onec_value="из 1С",
    )


def test_only_administrators_and_integrators_see_the_queue(client: Any, staff: Any, conflict: Conflict) -> None:
    client.force_login(staff.manager)
    assert client.get(reverse("web:exchange-conflicts")).status_code == 403
    assert (
        client.post(reverse("web:exchange-conflict-resolve", args=[conflict.pk]), {"resolution": "onec"}).status_code
        == 403
    )
    conflict.refresh_from_db()
    assert conflict.status == "open"

    client.force_login(UserFactory(role=Role.INTEGRATOR))
    assert client.get(reverse("web:exchange-conflicts")).status_code == 200

    client.force_login(staff.admin)
    page = client.get(reverse("web:exchange-conflicts")).content.decode()
    assert "ООО Ромашка" in page and "из Сделки" in page and "из 1С" in page and "ДополнительнаяИнформация" in page
    exchange = client.get(reverse("web:exchange-connections")).content.decode()
    assert reverse("web:exchange-conflicts") in exchange and '<span class="pill warn">1</span>' in exchange


def test_take_1cs_value_updates_sdelka_and_moves_the_conflict_to_resolved(
    client: Any, staff: Any, conflict: Conflict
) -> None:
    client.force_login(staff.admin)
    response = client.post(reverse("web:exchange-conflict-resolve", args=[conflict.pk]), {"resolution": "onec"})
    assert response.status_code == 302
    party = Counterparty.objects.get(pk=conflict.external_ref.object_id)
    assert party.comment == "из 1С"
    conflict.refresh_from_db()
    assert (conflict.status, conflict.resolution, conflict.resolved_by) == ("resolved", "onec", staff.admin)
    assert "из 1С" not in client.get(reverse("web:exchange-conflicts")).content.decode()
    resolved = client.get(reverse("web:exchange-conflicts") + "?status=resolved").content.decode()
    assert "ООО Ромашка" in resolved


def test_a_second_decision_is_refused_with_a_message(client: Any, staff: Any, conflict: Conflict) -> None:
    client.force_login(staff.admin)
    client.post(reverse("web:exchange-conflict-resolve", args=[conflict.pk]), {"resolution": "sdelka"})
    response = client.post(
        reverse("web:exchange-conflict-resolve", args=[conflict.pk]), {"resolution": "onec"}, follow=True
    )
    assert "already resolved" in response.content.decode() or "уже" in response.content.decode()
    party = Counterparty.objects.get(pk=conflict.external_ref.object_id)
    assert party.comment == "из Сделки"
    ref = ExternalRef.objects.get(pk=conflict.external_ref_id)
    assert (ref.synced or {})["comment"] == "из 1С"  # the next run sees only Sdelka changed: sends its value
