"""Writes of the OData connector outside a sync: connections of kind odata, the connection check."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils.translation import gettext as _

from sdelka.exchange.models import Connection, ConnectionKind, Direction, EventLevel
from sdelka.exchange.services import log_event

from .client import Attempt, ODataAuthError, ODataClient, ODataError, ODataUnavailable
from .metadata import BY_CODE, CheckReport, cached_metadata, fetch_metadata, recognise
from .models import MappingRule, OnRecordError, OnRuleError, SyncTask, TaskRule
from .rules import PRESETS, entity_properties, validate_rule
from .schedule import DEFAULT_SCHEDULE, parse_error

DEFAULT_TIMEOUT = 120
DEFAULT_METADATA_TIMEOUT = 300
DEFAULT_RETRIES = 3


def normalise_url(url: str) -> str:
    """The base URL of `standard.odata`; an infobase URL gets `/odata/standard.odata` appended."""
    url = url.strip().rstrip("/")
    if not url.endswith("/odata/standard.odata"):
        url += "/odata/standard.odata"
    return url


@transaction.atomic
def create_odata_connection(
    *,
    name: str,
    url: str,
    login: str,
    password: str,
    timeout: int = DEFAULT_TIMEOUT,
    metadata_timeout: int = DEFAULT_METADATA_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
) -> Connection:
    """A connection to a 1C base's standard OData; the password is stored encrypted (SDELKA_FERNET_KEY)."""
    name = name.strip()
    errors: dict[str, str] = {}
    if not name:
        errors["name"] = _("Enter a name.")
    elif Connection.objects.filter(name=name).exists():
        errors["name"] = _("A connection with this name already exists.")
    try:
        URLValidator(schemes=["http", "https"])(url.strip())
    except ValidationError:
        errors["url"] = _("Enter the address of the 1C base, e.g. http://server/base.")
    if not login.strip():
        errors["login"] = _("Enter the 1C user OData will log in as.")
    for field, value in (("timeout", timeout), ("metadata_timeout", metadata_timeout)):
        if value <= 0:
            errors[field] = _("A timeout is a positive number of seconds.")
    if retries < 0 or retries > 10:
        errors["retries"] = _("From 0 to 10 retries.")
    if errors:
        raise ValidationError(errors)
    connection = Connection(
        name=name,
        kind=ConnectionKind.ODATA,
        url=normalise_url(url),
        remote_user=login.strip(),
        remote_secret=password,
        options={"timeout": timeout, "metadata_timeout": metadata_timeout, "retries": retries},
    )
    connection.full_clean(exclude=["password", "login"])
    connection.save()
    return connection


def client_for(connection: Connection, **overrides: Any) -> ODataClient:
    options = connection.options or {}
    kwargs: dict[str, Any] = {
        "timeout": float(options.get("timeout", DEFAULT_TIMEOUT)),
        "metadata_timeout": float(options.get("metadata_timeout", DEFAULT_METADATA_TIMEOUT)),
        "retries": int(options.get("retries", DEFAULT_RETRIES)),
    }
    kwargs.update(overrides)
    return ODataClient(connection.url, connection.remote_user, connection.remote_secret, **kwargs)


def check_connection(
    *, connection: Connection, client: ODataClient | None = None, refresh: bool = False
) -> CheckReport:
    """Reachability, credentials, the configuration recognised and the objects Sdelka needs that are not
    published; the result is also written to the connection's journal."""
    client = client or client_for(connection)
    report = CheckReport(url=connection.url)
    try:
        client.service_document()
        report.reachable = report.authorised = True
        metadata = fetch_metadata(connection=connection, client=client, force=refresh)
    except ODataAuthError as exc:
        report.reachable = True
        report.error = _("1C refused the login or password of user %(user)s: %(message)s") % {
            "user": connection.remote_user,
            "message": exc.message,
        }
    except ODataUnavailable as exc:
        report.error = _("1C is not reachable: %(error)s") % {"error": exc}
    except ODataError as exc:
        report.reachable = True
        report.error = _("1C answered an error: %(error)s") % {"error": exc}
    else:
        sets = metadata.data.get("entity_sets", {})
        report.published = len(sets)
        report.configuration = BY_CODE.get(metadata.configuration) or recognise(sets)
        if report.configuration is None:
            report.error = _(
                "The configuration is not recognised from the published objects; publish at least "
                "Catalog_Контрагенты, Catalog_Номенклатура and the invoice and payment documents."
            )
        else:
            report.missing = [name for name in report.configuration.needed if name not in sets]
    level = EventLevel.INFO if report.ok else (EventLevel.ERROR if report.error else EventLevel.WARNING)
    summary = report.error or _("Connection checked: %(conf)s, %(count)d objects published, %(missing)d missing.") % {
        "conf": report.configuration.title if report.configuration else "?",
        "count": report.published,
        "missing": len(report.missing),
    }
    log_event(connection=connection, level=level, message=summary, value=", ".join(report.missing))
    return report


__all__ = ["Attempt", "check_connection", "client_for", "create_odata_connection"]


# --- mapping rules and tasks -------------------------------------------------------------------------------


def _metadata_or_error(connection: Connection) -> dict[str, Any]:
    cached = cached_metadata(connection=connection)
    if cached is None:
        raise ValidationError(
            {"entity_set": _("Sdelka has not read this base's $metadata yet: run `sdelka connection check` first.")}
        )
    return cached.data


@transaction.atomic
def save_rule(
    *,
    connection: Connection,
    name: str,
    entity: str,
    entity_set: str,
    fields: list[dict[str, Any]],
    key_fields: list[str] | None = None,
    filter: str = "",
    direction: str = Direction.IN,
    rule: MappingRule | None = None,
    also_mapped: frozenset[str] = frozenset(),
) -> MappingRule:
    """Create or change a rule; refused (ValidationError naming each field at fault) unless it fits the base's
    real `$metadata` and the other rules of the connection."""
    rule = rule or MappingRule(connection=connection)
    rule.name = name.strip()
    rule.entity = entity
    rule.entity_set = entity_set.strip()
    rule.fields = fields
    rule.key_fields = key_fields if key_fields is not None else ["Ref_Key"]
    rule.filter = filter.strip()
    rule.direction = direction
    mapped = (
        set(
            MappingRule.objects.filter(connection=connection, is_active=True)
            .exclude(pk=rule.pk)
            .values_list("entity", flat=True)
        )
        | {entity}
        | also_mapped
    )
    errors = validate_rule(rule, _metadata_or_error(connection), mapped)
    if not rule.name:
        errors.setdefault("name", []).append(_("Enter a name."))
    elif MappingRule.objects.filter(connection=connection, name=rule.name).exclude(pk=rule.pk).exists():
        errors.setdefault("name", []).append(_("A rule with this name already exists."))
    if errors:
        raise ValidationError(errors)
    rule.save()
    return rule


@transaction.atomic
def save_task(
    *, connection: Connection, name: str, rules: list[MappingRule], options: dict[str, Any] | None = None
) -> SyncTask:
    """Create or replace a task (by name) that runs `rules` in this order with `options`."""
    options = options or {}
    errors: dict[str, str] = {}
    if not name.strip():
        errors["name"] = _("Enter a name.")
    if not rules:
        errors["rules"] = _("A task runs at least one rule.")
    if any(rule.connection_id != connection.pk for rule in rules):
        errors["rules"] = _("A task runs rules of its own connection only.")
    for option, choices in (("on_record_error", OnRecordError.values), ("on_rule_error", OnRuleError.values)):
        if option in options and options[option] not in choices:
            errors[option] = _("Choose one of %(choices)s.") % {"choices": ", ".join(choices)}
    page_size = options.get("page_size", 500)
    if not isinstance(page_size, int) or not 1 <= page_size <= 5000:
        errors["page_size"] = _("From 1 to 5000 records per page.")
    schedule = str(options.get("schedule", DEFAULT_SCHEDULE)).strip()
    if schedule and (message := parse_error(schedule)):
        errors["schedule"] = message
    if errors:
        raise ValidationError(errors)
    task, _created = SyncTask.objects.update_or_create(
        connection=connection,
        name=name.strip(),
        defaults={
            "create_allowed": bool(options.get("create_allowed", True)),
            "on_record_error": options.get("on_record_error", OnRecordError.GO_ON),
            "on_rule_error": options.get("on_rule_error", OnRuleError.STOP),
            "page_size": page_size,
            # kept as set when a preset is loaded again without saying
            **({"post_documents": bool(options["post_documents"])} if "post_documents" in options else {}),
            **({"schedule": schedule} if "schedule" in options else {}),
            **({"full_resync": bool(options["full_resync"])} if "full_resync" in options else {}),
        },
    )
    TaskRule.objects.filter(task=task).delete()
    TaskRule.objects.bulk_create([TaskRule(task=task, rule=rule, position=i) for i, rule in enumerate(rules)])
    return task


@transaction.atomic
def load_preset(*, connection: Connection, preset: str, post_documents: bool | None = None) -> SyncTask:
    """Create (or refresh) a ready-made rule set and its task; every rule is validated like a hand-made one.
    A "not a folder" filter is added where the 1C object is hierarchical."""
    spec = PRESETS.get(preset)
    if spec is None:
        raise ValidationError({"preset": _("Unknown rule set %(name)s.") % {"name": preset}})
    if spec.get("base"):
        load_preset(connection=connection, preset=spec["base"])  # the objects the documents refer to
    metadata = _metadata_or_error(connection)
    rules = []
    for item in spec["rules"]:
        properties = entity_properties(metadata, item["entity_set"]) or {}
        filter_ = item.get("filter", "")
        if filter_ == "IsFolder eq false" and "IsFolder" not in properties:
            filter_ = ""
        existing = MappingRule.objects.filter(connection=connection, name=item["name"]).first()
        rules.append(
            save_rule(
                connection=connection,
                name=item["name"],
                entity=item["entity"],
                entity_set=item["entity_set"],
                fields=[dict(pair) for pair in item["fields"]],
                key_fields=list(item["key_fields"]),
                filter=filter_,
                direction=item.get("direction", Direction.IN),
                rule=existing,
            )
        )
    options = {} if post_documents is None else {"post_documents": post_documents}
    return save_task(connection=connection, name=spec["task"], rules=rules, options=options)


# --- a connection's whole setup as JSON ---------------------------------------------------------------------

SETUP_FORMAT = "sdelka-odata-setup"
TASK_OPTION_KEYS = (
    "create_allowed", "on_record_error", "on_rule_error", "page_size", "post_documents", "schedule", "full_resync",
)  # fmt: skip
RULE_KEYS = ("name", "entity", "entity_set", "direction", "key_fields", "filter", "fields", "is_active")


def export_setup(*, connection: Connection) -> dict[str, Any]:
    """Rules and tasks of a connection (no address, login or password), to repeat the setup on another base."""
    rules = MappingRule.objects.filter(connection=connection).order_by("name")
    tasks = SyncTask.objects.filter(connection=connection).order_by("name")
    return {
        "format": SETUP_FORMAT,
        "version": 1,
        "rules": [{key: getattr(rule, key) for key in RULE_KEYS} for rule in rules],
        "tasks": [
            {"name": task.name, "rules": [rule.name for rule in task.ordered_rules()], **task.option_dict()}
            for task in tasks
        ],
    }


def _prefixed(prefix: str, exc: ValidationError) -> dict[str, list[str]]:
    return {f"{prefix}.{field}": list(messages) for field, messages in exc.message_dict.items()}


@transaction.atomic
def import_setup(*, connection: Connection, data: Any) -> list[SyncTask]:
    """Create or replace (by name) the rules and tasks of an exported setup; every rule is validated against
    this base's `$metadata`. All or nothing: any error (keyed `rules[i].<field>`) leaves the setup unchanged."""
    if not isinstance(data, dict) or data.get("format") != SETUP_FORMAT or data.get("version") != 1:
        raise ValidationError({"file": _("This is not a Sdelka OData setup file (version 1).")})
    raw_rules = data.get("rules")
    items: list[Any] = raw_rules if isinstance(raw_rules, list) else []
    mapped = frozenset(str(item.get("entity", "")) for item in items if isinstance(item, dict))
    errors: dict[str, list[str]] = {}
    rules: dict[str, MappingRule] = {}
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("fields"), list):
            errors[f"rules[{index}]"] = [_("A rule is an object with a list of fields.")]
            continue
        try:
            with transaction.atomic():
                rule = save_rule(
                    connection=connection,
                    name=str(item.get("name", "")),
                    entity=str(item.get("entity", "")),
                    entity_set=str(item.get("entity_set", "")),
                    fields=item["fields"],
                    key_fields=list(item.get("key_fields") or []),
                    filter=str(item.get("filter", "")),
                    direction=str(item.get("direction", Direction.IN)),
                    rule=MappingRule.objects.filter(connection=connection, name=item.get("name")).first(),
                    also_mapped=mapped,
                )
        except ValidationError as exc:
            errors.update(_prefixed(f"rules[{index}]", exc))
            continue
        if item.get("is_active") is False:
            MappingRule.objects.filter(pk=rule.pk).update(is_active=False)
        rules[rule.name] = rule
    tasks = []
    raw_tasks = data.get("tasks")
    for index, item in enumerate(raw_tasks if isinstance(raw_tasks, list) else []):
        names = item.get("rules", []) if isinstance(item, dict) else []
        missing = [name for name in names if name not in rules]
        if missing:
            errors[f"tasks[{index}].rules"] = [_("Unknown rules: %(names)s.") % {"names": ", ".join(map(str, missing))}]
            continue
        options = {key: item[key] for key in TASK_OPTION_KEYS if key in item}
        try:
            tasks.append(
                save_task(
                    connection=connection,
                    name=str(item.get("name", "")),
                    rules=[rules[name] for name in names],
                    options=options,
                )
            )
        except ValidationError as exc:
            errors.update(_prefixed(f"tasks[{index}]", exc))
    if errors:
        raise ValidationError(errors)
    return tasks
