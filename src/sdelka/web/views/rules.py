"""OData mapping rules and sync tasks of a connection: the list, the rule editor (1C choices from the base's
cached `$metadata`, every validation error on the field at fault), ready-made rule sets, the task editor."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from sdelka.exchange.models import Connection, ConnectionKind
from sdelka.exchange.odata.metadata import cached_metadata
from sdelka.exchange.odata.models import MappingRule, SyncTask, TaskRule
from sdelka.exchange.odata.rules import PRESETS
from sdelka.exchange.odata.services import load_preset, save_rule, save_task

from ..rule_forms import (
    OneCMetadata,
    PairFormSet,
    RuleForm,
    TaskForm,
    attach_rule_errors,
    pair_initial,
    rule_initial,
)
from .exchange import configuration_title, exchange_view

CONFIGURATION_TITLES = {"bp30": "1С:Бухгалтерия предприятия 3.0", "ut11": "1С:Управление торговлей 11"}


def _preset_title(name: str) -> str:
    """ "bp30-documents" → "1С:Бухгалтерия предприятия 3.0"; the task's own name says which part of it."""
    return CONFIGURATION_TITLES.get(name.partition("-")[0], name)


def _odata_connection(pk: int) -> Connection:
    return get_object_or_404(Connection, pk=pk, kind=ConnectionKind.ODATA)


def _metadata(connection: Connection) -> OneCMetadata:
    cached = cached_metadata(connection=connection)
    return OneCMetadata(cached.data if cached else None)


@exchange_view
def rule_list(request: HttpRequest, pk: int) -> HttpResponse:
    connection = _odata_connection(pk)
    metadata = cached_metadata(connection=connection)
    rules = list(MappingRule.objects.filter(connection=connection).order_by("name"))
    tasks = list(SyncTask.objects.filter(connection=connection).order_by("name"))
    links = TaskRule.objects.filter(task__in=tasks).select_related("rule").order_by("position", "id")
    by_task: dict[int, list[MappingRule]] = {}
    for link in links:
        by_task.setdefault(link.task_id, []).append(link.rule)
    for task in tasks:
        task.rule_list = by_task.get(task.pk, [])  # type: ignore[attr-defined]
    return render(
        request,
        "web/exchange/rules.html",
        {
            "connection": connection,
            "rules": rules,
            "tasks": tasks,
            "metadata": metadata,
            "configuration": configuration_title(metadata.configuration if metadata else ""),
            "presets": [(name, _preset_title(name), spec["task"]) for name, spec in PRESETS.items()],
        },
    )


@exchange_view
@require_POST
def preset_load(request: HttpRequest, pk: int) -> HttpResponse:
    connection = _odata_connection(pk)
    try:
        task = load_preset(connection=connection, preset=request.POST.get("preset", ""))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("Rule set copied: task “%(task)s” with %(count)d rules, ready to edit.")
            % {"task": task.name, "count": len(task.ordered_rules())},
        )
    return redirect("web:exchange-rules", pk=connection.pk)


@exchange_view
def rule_create(request: HttpRequest, pk: int) -> HttpResponse:
    return _rule_editor(request, _odata_connection(pk), None)


@exchange_view
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(MappingRule.objects.select_related("connection"), pk=pk)
    return _rule_editor(request, rule.connection, rule)


def _rule_editor(request: HttpRequest, connection: Connection, rule: MappingRule | None) -> HttpResponse:
    metadata = _metadata(connection)
    general: list[str] = []
    if request.method == "POST" and "refresh" not in request.POST:
        form = RuleForm(request.POST, metadata=metadata)
        formset = _pairs(request.POST, form, metadata)
        if form.is_valid() and formset.is_valid():
            pairs, origins = formset.pairs()
            saved = _save(form, pairs, connection, rule)
            if isinstance(saved, MappingRule):
                messages.success(request, _("Rule “%(name)s” saved.") % {"name": saved.name})
                return redirect("web:exchange-rules", pk=connection.pk)
            general = attach_rule_errors(saved, form, formset, origins)
    elif request.method == "POST":
        # The 1C object or the Sdelka object changed: the same form again with that object's field choices.
        form = RuleForm(initial=_posted_rule(request), metadata=metadata)
        formset = _pairs(None, form, metadata, initial=_posted_pairs(request))
    else:
        initial = rule_initial(rule) if rule else {"key_fields": ["Ref_Key"], "is_active": True}
        form = RuleForm(initial=initial, metadata=metadata)
        formset = _pairs(None, form, metadata, initial=[pair_initial(p) for p in (rule.fields if rule else [])])
    context = {
        "connection": connection,
        "rule": rule,
        "form": form,
        "formset": formset,
        "general_errors": general,
        "metadata": metadata,
    }
    template = "web/exchange/_rule_form.html" if request.htmx else "web/exchange/rule_form.html"  # type: ignore[attr-defined]
    return render(request, template, context)


def _pairs(
    data: Any, form: RuleForm, metadata: OneCMetadata, initial: list[dict[str, Any]] | None = None
) -> PairFormSet:
    return PairFormSet(
        data,
        initial=initial,
        prefix="pairs",
        entity=form.chosen_entity,
        entity_set=form._current("entity_set"),
        metadata=metadata,
    )


def _posted_rule(request: HttpRequest) -> dict[str, Any]:
    data = {name: request.POST.get(name, "") for name in ("name", "entity", "entity_set", "filter", "direction")}
    return {**data, "key_fields": request.POST.getlist("key_fields"), "is_active": bool(request.POST.get("is_active"))}


def _posted_pairs(request: HttpRequest) -> list[dict[str, Any]]:
    total = min(int(request.POST.get("pairs-TOTAL_FORMS") or 0), 200)
    rows = []
    for index in range(total):
        prefix = f"pairs-{index}-"
        if request.POST.get(prefix + "DELETE"):
            continue
        names = ("sdelka", "onec", "const", "map", "default", "lookup")
        row: dict[str, Any] = {name: request.POST.get(prefix + name, "") for name in names}
        row["extra"] = _json_or_none(request.POST.get(prefix + "extra", ""))
        row["invert"] = bool(request.POST.get(prefix + "invert"))
        row["ownership"] = request.POST.get(prefix + "ownership", "")
        if any(row[name] for name in ("sdelka", "onec", "const")):
            rows.append(row)
    return rows


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _save(
    form: RuleForm, pairs: list[dict[str, Any]], connection: Connection, rule: MappingRule | None
) -> MappingRule | ValidationError:
    data = form.cleaned_data
    try:
        with transaction.atomic():
            saved = save_rule(
                connection=connection,
                name=data["name"],
                entity=data["entity"],
                entity_set=data["entity_set"],
                fields=pairs,
                key_fields=list(data["key_fields"]),
                filter=data["filter"],
                direction=data["direction"],
                rule=rule,
            )
            if saved.is_active != data["is_active"]:
                MappingRule.objects.filter(pk=saved.pk).update(is_active=data["is_active"])
                saved.is_active = data["is_active"]
    except ValidationError as exc:
        return exc
    return saved


# --- tasks ----------------------------------------------------------------------------------------------


@exchange_view
def task_create(request: HttpRequest, pk: int) -> HttpResponse:
    return _task_editor(request, _odata_connection(pk), None)


@exchange_view
def task_edit(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_object_or_404(SyncTask.objects.select_related("connection"), pk=pk)
    return _task_editor(request, task.connection, task)


def _task_editor(request: HttpRequest, connection: Connection, task: SyncTask | None) -> HttpResponse:
    rules = list(MappingRule.objects.filter(connection=connection).order_by("name"))
    positions = {rule.pk: index for index, rule in enumerate(task.ordered_rules(), 1)} if task else {}
    rule_errors: list[str] = []
    if request.method == "POST":
        form = TaskForm(request.POST)
        positions = _posted_positions(request, rules)
        if form.is_valid():
            chosen = sorted((p, rule.name, rule) for rule in rules if (p := positions.get(rule.pk)) is not None)
            saved = _save_task(form, connection, task, [rule for _p, _n, rule in chosen])
            if isinstance(saved, SyncTask):
                messages.success(request, _("Task “%(name)s” saved.") % {"name": saved.name})
                return redirect("web:exchange-rules", pk=connection.pk)
            for key, errors in saved.message_dict.items():
                if key == "rules":
                    rule_errors.extend(errors)
                else:
                    for message in errors:
                        form.add_error(key if key in form.fields else None, message)
    else:
        initial = (
            {
                "name": task.name,
                "is_active": task.is_active,
                "run_teams": list(task.run_teams.all()),
                **task.option_dict(),
            }
            if task
            else {"create_allowed": True, "is_active": True, "schedule": SyncTask._meta.get_field("schedule").default}
        )
        form = TaskForm(initial=initial)
    rows = [(rule, positions.get(rule.pk)) for rule in rules]
    return render(
        request,
        "web/exchange/task_form.html",
        {"connection": connection, "task": task, "form": form, "rows": rows, "rule_errors": rule_errors},
    )


def _posted_positions(request: HttpRequest, rules: list[MappingRule]) -> dict[int, int]:
    positions = {}
    for rule in rules:
        if not request.POST.get(f"rule-{rule.pk}"):
            continue
        try:
            positions[rule.pk] = int(request.POST.get(f"position-{rule.pk}") or 1000)
        except ValueError:
            positions[rule.pk] = 1000
    return positions


def _save_task(
    form: TaskForm, connection: Connection, task: SyncTask | None, rules: list[MappingRule]
) -> SyncTask | ValidationError:
    data = form.cleaned_data
    name = data["name"].strip()
    keys = (
        "create_allowed",
        "on_record_error",
        "on_rule_error",
        "page_size",
        "post_documents",
        "schedule",
        "full_resync",
    )
    options = {key: data[key] for key in keys}
    try:
        with transaction.atomic():
            if task is not None and task.name != name:
                if SyncTask.objects.filter(connection=connection, name=name).exists():
                    raise ValidationError({"name": _("A task with this name already exists.")})
                SyncTask.objects.filter(pk=task.pk).update(name=name)  # save_task finds tasks by name
            elif task is None and SyncTask.objects.filter(connection=connection, name=name).exists():
                raise ValidationError({"name": _("A task with this name already exists.")})
            saved = save_task(connection=connection, name=name, rules=rules, options=options)
            SyncTask.objects.filter(pk=saved.pk).update(is_active=data["is_active"])
            saved.run_teams.set(data["run_teams"])
    except ValidationError as exc:
        return exc
    return saved
