"""Changes made in the Django admin, in the audit trail.

Sites, memberships, studies (their site and the patient's identity), series, shares,
DICOM peers (RemoteAE) and teaching enrolments can still be edited by an administrator
in the admin; every add, change and delete there is recorded here with the fields
before and after (``admin.add``, ``admin.change``, ``admin.delete``), in the admin's own
transaction. An event about a study (or its share or series) goes on that study's trail;
the others on the global trail.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from grading.models import Study
from grading.services.audit import audit_record


def model_snapshot(obj: models.Model) -> dict[str, Any]:
    """The concrete fields of ``obj`` by name (foreign keys as ids; ``auto_now`` stamps
    left out), JSON-ready."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if getattr(field, "auto_now", False):
            continue  # the save's own time stamp, not a change anyone made
        value = getattr(obj, field.attname)
        if field.is_relation:
            values[field.name] = value
        elif isinstance(field, models.FileField):
            values[field.name] = str(value or "")
        else:
            values[field.name] = value
    return values


def _study_of(obj: models.Model) -> Study | None:
    if isinstance(obj, Study):
        return obj
    study = getattr(obj, "study", None) or getattr(obj, "source_study", None)
    return study if isinstance(study, Study) else None


def admin_change_record(
    *,
    user: Any,
    obj: models.Model,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    client_address: str | None,
) -> None:
    """Audit one admin add (``before`` None), change or delete (``after`` None). A
    change records only the fields that changed; nothing is recorded when none did."""
    if before is not None and after is not None:
        changed = sorted(k for k in after if before.get(k) != after.get(k))
        if not changed:
            return
        before = {k: before.get(k) for k in changed}
        after = {k: after[k] for k in changed}
        action = "admin.change"
    else:
        action = "admin.add" if before is None else "admin.delete"
    audit_record(
        actor=user,
        action=action,
        object_type=obj._meta.label_lower,
        object_id=obj.pk if obj.pk is not None else "",
        study=_study_of(obj),
        before=before,
        after=after,
        reason="changed in the admin",
        client_address=client_address,
    )


__all__ = ["admin_change_record", "model_snapshot"]
