"""Edited masks: save a new label-map version, recompute the hips, record revisions;
or go back to the AI's label maps."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from PIL import Image

from grading.models import (
    Analysis,
    AnalysisStatus,
    HipResult,
    Instance,
    LabelMap,
    LabelMapKind,
    RevisionSource,
    Series,
    SliceResult,
)
from grading.models.studies import instances_by_slice_key
from grading.services.analyses import labelmap_png
from grading.services.audit import audit_record
from grading.services.engine import (
    hip_slice_as_dict,
    hip_slice_from_dict,
    instance_read,
    series_hip_as_dict,
)
from grading.services.grades import grade_revision_create
from grading.services.studies import study_status_refresh

EDITED_FLAG = "edited: the label map was edited by a person"


def labelmap_from_png(data: bytes, *, shape: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W) uint8 from an 8-bit greyscale PNG; ValidationError for anything else.
    With ``shape`` (rows, columns) the header's size is checked first, before any pixel
    is decoded (a person's upload); without, a stored label map is read."""
    if shape is not None:
        from grading.teaching.services import png_open_checked

        image = png_open_checked(data, shape=shape)
    else:
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
        except Exception as exc:  # noqa: BLE001 - PIL raises many types on bad input
            raise ValidationError(f"not a readable PNG ({exc})") from exc
    if image.mode not in ("L", "P", "1"):
        raise ValidationError(f"a label map is an 8-bit greyscale PNG, not mode {image.mode}")
    return np.asarray(image.convert("L") if image.mode != "P" else image, dtype=np.uint8)


def labelmap_read(labelmap: LabelMap) -> np.ndarray:
    with default_storage.open(labelmap.file.name, "rb") as handle:
        return labelmap_from_png(handle.read())


def _latest_done(series: Series) -> Analysis:
    analysis = series.analyses.order_by("-created", "-id").first()
    if analysis is None or analysis.status != AnalysisStatus.DONE:
        raise ValidationError("The series has no finished analysis to edit.")
    return analysis


def _validated(labelmap: Any, instance: Instance) -> np.ndarray:
    array = np.asarray(labelmap)
    if array.ndim != 2 or array.shape != (instance.rows, instance.columns):
        raise ValidationError(
            f"label map of {instance.sop_instance_uid} has shape {array.shape}, "
            f"the image is {(instance.rows, instance.columns)}"
        )
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise ValidationError(f"label map of {instance.sop_instance_uid} is not integer-valued")
    values = np.unique(array)
    if values.size and (values.min() < 0 or values.max() > 2):
        raise ValidationError(
            f"label map of {instance.sop_instance_uid} has values {values.tolist()}; "
            "only 0 (background), 1 (femoral head), 2 (necrosis)"
        )
    return array.astype(np.uint8)


def _sides_edited(previous: np.ndarray, edited: np.ndarray, instance: Instance) -> set[str]:
    """The hips (sides) of one slice that a mask edit changed: both maps are measured with
    ``measure_labelmap``; a side changed if its head or necrosis area or its box differs,
    or if a changed pixel lies inside its box before or after."""
    from grading.engine.measure import measure_labelmap

    mr_slice = instance_read(instance)
    before = {h.side: h for h in measure_labelmap(previous, mr_slice)}
    after = {h.side: h for h in measure_labelmap(edited, mr_slice)}
    changed_pixels = previous != edited
    sides: set[str] = set()
    for side in set(before) | set(after):
        old, new = before.get(side), after.get(side)
        if old is None or new is None:
            sides.add(side)
            continue
        if (old.head_area_mm2, old.necrosis_area_mm2, old.bbox) != (
            new.head_area_mm2,
            new.necrosis_area_mm2,
            new.bbox,
        ):
            sides.add(side)
            continue
        for box in (old.bbox, new.bbox):
            if box is not None and changed_pixels[box[0] : box[2], box[1] : box[3]].any():
                sides.add(side)
                break
    return sides


def _current_labelmaps(analysis: Analysis) -> dict[int, LabelMap]:
    current: dict[int, LabelMap] = {}
    for row in LabelMap.objects.filter(analysis=analysis).order_by("version"):
        current[row.instance_id] = row
    return current


def series_hips_measure(
    *, series: Series, per_slice: dict[int, list[dict[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Series hips by side (``summarise_series``) from per-slice hips by instance id."""
    from grading.engine.measure import summarise_series

    instances = list(
        Instance.objects.filter(series=series).order_by("position", "instance_number", "id")
    )
    slices = {i.pk: instance_read(i) for i in instances if i.pk in per_slice}
    pairs = [
        (slices[i.pk], [hip_slice_from_dict(h) for h in per_slice[i.pk]])
        for i in instances
        if i.pk in per_slice
    ]
    return {
        h.side: series_hip_as_dict(h) for h in summarise_series(series.series_instance_uid, pairs)
    }


def current_labelmaps(analysis: Analysis) -> dict[int, LabelMap]:
    """The current (highest) label-map version of each instance, by instance id."""
    return _current_labelmaps(analysis)


def _review_by_mask_edit(
    *, user: Any, hip: HipResult, reason: str, client_address: str | None
) -> None:
    """A person's mask edit on a hip marked "AI changed since your review" is a review of
    it: the mark is cleared (saved with the hip by the caller) and audited."""
    at_review = hip.ai_grade_at_review
    hip.ai_changed_since_review = False
    hip.ai_grade_at_review = None
    audit_record(
        actor=user,
        action="hip.reviewed",
        object_type="hip_result",
        object_id=hip.pk,
        study=hip.analysis.series.study,
        before={"ai_changed_since_review": True, "ai_grade_at_review": at_review},
        after={
            "ai_changed_since_review": False,
            "side": hip.side,
            "ai_grade": hip.ai_grade,
            "grade": hip.grade,
            "by": "mask edit",
        },
        reason=reason,
        client_address=client_address,
    )


def _hips_recompute(
    *,
    user: Any,
    analysis: Analysis,
    reason: str,
    client_address: str | None,
    source: str,
    per_slice: dict[int, list[dict[str, Any]]],
    sides: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Series hips from the per-slice hips (``summarise_series``), stored on the
    HipResults; a GradeRevision for each hip whose grade changed. Only the hips in
    ``sides`` (all when None) are touched: a hip the edit did not change keeps its
    measurements, flags and grade (a clinician's grade stays). Returns before/after."""
    series_hips = series_hips_measure(series=analysis.series, per_slice=per_slice)
    edited = source == RevisionSource.MASK_EDIT
    changes = []
    hips = {h.side: h for h in HipResult.objects.select_for_update().filter(analysis=analysis)}
    for side in sorted(set(hips) | set(series_hips)):
        if sides is not None and side not in sides:
            continue
        new = series_hips.get(side)
        hip = hips.get(side) or HipResult(analysis=analysis, side=side)
        before = {"proportion": hip.proportion, "grade": hip.grade}
        if edited and hip.ai_changed_since_review:
            _review_by_mask_edit(user=user, hip=hip, reason=reason, client_address=client_address)
        if new is None:
            hip.head_volume_mm3 = hip.necrosis_volume_mm3 = hip.proportion = 0.0
            hip.flags = (
                [*hip.ai_flags, "edited: no femoral head left in the edited label maps"]
                if edited
                else list(hip.ai_flags)
            )
            hip.slice_count = 0
            hip.save()
            changes.append({"side": side, "before": before, "after": None})
            continue
        hip.head_volume_mm3 = new["head_volume_mm3"]
        hip.necrosis_volume_mm3 = new["necrosis_volume_mm3"]
        hip.proportion = new["proportion"]
        hip.slice_count = new["slice_count"]
        hip.flags = [*new["flags"], EDITED_FLAG] if edited else list(hip.ai_flags)
        if hip.pk is None:
            hip.grade = None
        hip.save()
        target = new["grade"] if edited else (hip.ai_grade or new["grade"])
        if target != hip.grade:
            grade_revision_create(
                user=user,
                hip_result=hip,
                grade=target,
                reason=reason,
                client_address=client_address,
                source=source,
                check_permission=False,
            )
        changes.append(
            {
                "side": side,
                "before": before,
                "after": {"proportion": round(hip.proportion, 6), "grade": target},
            }
        )
    return changes


def labelmaps_save(
    *,
    user: Any,
    series: Series,
    labelmaps: dict[str, np.ndarray],
    reason: str,
    client_address: str | None,
) -> Analysis:
    """Save edited label maps (by slice key: the SOPInstanceUID, with ":<frame>" for a frame
    of a multi-frame file) of the series' latest analysis.

    Each map must be (Rows, Columns) with values 0/1/2, and is stored as the reader sent
    it: necrosis is part of the head (label 2 counts as head), so necrosis painted where
    no head label was asserts a head there, and nothing the reader painted is dropped.
    A new LabelMap version per slice, per-slice hips from
    ``measure_labelmap``, series hips from ``summarise_series``, an ``edited`` flag, a
    GradeRevision per hip whose grade changed, one audit event.
    """
    from grading.engine.measure import measure_labelmap
    from grading.selectors import user_can_edit_masks

    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A mask edit needs a reason."})
    if not labelmaps:
        raise ValidationError({"labelmaps": "No label maps were sent."})
    if not user_can_edit_masks(user=user, study=series.study):
        raise PermissionDenied("You may not edit the masks of this study.")
    written: list[str] = []
    try:
        with transaction.atomic():
            series = Series.objects.select_for_update().select_related("study").get(pk=series.pk)
            analysis = _latest_done(series)
            instances = instances_by_slice_key(series, list(labelmaps))
            unknown = sorted(set(labelmaps) - set(instances))
            if unknown:
                raise ValidationError(f"not instances of this series: {', '.join(unknown[:5])}")
            current = _current_labelmaps(analysis)
            slice_rows = {s.instance_id: s for s in SliceResult.objects.filter(analysis=analysis)}
            next_version = {
                row["instance_id"]: row["v"] + 1
                for row in LabelMap.objects.filter(analysis=analysis)
                .values("instance_id")
                .annotate(v=Max("version"))
            }
            changed = []
            edited_sides: set[str] = set()
            for uid, raw in labelmaps.items():
                instance = instances[uid]
                array = _validated(raw, instance)
                previous = (
                    labelmap_read(current[instance.pk])
                    if instance.pk in current
                    else (np.zeros_like(array))
                )
                edited_sides |= _sides_edited(previous, array, instance)
                version = next_version.get(instance.pk, 1)
                row = LabelMap(
                    instance=instance,
                    analysis=analysis,
                    version=version,
                    kind=LabelMapKind.EDITED,
                    author=user,
                    reason=reason,
                )
                row.file.name = default_storage.save(
                    f"labelmaps/{analysis.pk}/{instance.pk}/v{version}.png",
                    ContentFile(labelmap_png(array)),
                )
                written.append(row.file.name)
                row.save()
                hips = [
                    hip_slice_as_dict(h) for h in measure_labelmap(array, instance_read(instance))
                ]
                slice_row = slice_rows.get(instance.pk) or SliceResult(
                    analysis=analysis, instance=instance
                )
                slice_row.hips = hips
                slice_row.edited = True
                slice_row.save()
                slice_rows[instance.pk] = slice_row
                changed.append(uid)
            per_slice = {pk: row.hips for pk, row in slice_rows.items()}
            changes = _hips_recompute(
                user=user,
                analysis=analysis,
                reason=reason,
                client_address=client_address,
                source=RevisionSource.MASK_EDIT,
                per_slice=per_slice,
                sides=edited_sides,
            )
            audit_record(
                actor=user,
                action="labelmap.edit",
                object_type="series",
                object_id=series.pk,
                study=series.study,
                before={"hips": [{"side": c["side"], **c["before"]} for c in changes]},
                after={
                    "slices": changed,
                    "hips": [{"side": c["side"], **(c["after"] or {})} for c in changes],
                },
                reason=reason,
                client_address=client_address,
            )
            study_status_refresh(study_id=series.study_id)
            # A site's rule: a changed mask sends new SEG/SR/summary to its PACS nodes.
            from grading.interop.services import series_sends_on_confirmation

            series_sends_on_confirmation(user=user, series=series)
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return analysis


def labelmaps_revert(
    *, user: Any, series: Series, reason: str, client_address: str | None
) -> Analysis:
    """Back to the AI's label maps and measurements (as new versions: nothing is lost)."""
    from grading.selectors import user_can_edit_masks

    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A revert needs a reason."})
    if not user_can_edit_masks(user=user, study=series.study):
        raise PermissionDenied("You may not edit the masks of this study.")
    with transaction.atomic():
        series = Series.objects.select_for_update().select_related("study").get(pk=series.pk)
        analysis = _latest_done(series)
        versions: dict[int, list[LabelMap]] = {}
        for row in LabelMap.objects.filter(analysis=analysis).order_by("version"):
            versions.setdefault(row.instance_id, []).append(row)
        reverted = []
        reverted_sides: set[str] = set()
        instances = Instance.objects.in_bulk(list(versions))
        for instance_id, rows in versions.items():
            if rows[-1].kind == LabelMapKind.AI and rows[-1].file.name == rows[0].file.name:
                continue
            reverted_sides |= _sides_edited(
                labelmap_read(rows[-1]), labelmap_read(rows[0]), instances[instance_id]
            )
            LabelMap.objects.create(
                instance_id=instance_id,
                analysis=analysis,
                version=rows[-1].version + 1,
                kind=LabelMapKind.AI,
                file=rows[0].file.name,
                author=user,
                reason=reason,
            )
            reverted.append(instance_id)
        slice_rows = list(SliceResult.objects.filter(analysis=analysis))
        for row in slice_rows:
            row.hips, row.edited = row.ai_hips, False
        SliceResult.objects.bulk_update(slice_rows, ["hips", "edited"])
        before = []
        for hip in HipResult.objects.select_for_update().filter(analysis=analysis):
            if hip.side not in reverted_sides:
                continue  # its masks are the AI's already: its grade (a clinician's) stays
            before.append({"side": hip.side, "proportion": hip.proportion, "grade": hip.grade})
            hip.head_volume_mm3 = hip.ai_head_volume_mm3 or 0.0
            hip.necrosis_volume_mm3 = hip.ai_necrosis_volume_mm3 or 0.0
            hip.proportion = hip.ai_proportion or 0.0
            hip.flags = list(hip.ai_flags)
            if hip.ai_grade is None:
                hip.grade = None  # a hip a person drew and the AI never found
                hip.slice_count = 0
            hip.save()
            if hip.ai_grade is not None and hip.grade != hip.ai_grade:
                grade_revision_create(
                    user=user,
                    hip_result=hip,
                    grade=hip.ai_grade,
                    reason=reason,
                    client_address=client_address,
                    source=RevisionSource.MASK_REVERT,
                    check_permission=False,
                )
        audit_record(
            actor=user,
            action="labelmap.revert",
            object_type="series",
            object_id=series.pk,
            study=series.study,
            before={"hips": before},
            after={"slices_reverted": len(reverted)},
            reason=reason,
            client_address=client_address,
        )
        study_status_refresh(study_id=series.study_id)
    return analysis
