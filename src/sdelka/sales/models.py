from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from sdelka.accounts.visibility import VisibleQuerySet
from sdelka.core.models import TimeStampedModel
from sdelka.core.vat import VatMode, VatRate
from sdelka.parties.models import BankAccountBase

from .facsimile import FacsimilePath, validate_facsimile

FACSIMILE_HELP = _(
    "PNG or JPEG up to 1 MB, best on a transparent or white background; printed over the signature lines "
    "when an invoice is printed with facsimile."
)

MONEY: dict[str, Any] = {"max_digits": 18, "decimal_places": 2}
QUANTITY: dict[str, Any] = {"max_digits": 15, "decimal_places": 3}


class Organisation(TimeStampedModel):
    """One of our own legal entities: the supplier on an invoice, the recipient of payments."""

    name = models.CharField(_("short name"), max_length=255)
    full_name = models.CharField(_("full name"), max_length=500, blank=True)
    is_entrepreneur = models.BooleanField(_("individual entrepreneur"), default=False)
    inn = models.CharField(_("ИНН"), max_length=12, unique=True)
    kpp = models.CharField(_("КПП"), max_length=9, blank=True)
    ogrn = models.CharField(_("ОГРН / ОГРНИП"), max_length=15, blank=True)
    okpo = models.CharField(_("ОКПО"), max_length=14, blank=True)
    legal_address = models.TextField(_("legal address"), blank=True)
    postal_address = models.TextField(_("postal address"), blank=True)
    phone = models.CharField(_("phone"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    director_title = models.CharField(_("director's title"), max_length=100, default="Генеральный директор")
    director_name = models.CharField(_("director"), max_length=255, blank=True)
    accountant_name = models.CharField(_("chief accountant"), max_length=255, blank=True)
    vat_mode = models.CharField(_("default VAT mode"), max_length=10, choices=VatMode.choices, default=VatMode.INCLUDED)
    invoice_prefix = models.CharField(_("invoice number prefix"), max_length=10, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    director_signature = models.FileField(
        _("director's signature (facsimile)"),
        upload_to=FacsimilePath("director"),
        max_length=200,
        blank=True,
        validators=[validate_facsimile],
        help_text=FACSIMILE_HELP,
    )
    accountant_signature = models.FileField(
        _("chief accountant's signature (facsimile)"),
        upload_to=FacsimilePath("accountant"),
        max_length=200,
        blank=True,
        validators=[validate_facsimile],
        help_text=FACSIMILE_HELP,
    )
    stamp = models.FileField(
        _("stamp"),
        upload_to=FacsimilePath("stamp"),
        max_length=200,
        blank=True,
        validators=[validate_facsimile],
        help_text=FACSIMILE_HELP,
    )

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def has_facsimile(self) -> bool:
        return bool(self.director_signature or self.accountant_signature or self.stamp)


class OrganisationBankAccount(BankAccountBase):
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.CASCADE, related_name="bank_accounts"
    )

    class Meta:
        verbose_name = _("organisation bank account")
        verbose_name_plural = _("organisation bank accounts")
        ordering = ["-is_main", "id"]
        constraints = [models.UniqueConstraint(fields=["number", "bik"], name="organisation_account_unique")]


class ContractKind(models.TextChoices):
    SALE = "sale", _("With a buyer")
    PURCHASE = "purchase", _("With a supplier")
    OTHER = "other", _("Other")


class Contract(TimeStampedModel):
    """A contract between one of our organisations and a counterparty («договор контрагента» in 1C): invoices
    name it as their basis, and 1C wants it on every document it books."""

    counterparty = models.ForeignKey(
        "parties.Counterparty", verbose_name=_("counterparty"), on_delete=models.CASCADE, related_name="contracts"
    )
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="contracts",
        help_text=_("Empty: the contract holds for any of our organisations."),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=ContractKind.choices, default=ContractKind.SALE)
    name = models.CharField(_("name"), max_length=255)
    number = models.CharField(_("number"), max_length=50, blank=True)
    date = models.DateField(_("date"), null=True, blank=True)
    valid_until = models.DateField(_("valid until"), null=True, blank=True)
    currency = models.ForeignKey("core.Currency", verbose_name=_("currency"), on_delete=models.PROTECT, default="RUB")
    comment = models.TextField(_("comment"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = VisibleQuerySet.as_manager()

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        ordering = ["counterparty", "-date", "-id"]
        indexes = [models.Index(fields=["counterparty", "is_active"])]

    def __str__(self) -> str:
        return self.name

    @property
    def basis(self) -> str:
        """How the contract reads as an invoice's «Основание»."""
        if not self.number:
            return self.name
        text = f"Договор № {self.number}"
        return f"{text} от {self.date:%d.%m.%Y}" if self.date else text


class Pipeline(models.Model):
    name = models.CharField(_("name"), max_length=150, unique=True)
    is_default = models.BooleanField(_("default"), default=False)

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["-is_default", "name"]

    def __str__(self) -> str:
        return self.name


class StageKind(models.TextChoices):
    OPEN = "open", _("In progress")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, verbose_name=_("pipeline"), on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=150)
    order = models.PositiveSmallIntegerField(_("order"))
    kind = models.CharField(_("kind"), max_length=10, choices=StageKind.choices, default=StageKind.OPEN)
    probability = models.PositiveSmallIntegerField(_("probability, %"), default=0, validators=[MaxValueValidator(100)])

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline", "order"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "order"], name="stage_unique_order"),
            models.UniqueConstraint(fields=["pipeline", "name"], name="stage_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class Deal(TimeStampedModel):
    title = models.CharField(_("title"), max_length=255)
    pipeline = models.ForeignKey(Pipeline, verbose_name=_("pipeline"), on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, verbose_name=_("stage"), on_delete=models.PROTECT, related_name="deals")
    counterparty = models.ForeignKey(
        "parties.Counterparty", verbose_name=_("counterparty"), on_delete=models.PROTECT, related_name="deals"
    )
    contact = models.ForeignKey(
        "parties.ContactPerson",
        verbose_name=_("contact"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deals",
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("owner"), on_delete=models.PROTECT, related_name="deals"
    )
    amount = models.DecimalField(_("amount"), **MONEY, default=Decimal("0.00"), validators=[MinValueValidator(0)])
    currency = models.ForeignKey("core.Currency", verbose_name=_("currency"), on_delete=models.PROTECT, default="RUB")
    expected_close_date = models.DateField(_("expected close date"), null=True, blank=True)
    probability = models.PositiveSmallIntegerField(
        _("probability, %"), null=True, blank=True, validators=[MaxValueValidator(100)]
    )
    source = models.CharField(_("source"), max_length=100, blank=True)
    lost_reason = models.CharField(_("lost reason"), max_length=255, blank=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = VisibleQuerySet.as_manager()

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        ordering = ["-created_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="deal_amount_not_negative")]

    def __str__(self) -> str:
        return self.title


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    ISSUED = "issued", _("Issued")
    SENT = "sent", _("Sent")
    PARTLY_PAID = "partly_paid", _("Partly paid")
    PAID = "paid", _("Paid")
    CANCELLED = "cancelled", _("Cancelled")


# Issued and not yet fully paid: what counts as receivables.
OPEN_INVOICE_STATUSES = (InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTLY_PAID)


class InvoiceNumberSeries(models.Model):
    """The last number given per organisation and year; numbers restart every January like in 1C."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="number_series")
    year = models.PositiveSmallIntegerField()
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("invoice number series")
        verbose_name_plural = _("invoice number series")
        constraints = [models.UniqueConstraint(fields=["organisation", "year"], name="number_series_unique")]

    def __str__(self) -> str:
        return f"{self.organisation} {self.year}: {self.last_number}"


class Invoice(TimeStampedModel):
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT, related_name="invoices"
    )
    year = models.PositiveSmallIntegerField(_("year"))
    sequence = models.PositiveIntegerField(_("sequence number"))
    number = models.CharField(_("number"), max_length=30)
    date = models.DateField(_("date"))
    bank_account = models.ForeignKey(
        OrganisationBankAccount,
        verbose_name=_("bank account"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
    )
    counterparty = models.ForeignKey(
        "parties.Counterparty", verbose_name=_("counterparty"), on_delete=models.PROTECT, related_name="invoices"
    )
    contact = models.ForeignKey(
        "parties.ContactPerson",
        verbose_name=_("contact"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="invoices",
    )
    deal = models.ForeignKey(
        Deal, verbose_name=_("deal"), null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("manager"), on_delete=models.PROTECT, related_name="invoices"
    )
    currency = models.ForeignKey("core.Currency", verbose_name=_("currency"), on_delete=models.PROTECT, default="RUB")
    exchange_rate = models.DecimalField(
        _("exchange rate"),
        max_digits=18,
        decimal_places=4,
        default=Decimal("1.0000"),
        validators=[MinValueValidator(Decimal("0.0001"))],
    )
    vat_mode = models.CharField(_("VAT mode"), max_length=10, choices=VatMode.choices, default=VatMode.INCLUDED)
    due_date = models.DateField(_("due date"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=20, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT, db_index=True
    )
    contract = models.ForeignKey(
        Contract,
        verbose_name=_("contract"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoices",
    )
    basis = models.CharField(
        _("basis"),
        max_length=255,
        blank=True,
        help_text=_("Printed as «Основание»; empty: the contract, or else the deal."),
    )
    comment = models.TextField(_("comment"), blank=True)
    shipped_date = models.DateField(_("shipped"), null=True, blank=True)
    # Totals are derived from the lines by sales.services and stored for lists and reports.
    amount = models.DecimalField(_("amount without VAT added"), **MONEY, default=Decimal("0.00"))
    vat_amount = models.DecimalField(_("VAT"), **MONEY, default=Decimal("0.00"))
    total = models.DecimalField(_("total"), **MONEY, default=Decimal("0.00"))
    paid_amount = models.DecimalField(_("paid"), **MONEY, default=Decimal("0.00"))

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = VisibleQuerySet.as_manager()

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ["-date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "year", "sequence"], name="invoice_unique_sequence"),
            models.CheckConstraint(condition=Q(total__gte=0), name="invoice_total_not_negative"),
        ]
        indexes = [models.Index(fields=["counterparty", "status"]), models.Index(fields=["due_date", "status"])]

    def __str__(self) -> str:
        return f"№ {self.number} от {self.date:%d.%m.%Y}"

    @property
    def open_amount(self) -> Decimal:
        return max(self.total - self.paid_amount, Decimal("0.00"))


class InvoiceLineQuerySet(VisibleQuerySet):
    counterparty_path = "invoice__counterparty__"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, verbose_name=_("invoice"), on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField(_("№"))
    product = models.ForeignKey(
        "catalog.Product",
        verbose_name=_("product"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoice_lines",
    )
    variant = models.ForeignKey(
        "catalog.Variant",
        verbose_name=_("variant"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invoice_lines",
    )
    description = models.CharField(_("goods, works, services"), max_length=1000)
    quantity = models.DecimalField(_("quantity"), **QUANTITY, validators=[MinValueValidator(Decimal("0.001"))])
    unit = models.ForeignKey("catalog.Unit", verbose_name=_("unit"), null=True, blank=True, on_delete=models.PROTECT)
    price = models.DecimalField(_("price"), **MONEY, validators=[MinValueValidator(0)])
    discount = models.DecimalField(_("discount"), **MONEY, default=Decimal("0.00"), validators=[MinValueValidator(0)])
    vat_rate = models.CharField(_("VAT rate"), max_length=4, choices=VatRate.choices, default=VatRate.VAT_22)
    amount = models.DecimalField(_("amount"), **MONEY)
    vat_amount = models.DecimalField(_("VAT"), **MONEY)
    total = models.DecimalField(_("total"), **MONEY)

    objects = InvoiceLineQuerySet.as_manager()

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_unique_position"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="invoice_line_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gte=0), name="invoice_line_price_not_negative"),
        ]

    def __str__(self) -> str:
        return self.description


class PaymentDirection(models.TextChoices):
    INCOMING = "in", _("Incoming")
    OUTGOING = "out", _("Outgoing")


class PaymentSource(models.TextChoices):
    MANUAL = "manual", _("Entered by hand")
    BANK = "bank", _("Bank statement")
    ONEC = "1c", _("1C")


class PaymentQuerySet(VisibleQuerySet):
    def visible_to(self, user: Any) -> models.QuerySet:
        # A payment from a payer unknown to the CRM has no counterparty: only those who see everything see it.
        from sdelka.accounts.visibility import counterparty_q

        scoped = counterparty_q(user, "counterparty__")
        if getattr(user, "sees_everything", False):
            # An empty Q() means "everything"; OR-ing it with a condition would keep only the condition.
            return self.all() if not scoped else self.filter(scoped | Q(counterparty__isnull=True))
        return self.filter(scoped)


class Payment(TimeStampedModel):
    organisation = models.ForeignKey(
        Organisation, verbose_name=_("organisation"), on_delete=models.PROTECT, related_name="payments"
    )
    bank_account = models.ForeignKey(
        OrganisationBankAccount,
        verbose_name=_("bank account"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
    )
    counterparty = models.ForeignKey(
        "parties.Counterparty",
        verbose_name=_("counterparty"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="payments",
    )
    direction = models.CharField(
        _("direction"), max_length=3, choices=PaymentDirection.choices, default=PaymentDirection.INCOMING
    )
    source = models.CharField(_("source"), max_length=10, choices=PaymentSource.choices, default=PaymentSource.MANUAL)
    date = models.DateField(_("date"))
    number = models.CharField(_("number"), max_length=30, blank=True)
    amount = models.DecimalField(_("amount"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    currency = models.ForeignKey("core.Currency", verbose_name=_("currency"), on_delete=models.PROTECT, default="RUB")
    purpose = models.TextField(_("purpose"), blank=True)
    payer_name = models.CharField(_("payer"), max_length=500, blank=True)
    payer_inn = models.CharField(_("payer ИНН"), max_length=12, blank=True)
    payer_kpp = models.CharField(_("payer КПП"), max_length=9, blank=True)
    payer_account = models.CharField(_("payer account"), max_length=20, blank=True)
    allocated_amount = models.DecimalField(_("allocated"), **MONEY, default=Decimal("0.00"))
    # Kept, never deleted, when its source withdrew it (1C unposted or deleted the document): no allocations.
    cancelled = models.BooleanField(_("cancelled"), default=False, db_default=False)  # bulk inserts omit it
    cancel_reason = models.CharField(_("why cancelled"), max_length=255, blank=True, db_default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("entered by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    history = HistoricalRecords(excluded_fields=["updated_at"])
    objects = PaymentQuerySet.as_manager()

    class Meta:
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ["-date", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive")]

    def __str__(self) -> str:
        return f"№ {self.number} от {self.date:%d.%m.%Y}: {self.amount}"

    @property
    def unallocated_amount(self) -> Decimal:
        return self.amount - self.allocated_amount


class PaymentAllocation(models.Model):
    payment = models.ForeignKey(
        Payment, verbose_name=_("payment"), on_delete=models.CASCADE, related_name="allocations"
    )
    invoice = models.ForeignKey(
        Invoice, verbose_name=_("invoice"), on_delete=models.PROTECT, related_name="allocations"
    )
    amount = models.DecimalField(_("amount"), **MONEY, validators=[MinValueValidator(Decimal("0.01"))])
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("payment allocation")
        verbose_name_plural = _("payment allocations")
        constraints = [
            models.UniqueConstraint(fields=["payment", "invoice"], name="allocation_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="allocation_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.payment} → {self.invoice}: {self.amount}"


class InvoiceReminder(models.Model):
    """A payment reminder made for an invoice on a day (a task for its manager, maybe an e-mail to the
    client): unique per invoice and day, so the daily job never repeats itself."""

    invoice = models.ForeignKey(
        Invoice, verbose_name=_("invoice"), on_delete=models.CASCADE, related_name="payment_reminders"
    )
    day = models.DateField(_("day"))
    kind = models.CharField(_("kind"), max_length=10)  # "before" or "after" the due date
    task = models.ForeignKey(
        "activities.Task", verbose_name=_("task"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    emailed_to = models.CharField(_("e-mailed to"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("invoice payment reminder")
        verbose_name_plural = _("invoice payment reminders")
        ordering = ["-day", "-id"]
        constraints = [models.UniqueConstraint(fields=["invoice", "day"], name="invoice_reminder_once_a_day")]

    def __str__(self) -> str:
        return f"{self.invoice_id} {self.day} {self.kind}"
