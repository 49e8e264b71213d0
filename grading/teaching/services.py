"""Writes for teaching: collections, enrolment, de-identified cases, scored attempts."""

from __future__ import annotations

import io
import secrets
from typing import Any

import numpy as np
import pydicom
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max
from PIL import Image

from grading.dicom.deidentify import DeidentificationKey, deidentify_bytes, remap_uid
from grading.models import (
    AnalysisStatus,
    HipResult,
    Instance,
    LabelMap,
    Membership,
    Role,
    Series,
    Site,
)
from grading.selectors import series_latest_analysis, study_get_visible
from grading.services.audit import audit_record
from grading.teaching.models import (
    Attempt,
    AttemptMask,
    Case,
    CaseInstance,
    Collection,
    Enrolment,
)
from grading.teaching.scoring import (
    GRADES,
    JIC_TYPES,
    case_jic_score,
    case_score,
    dice,
    grade_score,
    jic_score,
)
from grading.teaching.selectors import teaching_sites, user_enrolled, user_teaches

# Dates of a collection's copies move back by 1 to 10 years (whole days, random per
# collection); the exact offset is a secret of the server.
DATE_OFFSET_DAYS = (365, 3650)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8), mode="L").save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()


def png_open_checked(data: bytes, *, shape: tuple[int, int]) -> Image.Image:
    """The PNG opened and decoded, once its header says it is ``shape`` (rows, columns):
    a small file that declares a huge image is refused before it is inflated."""
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG"])
    except Exception as exc:  # noqa: BLE001 - PIL raises many types on bad input
        raise ValidationError(f"not a readable PNG ({exc})") from exc
    width, height = image.size
    if (height, width) != tuple(shape):
        raise ValidationError(
            f"the PNG is {width}x{height} (width x height), the image is {shape[1]}x{shape[0]}"
        )
    try:
        image.load()
    except Exception as exc:  # noqa: BLE001
        raise ValidationError(f"not a readable PNG ({exc})") from exc
    return image


def mask_from_png(data: bytes, *, shape: tuple[int, int]) -> np.ndarray:
    """A boolean ``shape`` necrosis mask from a PNG: greyscale (non-zero = necrosis), or
    RGBA as a browser canvas exports it (alpha > 0 = necrosis). The size in the PNG's
    header is checked against ``shape`` before any pixel is decoded."""
    image = png_open_checked(data, shape=shape)
    if image.mode in ("RGBA", "LA", "PA"):
        array = np.asarray(image.getchannel("A")) > 0
    elif image.mode in ("L", "1", "P", "I", "I;16"):
        array = np.asarray(image.convert("L") if image.mode == "P" else image) > 0
    else:
        array = np.asarray(image.convert("L")) > 0
    if array.shape != shape:
        raise ValidationError(f"a mask of shape {array.shape}; the slice is {shape}")
    return array


def collection_create(*, user: Any, site: Site, title: str, description: str = "") -> Collection:
    """A new collection with its own de-identification key. The user must be a teacher
    (or site administrator) at the site."""
    if not teaching_sites(user=user).filter(pk=site.pk).exists():
        raise PermissionDenied("Only a teacher of the site may start a collection there.")
    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": "A collection needs a title."})
    low, high = DATE_OFFSET_DAYS
    with transaction.atomic():
        collection = Collection.objects.create(
            site=site,
            teacher=user,
            title=title[:200],
            description=(description or "").strip(),
            deid_seed=secrets.token_hex(32),
            date_offset_days=-(low + secrets.randbelow(high - low + 1)),
        )
        audit_record(
            actor=user,
            action="teaching.collection_create",
            object_type="teaching_collection",
            object_id=collection.pk,
            after={"title": collection.title, "site": site.pk},
        )
    return collection


def collection_enrol(*, user: Any, collection: Collection, students: list[Any]) -> int:
    """Enrol members of the collection's site; returns how many were new."""
    if not user_teaches(user=user, collection=collection):
        raise PermissionDenied("Only the collection's teacher may enrol students.")
    members = set(
        Membership.objects.filter(site=collection.site, user__in=students).values_list(
            "user_id", flat=True
        )
    )
    outsiders = sorted(s.get_username() for s in students if s.pk not in members)
    if outsiders:
        raise ValidationError(
            {"students": f"Not members of {collection.site.name}: {', '.join(outsiders)}"}
        )
    with transaction.atomic():
        created = 0
        for student in students:
            _, new = Enrolment.objects.get_or_create(collection=collection, student=student)
            created += int(new)
        audit_record(
            actor=user,
            action="teaching.enrol",
            object_type="teaching_collection",
            object_id=collection.pk,
            after={"students": sorted(s.get_username() for s in students), "new": created},
        )
    return created


def _case_series(study: Any, series: Series | None) -> tuple[Series, Any]:
    candidates = [series] if series is not None else list(study.series.order_by("number", "id"))
    for candidate in candidates:
        if candidate.study_id != study.pk:
            raise ValidationError({"series": "Not a series of this study."})
        analysis = series_latest_analysis(series=candidate)
        if analysis is not None and analysis.status == AnalysisStatus.DONE:
            if HipResult.objects.filter(analysis=analysis).exists():
                return candidate, analysis
    raise ValidationError({"study": "The study has no finished analysis with a femoral head."})


def case_add(
    *,
    user: Any,
    collection: Collection,
    study_id: int,
    series_id: int | None = None,
    client_address: str | None = None,
) -> Case:
    """Copy one analysed series of a study the teacher may see into the collection as
    "Case N": de-identified DICOM files (``grading.dicom.deidentify`` with the
    collection's key), the current grade per hip and the current label maps as the
    reference.

    The study must belong to the collection's own site, where the teacher holds a
    non-student role (a study seen as a consultant, through a share or as a student
    elsewhere is refused: the copy would outlive that access). The copy is audited on
    the source study (``teaching.case_copy``: who copied which series) without the
    collection or the case it became (a student of the source site reads that trail
    and must not link the case back to the study); the global ``teaching.case_add``
    event holds the link."""
    if not user_teaches(user=user, collection=collection):
        raise PermissionDenied("Only the collection's teacher may add cases.")
    study = study_get_visible(user=user, study_id=study_id)
    clinical_role_here = (
        Membership.objects.filter(user=user, site_id=collection.site_id)
        .exclude(role=Role.STUDENT)
        .exists()
    )
    if study.site_id != collection.site_id or not clinical_role_here:
        raise PermissionDenied(
            "Cases come only from studies of the collection's site, where you are not a student."
        )
    series = None
    if series_id is not None:
        series = Series.objects.filter(pk=series_id, study=study).first()
        if series is None:
            raise ValidationError({"series": "Not a series of this study."})
    series, analysis = _case_series(study, series)
    if Case.objects.filter(collection=collection, source_series=series).exists():
        raise ValidationError({"study": "This series is already a case of the collection."})
    key = DeidentificationKey(collection.deid_seed, collection.date_offset_days)
    if Instance.objects.filter(series=series, frame_number__isnull=False).exists():
        raise ValidationError(
            {
                "study": "An Enhanced MR (multi-frame) series cannot be a teaching case yet: "
                "pick a series of single-frame images."
            }
        )
    from grading.services.classifications import hip_classifications

    hips = list(HipResult.objects.filter(analysis=analysis).prefetch_related("revisions"))
    reference = [
        {
            "side": hip.side,
            "grade": hip.current_grade,
            "ai_grade": hip.ai_grade,
            "proportion": round(float(hip.proportion), 6),
            "jic_type": hip_classifications(hip=hip)["jic_type"],
        }
        for hip in sorted(hips, key=lambda h: ("right", "left", "unknown").index(h.side))
        if hip.current_grade
    ]
    if not reference:
        raise ValidationError({"study": "The study's hips have no grade yet."})
    current: dict[int, LabelMap] = {}
    for row in LabelMap.objects.filter(analysis=analysis).order_by("version"):
        current[row.instance_id] = row
    written: list[str] = []
    try:
        with transaction.atomic():
            locked = Collection.objects.select_for_update().get(pk=collection.pk)
            number = (
                Case.objects.filter(collection=locked).aggregate(n=Max("number"))["n"] or 0
            ) + 1
            case = Case.objects.create(
                collection=locked,
                number=number,
                source_study=study,
                source_series=series,
                study_instance_uid=remap_uid(study.study_instance_uid, key=key),
                series_instance_uid=remap_uid(series.series_instance_uid, key=key),
                reference_hips=reference,
                added_by=user,
            )
            instances = Instance.objects.filter(series=series).order_by(
                "position", "instance_number", "id"
            )
            for index, instance in enumerate(instances):
                with default_storage.open(instance.file.name, "rb") as handle:
                    copy = deidentify_bytes(handle.read(), key=key, pseudonym=case.pseudonym)
                header = pydicom.dcmread(io.BytesIO(copy), stop_before_pixels=True)
                row = CaseInstance(
                    case=case,
                    index=index,
                    sop_instance_uid=str(header.SOPInstanceUID),
                    rows=instance.rows,
                    columns=instance.columns,
                )
                row.file.name = default_storage.save(
                    f"teaching/{case.pk}/{index:04d}.dcm", ContentFile(copy)
                )
                written.append(row.file.name)
                labelmap = current.get(instance.pk)
                if labelmap is not None:
                    with default_storage.open(labelmap.file.name, "rb") as handle:
                        png = handle.read()
                    row.reference_labelmap.name = default_storage.save(
                        f"teaching/{case.pk}/{index:04d}-reference.png", ContentFile(png)
                    )
                    written.append(row.reference_labelmap.name)
                row.save()
            audit_record(
                actor=user,
                action="teaching.case_add",
                object_type="teaching_case",
                object_id=case.pk,
                after={
                    "collection": locked.pk,
                    "case": case.pseudonym,
                    "source_study": study.pk,
                    "source_series": series.pk,
                    "slices": len(instances),
                    "reference": reference,
                },
                client_address=client_address,
            )
            audit_record(
                actor=user,
                action="teaching.case_copy",
                object_type="series",
                object_id=series.pk,
                study=study,
                after={
                    "series_instance_uid": series.series_instance_uid,
                    "slices": len(instances),
                    "deidentified": "PS3.15 basic profile",
                },
                client_address=client_address,
            )
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return case


def _reference_labelmap(row: CaseInstance) -> np.ndarray:
    if not row.reference_labelmap:
        return np.zeros((row.rows, row.columns), np.uint8)
    with default_storage.open(row.reference_labelmap.name, "rb") as handle:
        return np.asarray(Image.open(io.BytesIO(handle.read())).convert("L"), dtype=np.uint8)


def _mask_measure(
    case: Case, rows: list[CaseInstance], masks: dict[int, np.ndarray]
) -> tuple[float, dict[str, dict[str, Any]]]:
    """Dice against the reference and, per hip, the proportion and grade the engine
    measures from the student's necrosis inside the reference femoral head."""
    from grading.dicom.reader import read_mr_slice
    from grading.engine.measure import measure_labelmap, summarise_series

    pairs = []
    per_slice = []
    for row in rows:
        reference = _reference_labelmap(row)
        student = masks.get(row.pk, np.zeros(reference.shape, bool))
        pairs.append((student, reference == 2))
        head = reference > 0
        labelmap = head.astype(np.uint8)
        labelmap[student & head] = 2
        with default_storage.open(row.file.name, "rb") as handle:
            mr_slice = read_mr_slice(handle.read(), name=f"{case.pseudonym} slice {row.index + 1}")
        per_slice.append((mr_slice, measure_labelmap(labelmap, mr_slice)))
    measured = {
        hip.side: {"mask_proportion": round(float(hip.proportion), 6), "mask_grade": str(hip.grade)}
        for hip in summarise_series(case.series_instance_uid, per_slice)
    }
    return dice(pairs), measured


def attempt_submit(
    *,
    user: Any,
    case: Case,
    grades: dict[str, str],
    masks: dict[int, np.ndarray] | None = None,
    client_address: str | None = None,
    jic_types: dict[str, str] | None = None,
) -> Attempt:
    """A new attempt (retakes never overwrite): a grade for each of the reference's
    hips, a JIC type for each reference hip that has one, optionally necrosis masks by
    CaseInstance id (boolean ``(rows, columns)``)."""
    if not user_enrolled(user=user, collection=case.collection):
        raise PermissionDenied("Only the collection's students submit attempts.")
    sides = case.sides
    grades = {str(k): str(v) for k, v in (grades or {}).items()}
    if set(grades) != set(sides):
        raise ValidationError({"grades": f"Give a grade for each hip: {', '.join(sides)}."})
    bad = sorted(g for g in grades.values() if g not in GRADES)
    if bad:
        raise ValidationError({"grades": f"Unknown grade(s) {', '.join(bad)}."})
    jic_references = {
        hip["side"]: hip["jic_type"] for hip in case.reference_hips if hip.get("jic_type")
    }
    jic_types = {str(k): str(v) for k, v in (jic_types or {}).items() if v}
    missing = sorted(set(jic_references) - set(jic_types))
    if missing:
        raise ValidationError({"jic_types": f"Give the JIC type of: {', '.join(missing)}."})
    bad = sorted(t for t in jic_types.values() if t not in JIC_TYPES)
    if bad:
        raise ValidationError({"jic_types": f"Unknown JIC type(s) {', '.join(bad)}."})
    rows = list(CaseInstance.objects.filter(case=case).order_by("index"))
    by_id = {row.pk: row for row in rows}
    masks = {k: v for k, v in (masks or {}).items()}
    for instance_id, mask in masks.items():
        row = by_id.get(instance_id)
        if row is None:
            raise ValidationError({"masks": f"Image {instance_id} is not a slice of this case."})
        if mask.shape != (row.rows, row.columns):
            raise ValidationError({"masks": f"Mask of image {instance_id} has the wrong shape."})
        masks[instance_id] = mask.astype(bool)
    references = {hip["side"]: hip["grade"] for hip in case.reference_hips}
    score = case_score(grades, references)
    marked = any(m.any() for m in masks.values())
    dice_value, measured = _mask_measure(case, rows, masks) if marked else (None, {})
    hips = [
        {
            "side": side,
            "grade": grades[side],
            "reference_grade": ref,
            "score": grade_score(grades[side], ref),
            "mask_proportion": measured.get(side, {}).get("mask_proportion") if marked else None,
            "mask_grade": measured.get(side, {}).get("mask_grade") if marked else None,
            "jic_type": jic_types.get(side),
            "reference_jic_type": jic_references.get(side),
            "jic_score": (
                jic_score(jic_types[side], jic_references[side]) if side in jic_references else None
            ),
        }
        for side, ref in references.items()
    ]
    jic_total = case_jic_score(jic_types, jic_references)
    written: list[str] = []
    try:
        with transaction.atomic():
            Case.objects.select_for_update().filter(pk=case.pk).first()
            number = (
                Attempt.objects.filter(case=case, student=user).aggregate(n=Max("number"))["n"] or 0
            ) + 1
            attempt = Attempt.objects.create(
                case=case,
                student=user,
                number=number,
                grades=grades,
                jic_types=jic_types,
                hips=hips,
                score=round(score, 6),
                jic_score=None if jic_total is None else round(jic_total, 6),
                dice=None if dice_value is None else round(dice_value, 6),
            )
            for instance_id, mask in sorted(masks.items()):
                if not mask.any():
                    continue
                row = AttemptMask(
                    attempt=attempt,
                    case_instance=by_id[instance_id],
                    necrosis_pixels=int(mask.sum()),
                )
                row.file.name = default_storage.save(
                    f"teaching/attempts/{attempt.pk}/{by_id[instance_id].index:04d}.png",
                    ContentFile(_png(mask.astype(np.uint8))),
                )
                written.append(row.file.name)
                row.save()
            audit_record(
                actor=user,
                action="teaching.attempt",
                object_type="teaching_attempt",
                object_id=attempt.pk,
                after={
                    "case": case.pk,
                    "number": number,
                    "grades": grades,
                    "jic_types": jic_types,
                    "score": attempt.score,
                    "jic_score": attempt.jic_score,
                    "dice": attempt.dice,
                },
                client_address=client_address,
            )
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return attempt


def case_instance_png(row: CaseInstance) -> bytes:
    """The de-identified slice as an 8-bit greyscale PNG, windowed from the 1st to the
    99.5th percentile, for API clients (the pages show the DICOM copy in the shared viewer)."""
    from grading.dicom.reader import read_mr_slice

    with default_storage.open(row.file.name, "rb") as handle:
        pixels = read_mr_slice(handle.read(), name=f"slice {row.index + 1}").pixels
    low, high = np.percentile(pixels, [1.0, 99.5])
    scaled = (pixels - low) / max(float(high - low), 1e-6)
    return _png(np.clip(scaled * 255.0 + 0.5, 0, 255).astype(np.uint8))
