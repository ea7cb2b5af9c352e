from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from sdelka.accounts.visibility import VisibleQuerySet, counterparty_q
from sdelka.core.models import TimeStampedModel


class CounterpartyKind(models.TextChoices):
    LEGAL = "legal", _("Legal entity")
    ENTREPRENEUR = "entrepreneur", _("Individual entrepreneur")
    PERSON = "person", _("Person")


class CounterpartyGroup(models.Model):
    """A folder of counterparties, like the groups of the 1C catalogue «Контрагенты»."""

    name = models.CharField(_("name"), max_length=150)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent group"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )

    class Meta:
        verbose_name = _("counterparty group")
        verbose_name_plural = _("counterparty groups")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=60, unique=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class CounterpartyQuerySet(VisibleQuerySet):
    def visible_to(self, user: Any) -> models.QuerySet:
        return self.filter(counterparty_q(user))


class Counterparty(TimeStampedModel):
    kind = models.CharField(_("kind"), max_length=20, choices=CounterpartyKind.choices, default=CounterpartyKind.LEGAL)
    name = models.CharField(_("short name"), max_length=255, db_index=True)
    full_name = models.CharField(_("full name"), max_length=500, blank=True)
    inn = models.CharField(_("ИНН"), max_length=12, blank=True, db_index=True)
    kpp = models.CharField(_("КПП"), max_length=9, blank=True)
    ogrn = models.CharField(_("ОГРН / ОГРНИП"), max_length=15, blank=True)
    okpo = models.CharField(_("ОКПО"), max_length=14, blank=True)
    legal_address = models.TextField(_("legal address"), blank=True)
    postal_address = models.TextField(_("postal address"), blank=True)
    phones = models.CharField(_("phones"), max_length=255, blank=True, help_text=_("Separate several with commas."))
    emails = models.CharField(_("e-mails"), max_length=255, blank=True, help_text=_("Separate several with commas."))
    site = models.CharField(_("site"), max_length=255, blank=True)
    group = models.ForeignKey(
        CounterpartyGroup,
        verbose_name=_("group"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="counterparties",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        related_name="owned_counterparties",
        db_index=False,  # (owner, id) and (owner, name) below serve every lookup by owner
    )
    co_owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, verbose_name=_("co-owners"), blank=True, related_name="co_owned_counterparties"
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags"), blank=True, related_name="counterparties")
    is_vip = models.BooleanField(_("VIP"), default=False)
    vip_users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("users allowed to see this VIP"),
        blank=True,
        related_name="vip_counterparties",
    )
    is_active = models.BooleanField(_("active"), default=True)
    comment = models.TextField(_("comment"), blank=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = CounterpartyQuerySet.as_manager()

    class Meta:
        verbose_name = _("counterparty")
        verbose_name_plural = _("counterparties")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["inn", "kpp"], condition=~models.Q(inn=""), name="counterparty_unique_inn_kpp"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "name"]),
            models.Index(fields=["is_vip"]),
            # The ids a manager or a head sees by ownership, read from the index alone (accounts.visibility).
            models.Index(fields=["owner", "id"], name="counterparty_owner_ids"),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return f"/counterparties/{self.pk}/"


class BankAccountBase(models.Model):
    bik = models.CharField(_("БИК"), max_length=9)
    bank_name = models.CharField(_("bank"), max_length=255)
    correspondent_account = models.CharField(_("correspondent account"), max_length=20, blank=True)
    number = models.CharField(_("account number"), max_length=20)
    currency = models.ForeignKey("core.Currency", verbose_name=_("currency"), on_delete=models.PROTECT, default="RUB")
    is_main = models.BooleanField(_("main account"), default=False)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.number} ({self.bank_name})"


class CounterpartyBankAccount(BankAccountBase):
    counterparty = models.ForeignKey(
        Counterparty, verbose_name=_("counterparty"), on_delete=models.CASCADE, related_name="bank_accounts"
    )

    objects = VisibleQuerySet.as_manager()

    class Meta:
        verbose_name = _("bank account")
        verbose_name_plural = _("bank accounts")
        ordering = ["-is_main", "id"]
        constraints = [
            models.UniqueConstraint(fields=["counterparty", "number", "bik"], name="counterparty_account_unique"),
            models.UniqueConstraint(
                fields=["counterparty"], condition=models.Q(is_main=True), name="counterparty_one_main_account"
            ),
        ]


class ContactPerson(TimeStampedModel):
    counterparty = models.ForeignKey(
        Counterparty, verbose_name=_("counterparty"), on_delete=models.CASCADE, related_name="contacts"
    )
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    first_name = models.CharField(_("first name"), max_length=100)
    middle_name = models.CharField(_("middle name"), max_length=100, blank=True)
    position = models.CharField(_("position"), max_length=150, blank=True)
    phones = models.CharField(_("phones"), max_length=255, blank=True)
    emails = models.CharField(_("e-mails"), max_length=255, blank=True)
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    objects = VisibleQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact person")
        verbose_name_plural = _("contact persons")
        ordering = ["last_name", "first_name", "id"]

    def __str__(self) -> str:
        return " ".join(part for part in (self.last_name, self.first_name, self.middle_name) if part)
