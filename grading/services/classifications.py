"""The classifications of a stored hip (JIC type, Kerboul angle, extent, stage) and the
clinician's changes to them, audited like a grade.

From the current proportion: the extent (Steinberg/ARCO A, B, C) and, from the MRI alone,
the stage "MRI-positive, radiograph needed to stage". The JIC type and the Kerboul angle
come from the engine's masks (``HipResult.ai_classification``, measured on the mid slice
of each graded coronal or sagittal series): the hip's JIC type from the study's coronal
series, its Kerboul angle from the mid-coronal plus the mid-sagittal arc (partial with
one of them), whichever graded series of the study the hip is shown for. A clinician's
value (``hip_classification_revise``) stands over the AI's, and a re-analysis never
touches it (the revisions are carried to the new hip, ``services.reviews``); the
radiograph/CT findings that give a Steinberg and ARCO stage come only from a clinician
(``stage_source`` "clinician").
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from grading.engine.classifications import (
    ClinicianFindings,
    extent_from_proportion,
    kerboul_combined,
    stage_from_findings,
)
from grading.models import ClassificationRevision, HipResult, JicChoice
from grading.services.audit import audit_record

FINDING_FIELDS = (
    "radiograph_abnormal",
    "crescent_sign",
    "collapse_mm",
    "joint_space_narrowed",
    "acetabular_changes",
)


def _latest(hip: Any) -> ClassificationRevision | None:
    revisions = getattr(hip, "classification_list", None)
    if revisions is None:
        return hip.classification_revisions.order_by("-created", "-id").first()
    return revisions[-1] if revisions else None


def _study_planes(hip: Any) -> dict[str, dict[str, Any]]:
    """The AI classification of this hip's side per plane ("coronal", "sagittal") from
    the latest done analysis of each graded series of the study (the hip's own series
    first)."""
    cached = getattr(hip, "_study_planes", None)
    if cached is not None:
        return cached
    planes: dict[str, dict[str, Any]] = {}
    own = getattr(hip, "ai_classification", None)
    if own and own.get("plane"):
        planes[own["plane"]] = own
    analysis = getattr(hip, "analysis", None)
    if hip.pk is not None and analysis is not None and analysis.series_id is not None:
        from grading.services.studies import latest_analyses

        study_id = analysis.series.study_id
        latest = [a.pk for a in latest_analyses(study_id=study_id).values()]
        rows = (
            HipResult.objects.filter(
                analysis_id__in=latest,
                analysis__status="done",
                side=hip.side,
                ai_classification__isnull=False,
            )
            .exclude(analysis__series__graded=False)
            .order_by("analysis__series__number", "analysis__series_id")
            .values_list("ai_classification", flat=True)
        )
        for row in rows:
            if row and row.get("plane") and row["plane"] not in planes:
                planes[row["plane"]] = row
    hip._study_planes = planes
    return planes


def ai_classifications(*, hip: Any) -> dict[str, Any]:
    """``{"jic_type", "kerboul_angle_deg", "kerboul_partial", "kerboul_coronal_deg",
    "kerboul_sagittal_deg"}`` from the engine's masks (None where no graded coronal or
    sagittal series gave them)."""
    planes = _study_planes(hip)
    coronal, sagittal = planes.get("coronal"), planes.get("sagittal")
    kerboul = kerboul_combined(
        None if coronal is None else float(coronal["arc_deg"]),
        None if sagittal is None else float(sagittal["arc_deg"]),
    )
    return {
        "jic_type": None if coronal is None else coronal.get("jic_type"),
        "kerboul_angle_deg": None if kerboul is None else round(kerboul.angle_deg, 1),
        "kerboul_partial": None if kerboul is None else kerboul.partial,
        "kerboul_coronal_deg": None if coronal is None else float(coronal["arc_deg"]),
        "kerboul_sagittal_deg": None if sagittal is None else float(sagittal["arc_deg"]),
    }


def hip_classifications(*, hip: Any) -> dict[str, Any]:
    """``{"jic_type", "kerboul_angle_deg", "kerboul_partial", "jic_source",
    "kerboul_source", "extent", "stage", "stage_source", "findings", "set_by", "ai"}`` of
    a HipResult (``*_source``: "clinician", "ai" or None): its current proportion,
    the latest clinician revision (uses a prefetched ``classification_list``) and, for
    values no clinician set, the AI's (``ai``: :func:`ai_classifications`)."""
    proportion = min(max(float(hip.proportion or 0.0), 0.0), 1.0)
    extent = extent_from_proportion(proportion)
    latest = _latest(hip)
    findings = None
    if latest is not None and latest.findings_entered:
        findings = ClinicianFindings(**{f: getattr(latest, f) for f in FINDING_FIELDS})
    stage = stage_from_findings(
        necrosis_on_mri=extent is not None, findings=findings, extent=extent
    )
    ai = ai_classifications(hip=hip)
    clinician_angle = latest.kerboul_angle_deg if latest else None
    return {
        "jic_type": ((latest.jic_type or None) if latest else None) or ai["jic_type"],
        "kerboul_angle_deg": ai["kerboul_angle_deg"]
        if clinician_angle is None
        else clinician_angle,
        "kerboul_partial": (
            latest.kerboul_partial
            if latest is not None
            and (latest.kerboul_partial is not None or clinician_angle is not None)
            else ai["kerboul_partial"]
        ),
        "jic_source": (
            "clinician"
            if latest is not None and latest.jic_type
            else ("ai" if ai["jic_type"] else None)
        ),
        "kerboul_source": (
            "clinician"
            if clinician_angle is not None
            else ("ai" if ai["kerboul_angle_deg"] is not None else None)
        ),
        "extent": None if extent is None else str(extent),
        "stage": stage.text,
        "stage_source": stage.source,
        "findings": None if findings is None else {f: getattr(findings, f) for f in FINDING_FIELDS},
        "set_by": latest.author.get_username() if latest else None,
        "ai": ai,
    }


def hip_classification_revise(
    *,
    user: Any,
    hip_result: HipResult,
    changes: dict[str, Any],
    reason: str,
    client_address: str | None,
) -> ClassificationRevision:
    """Set some of a hip's JIC type (``""`` clears it), Kerboul angle and partial flag,
    and radiograph/CT findings (``changes["findings"]``: a dict of
    :data:`FINDING_FIELDS`, or None to clear them), with a reason. Values not named stay
    as the latest revision had them. ValidationError for a missing reason or a bad
    value; PermissionDenied for a role that may not grade."""
    from grading.selectors import user_can_grade

    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A change needs a reason."})
    unknown = set(changes) - {"jic_type", "kerboul_angle_deg", "kerboul_partial", "findings"}
    if unknown:
        raise ValidationError({"changes": f"unknown fields {sorted(unknown)}"})
    jic = changes.get("jic_type")
    if jic not in (None, "") and jic not in JicChoice.values:
        raise ValidationError({"jic_type": f"one of {JicChoice.values}"})
    angle = changes.get("kerboul_angle_deg")
    if angle is not None and not 0.0 <= float(angle) <= 720.0:
        raise ValidationError({"kerboul_angle_deg": "0 to 720 degrees (two arcs)"})
    findings = changes.get("findings")
    if findings is not None:
        if set(findings) - set(FINDING_FIELDS):
            raise ValidationError({"findings": f"fields: {list(FINDING_FIELDS)}"})
        if float(findings.get("collapse_mm", 0.0) or 0.0) < 0:
            raise ValidationError({"findings": "collapse depth must be >= 0 mm"})
    with transaction.atomic():
        hip = (
            HipResult.objects.select_for_update()
            .select_related("analysis__series__study")
            .get(pk=hip_result.pk)
        )
        study = hip.analysis.series.study
        if not user_can_grade(user=user, study=study):
            raise PermissionDenied("You may not change the classifications of this study.")
        before = hip_classifications(hip=hip)
        previous = _latest(hip)
        values: dict[str, Any] = {
            "jic_type": previous.jic_type if previous else "",
            "kerboul_angle_deg": previous.kerboul_angle_deg if previous else None,
            "kerboul_partial": previous.kerboul_partial if previous else None,
            "findings_entered": previous.findings_entered if previous else False,
            **{f: getattr(previous, f) for f in FINDING_FIELDS if previous is not None},
        }
        if "jic_type" in changes:
            values["jic_type"] = changes["jic_type"] or ""
        if "kerboul_angle_deg" in changes:
            values["kerboul_angle_deg"] = None if angle is None else float(angle)
        if "kerboul_partial" in changes:
            values["kerboul_partial"] = changes["kerboul_partial"]
        if "findings" in changes:
            values["findings_entered"] = findings is not None
            for field in FINDING_FIELDS:
                default = 0.0 if field == "collapse_mm" else False
                values[field] = (findings or {}).get(field, default) or default
        revision = ClassificationRevision.objects.create(
            hip_result=hip, reason=reason, author=user, **values
        )
        hip.classification_list = [revision]
        after = hip_classifications(hip=hip)
        audit_record(
            actor=user,
            action="classification.change",
            object_type="hip_result",
            object_id=hip.pk,
            study=study,
            before={k: before[k] for k in before if k not in ("set_by", "ai")},
            after={
                **{k: after[k] for k in after if k not in ("set_by", "ai")},
                "side": hip.side,
                "series_instance_uid": hip.analysis.series.series_instance_uid,
            },
            reason=reason,
            client_address=client_address,
        )
    return revision
