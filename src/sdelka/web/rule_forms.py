"""Forms of the OData rule and task editors. The 1C side's choices (objects, their fields) come from the
connection's cached `$metadata`; the rules themselves are checked by `exchange.odata.services.save_rule`,
whose errors ("entity_set", "fields[2].onec", …) are put back on the field at fault (`attach_rule_errors`)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.http import QueryDict
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from sdelka.accounts.models import Team
from sdelka.exchange.models import Direction
from sdelka.exchange.odata.models import MappingRule, OnRecordError, OnRuleError, Ownership, SdelkaEntity
from sdelka.exchange.odata.rules import rule_properties
from sdelka.exchange.odata.targets import TARGETS, Target

MAP_HELP = _("One pair a line: the 1C value = Sdelka's value (for a yes/no 1C field: true = …, false = …).")


class OneCMetadata:
    """The parts of a connection's parsed `$metadata` the editor offers as choices."""

    def __init__(self, data: dict[str, Any] | None) -> None:
        self.data = data or {}

    @property
    def known(self) -> bool:
        return bool(self.data)

    def entity_sets(self) -> list[str]:
        return sorted(self.data.get("entity_sets", {}))

    def properties(self, entity_set: str, virtual: str = "") -> dict[str, list[Any]]:
        """The object's fields, its tabular parts' ("Товары/Цена") and a register's virtual table's."""
        return rule_properties(self.data, entity_set, virtual) or {} if self.data else {}

    def field_choices(self, entity_set: str, keep: list[str], virtual: str = "") -> list[tuple[str, str]]:
        """The 1C fields of `entity_set` labelled with their type; values already in the rule are kept (marked
        as unknown to 1C) so the validation message, not the form, says what is wrong with them."""
        properties = self.properties(entity_set, virtual)
        choices = [(name, f"{name} ({spec[0].removeprefix('Edm.')})") for name, spec in sorted(properties.items())]
        missing = [value for value in keep if value and value not in properties]
        return choices + [(value, str(_("%(name)s — not in 1C")) % {"name": value}) for value in missing]


def sdelka_label(target: Target | None, name: str) -> str:
    """The Sdelka field as people know it ("ИНН"), with the name the rule stores."""
    try:
        verbose = getattr(target.model._meta.get_field(name), "verbose_name", name) if target else name
    except FieldDoesNotExist:
        verbose = name
    return f"{capfirst(str(verbose))} ({name})"


class RuleForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    entity = forms.ChoiceField(label=_("Sdelka object"), choices=SdelkaEntity.choices)
    entity_set = forms.CharField(
        label=_("1C object"),
        max_length=255,
        help_text=_("An entity set of the base's $metadata, e.g. Catalog_Контрагенты."),
    )
    key_fields = forms.MultipleChoiceField(
        label=_("Key fields"),
        required=False,
        help_text=_("The 1C fields that identify an object: Ref_Key, Code, or ИНН and КПП together."),
    )
    filter = forms.CharField(
        label=_("OData $filter"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Only the 1C objects that match, e.g. IsFolder eq false and DeletionMark eq false."),
    )
    direction = forms.ChoiceField(label=_("Direction"), choices=Direction.choices)
    is_active = forms.BooleanField(label=pgettext_lazy("switched on", "Active"), required=False)

    def __init__(self, *args: Any, metadata: OneCMetadata, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        entity_set = self._current("entity_set")
        keep = (
            list(self.data.getlist("key_fields"))
            if isinstance(self.data, QueryDict)
            else list(self.initial.get("key_fields") or [])
        )
        key_fields = self.fields["key_fields"]
        assert isinstance(key_fields, forms.MultipleChoiceField)
        target = TARGETS.get(self.chosen_entity)
        key_fields.choices = metadata.field_choices(entity_set, keep, target.virtual if target else "")
        key_fields.widget.attrs["size"] = 6
        self.fields["entity_set"].widget.attrs.update({"list": "entity-sets", "autocomplete": "off"})

    def _current(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(name, "")).strip()
        return str(self.initial.get(name, "") or "")

    @property
    def chosen_entity(self) -> str:
        value = self._current("entity")
        return value if value in SdelkaEntity.values else SdelkaEntity.COUNTERPARTY


class PairForm(forms.Form):
    """One field pair: a Sdelka field, the 1C field (or a constant), its transform and who owns it."""

    sdelka = forms.ChoiceField(label=_("Sdelka field"))
    onec = forms.ChoiceField(label=_("1C field"), required=False)
    const = forms.CharField(label=_("Constant"), required=False, max_length=500)
    map = forms.CharField(
        label=_("Value map"), required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text=MAP_HELP
    )
    default = forms.CharField(label=_("Default"), required=False, max_length=100)
    invert = forms.BooleanField(label=_("Invert"), required=False)
    lookup = forms.CharField(
        label=_("Lookup"),
        required=False,
        max_length=300,
        help_text=_("For a reference: the 1C object it points to and the field to read, e.g. Catalog_Валюты.Code."),
    )
    ownership = forms.ChoiceField(label=_("Owner"), choices=Ownership.choices, initial=Ownership.ONEC)
    # What the editor does not show (an outgoing value map, a composite field's type) is kept as it was.
    extra = forms.JSONField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, entity: str, entity_set: str, metadata: OneCMetadata, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        target = TARGETS.get(entity)
        names = list(target.fields) if target else []
        keep_sdelka = self._current("sdelka")
        sdelka = self.fields["sdelka"]
        assert isinstance(sdelka, forms.ChoiceField)
        sdelka.choices = (
            [("", "—")]
            + [(name, sdelka_label(target, name)) for name in names]
            + ([(keep_sdelka, keep_sdelka)] if keep_sdelka and keep_sdelka not in names else [])
        )
        onec = self.fields["onec"]
        assert isinstance(onec, forms.ChoiceField)
        virtual = target.virtual if target else ""
        onec.choices = [("", "—"), *metadata.field_choices(entity_set, [self._current("onec")], virtual)]

    def _current(self, name: str) -> str:
        if self.is_bound:
            return str(self.data.get(self.add_prefix(name), "")).strip()
        return str(self.initial.get(name, "") or "")

    def has_changed(self) -> bool:
        """A blank row stays blank whatever its owner select and hidden fields hold."""
        return any(self._current(name) for name in ("sdelka", "onec", "const", "map", "lookup", "default"))

    def clean_map(self) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for number, line in enumerate(str(self.cleaned_data.get("map") or "").splitlines(), 1):
            if not line.strip():
                continue
            source, sep, target = line.partition("=")
            if not sep or not source.strip() or not target.strip():
                raise ValidationError(
                    _("Line %(number)s: write the 1C value, “=” and Sdelka's value."), params={"number": number}
                )
            pairs[source.strip()] = target.strip()
        return pairs

    def clean_lookup(self) -> dict[str, str] | None:
        text = str(self.cleaned_data.get("lookup") or "").strip()
        if not text:
            return None
        entity_set, dot, field = text.partition(".")
        if not dot or not entity_set.strip() or not field.strip():
            raise ValidationError(_("Write the 1C object and its field with a dot: Catalog_Валюты.Code."))
        return {"set": entity_set.strip(), "field": field.strip()}

    def pair(self) -> dict[str, Any] | None:
        """The rule's field pair, or None for an empty row."""
        data = self.cleaned_data
        if not data.get("sdelka") and not data.get("onec") and not data.get("const"):
            return None
        extra = data.get("extra")
        pair: dict[str, Any] = {**(extra if isinstance(extra, dict) else {}), "sdelka": data.get("sdelka", "")}
        if data.get("const"):
            pair["const"] = data["const"]
        else:
            pair["onec"] = data.get("onec", "")
        if data.get("map"):
            pair["map"] = data["map"]
        if data.get("default"):
            pair["default"] = data["default"]
        if data.get("invert"):
            pair["invert"] = True
        if data.get("lookup"):
            pair["lookup"] = data["lookup"]
        if data.get("ownership") and data["ownership"] != Ownership.ONEC:
            pair["ownership"] = data["ownership"]
        return pair


BasePairFormSet = forms.formset_factory(PairForm, extra=3, can_delete=True)


class PairFormSet(BasePairFormSet):  # type: ignore[valid-type,misc]
    def __init__(self, *args: Any, entity: str, entity_set: str, metadata: OneCMetadata, **kwargs: Any) -> None:
        self.pair_kwargs = {"entity": entity, "entity_set": entity_set, "metadata": metadata}
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index: int | None) -> dict[str, Any]:
        return {**super().get_form_kwargs(index), **self.pair_kwargs}

    def pairs(self) -> tuple[list[dict[str, Any]], list[int]]:
        """The rule's field pairs, and for each the index of the form it came from (for the errors)."""
        pairs, origins = [], []
        for index, form in enumerate(self.forms):
            if self.can_delete and self._should_delete_form(form):
                continue
            pair = form.pair()
            if pair is not None:
                pairs.append(pair)
                origins.append(index)
        return pairs, origins


EDITED_KEYS = {"sdelka", "onec", "const", "map", "default", "invert", "lookup", "ownership"}


def pair_initial(pair: dict[str, Any]) -> dict[str, Any]:
    value_map = pair.get("map") or {}
    lookup = pair.get("lookup")
    return {
        "lookup": f"{lookup.get('set', '')}.{lookup.get('field', '')}" if isinstance(lookup, dict) else "",
        "extra": {key: value for key, value in pair.items() if key not in EDITED_KEYS} or None,
        "sdelka": pair.get("sdelka", ""),
        "onec": pair.get("onec", ""),
        "const": pair.get("const", ""),
        "map": "\n".join(f"{source} = {target}" for source, target in value_map.items()),
        "default": pair.get("default", ""),
        "invert": bool(pair.get("invert")),
        "ownership": pair.get("ownership", Ownership.ONEC),
    }


def rule_initial(rule: MappingRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "entity": rule.entity,
        "entity_set": rule.entity_set,
        "key_fields": list(rule.key_fields or []),
        "filter": rule.filter,
        "direction": rule.direction,
        "is_active": rule.is_active,
    }


def attach_rule_errors(error: ValidationError, form: RuleForm, formset: PairFormSet, origins: list[int]) -> list[str]:
    """Put each error of `save_rule` on the field at fault; returns those about the field list as a whole."""
    general: list[str] = []
    for key, messages in error.message_dict.items():
        head, _dot, attribute = key.partition(".")
        if head.startswith("fields[") and head.endswith("]"):
            index = int(head[len("fields[") : -1])
            target = formset.forms[origins[index]] if index < len(origins) else None
            if target is not None:
                for message in messages:
                    target.add_error(attribute if attribute in target.fields else None, message)
                continue
        if key == "fields":
            general.extend(messages)
        elif key in form.fields:
            for message in messages:
                form.add_error(key, message)
        else:
            for message in messages:
                form.add_error(None, message)
    return general


class TaskForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=150)
    create_allowed = forms.BooleanField(
        label=_("Create new records"), required=False, help_text=_("Off: only records already linked are updated.")
    )
    on_record_error = forms.ChoiceField(label=_("On a record error"), choices=OnRecordError.choices)
    on_rule_error = forms.ChoiceField(label=_("On a rule error"), choices=OnRuleError.choices)
    page_size = forms.IntegerField(label=_("Records per request"), min_value=1, max_value=5000, initial=500)
    post_documents = forms.BooleanField(
        label=_("Post documents written to 1C"),
        required=False,
        help_text=_("Off: invoices go to 1C unposted, for an accountant to check and post."),
    )
    schedule = forms.CharField(
        label=_("Schedule"),
        required=False,
        max_length=100,
        help_text=_('A cron expression: minute hour day month weekday ("0 * * * *" is hourly). Empty: manual only.'),
    )
    full_resync = forms.BooleanField(
        label=_("Full resync on schedule"),
        required=False,
        help_text=_("Scheduled runs compare every object, even those 1C reports unchanged."),
    )
    run_teams = forms.ModelMultipleChoiceField(
        label=_("Teams that may run it"),
        queryset=Team.objects.order_by("name"),
        required=False,
        help_text=_("Administrators and integrators may always run a task; members of these teams may run it too."),
    )
    is_active = forms.BooleanField(label=pgettext_lazy("switched on", "Active"), required=False, initial=True)
