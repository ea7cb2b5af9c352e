"""Deciding a sync conflict (a field both Sdelka and 1C changed since the last sync).

"Take 1C's" writes 1C's value into the Sdelka object at once. "Keep Sdelka's" leaves the object as it is; the
next run of the task writes it into 1C. Both move the field's synced base (`ExternalRef.synced`) to 1C's value
as it was seen, so the next run finds 1C unchanged and either nothing to do or Sdelka's value to send — and if
1C has changed the field yet again meanwhile, a new conflict.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from sdelka.accounts.models import User

from .models import Conflict, ConflictResolution, ConflictStatus, ExternalRef


@transaction.atomic
def resolve_conflict(*, conflict: Conflict, resolution: str, user: User | None) -> Conflict:
    conflict = Conflict.objects.select_for_update().select_related("external_ref").get(pk=conflict.pk)
    if conflict.status != ConflictStatus.OPEN:
        raise ValidationError(_("This conflict is already resolved."))
    if resolution not in ConflictResolution.values:
        raise ValidationError(_("Choose whose value to keep."))
    ref = ExternalRef.objects.select_for_update().get(pk=conflict.external_ref_id)
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
