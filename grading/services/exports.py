"""Exports of results: a DICOM SEG and a DICOM SR per analysed series, and a site's
results as CSV or JSON for research. Each export is recorded in the audit trail.

Who may export (docs/architecture.md, Roles): the SEG and SR carry the patient's
identifiers (copied from the images), so only a user who sees the study's patient
identifiers gets them (never a student: 403); the site's research table has no
patient name or ID, but it is a whole site's results, so only that site's site
admins, clinicians and radiologists (and superusers) get it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.crypto import salted_hmac
from pydicom.dataset import Dataset

from grading.dicom.seg import AlgorithmInfo, build_segmentation
from grading.dicom.sr import HipMeasurements, SliceAreas, build_measurement_report
from grading.models import (
    Analysis,
    AnalysisStatus,
    GradeRevision,
    HipResult,
    Instance,
    LabelMap,
    LabelMapKind,
    Role,
    Series,
    Site,
    SliceResult,
    Study,
)
from grading.services.audit import audit_record

ALGORITHM_NAME = "ONFH femoral head segmentation and necrosis grading"
SITE_EXPORT_ROLES = frozenset({Role.SITE_ADMIN, Role.CLINICIAN, Role.RADIOLOGIST})
RESULT_COLUMNS = (
    "site",
    "study_instance_uid",
    "series_instance_uid",
    "study_pseudonym",
    "study_date",
    "side",
    "head_volume_mm3",
    "necrosis_volume_mm3",
    "proportion",
    "ai_grade",
    "grade",
    "flags",
    "model_version",
    "edited",
    "confirmed_by",
    "confirmed_at",
    "analysed_at",
)


@dataclass(frozen=True)
class DicomExport:
    """A built DICOM object, its file name and its bytes (Part 10)."""

    filename: str
    content: bytes
    sop_instance_uid: str


def user_can_export_study(*, user: Any, study: Study) -> bool:
    """Identifiable objects (SEG, SR): only for who sees the patient's identifiers."""
    from grading.permissions import redaction_for

    if not getattr(user, "is_authenticated", False):
        return False
    return not redaction_for(user=user).hides_patient_of(study.site_id)


def user_can_export_site(*, user: Any, site: Site) -> bool:
    from grading.selectors import user_role_at

    if not getattr(user, "is_authenticated", False):
        return False
    if getattr(user, "is_superuser", False):
        return True
    return user_role_at(user=user, site=site) in SITE_EXPORT_ROLES


def person_name(user: Any) -> str:
    """DICOM PN (``Family^Given``) of a user; the username when no name is set."""
    last, first = (
        (getattr(user, "last_name", "") or "").strip(),
        (getattr(user, "first_name", "") or "").strip(),
    )
    if last or first:
        return f"{last}^{first}".rstrip("^")[:64]
    return str(user.get_username())[:64]


def study_pseudonym(*, study: Study) -> str:
    """A stable pseudonymous study id for research tables (keyed by the server's secret,
    so it cannot be turned back into the study without the portal)."""
    digest = salted_hmac(
        "grading.exports.study_pseudonym", f"{study.site_id}:{study.study_instance_uid}"
    ).hexdigest()
    return f"S-{digest[:16]}"


def _research_hmac(message: str) -> str:
    """HMAC-SHA256 under the research key: ``ONFH_RESEARCH_KEY`` when set, else one
    derived from the portal's SECRET_KEY. Neither is in the database, so the table's
    UIDs cannot be mapped back from a copy of the database alone."""
    secret = settings.ONFH_RESEARCH_KEY or settings.SECRET_KEY
    return salted_hmac(
        "grading.exports.research", message, secret=secret, algorithm="sha256"
    ).hexdigest()


def research_uid(uid: str) -> str:
    """The UID a research table gives ``uid``: ``2.25.`` and 128 bits of a keyed hash as
    a decimal number (PS3.5 B.2, the UUID-derived form; at most 44 characters), the same
    for the same UID and key."""
    return f"2.25.{int(_research_hmac(uid)[:32], 16)}"


def _month(value: Any) -> str | None:
    """A date or time coarsened to its month (``YYYY-MM``) for research tables."""
    return value.strftime("%Y-%m") if value else None


# --- the series' stored state ----------------------------------------------------------


def _latest_done_analysis(series: Series) -> Analysis:
    analysis = series.analyses.order_by("-created", "-id").first()
    if analysis is None or analysis.status != AnalysisStatus.DONE:
        raise ValidationError("The series has no finished analysis to export.")
    return analysis


def _current_labelmaps(analysis: Analysis) -> dict[int, LabelMap]:
    current: dict[int, LabelMap] = {}
    for row in LabelMap.objects.filter(analysis=analysis).select_related("author"):
        if row.instance_id not in current or row.version > current[row.instance_id].version:
            current[row.instance_id] = row
    return current


def _source_images(instances: list[Instance]) -> list[Dataset]:
    datasets = []
    for instance in instances:
        with instance.file.open("rb") as handle:
            datasets.append(pydicom.dcmread(handle))
    return datasets


def _algorithm(analysis: Analysis) -> AlgorithmInfo:
    return AlgorithmInfo(name=ALGORITHM_NAME, version=analysis.model_version or "unknown")


def _latest_revision(hips: list[HipResult]) -> GradeRevision | None:
    return (
        GradeRevision.objects.filter(hip_result__in=hips)
        .select_related("author")
        .order_by("-created", "-id")
        .first()
    )


def _series_uids(series: Series, kind: str, analysis: Analysis) -> tuple[str, str]:
    # A new SOP instance per export (contents may change between exports); the series
    # UID is stable per analysis and kind, so repeated exports land in one series.
    series_uid = pydicom.uid.generate_uid(
        entropy_srcs=["onfh-export", kind, series.series_instance_uid, str(analysis.pk)]
    )
    return str(series_uid), str(pydicom.uid.generate_uid())


def _part10(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def series_seg_export(*, user: Any, series: Series, client_address: str | None) -> DicomExport:
    """The series' current label maps as a DICOM Segmentation (femoral head and necrosis
    segments; AUTOMATIC, or SEMIAUTOMATIC when a person edited a label map). Audited."""
    from grading.services.labelmaps import labelmap_read

    study = series.study
    if not user_can_export_study(user=user, study=study):
        raise PermissionDenied("You may not export identifiable DICOM objects of this study.")
    analysis = _latest_done_analysis(series)
    instances = list(
        Instance.objects.filter(series=series).order_by("position", "instance_number", "id")
    )
    if not instances:
        raise ValidationError("The series has no images.")
    multi_frame = instances[0].frame_number is not None
    if multi_frame:
        # One multi-frame source: the SEG's planes in its frame order.
        if len({i.sop_instance_uid for i in instances}) > 1 or any(
            i.frame_number is None for i in instances
        ):
            raise ValidationError(
                "A SEG of a series spread over several multi-frame files is not supported."
            )
        instances.sort(key=lambda i: i.frame_number or 0)
    current = _current_labelmaps(analysis)
    planes = []
    for instance in instances:
        row = current.get(instance.pk)
        planes.append(
            labelmap_read(row)
            if row is not None
            else np.zeros((instance.rows, instance.columns), dtype=np.uint8)
        )
    # One plane per slice; a slice without a label map (none stored) is background.
    labelmaps = np.stack(planes)
    edits = [row for row in current.values() if row.kind == LabelMapKind.EDITED]
    latest_edit = max(edits, key=lambda r: (r.created, r.pk)) if edits else None
    series_uid, sop_uid = _series_uids(series, "seg", analysis)
    seg = build_segmentation(
        source_images=_source_images(instances[:1] if multi_frame else instances),
        labelmaps=labelmaps,
        algorithm=_algorithm(analysis),
        edited=latest_edit is not None,
        content_creator_name=person_name(latest_edit.author) if latest_edit else None,
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
    )
    audit_record(
        actor=user,
        action="series.export",
        object_type="series",
        object_id=series.pk,
        study=study,
        after={
            "format": "dicom-seg",
            "series_instance_uid": series.series_instance_uid,
            "analysis": analysis.pk,
            "sop_instance_uid": sop_uid,
            "edited": latest_edit is not None,
        },
        client_address=client_address,
    )
    return DicomExport(f"{series.series_instance_uid}-seg.dcm", _part10(seg), sop_uid)


def _hip_measurements(analysis: Analysis, hips: list[HipResult]) -> list[HipMeasurements]:
    areas: dict[str, list[SliceAreas]] = {hip.side: [] for hip in hips}
    slices = (
        SliceResult.objects.filter(analysis=analysis)
        .select_related("instance")
        .order_by("instance__position", "instance__instance_number", "instance_id")
    )
    for row in slices:
        for hip in row.hips or []:
            if hip.get("side") in areas:
                areas[hip["side"]].append(
                    SliceAreas(
                        sop_instance_uid=row.instance.sop_instance_uid,
                        head_area_mm2=float(hip.get("head_area_mm2") or 0.0),
                        necrosis_area_mm2=float(hip.get("necrosis_area_mm2") or 0.0),
                    )
                )
    from grading.services.classifications import hip_classifications

    measurements = []
    for hip in hips:
        classes = hip_classifications(hip=hip)
        measurements.append(
            HipMeasurements(
                side=hip.side,
                head_volume_mm3=hip.head_volume_mm3,
                necrosis_volume_mm3=hip.necrosis_volume_mm3,
                proportion=hip.proportion,
                grade=hip.current_grade,
                slice_areas=tuple(areas[hip.side]),
                # the engine's uncertainty describes its own masks, not edited ones
                proportion_interval=(
                    (hip.proportion_interval[0], hip.proportion_interval[1])
                    if hip.proportion_interval
                    else None
                ),
                grade_probabilities=hip.grade_probabilities,
                extent=classes["extent"],
                jic_type=classes["jic_type"],
                kerboul_angle_deg=classes["kerboul_angle_deg"],
                kerboul_partial=classes["kerboul_partial"],
                stage=classes["stage"],
            )
        )
    return measurements


def series_sr_export(*, user: Any, series: Series, client_address: str | None) -> DicomExport:
    """The series' per-hip areas, volumes, proportions and grades as a TID 1500
    Measurement Report (Comprehensive 3D SR); the latest grade revision's author is the
    observer and verifier, else the algorithm alone (unverified). Audited."""
    study = series.study
    if not user_can_export_study(user=user, study=study):
        raise PermissionDenied("You may not export identifiable DICOM objects of this study.")
    analysis = _latest_done_analysis(series)
    hips = list(HipResult.objects.filter(analysis=analysis).prefetch_related("revisions"))
    if not hips:
        raise ValidationError("The analysis found no femoral head to report.")
    instances = list(
        Instance.objects.filter(series=series).order_by("position", "instance_number", "id")
    )
    revision = _latest_revision(hips)
    confirmed_by = person_name(revision.author) if revision else None
    series_uid, sop_uid = _series_uids(series, "sr", analysis)
    sr = build_measurement_report(
        source_images=_source_images(instances),
        hips=_hip_measurements(analysis, hips),
        algorithm=_algorithm(analysis),
        confirmed_by=confirmed_by,
        organization=study.site.name[:64],
        series_instance_uid=series_uid,
        sop_instance_uid=sop_uid,
    )
    audit_record(
        actor=user,
        action="series.export",
        object_type="series",
        object_id=series.pk,
        study=study,
        after={
            "format": "dicom-sr",
            "series_instance_uid": series.series_instance_uid,
            "analysis": analysis.pk,
            "sop_instance_uid": sop_uid,
            "confirmed_by": revision.author.get_username() if revision else None,
        },
        client_address=client_address,
    )
    return DicomExport(f"{series.series_instance_uid}-sr.dcm", _part10(sr), sop_uid)


# --- a site's results for research -----------------------------------------------------


def site_results_rows(*, site: Site) -> list[dict[str, Any]]:
    """One row per hip per series (latest finished analysis of each series of the site's
    studies); no patient name, ID or birth date, Study and Series Instance UIDs remapped
    with the research key (:func:`research_uid`), dates and times to the month."""
    latest: dict[int, Analysis] = {}
    for analysis in (
        Analysis.objects.filter(series__study__site=site)
        .select_related("series__study")
        .order_by("-created", "-id")
    ):
        latest.setdefault(analysis.series_id, analysis)
    done = [a for a in latest.values() if a.status == AnalysisStatus.DONE]
    current: dict[tuple[int, int], LabelMap] = {}
    for row in LabelMap.objects.filter(analysis__in=done).only(
        "analysis_id", "instance_id", "version", "kind"
    ):
        key = (row.analysis_id, row.instance_id)
        if key not in current or row.version > current[key].version:
            current[key] = row
    edited = {a for (a, _), row in current.items() if row.kind == LabelMapKind.EDITED}
    hips = (
        HipResult.objects.filter(analysis__in=done)
        .select_related("analysis__series__study")
        .prefetch_related("revisions__author")
        .order_by(
            "analysis__series__study__created",
            "analysis__series__study_id",
            "analysis__series__number",
            "analysis__series_id",
            "side",
        )
    )
    rows = []
    for hip in hips:
        analysis = hip.analysis
        study = analysis.series.study
        revisions = list(hip.revisions.all())
        latest_revision = max(revisions, key=lambda r: (r.created, r.pk)) if revisions else None
        rows.append(
            {
                "site": site.name,
                "study_instance_uid": research_uid(study.study_instance_uid),
                "series_instance_uid": research_uid(analysis.series.series_instance_uid),
                "study_pseudonym": study_pseudonym(study=study),
                "study_date": _month(study.study_date),
                "side": hip.side,
                "head_volume_mm3": hip.head_volume_mm3,
                "necrosis_volume_mm3": hip.necrosis_volume_mm3,
                "proportion": hip.proportion,
                "ai_grade": hip.ai_grade,
                "grade": hip.current_grade,
                "flags": list(hip.flags),
                "model_version": analysis.model_version,
                "edited": analysis.pk in edited,
                "confirmed_by": latest_revision.author.get_username() if latest_revision else None,
                "confirmed_at": _month(latest_revision.created if latest_revision else None),
                "analysed_at": _month(analysis.finished),
            }
        )
    return rows


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                **row,
                "flags": "; ".join(row["flags"]),
                "edited": "yes" if row["edited"] else "no",
                **{k: "" for k in RESULT_COLUMNS if row.get(k) is None},
            }
        )
    return buffer.getvalue()


def site_results_export(
    *, user: Any, site: Site, fmt: str, client_address: str | None = None
) -> str:
    """The site's results for research as CSV (``fmt="csv"``) or JSON (``"json"``):
    one row per hip per series, columns ``RESULT_COLUMNS``. Audited."""
    if fmt not in ("csv", "json"):
        raise ValidationError({"fmt": "One of 'csv', 'json'."})
    if not user_can_export_site(user=user, site=site):
        raise PermissionDenied("Only the site's admins, clinicians and radiologists export it.")
    rows = site_results_rows(site=site)
    audit_record(
        actor=user,
        action="site.export",
        object_type="site",
        object_id=site.pk,
        after={"format": fmt, "rows": len(rows)},
        client_address=client_address,
    )
    if fmt == "csv":
        return _csv(rows)
    return json.dumps(
        {
            "site": {"id": site.pk, "name": site.name},
            "note": "Research and teaching software, not a medical device.",
            "columns": list(RESULT_COLUMNS),
            "results": rows,
        },
        indent=1,
    )
