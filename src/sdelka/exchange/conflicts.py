"""Deciding a sync conflict (a field both Sdelka and 1C changed since the last sync).

"Take 1C's" writes 1C's value into the Sdelka object at once. "Keep Sdelka's" leaves the object as it is; the
next run of the task writes it into 1C. Both move the field's synced base (`ExternalRef.synced`) to 1C's value
as it was seen, so the next run finds 1C unchanged and either nothing to do or Sdelka's value to send — and if
1C has changed the field yet again meanwhile, a new conflict. A document's field is settled by the next run
instead (`_settle_document`).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.accounts.models import User

from .models import Conflict, ConflictResolution, ConflictStatus, ExternalRef, RefKind

DOCUMENT_KINDS = frozenset({RefKind.INVOICE, RefKind.PAYMENT})


@transaction.atomic
def resolve_conflict(*, conflict: Conflict, resolution: str, user: User | None) -> Conflict:
    conflict = Conflict.objects.select_for_update().select_related("external_ref").get(pk=conflict.pk)
    if conflict.status != ConflictStatus.OPEN:
        raise ValidationError(_("This conflict is already resolved."))
    if resolution not in ConflictResolution.values:
        raise ValidationError(_("Choose whose value to keep."))
    ref = ExternalRef.objects.select_for_update().get(pk=conflict.external_ref_id)
    if ref.kind in DOCUMENT_KINDS:
        _settle_document(ref, conflict, resolution)
    else:
        if resolution == ConflictResolution.ONEC:
            _write_sdelka_field(ref, conflict.field, conflict.onec_value)
        ref.synced = {**(ref.synced or {}), conflict.field: conflict.onec_value}
        ref.save(update_fields=["synced"])
    conflict.status = ConflictStatus.RESOLVED
    conflict.resolution = resolution
    conflict.resolved_by = user
    conflict.resolved_at = timezone.now()
    conflict.save(update_fields=["status", "resolution", "resolved_by", "resolved_at"])
    return conflict


def _settle_document(ref: ExternalRef, conflict: Conflict, resolution: str) -> None:
    """A document (its rows too) changes only through the sales services, when a run reads it: the synced base
    moves to the losing side's value, so the next run sees only the winner as changed — 1C's document is read
    again (its version forgotten), or Sdelka's is written to 1C (its hash forgotten)."""
    loser = conflict.our_value if resolution == ConflictResolution.ONEC else conflict.onec_value
    ref.synced = {**(ref.synced or {}), conflict.field: loser}
    if resolution == ConflictResolution.ONEC:
        ref.version = ""
    else:
        ref.content_hash = ""
    ref.save(update_fields=["synced", "version", "content_hash"])


def _write_sdelka_field(ref: ExternalRef, name: str, value: object) -> None:
    model = ref.content_type.model_class()
    if model is None:
        raise ValidationError(_("The Sdelka object of this conflict no longer exists."))
    obj = model._default_manager.filter(pk=ref.object_id).first()
    if obj is None:
        raise ValidationError(_("The Sdelka object of this conflict no longer exists."))
    setattr(obj, name, value)
    fields = [name, "updated_at"] if hasattr(obj, "updated_at") else [name]
    obj.save(update_fields=fields)  # through save(): history and the model's own rules see the change
