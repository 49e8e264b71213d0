"""A new analysis of a series keeps what people decided on the previous one.

When late instances make a series analysed again, the new analysis brings new
SliceResults, HipResults and AI label maps. :func:`review_carry_over` (called by
``analysis_store`` inside its transaction, before the analysis is marked done) then:

- gives each slice whose current mask a person edited that edited mask again (a new
  version of kind ``edited``, same file, author and reason) and its measured hips, and
  measures the series hips from the edited slices plus the AI's new ones;
- keeps each hip's grade revisions (copied onto the new HipResult with their authors,
  reasons and times) and its current grade, the clinician's, while ``ai_grade`` is the
  new AI's; and likewise its classification revisions (JIC type, Kerboul angle,
  findings), which stand over the new AI classification;
- marks a reviewed hip whose AI answer changed ``ai_changed_since_review`` (with the AI
  grade the reviewer saw), records ``hip.ai_changed`` in the audit trail (which also goes
  live to the study's WebSocket groups) and ``analysis.review_kept`` for what was kept.

A person's next grade on the hip clears the mark (``grade_revision_create``).
"""

from __future__ import annotations

from typing import Any

from grading.models import (
    Analysis,
    AnalysisStatus,
    GradeRevision,
    HipResult,
    LabelMap,
    LabelMapKind,
    RevisionSource,
    SliceResult,
)
from grading.services.audit import audit_record

# A change of the AI's proportion smaller than this (a fraction of the head) is no change.
PROPORTION_TOLERANCE = 1e-3


def _previous_done(analysis: Analysis) -> Analysis | None:
    return (
        Analysis.objects.filter(series_id=analysis.series_id, status=AnalysisStatus.DONE)
        .exclude(pk=analysis.pk)
        .order_by("-created", "-id")
        .first()
    )


def _masks_carry(*, analysis: Analysis, previous: Analysis) -> list[LabelMap]:
    """Edited current masks of ``previous`` become the current masks of ``analysis``;
    returns the carried label maps."""
    from grading.services.labelmaps import current_labelmaps

    edited = {
        instance_id: row
        for instance_id, row in current_labelmaps(previous).items()
        if row.kind == LabelMapKind.EDITED
    }
    if not edited:
        return []
    new_slices = {
        s.instance_id: s
        for s in SliceResult.objects.filter(analysis=analysis, instance_id__in=list(edited))
    }
    old_slices = {
        s.instance_id: s
        for s in SliceResult.objects.filter(analysis=previous, instance_id__in=list(edited))
    }
    versions = {
        row.instance_id: row.version
        for row in LabelMap.objects.filter(analysis=analysis, instance_id__in=list(edited))
    }
    carried: list[LabelMap] = []
    for instance_id, row in edited.items():
        if instance_id not in new_slices or instance_id not in old_slices:
            continue
        LabelMap.objects.create(
            instance_id=instance_id,
            analysis=analysis,
            version=versions.get(instance_id, 0) + 1,
            kind=LabelMapKind.EDITED,
            file=row.file.name,
            author=row.author,
            reason=row.reason,
        )
        slice_row = new_slices[instance_id]
        slice_row.hips = old_slices[instance_id].hips
        slice_row.edited = True
        slice_row.save(update_fields=["hips", "edited"])
        carried.append(row)
    return carried


def _ai_changed(old: HipResult, new: HipResult | None) -> bool:
    if new is None or new.ai_grade != old.ai_grade:
        return True
    if old.ai_proportion is None or new.ai_proportion is None:
        return old.ai_proportion != new.ai_proportion
    return abs(new.ai_proportion - old.ai_proportion) >= PROPORTION_TOLERANCE


def _revisions_copy(*, old: HipResult, new: HipResult) -> list[GradeRevision]:
    revisions = list(old.revisions.order_by("created", "id"))
    copies = GradeRevision.objects.bulk_create(
        [
            GradeRevision(
                hip_result=new, grade=r.grade, reason=r.reason, source=r.source, author=r.author
            )
            for r in revisions
        ]
    )
    for copy, revision in zip(copies, revisions, strict=True):
        # The decision keeps its own time (auto_now_add stamped the copy with now).
        GradeRevision.objects.filter(pk=copy.pk).update(created=revision.created)
    return revisions


def _classifications_copy(*, old: HipResult, new: HipResult) -> None:
    """A clinician's JIC type, Kerboul angle and findings stay on the hip: the new
    analysis's AI values never replace them (``services.classifications``)."""
    from grading.models import ClassificationRevision

    fields = [
        f.name
        for f in ClassificationRevision._meta.concrete_fields
        if f.name not in ("id", "hip_result", "created")
    ]
    for revision in old.classification_revisions.order_by("created", "id"):
        copy = ClassificationRevision.objects.create(
            hip_result=new, **{name: getattr(revision, name) for name in fields}
        )
        ClassificationRevision.objects.filter(pk=copy.pk).update(created=revision.created)


def review_carry_over(*, analysis: Analysis) -> dict[str, Any] | None:
    """Keep people's grades and masks from the previous done analysis of the series
    (see the module docstring). Inside the caller's transaction, after the new rows are
    stored. Returns what was kept (also audited), or None when nothing was."""
    from grading.services.labelmaps import EDITED_FLAG, series_hips_measure

    previous = _previous_done(analysis)
    if previous is None:
        return None
    study = analysis.series.study
    carried = _masks_carry(analysis=analysis, previous=previous)
    measured: dict[str, dict[str, Any]] = {}
    if carried:
        per_slice = {s.instance_id: s.hips for s in SliceResult.objects.filter(analysis=analysis)}
        measured = series_hips_measure(series=analysis.series, per_slice=per_slice)
    old_hips = {h.side: h for h in HipResult.objects.filter(analysis=previous)}
    new_hips = {h.side: h for h in HipResult.objects.select_for_update().filter(analysis=analysis)}
    kept: list[dict[str, Any]] = []
    for side in sorted(set(old_hips) | set(new_hips) | set(measured)):
        old, hip = old_hips.get(side), new_hips.get(side)
        graded = old is not None and old.revisions.exists()
        classified = old is not None and old.classification_revisions.exists()
        if hip is None and not (graded or classified or side in measured):
            continue
        if hip is None:
            # The AI no longer finds this hip, but a person graded or drew it.
            hip = HipResult(analysis=analysis, side=side, ai_grade=None, flags=[])
        if side in measured:
            new = measured[side]
            hip.head_volume_mm3 = new["head_volume_mm3"]
            hip.necrosis_volume_mm3 = new["necrosis_volume_mm3"]
            hip.proportion = new["proportion"]
            hip.slice_count = new["slice_count"]
            hip.flags = [*new["flags"], EDITED_FLAG]
            hip.grade = new["grade"]
        if graded:
            assert old is not None
            hip.grade = old.grade
        reviewed = old is not None and (graded or side in measured)
        changed = reviewed and old is not None and _ai_changed(old, new_hips.get(side))
        if old is not None and old.ai_changed_since_review:
            # Still not reviewed since an earlier change.
            hip.ai_changed_since_review = True
            hip.ai_grade_at_review = old.ai_grade_at_review
        elif changed:
            assert old is not None
            hip.ai_changed_since_review = True
            hip.ai_grade_at_review = old.ai_grade
        hip.save()
        copied = _revisions_copy(old=old, new=hip) if graded and old is not None else []
        if classified and old is not None:
            _classifications_copy(old=old, new=hip)
        if side in measured and not graded and hip.grade != hip.ai_grade:
            # The grade follows the edited masks, as when they were saved: a mask-edit
            # revision in the editor's name keeps "current grade = latest revision".
            editor = max(carried, key=lambda r: (r.created, r.pk)).author
            GradeRevision.objects.create(
                hip_result=hip,
                grade=hip.grade,
                reason="recomputed from the edited masks, kept when the series was analysed again",
                source=RevisionSource.MASK_EDIT,
                author=editor,
            )
        if not reviewed:
            continue
        assert old is not None
        kept.append({"side": side, "grade": hip.grade, "revisions": len(copied)})
        if changed:
            audit_record(
                actor=None,
                action="hip.ai_changed",
                object_type="hip_result",
                object_id=hip.pk,
                study=study,
                before={
                    "analysis_id": previous.pk,
                    "ai_grade": old.ai_grade,
                    "ai_proportion": old.ai_proportion,
                },
                after={
                    "analysis_id": analysis.pk,
                    "series_instance_uid": analysis.series.series_instance_uid,
                    "side": side,
                    "ai_grade": hip.ai_grade,
                    "ai_proportion": hip.ai_proportion,
                    "grade": hip.grade,
                },
                reason="the series was analysed again (new instances); "
                "the grade and masks a person gave were kept",
            )
    if not kept and not carried:
        return None
    summary = {"from_analysis_id": previous.pk, "hips": kept, "edited_masks": len(carried)}
    audit_record(
        actor=None,
        action="analysis.review_kept",
        object_type="analysis",
        object_id=analysis.pk,
        study=study,
        after=summary,
    )
    return summary


__all__ = ["review_carry_over"]
