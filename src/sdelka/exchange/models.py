"""The exchange hub: connections to 1C bases, the id map, runs with their journal, protocol sessions.

One `Connection` is one 1C base. `ExternalRef` maps a 1C id (per base and kind) to our object and is never
reused. An `ExchangeRun` is one exchange (one "сеанс" of the site protocol, one OData pull, one bank
statement) with its counts and its journal of `ExchangeEvent`s. At most one run per connection and route
is queued or running: a partial unique constraint is the lock.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .crypto import EncryptedTextField

DEFAULT_FILE_LIMIT = 8 * 1024 * 1024
DEFAULT_KEEP_FILES_DAYS = 7
DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024**3
DEFAULT_MAX_UNPACKED_BYTES = 8 * 1024**3
DEFAULT_MAX_ZIP_RATIO = 200


class ConnectionKind(models.TextChoices):
    SITE = "site", _("Exchange with website (CommerceML)")
    ODATA = "odata", _("OData")
    BANK = "bank", _("Client-bank")


class SaleEncoding(models.TextChoices):
    WINDOWS_1251 = "windows-1251", "windows-1251"
    UTF8 = "utf-8", _("UTF-8 with BOM")


# The user the exchanges act as (apply_orders.exchange_user): owner of what 1C brings unless a connection names one.
EXCHANGE_USERNAME = "1c-exchange"


class Connection(models.Model):
    name = models.CharField(_("name"), max_length=150, unique=True)
    kind = models.CharField(_("kind"), max_length=10, choices=ConnectionKind.choices, default=ConnectionKind.SITE)
    is_active = models.BooleanField(_("active"), default=True)
    # The login and password 1C types into its exchange node (inbound, site protocol). Hashed, never shown.
    login = models.CharField(_("exchange login"), max_length=150, unique=True, null=True, blank=True)
    password = models.CharField(_("exchange password (hash)"), max_length=256, blank=True)
    # Outbound secrets (OData user's password, bank token) must be sent, so they are encrypted.
    url = models.URLField(_("1C address"), max_length=500, blank=True)
    remote_user = models.CharField(_("user in 1C"), max_length=150, blank=True)
    remote_secret = EncryptedTextField(_("password in 1C"), blank=True)
    prefix = models.CharField(
        _("base prefix"), max_length=10, blank=True, help_text=_("The prefix of this 1C base's document numbers.")
    )
    options = models.JSONField(_("options"), default=dict, blank=True)
    counterparty_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner of new counterparties"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_(
            "Counterparties this 1C base brings that Sdelka did not have are given to this user (say, the head "
            "of sales who hands them out). Empty: to the exchange's own user, so only the director and "
            "administrators see them."
        ),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("connection")
        verbose_name_plural = _("connections")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    # --- password (inbound) ---

    def set_password(self, raw: str) -> None:
        self.password = make_password(raw)

    def check_password(self, raw: str) -> bool:
        return bool(self.password) and check_password(raw, self.password)

    # --- typed options ---

    def _option(self, name: str, default: Any) -> Any:
        return (self.options or {}).get(name, default)

    @property
    def match_counterparties_by_inn_kpp(self) -> bool:
        return bool(self._option("match_counterparties_by_inn_kpp", True))

    @property
    def match_products_by_article(self) -> bool:
        return bool(self._option("match_products_by_article", False))

    @property
    def deactivate_missing_products(self) -> bool:
        return bool(self._option("deactivate_missing_products", False))

    @property
    def order_status_map(self) -> dict[str, str]:
        value = self._option("order_status_map", {})
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}

    @property
    def sale_encoding(self) -> str:
        value = self._option("sale_encoding", SaleEncoding.WINDOWS_1251)
        return value if value in SaleEncoding.values else SaleEncoding.WINDOWS_1251

    def _positive_int(self, name: str, default: int) -> int:
        try:
            value = int(self._option(name, default))
        except (TypeError, ValueError):
            return default
        return value if value > 0 else default

    @property
    def file_limit(self) -> int:
        return self._positive_int("file_limit", DEFAULT_FILE_LIMIT)

    @property
    def keep_files_days(self) -> int:
        return self._positive_int("keep_files_days", DEFAULT_KEEP_FILES_DAYS)

    @property
    def max_upload_bytes(self) -> int:
        return self._positive_int("max_upload_bytes", DEFAULT_MAX_UPLOAD_BYTES)

    @property
    def max_unpacked_bytes(self) -> int:
        return self._positive_int("max_unpacked_bytes", DEFAULT_MAX_UNPACKED_BYTES)

    @property
    def max_zip_ratio(self) -> int:
        return self._positive_int("max_zip_ratio", DEFAULT_MAX_ZIP_RATIO)


class RefKind(models.TextChoices):
    GROUP = "group", _("Product group")
    UNIT = "unit", _("Unit")
    PROPERTY = "property", _("Property")
    PROPERTY_OPTION = "property_option", _("Property value")
    PRODUCT = "product", _("Product")
    VARIANT = "variant", _("Variant")
    PRICE_TYPE = "price_type", _("Price type")
    WAREHOUSE = "warehouse", _("Warehouse")
    COUNTERPARTY = "counterparty", _("Counterparty")
    INVOICE = "invoice", _("Invoice")
    ORDER = "order", _("Order (CommerceML document)")
    PAYMENT = "payment", _("Payment")
    ORGANISATION = "organisation", _("Organisation")
    BANK_ACCOUNT = "bank_account", _("Counterparty's bank account")
    CONTACT = "contact", _("Contact person")
    CONTRACT = "contract", _("Contract")


class ExternalRef(models.Model):
    """A 1C id of one base ↔ our object. Unique per connection, kind and id; never reused for another object."""

    # No index of their own: the unique (connection, kind, external_id) and (content_type, object_id) lead with them.
    connection = models.ForeignKey(
        Connection,
        verbose_name=_("connection"),
        on_delete=models.CASCADE,
        related_name="refs",
        db_index=False,
        db_constraint=False,
    )
    kind = models.CharField(_("kind"), max_length=20, choices=RefKind.choices)
    external_id = models.CharField(_("1C id"), max_length=255)
    code = models.CharField(_("code in 1C"), max_length=100, blank=True)
    content_type = models.ForeignKey(
        ContentType, verbose_name=_("object type"), on_delete=models.PROTECT, db_index=False, db_constraint=False
    )
    object_id = models.BigIntegerField(_("object id"))
    content_hash = models.CharField(_("content hash"), max_length=40, blank=True)
    version = models.CharField(_("1C version"), max_length=100, blank=True)
    # Sdelka field → the value both sides agreed on at the last sync: the base a two-way sync compares each
    # side with to tell who changed the field since (see exchange/odata/merge.py).
    synced = models.JSONField(
        _("last synced values"), null=True, blank=True, default=dict
    )  # NULL: rows of the bulk engine
    seen_run = models.ForeignKey(
        "ExchangeRun",
        verbose_name=_("last seen in run"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("external id")
        verbose_name_plural = _("external ids")
        constraints = [
            models.UniqueConstraint(fields=["connection", "kind", "external_id"], name="external_ref_unique"),
        ]
        indexes = [models.Index(fields=["content_type", "object_id"], name="external_ref_object")]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.kind}:{self.external_id} → {self.object_id}"


class ElementDigest(models.Model):
    """What one product or offer element of a catalogue file looked like when it was last applied.

    ``digest`` covers the element's bytes, the state of the base's reference data it was read against (groups,
    properties and their values, price types, warehouses) and its pictures; ``object_id`` is the product or
    variant it was applied to. The next upload skips an element whose digest and object are the same without
    turning it into records. ``source`` tells apart the shapes one 1C id comes in ("product:import",
    "offer:offers", "offer:prices", "offer:rests"), which say different things about the same offer.
    """

    # No index of its own: the unique (connection, source, external_id) leads with it.
    connection = models.ForeignKey(
        Connection,
        verbose_name=_("connection"),
        on_delete=models.CASCADE,
        related_name="element_digests",
        db_index=False,
        db_constraint=False,
    )
    source = models.CharField(_("source"), max_length=30)
    external_id = models.CharField(_("1C id"), max_length=255)
    digest = models.CharField(_("digest"), max_length=40)
    object_id = models.BigIntegerField(_("object id"))

    class Meta:
        verbose_name = _("element digest")
        verbose_name_plural = _("element digests")
        constraints = [
            models.UniqueConstraint(fields=["connection", "source", "external_id"], name="element_digest_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.source}:{self.external_id}"


class Route(models.TextChoices):
    CATALOG = "catalog", _("Catalogue from 1C")
    SALE = "sale", _("Orders")
    ODATA = "odata", _("OData")
    BANK = "bank", _("Bank statement")


class Direction(models.TextChoices):
    IN = "in", _("From 1C")
    OUT = "out", _("To 1C")
    BOTH = "both", _("Both ways")


class Trigger(models.TextChoices):
    ONEC = "onec", _("Started by 1C")
    MANUAL = "manual", _("Started by a user")
    SCHEDULE = "schedule", _("On schedule")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCESS = "success", _("Succeeded")
    FAILED = "failed", _("Failed")


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class ExchangeRun(models.Model):
    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="runs"
    )
    route = models.CharField(_("route"), max_length=10, choices=Route.choices)
    direction = models.CharField(_("direction"), max_length=5, choices=Direction.choices, default=Direction.IN)
    trigger = models.CharField(_("trigger"), max_length=10, choices=Trigger.choices, default=Trigger.ONEC)
    status = models.CharField(_("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    done = models.PositiveIntegerField(_("done"), default=0)
    total = models.PositiveIntegerField(_("total"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    skipped = models.PositiveIntegerField(_("skipped"), default=0)
    failed = models.PositiveIntegerField(_("failed"), default=0)
    started_at = models.DateTimeField(_("started"), auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    folder = models.CharField(_("files folder"), max_length=255, blank=True)
    files_removed = models.BooleanField(_("files removed"), default=False)
    # A full (not "changes only") product upload was applied while the connection deactivates missing products,
    # its products marked as seen: products missing from it may be deactivated.
    full_products = models.BooleanField(_("full product upload"), default=False)

    class Meta:
        verbose_name = _("exchange run")
        verbose_name_plural = _("exchange runs")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "route"], condition=Q(status__in=["queued", "running"]), name="one_active_run"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.connection} {self.route} #{self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        return min(100, self.done * 100 // self.total) if self.total else 0

    def busy_message(self) -> str:
        """Why another run of the connection cannot start while this one is active."""
        if self.status == RunStatus.QUEUED:  # made by the API, waiting for the worker to take it
            return _(
                "Run #%(id)s of this connection is queued for the background worker and has not started; if it "
                "does not start, check that the worker (sdelka run_huey) is running."
            ) % {"id": self.pk}
        return _("Run #%(id)s of this connection is still going.") % {"id": self.pk}


class EventLevel(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")


class ExchangeEvent(models.Model):
    """One line of the journal: of a run, or of a connection when no run exists yet (a wrong password)."""

    # Both foreign keys are served by the composite indexes below (their leading column), not by their own.
    run = models.ForeignKey(
        ExchangeRun,
        verbose_name=_("run"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    connection = models.ForeignKey(
        Connection,
        verbose_name=_("connection"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    level = models.CharField(_("level"), max_length=10, choices=EventLevel.choices, default=EventLevel.INFO)
    external_id = models.CharField(_("1C id"), max_length=255, blank=True)
    object_repr = models.CharField(_("object"), max_length=500, blank=True)
    message = models.TextField(_("message"))
    field = models.CharField(_("field"), max_length=100, blank=True)
    value = models.TextField(_("value"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("exchange event")
        verbose_name_plural = _("exchange events")
        ordering = ["id"]
        # The journal of a run is paged by keyset (run, id), filtered by level; a run can have 100,000+ lines.
        indexes = [
            models.Index(fields=["run", "id"], name="exchange_event_run"),
            models.Index(fields=["run", "level", "id"], name="exchange_event_run_level"),
            models.Index(fields=["connection", "level", "id"], name="exchange_event_conn_level"),
        ]

    def __str__(self) -> str:
        return f"[{self.level}] {self.message[:80]}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCESS = "success", _("Succeeded")
    FAILED = "failed", _("Failed")


class ExchangeSession(models.Model):
    """The site protocol's session, created by `checkauth`; 1C sends back its cookie or `sessid`."""

    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="sessions"
    )
    token = models.CharField(_("cookie value"), max_length=64, unique=True)
    sessid = models.CharField(_("sessid"), max_length=64, unique=True)
    mode = models.CharField(_("type"), max_length=10, default="catalog")
    run = models.ForeignKey(
        ExchangeRun, verbose_name=_("run"), null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    version = models.CharField(_("CommerceML version"), max_length=10, blank=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_seen_at = models.DateTimeField(_("last request"), auto_now=True, db_index=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("exchange session")
        verbose_name_plural = _("exchange sessions")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.connection} {self.mode} {self.created_at:%Y-%m-%d %H:%M}"


class ExchangeFile(models.Model):
    """A file of a run: uploaded by 1C (possibly in chunks) or unpacked from an uploaded zip."""

    run = models.ForeignKey(ExchangeRun, verbose_name=_("run"), on_delete=models.CASCADE, related_name="files")
    name = models.CharField(_("name"), max_length=500)
    size = models.BigIntegerField(_("size"), default=0)
    chunks = models.PositiveIntegerField(_("chunks"), default=0)
    from_zip = models.CharField(_("unpacked from"), max_length=500, blank=True)
    # CRC-32 of the content (the zip's own for a member, computed chunk by chunk for an upload; null: not known):
    # a picture replaced by another of the same size makes the digest of the products naming it change.
    crc32 = models.BigIntegerField(_("CRC-32"), null=True, blank=True)
    # A zip is unpacked once; an XML file once imported is "consumed": a new upload under its name starts over.
    consumed = models.BooleanField(_("processed"), default=False)
    import_status = models.CharField(_("import status"), max_length=10, choices=ImportStatus.choices, blank=True)
    import_message = models.TextField(_("import message"), blank=True)
    done = models.PositiveIntegerField(_("done"), default=0)
    total = models.PositiveIntegerField(_("total"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("exchange file")
        verbose_name_plural = _("exchange files")
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["run", "name"], name="exchange_file_unique")]

    def __str__(self) -> str:
        return self.name


class LoginFailure(models.Model):
    """Wrong exchange passwords per login and address, for the lockout."""

    login = models.CharField(_("login"), max_length=150)
    ip = models.CharField(_("IP address"), max_length=45, blank=True)
    failures = models.PositiveIntegerField(_("failures"), default=0)
    last_failure_at = models.DateTimeField(_("last failure"))
    locked_until = models.DateTimeField(_("locked until"), null=True, blank=True)

    class Meta:
        verbose_name = _("exchange login failure")
        verbose_name_plural = _("exchange login failures")
        constraints = [models.UniqueConstraint(fields=["login", "ip"], name="login_failure_unique")]

    def __str__(self) -> str:
        return f"{self.login}@{self.ip}: {self.failures}"


class ProductImage(models.Model):
    """A product picture from 1C, stored once by content (sha1) however many products or uploads use it."""

    product = models.ForeignKey(
        "catalog.Product", verbose_name=_("product"), on_delete=models.CASCADE, related_name="exchange_images"
    )
    sha1 = models.CharField(_("sha1"), max_length=40, db_index=True)
    file = models.CharField(_("file"), max_length=255)
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("product image")
        verbose_name_plural = _("product images")
        ordering = ["product", "position"]
        constraints = [models.UniqueConstraint(fields=["product", "sha1"], name="product_image_unique")]

    def __str__(self) -> str:
        return self.file


class OrderOrigin(models.TextChoices):
    SDELKA = "sdelka", _("Made in Sdelka")
    ONEC = "onec", _("Made in 1C")


class OrderState(models.Model):
    """What one 1C base knows of one invoice (an order in CommerceML terms): 1C's number and state as 1C last
    reported them, and which version of the invoice was offered to (`sent_version`) and confirmed by 1C
    (`confirmed_version`). An invoice is offered by `mode=query` until the version 1C confirmed, or the one
    the last 1C answer produced (`synced_version`), is its current `updated_at`."""

    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="order_states"
    )
    invoice = models.ForeignKey(
        "sales.Invoice", verbose_name=_("invoice"), on_delete=models.CASCADE, related_name="exchange_states"
    )
    origin = models.CharField(_("origin"), max_length=10, choices=OrderOrigin.choices, default=OrderOrigin.SDELKA)
    number_1c = models.CharField(_("number in 1C"), max_length=100, blank=True)
    date_1c = models.DateField(_("date in 1C"), null=True, blank=True)
    version_1c = models.CharField(_("1C version"), max_length=100, blank=True)
    posted = models.BooleanField(_("posted in 1C"), null=True, blank=True)
    cancelled = models.BooleanField(_("cancelled in 1C"), null=True, blank=True)
    paid = models.BooleanField(_("paid in 1C"), null=True, blank=True)
    payment_number = models.CharField(_("payment number in 1C"), max_length=100, blank=True)
    payment_date = models.DateTimeField(_("payment date in 1C"), null=True, blank=True)
    shipped = models.BooleanField(_("shipped in 1C"), null=True, blank=True)
    shipment_number = models.CharField(_("shipment number in 1C"), max_length=100, blank=True)
    shipment_date = models.DateTimeField(_("shipment date in 1C"), null=True, blank=True)
    status_id = models.CharField(_("order status id in 1C"), max_length=100, blank=True)
    status_name = models.CharField(_("order status in 1C"), max_length=255, blank=True)
    content_hash = models.CharField(_("content hash"), max_length=40, blank=True)
    sent_version = models.DateTimeField(_("version offered to 1C"), null=True, blank=True)
    sent_session = models.ForeignKey(
        ExchangeSession,
        verbose_name=_("offered in session"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    confirmed_version = models.DateTimeField(_("version confirmed by 1C"), null=True, blank=True)
    synced_version = models.DateTimeField(_("version after 1C's answer"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("order state in 1C")
        verbose_name_plural = _("order states in 1C")
        constraints = [models.UniqueConstraint(fields=["connection", "invoice"], name="order_state_unique")]
        indexes = [models.Index(fields=["connection", "sent_session"], name="order_state_sent")]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.invoice_id} {self.number_1c}"


class SaleCursor(models.Model):
    """The order export watermark of a connection: `confirmed_until` moves to `pending_until` (the moment
    of the last `mode=query`) when 1C answers `mode=success` in the same session."""

    connection = models.OneToOneField(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="sale_cursor"
    )
    confirmed_until = models.DateTimeField(_("confirmed up to"), null=True, blank=True)
    pending_until = models.DateTimeField(_("offered up to"), null=True, blank=True)
    pending_session = models.ForeignKey(
        ExchangeSession,
        verbose_name=_("offered in session"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("order export cursor")
        verbose_name_plural = _("order export cursors")

    def __str__(self) -> str:
        return f"{self.connection}: {self.confirmed_until}"


# --- Bank statements (1CClientBankExchange) ------------------------------------------------------------


class UnicodeJSONEncoder(DjangoJSONEncoder):
    """JSON with Cyrillic kept as is: statement fields stay readable and are several times cheaper to store."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ensure_ascii"] = False
        super().__init__(*args, **kwargs)


class BankDocumentStatus(models.TextChoices):
    MATCHED = "matched", _("Matched to invoices")
    ADVANCE = "advance", _("Advance (nothing to pay)")
    QUEUED = "queued", _("Waiting for a person")
    RESOLVED = "resolved", _("Matched by a person")
    OUTGOING = "outgoing", _("Outgoing")
    INTERNAL = "internal", _("Between our own accounts")
    LINKED = "linked", _("Already recorded from 1C")


class BankDocumentQuerySet(models.QuerySet):
    def visible_to(self, user: Any) -> models.QuerySet:
        """A statement line is seen by whoever sees its payment (unknown payers: those who see everything)."""
        from sdelka.sales.models import Payment

        return self.filter(payment__in=Payment.objects.visible_to(user).values("pk"))

    def queued(self) -> models.QuerySet:
        return self.filter(status=BankDocumentStatus.QUEUED)


class BankDocument(models.Model):
    """One document of a bank statement, stored once: its identity (our account, date, number, amount, the
    other party's ИНН, direction) is unique, so the same or overlapping statements add nothing twice.
    `fields` keeps every key of the document as the bank wrote it, unknown ones included. A document not
    matched with confidence waits in the queue (status `queued`) with its candidate invoices."""

    run = models.ForeignKey(
        ExchangeRun, verbose_name=_("run"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    organisation = models.ForeignKey(
        "sales.Organisation", verbose_name=_("organisation"), on_delete=models.PROTECT, related_name="+"
    )
    account = models.CharField(_("our account"), max_length=34)
    direction = models.CharField(_("direction"), max_length=3)
    kind = models.CharField(_("document type"), max_length=100, blank=True)
    number = models.CharField(_("number"), max_length=64)
    date = models.DateField(_("date"))
    amount = models.DecimalField(_("amount"), max_digits=18, decimal_places=2)
    counterparty_inn = models.CharField(_("other party's ИНН"), max_length=12, blank=True)
    party = models.JSONField(_("other party's requisites"), default=dict, blank=True, encoder=UnicodeJSONEncoder)
    purpose = models.TextField(_("purpose"), blank=True)
    fields = models.JSONField(_("fields as read"), default=dict, blank=True, encoder=UnicodeJSONEncoder)
    payment = models.OneToOneField(
        "sales.Payment",
        verbose_name=_("payment"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bank_document",
    )
    status = models.CharField(_("status"), max_length=10, choices=BankDocumentStatus.choices, db_index=True)
    reason = models.TextField(_("why"), blank=True)
    candidates = models.JSONField(_("candidate invoices"), default=list, blank=True)
    resolved_by = models.ForeignKey(
        "accounts.User",
        verbose_name=_("matched by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolved_at = models.DateTimeField(_("matched at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    objects = BankDocumentQuerySet.as_manager()

    class Meta:
        verbose_name = _("bank statement document")
        verbose_name_plural = _("bank statement documents")
        ordering = ["-date", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "date", "number", "amount", "counterparty_inn", "direction"],
                name="bank_document_identity",
            ),
        ]
        indexes = [models.Index(fields=["account", "date"], name="bank_document_account_date")]

    def __str__(self) -> str:
        return f"{self.kind} № {self.number} от {self.date:%d.%m.%Y}: {self.amount}"


# The OData connector's models live in their package; imported here so Django registers them with this app.
from .odata.models import CounterpartyDebt, MappingRule, ODataMetadata, SyncTask, TaskRule  # noqa: E402

__all__ = ["CounterpartyDebt", "MappingRule", "ODataMetadata", "SyncTask", "TaskRule"]


class ConflictStatus(models.TextChoices):
    OPEN = "open", _("Open")
    RESOLVED = "resolved", _("Resolved")


class ConflictResolution(models.TextChoices):
    SDELKA = "sdelka", _("Keep Sdelka's value")
    ONEC = "onec", _("Take 1C's value")


class Conflict(models.Model):
    """One field of one linked object that both Sdelka and 1C changed since the last sync, with an owner of
    "ask": neither side is overwritten until someone decides. Tied to the `ExternalRef` (so any route can raise
    one); `rule` is the OData mapping rule when there is one."""

    connection = models.ForeignKey(
        Connection, verbose_name=_("connection"), on_delete=models.CASCADE, related_name="conflicts"
    )
    external_ref = models.ForeignKey(
        ExternalRef, verbose_name=_("external id"), on_delete=models.CASCADE, related_name="conflicts"
    )
    rule = models.ForeignKey(
        "exchange.MappingRule",
        verbose_name=_("mapping rule"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="conflicts",
    )
    run = models.ForeignKey(
        ExchangeRun, verbose_name=_("run"), null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_repr = models.CharField(_("object"), max_length=255, blank=True)
    field = models.CharField(_("Sdelka field"), max_length=100)
    onec_field = models.CharField(_("1C field"), max_length=255, blank=True)
    base_value = models.JSONField(_("value at the last sync"), null=True, blank=True, encoder=DjangoJSONEncoder)
    our_value = models.JSONField(_("Sdelka's value"), null=True, blank=True, encoder=DjangoJSONEncoder)
    onec_value = models.JSONField(_("1C's value"), null=True, blank=True, encoder=DjangoJSONEncoder)
    our_changed_at = models.DateTimeField(_("changed in Sdelka"), null=True, blank=True)
    onec_changed_at = models.DateTimeField(_("change seen in 1C"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=ConflictStatus.choices, default=ConflictStatus.OPEN)
    resolution = models.CharField(_("resolution"), max_length=10, choices=ConflictResolution.choices, blank=True)
    resolved_by = models.ForeignKey(
        "accounts.User",
        verbose_name=_("resolved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    created_at = models.DateTimeField(_("raised"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("sync conflict")
        verbose_name_plural = _("sync conflicts")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["external_ref", "field"], condition=Q(status="open"), name="conflict_one_open_per_field"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.object_repr}: {self.onec_field or self.field} ({self.get_status_display()})"
