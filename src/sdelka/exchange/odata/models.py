"""OData setup of a connection: the cached `$metadata`, mapping rules and sync tasks (models of the exchange app).

A `MappingRule` maps one Sdelka entity to one 1C entity set: field pairs (each with a transform and an owner),
key fields, an OData `$filter` and a direction. Rules are data, validated against the connection's parsed
`$metadata` when saved (`rules.validate_rule`). A `SyncTask` runs its rules in order with its options, and
keeps a checkpoint (rule and offset) so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _

from sdelka.accounts.models import Role
from sdelka.exchange.models import Connection, Direction, ExchangeRun

from .schedule import DEFAULT_SCHEDULE, next_fire, validate_cron


class ODataMetadata(models.Model):
    """`$metadata` of a connection, parsed once into a compact form (the raw document can be 17 MB)."""

    connection = models.OneToOneField(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="odata_metadata"
    )
    sha1 = models.CharField(_("sha1 of the document"), max_length=40)
    size = models.BigIntegerField(_("size, bytes"), default=0)
    configuration = models.CharField(_("configuration"), max_length=20, blank=True)
    data = models.JSONField(_("parsed metadata"), default=dict)
    fetched_at = models.DateTimeField(_("fetched"), auto_now=True)

    class Meta:
        app_label = "exchange"
        verbose_name = _("OData metadata")
        verbose_name_plural = _("OData metadata")

    def __str__(self) -> str:
        return f"{self.connection} {self.sha1[:8]}"


class SdelkaEntity(models.TextChoices):
    COUNTERPARTY = "counterparty", _("Counterparty")
    PRODUCT = "product", _("Product")
    UNIT = "unit", _("Unit")
    ORGANISATION = "organisation", _("Organisation")
    PRICE_TYPE = "price_type", _("Price type")
    PRICE = "price", _("Price")
    INVOICE = "invoice", _("Invoice")
    PAYMENT = "payment", _("Incoming payment")
    DEBT = "debt", _("Counterparty debt")
    BANK_ACCOUNT = "bank_account", _("Counterparty's bank account")
    CONTACT = "contact", _("Contact person")
    CONTRACT = "contract", _("Contract")


class Ownership(models.TextChoices):
    ONEC = "onec", _("1C wins")
    SDELKA = "sdelka", _("Sdelka wins")
    NEWEST = "newest", _("Newest wins")
    ASK = "ask", _("Ask")


class MappingRule(models.Model):
    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="mapping_rules"
    )
    name = models.CharField(_("name"), max_length=150)
    entity = models.CharField(_("Sdelka object"), max_length=20, choices=SdelkaEntity.choices)
    entity_set = models.CharField(_("1C object"), max_length=255)
    direction = models.CharField(_("direction"), max_length=5, choices=Direction.choices, default=Direction.IN)
    key_fields = models.JSONField(_("key fields"), default=list, blank=True)
    filter = models.TextField(_("OData $filter"), blank=True)
    # [{"sdelka": "name", "onec": "Description", "transform": {...}, "ownership": "onec"}, …]
    fields = models.JSONField(_("fields"), default=list, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        app_label = "exchange"
        verbose_name = _("mapping rule")
        verbose_name_plural = _("mapping rules")
        ordering = ["connection", "name"]
        constraints = [models.UniqueConstraint(fields=["connection", "name"], name="mapping_rule_unique_name")]

    def __str__(self) -> str:
        return f"{self.name}: {self.entity} ↔ {self.entity_set}"


class OnRecordError(models.TextChoices):
    GO_ON = "go_on", _("Go on")
    SKIP_RULE = "skip_rule", _("Skip to the next rule")
    STOP = "stop", _("Stop")


class OnRuleError(models.TextChoices):
    GO_ON = "go_on", _("Go on")
    STOP = "stop", _("Stop")


class SyncTask(models.Model):
    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="sync_tasks"
    )
    name = models.CharField(_("name"), max_length=150)
    rules: models.ManyToManyField[MappingRule, TaskRule] = models.ManyToManyField(
        MappingRule, through="TaskRule", verbose_name=_("rules"), related_name="tasks"
    )
    create_allowed = models.BooleanField(_("create new records"), default=True)
    on_record_error = models.CharField(
        _("on a record error"), max_length=10, choices=OnRecordError.choices, default=OnRecordError.GO_ON
    )
    on_rule_error = models.CharField(
        _("on a rule error"), max_length=10, choices=OnRuleError.choices, default=OnRuleError.STOP
    )
    page_size = models.PositiveIntegerField(_("page size"), default=500)
    post_documents = models.BooleanField(
        _("post documents written to 1C"), default=False, help_text=_("Documents sent to 1C are posted there.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    schedule = models.CharField(
        _("schedule"),
        max_length=100,
        blank=True,
        default=DEFAULT_SCHEDULE,
        validators=[validate_cron],
        help_text=_('A cron expression: minute hour day month weekday ("0 * * * *" is hourly). Empty: manual only.'),
    )
    full_resync = models.BooleanField(
        _("full resync on schedule"),
        default=False,
        help_text=_("Scheduled runs compare every object, even those 1C reports unchanged."),
    )
    next_run_at = models.DateTimeField(_("next scheduled run"), null=True, blank=True, db_index=True)
    run_teams = models.ManyToManyField(
        "accounts.Team",
        verbose_name=_("teams that may run it"),
        blank=True,
        related_name="+",
        help_text=_("Administrators and integrators may always run a task; members of these teams may run it too."),
    )
    # {"run": id, "rule": id, "skip": n}: where an interrupted run stopped; {} when the last run completed.
    checkpoint = models.JSONField(_("checkpoint"), default=dict, blank=True)
    last_run = models.ForeignKey(
        ExchangeRun, verbose_name=_("last run"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        app_label = "exchange"
        verbose_name = _("sync task")
        verbose_name_plural = _("sync tasks")
        ordering = ["connection", "name"]
        constraints = [models.UniqueConstraint(fields=["connection", "name"], name="sync_task_unique_name")]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # The next run follows the schedule as saved now; `schedule.start_due_tasks` moves it on after each start.
        self.next_run_at = next_fire(self.schedule) if self.schedule and self.is_active else None
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "next_run_at"}
        super().save(*args, **kwargs)

    def may_run(self, user: Any) -> bool:
        """Administrators and integrators (and superusers) always; others when their team is one of `run_teams`."""
        if user is None or not user.is_authenticated or not user.is_active:
            return False
        if user.is_superuser or getattr(user, "role", "") in (Role.ADMIN, Role.INTEGRATOR):
            return True
        team_id = getattr(user, "team_id", None)
        return team_id is not None and self.run_teams.filter(pk=team_id).exists()

    def ordered_rules(self) -> list[MappingRule]:
        return [link.rule for link in self.links.select_related("rule").order_by("position", "id")]

    def option_dict(self) -> dict[str, Any]:
        return {
            "create_allowed": self.create_allowed,
            "on_record_error": self.on_record_error,
            "on_rule_error": self.on_rule_error,
            "page_size": self.page_size,
            "post_documents": self.post_documents,
            "schedule": self.schedule,
            "full_resync": self.full_resync,
        }


class TaskRule(models.Model):
    task = models.ForeignKey(SyncTask, verbose_name=_("task"), on_delete=models.CASCADE, related_name="links")
    rule = models.ForeignKey(MappingRule, verbose_name=_("rule"), on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(_("position"), default=0)

    class Meta:
        app_label = "exchange"
        verbose_name = _("task rule")
        verbose_name_plural = _("task rules")
        ordering = ["task", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["task", "rule"], name="task_rule_unique")]

    def __str__(self) -> str:
        return f"{self.task_id}#{self.position}: {self.rule_id}"


class CounterpartyDebt(models.Model):
    """What a counterparty owes according to 1C's settlement registers (positive: owes us; negative: paid in
    advance), as of the moment it was read; one per connection and counterparty, replaced on every read."""

    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="debts"
    )
    counterparty = models.ForeignKey(
        "parties.Counterparty", verbose_name=_("counterparty"), on_delete=models.CASCADE, related_name="debts_1c"
    )
    amount = models.DecimalField(_("debt according to 1C"), max_digits=18, decimal_places=2)
    currency = models.ForeignKey("core.Currency", verbose_name=_("currency"), on_delete=models.PROTECT, default="RUB")
    as_of = models.DateTimeField(_("as of"))
    register = models.CharField(_("1C register"), max_length=255)

    class Meta:
        app_label = "exchange"
        verbose_name = _("counterparty debt in 1C")
        verbose_name_plural = _("counterparty debts in 1C")
        constraints = [
            models.UniqueConstraint(fields=["connection", "counterparty", "currency"], name="counterparty_debt_unique")
        ]

    def __str__(self) -> str:
        return f"{self.counterparty_id}: {self.amount} {self.currency_id} @ {self.as_of:%Y-%m-%d %H:%M}"
