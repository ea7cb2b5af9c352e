from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from sdelka.activities import services
from sdelka.activities.models import Note, Notification, Task
from tests.factories import CounterpartyFactory, DealFactory, InvoiceFactory

from .helpers import make_task

pytestmark = pytest.mark.django_db

SOON = timezone.now() + timedelta(days=1)


def field_of(error: pytest.ExceptionInfo[ValidationError]) -> set[str]:
    return set(error.value.message_dict)


# --- create_task ----------------------------------------------------------------------------------


def test_manager_creates_task_on_own_counterparty(staff, own_counterparty):
    task = services.create_task(
        user=staff.manager,
        title="  Позвонить бухгалтеру ",
        assignee=staff.manager,
        due_at=SOON,
        remind_at=SOON - timedelta(hours=1),
        counterparty=own_counterparty,
    )
    task.refresh_from_db()
    assert task.title == "Позвонить бухгалтеру"
    assert task.author == staff.manager
    assert task.counterparty == own_counterparty
    assert task.due_at == SOON
    assert not task.is_done


@pytest.mark.parametrize(
    ("actor", "assignee", "allowed"),
    [
        ("manager", "manager", True),
        ("manager", "other_manager", False),
        ("head", "east_manager", True),
        ("head", "other_manager", True),
        ("head", "outsider", False),
        ("east_manager", "head", False),
        ("director", "outsider", True),
        ("admin", "east_manager", True),
    ],
)
def test_assignee_must_be_within_the_actors_scope(staff, actor, assignee, allowed):
    kwargs = {"user": getattr(staff, actor), "title": "Задача", "assignee": getattr(staff, assignee)}
    if allowed:
        assert services.create_task(**kwargs).assignee == getattr(staff, assignee)
    else:
        with pytest.raises(ValidationError) as error:
            services.create_task(**kwargs)
        assert field_of(error) == {"assignee"}
        assert not Task.objects.exists()


def test_inactive_assignee_refused(staff):
    staff.manager.is_active = False
    staff.manager.save(update_fields=["is_active"])
    with pytest.raises(ValidationError) as error:
        services.create_task(user=staff.head, title="Задача", assignee=staff.manager)
    assert field_of(error) == {"assignee"}


@pytest.mark.parametrize("field", ["due_at", "remind_at"])
def test_naive_datetimes_refused(staff, field):
    naive = datetime(2026, 3, 2, 10, 0)  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValidationError) as error:
        services.create_task(user=staff.manager, title="Задача", assignee=staff.manager, **{field: naive})
    assert field_of(error) == {field}


def test_blank_title_refused(staff):
    with pytest.raises(ValidationError) as error:
        services.create_task(user=staff.manager, title="   ", assignee=staff.manager)
    assert field_of(error) == {"title"}


def test_references_outside_scope_refused(staff):
    foreign = CounterpartyFactory(owner=staff.outsider)
    deal = DealFactory(counterparty=foreign)
    invoice = InvoiceFactory(counterparty=foreign)
    for field, value in (("counterparty", foreign), ("deal", deal), ("invoice", invoice)):
        with pytest.raises(ValidationError) as error:
            services.create_task(user=staff.manager, title="Задача", assignee=staff.manager, **{field: value})
        assert field_of(error) == {field}
    assert not Task.objects.exists()


def test_vip_counterparty_refused_to_unnamed_user(staff):
    vip = CounterpartyFactory(owner=staff.manager, is_vip=True)
    with pytest.raises(ValidationError) as error:
        services.create_task(user=staff.manager, title="Задача", assignee=staff.manager, counterparty=vip)
    assert field_of(error) == {"counterparty"}


def test_counterparty_taken_from_deal_or_invoice(staff, own_counterparty):
    deal = DealFactory(counterparty=own_counterparty)
    invoice = InvoiceFactory(counterparty=own_counterparty, deal=deal)
    task = services.create_task(user=staff.manager, title="Счёт", assignee=staff.manager, deal=deal, invoice=invoice)
    assert task.counterparty == own_counterparty


def test_deal_of_another_counterparty_refused(staff, own_counterparty):
    other = CounterpartyFactory(owner=staff.manager)
    with pytest.raises(ValidationError) as error:
        services.create_task(
            user=staff.manager,
            title="Задача",
            assignee=staff.manager,
            counterparty=own_counterparty,
            deal=DealFactory(counterparty=other),
        )
    assert field_of(error) == {"deal"}
    with pytest.raises(ValidationError) as error:
        services.create_task(
            user=staff.manager,
            title="Задача",
            assignee=staff.manager,
            deal=DealFactory(counterparty=own_counterparty),
            invoice=InvoiceFactory(counterparty=other),
        )
    assert field_of(error) == {"invoice"}


# --- update, complete, reopen ---------------------------------------------------------------------


def test_update_task_changes_fields_and_checks_them(staff, own_counterparty):
    task = services.create_task(user=staff.manager, title="Старое", assignee=staff.manager)
    task = services.update_task(
        user=staff.manager, task=task, changes={"title": "Новое", "counterparty": own_counterparty}
    )
    task.refresh_from_db()
    assert (task.title, task.counterparty) == ("Новое", own_counterparty)
    with pytest.raises(ValidationError) as error:
        services.update_task(user=staff.manager, task=task, changes={"assignee": staff.other_manager})
    assert field_of(error) == {"assignee"}
    task.refresh_from_db()
    assert task.assignee == staff.manager
    with pytest.raises(ValueError, match="is_done"):
        services.update_task(user=staff.manager, task=task, changes={"is_done": True})


def test_update_task_outside_scope_not_found(staff):
    task = make_task(assignee=staff.outsider, counterparty=CounterpartyFactory(owner=staff.outsider))
    with pytest.raises(Task.DoesNotExist):
        services.update_task(user=staff.manager, task=task, changes={"title": "Взлом"})
    with pytest.raises(Task.DoesNotExist):
        services.complete_task(user=staff.manager, task=task)


def test_new_reminder_time_rearms_the_reminder(staff):
    now = timezone.now()
    task = services.create_task(
        user=staff.manager, title="Задача", assignee=staff.manager, remind_at=now - timedelta(minutes=1)
    )
    assert services.send_due_reminders(now=now) == 1
    services.update_task(user=staff.manager, task=task, changes={"title": "Другое название"})
    task.refresh_from_db()
    assert task.reminded_at is not None  # same reminder time: nothing to re-arm

    services.update_task(user=staff.manager, task=task, changes={"remind_at": now + timedelta(hours=1)})
    task.refresh_from_db()
    assert task.reminded_at is None
    assert not Notification.objects.filter(task=task).exists()
    assert services.send_due_reminders(now=now + timedelta(hours=1)) == 1
    assert Notification.objects.filter(task=task).count() == 1


def test_complete_and_reopen(staff):
    task = services.create_task(user=staff.manager, title="Задача", assignee=staff.manager)
    done_at = timezone.now()
    task = services.complete_task(user=staff.head, task=task, now=done_at)
    task.refresh_from_db()
    assert (task.is_done, task.done_at, task.completed_by) == (True, done_at, staff.head)
    # Completing again keeps the first completion.
    services.complete_task(user=staff.manager, task=task, now=done_at + timedelta(hours=1))
    task.refresh_from_db()
    assert (task.done_at, task.completed_by) == (done_at, staff.head)

    services.reopen_task(user=staff.manager, task=task)
    task.refresh_from_db()
    assert (task.is_done, task.done_at, task.completed_by) == (False, None, None)


# --- notes ----------------------------------------------------------------------------------------


def test_add_note(staff, own_counterparty):
    deal = DealFactory(counterparty=own_counterparty)
    note = services.add_note(user=staff.manager, counterparty=own_counterparty, deal=deal, text=" Договорились ")
    assert Note.objects.get() == note
    assert (note.text, note.author, note.deal) == ("Договорились", staff.manager, deal)
    note = services.update_note(user=staff.manager, note=note, text="Перезвонить")
    note.refresh_from_db()
    assert note.text == "Перезвонить"


def test_add_note_refusals(staff, own_counterparty):
    foreign = CounterpartyFactory(owner=staff.outsider)
    cases = [
        ({"counterparty": foreign, "text": "x"}, "counterparty"),
        ({"counterparty": own_counterparty, "text": "  "}, "text"),
        ({"counterparty": own_counterparty, "text": "x", "deal": DealFactory(counterparty=foreign)}, "deal"),
        (
            {
                "counterparty": own_counterparty,
                "text": "x",
                "deal": DealFactory(counterparty=CounterpartyFactory(owner=staff.manager)),
            },
            "deal",
        ),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as error:
            services.add_note(user=staff.manager, **kwargs)
        assert field_of(error) == {field}
    assert not Note.objects.exists()


# --- reminders ------------------------------------------------------------------------------------


def test_send_due_reminders_notifies_once_and_emails(staff):
    now = timezone.now()
    due = make_task(title="Позвонить", assignee=staff.manager, remind_at=now - timedelta(minutes=5))
    make_task(title="Будущее", assignee=staff.manager, remind_at=now + timedelta(minutes=5))
    make_task(title="Сделано", assignee=staff.manager, remind_at=now - timedelta(minutes=5), is_done=True)
    make_task(title="Без напоминания", assignee=staff.manager)

    assert services.send_due_reminders(now=now) == 1

    notification = Notification.objects.get()
    assert (notification.user, notification.task) == (staff.manager, due)
    assert "Позвонить" in notification.text
    assert notification.url == due.get_absolute_url()
    due.refresh_from_db()
    assert due.reminded_at == now
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [staff.manager.email]
    assert "Позвонить" in mail.outbox[0].subject

    # A second run (or a second consumer) finds nothing left to do.
    assert services.send_due_reminders(now=now + timedelta(minutes=1)) == 0
    assert Notification.objects.count() == 1
    assert len(mail.outbox) == 1


def test_reminder_survives_a_notification_already_made_by_another_consumer(staff):
    now = timezone.now()
    task = make_task(assignee=staff.manager, remind_at=now)
    Notification.objects.create(user=staff.manager, task=task, text="от другого процесса")
    assert services.send_due_reminders(now=now) == 1
    assert Notification.objects.filter(task=task).count() == 1
    task.refresh_from_db()
    assert task.reminded_at == now


def test_reminder_without_email_address_still_notifies(staff):
    staff.manager.email = ""
    staff.manager.save(update_fields=["email"])
    make_task(assignee=staff.manager, remind_at=timezone.now())
    assert services.send_due_reminders() == 1
    assert Notification.objects.filter(user=staff.manager).count() == 1
    assert mail.outbox == []


def test_failing_mail_server_does_not_undo_the_reminder(staff, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", 9  # discard port: connection refused
    task = make_task(assignee=staff.manager, remind_at=timezone.now())
    assert services.send_due_reminders() == 1
    task.refresh_from_db()
    assert task.reminded_at is not None
    assert Notification.objects.filter(task=task).exists()


def test_send_due_reminders_refuses_naive_now(db):
    with pytest.raises(ValidationError):
        services.send_due_reminders(now=datetime(2026, 3, 2, 10, 0))  # noqa: DTZ001


def test_many_due_reminders_in_fixed_queries(staff, django_assert_max_num_queries):
    now = timezone.now()
    for _ in range(30):
        make_task(assignee=staff.manager, remind_at=now)
    with django_assert_max_num_queries(6):
        assert services.send_due_reminders(now=now, send_email=False) == 30
    assert Notification.objects.count() == 30
