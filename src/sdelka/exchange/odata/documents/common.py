"""Small helpers shared by the document and register rules."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError

from sdelka.exchange.models import Connection, ExternalRef
from sdelka.sales.models import Organisation

from ..targets import TARGETS

ZERO = Decimal("0.00")


def body_digest(values: Any) -> str:
    """The hash of a body as written to (or read from) 1C: an unchanged hash means nothing to send."""
    payload = json.dumps(values, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8"), usedforsecurity=False).hexdigest()


def first_error(exc: ValidationError) -> tuple[str, str]:
    """The field and message of a service's first refusal: the one a change event reports."""
    if hasattr(exc, "error_dict"):
        name, messages = next(iter(exc.message_dict.items()))
        return name, messages[0]
    return "", exc.messages[0]


def organisation(pk: int) -> Organisation:
    return Organisation.objects.get(pk=pk)


def linked(connection: Connection, wanted: dict[str, set[Any]], *, by: str) -> dict[tuple[str, Any], Any]:
    """This base's links of the wanted objects, one query per entity: `by="external_id"` maps (entity, 1C GUID)
    to Sdelka's pk, `by="object_id"` maps (entity, pk) to the 1C GUID."""
    other = "object_id" if by == "external_id" else "external_id"
    found: dict[tuple[str, Any], Any] = {}
    for entity, keys in wanted.items():
        rows = ExternalRef.objects.filter(
            connection=connection, kind=TARGETS[entity].ref_kind, **{f"{by}__in": keys}
        ).values_list(by, other)
        found.update(((entity, key), value) for key, value in rows)
    return found
