from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.http import Http404
from django.utils import timezone

from sdelka.activities import selectors, services
from sdelka.activities.models import Note, Task
from sdelka.sales.models import Payment, PaymentAllocation
from tests.factories import CounterpartyFactory, DealFactory, InvoiceFactory, OrganisationFactory

from .helpers import make_task

pytestmark = pytest.mark.django_db

MOSCOW = ZoneInfo("Europe/Moscow")


def titles(tasks) -> set[str]:
    return {task.title for task in tasks}


def test_task_list_visibility(staff):
    own = CounterpartyFactory(owner=staff.manager)
    colleague = CounterpartyFactory(owner=staff.other_manager)
    make_task(title="own", assignee=staff.manager, counterparty=own)
    make_task(title="colleague's", assignee=staff.other_manager, counterparty=colleague)
    make_task(title="outsider's", assignee=staff.outsider, counterparty=CounterpartyFactory(owner=staff.outsider))
    make_task(title="personal", assignee=staff.manager)

    assert titles(selectors.task_list(user=staff.manager)) == {"own", "personal"}
    assert titles(selectors.task_list(user=staff.other_manager)) == {"colleague's"}
    assert titles(selectors.task_list(user=staff.head)) == {"own", "colleague's", "personal"}
    assert len(selectors.task_list(user=staff.director)) == 4


def test_task_list_filters(staff):
    now = timezone.now()
    own = CounterpartyFactory(owner=staff.manager)
    own.co_owners.add(staff.other_manager)
    make_task(title="mine late", assignee=staff.manager, counterparty=own, due_at=now - timedelta(hours=1))
    make_task(title="mine later", assignee=staff.manager, counterparty=own, due_at=now + timedelta(hours=1))
    make_task(title="mine done", assignee=staff.manager, due_at=now - timedelta(days=1), is_done=True)
    make_task(title="colleague late", assignee=staff.other_manager, counterparty=own, due_at=now - timedelta(days=2))
    make_task(title="east", assignee=staff.east_manager, due_at=now - timedelta(days=2))

    assert titles(selectors.task_list(user=staff.manager, mine=True)) == {"mine late", "mine later", "mine done"}
    assert titles(selectors.task_list(user=staff.manager, overdue=True, now=now)) == {"mine late", "colleague late"}
    assert titles(selectors.task_list(user=staff.manager, mine=True, overdue=True, now=now)) == {"mine late"}
    # A manager's team is himself; a head's team is his subtree.
    assert titles(selectors.task_list(user=staff.manager, team=True)) == {"mine late", "mine later", "mine done"}
    assert titles(selectors.task_list(user=staff.head, team=True, overdue=True, now=now)) == {
        "mine late",
        "colleague late",
        "east",
    }


def test_notifications_are_personal(staff):
    now = timezone.now()
    make_task(title="a", assignee=staff.manager, remind_at=now)
    make_task(title="b", assignee=staff.other_manager, remind_at=now)
    services.send_due_reminders(now=now)
    assert [n.user for n in selectors.notification_list(user=staff.manager)] == [staff.manager]
    assert len(selectors.notification_list(user=staff.head)) == 0
    assert len(selectors.notification_list(user=staff.admin, unread=True)) == 2


def fill_counterparty(counterparty, owner, n: int) -> None:
    """n of every kind of timeline record on one counterparty."""
    organisation = OrganisationFactory.create()
    for i in range(n):
        task = services.create_task(user=owner, title=f"task {i}", assignee=owner, counterparty=counterparty)
        services.complete_task(user=owner, task=task)
        services.add_note(user=owner, counterparty=counterparty, text=f"note {i}")
        deal = DealFactory(counterparty=counterparty)
        invoice = InvoiceFactory.create(
            counterparty=counterparty, organisation=organisation, deal=deal, total=Decimal("10")
        )
        payment = Payment.objects.create(
            organisation=organisation,
            counterparty=counterparty,
            date=timezone.localdate(),
            number=str(i),
            amount=Decimal("10.00"),
            created_by=owner,
        )
        PaymentAllocation.objects.create(payment=payment, invoice=invoice, amount=Decimal("10.00"))


@pytest.mark.parametrize("n", [1, 8])
@pytest.mark.parametrize("role", ["manager", "head", "director"])
def test_timeline_queries_do_not_grow_with_items(staff, django_assert_max_num_queries, n, role):
    counterparty = CounterpartyFactory(owner=staff.manager)
    fill_counterparty(counterparty, staff.manager, n)
    with django_assert_max_num_queries(10):
        items = selectors.timeline(user=getattr(staff, role), counterparty_id=counterparty.pk)
    assert len(items) == 7 * n
    assert {item.kind for item in items} == {
        "task",
        "task_done",
        "note",
        "deal",
        "invoice",
        "payment",
        "allocation",
    }


def test_timeline_merges_and_sorts_newest_first(staff):
    counterparty = CounterpartyFactory.create(owner=staff.manager)
    other = CounterpartyFactory.create(owner=staff.manager)
    fill_counterparty(counterparty, staff.manager, 2)
    fill_counterparty(other, staff.manager, 1)

    items = selectors.timeline(user=staff.manager, counterparty_id=counterparty.pk)
    assert [item.when for item in items] == sorted((item.when for item in items), reverse=True)
    assert len(items) == 14
    refs = {item.ref for item in items}
    assert {f"task:{t.pk}" for t in Task.objects.filter(counterparty=counterparty)} <= refs
    assert not {f"task:{t.pk}" for t in Task.objects.filter(counterparty=other)} & refs

    note = Note.objects.filter(counterparty=counterparty).first()
    note_item = next(item for item in items if item.ref == f"note:{note.pk}")
    assert (note_item.kind, note_item.title, note_item.actor) == ("note", note.text, staff.manager)
    assert note_item.url == f"/counterparties/{counterparty.pk}/#note-{note.pk}"
    payment_item = next(item for item in items if item.kind == "payment")
    assert payment_item.actor == staff.manager
    assert payment_item.url.startswith("/payments/")


def test_timeline_limit_keeps_the_newest(staff):
    counterparty = CounterpartyFactory(owner=staff.manager)
    fill_counterparty(counterparty, staff.manager, 3)
    everything = selectors.timeline(user=staff.manager, counterparty_id=counterparty.pk)
    assert selectors.timeline(user=staff.manager, counterparty_id=counterparty.pk, limit=5) == everything[:5]


def test_timeline_outside_scope_is_404(staff):
    colleague = CounterpartyFactory(owner=staff.other_manager)
    vip = CounterpartyFactory(owner=staff.manager, is_vip=True)
    for counterparty_id in (colleague.pk, vip.pk, 10**9):
        with pytest.raises(Http404):
            selectors.timeline(user=staff.manager, counterparty_id=counterparty_id)
    assert selectors.timeline(user=staff.head, counterparty_id=colleague.pk) == []


def test_backdated_document_sits_at_its_date():
    created = datetime(2026, 3, 5, 15, 30, tzinfo=MOSCOW)
    with timezone.override(MOSCOW):
        assert selectors._document_time(date(2026, 3, 5), created) == created
        assert selectors._document_time(date(2026, 3, 1), created) == datetime(2026, 3, 1, tzinfo=MOSCOW)
