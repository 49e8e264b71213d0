"""Study-level state: status from the analyses, worst grades, views, shares, exports."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from grading.models import (
    Analysis,
    AnalysisStatus,
    HipResult,
    Series,
    Study,
    StudyShare,
    StudyStatus,
    worst_grade,
)
from grading.services.audit import audit_record, audit_record_once
from grading.services.notify import study_status_notify


def latest_analyses(*, study_id: int) -> dict[int, Analysis]:
    """Latest analysis of each series of the study, by series id."""
    latest: dict[int, Analysis] = {}
    for analysis in Analysis.objects.filter(series__study_id=study_id).order_by("-created", "-id"):
        latest.setdefault(analysis.series_id, analysis)
    return latest


def series_disagreements(hips: list[HipResult]) -> list[str]:
    """``series_disagreement`` flags (:class:`grading.engine.flags.Flag`): the same hip
    graded differently by two graded series of the study (an axial and a coronal T1).
    One flag per side, naming the series' descriptions and grades
    (:func:`grading.engine.hip_classification.series_disagreements`)."""
    from grading.engine.hip_classification import series_disagreements as disagreements

    ordered = sorted(hips, key=lambda h: (h.analysis.series.number or 0, h.analysis.series_id or 0))
    notes = disagreements(
        [
            (
                h.side,
                h.grade or "",
                h.analysis.series.description or h.analysis.series.series_instance_uid,
            )
            for h in ordered
        ]
    )
    return [str(note) for _, note in sorted(notes.items())]


def hip_study_flags(*, hip: HipResult, study_flags: list[str]) -> list[str]:
    """The study's flags that concern this hip (``series_disagreement`` of its side), to
    show with the hip's own."""
    prefix = f"series_disagreement: the {hip.side} hip "
    return [f for f in study_flags if f.startswith(prefix) and f not in hip.flags]


def _status_of(statuses: list[str]) -> str:
    if not statuses:
        return StudyStatus.QUEUED
    pending = {AnalysisStatus.QUEUED, AnalysisStatus.RUNNING}
    if AnalysisStatus.RUNNING in statuses:
        return StudyStatus.RUNNING
    if AnalysisStatus.QUEUED in statuses:
        return StudyStatus.RUNNING if AnalysisStatus.DONE in statuses else StudyStatus.QUEUED
    if AnalysisStatus.FAILED in statuses and not pending.intersection(statuses):
        return StudyStatus.FAILED
    return StudyStatus.DONE


def study_status_refresh(*, study_id: int, notify: bool = True) -> Study:
    """Recompute the stored status, progress, error, grades and flags of a study from
    the latest analysis of each analysable series; push the status after the commit."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study_id)
        series = list(Series.objects.filter(study=study))
        latest = latest_analyses(study_id=study_id)
        analysed = [latest[s.pk] for s in series if s.pk in latest]
        statuses = [a.status for a in analysed]
        if not analysed and series and not any(s.analysable for s in series):
            study.status = StudyStatus.FAILED
            reasons = [
                f"{s.description or s.series_instance_uid}: {s.not_graded_reason}"
                for s in series
                if s.not_graded_reason
            ]
            study.error = "no series to grade" + (f" ({'; '.join(reasons)})" if reasons else "")
            study.progress_done = study.progress_total = 0
        else:
            study.status = _status_of(statuses)
            study.progress_total = sum(a.progress_total for a in analysed)
            study.progress_done = min(sum(a.progress_done for a in analysed), study.progress_total)
            errors = [a.error for a in analysed if a.status == AnalysisStatus.FAILED and a.error]
            study.error = "; ".join(errors)
        from grading.selectors import hips_shown

        hips = list(
            hips_shown(
                HipResult.objects.filter(analysis__in=[a for a in analysed if a.status == "done"])
            ).select_related("analysis__series")
        )
        # A person's grade of a series no longer graded still counts; its AI grade not.
        study.ai_grade = worst_grade(
            [h.ai_grade for h in hips if h.analysis.series.graded is not False]
        )
        study.grade = worst_grade([h.grade for h in hips])
        flags: list[str] = []
        for hip in hips:
            for flag in hip.flags:
                if flag not in flags:
                    flags.append(flag)
        flags += [f for f in series_disagreements(hips) if f not in flags]
        study.flags = flags
        study.ai_changed_since_review = any(h.ai_changed_since_review for h in hips)
        study.save(
            update_fields=[
                "ai_changed_since_review",
                "status",
                "progress_done",
                "progress_total",
                "error",
                "ai_grade",
                "grade",
                "flags",
                "updated",
            ]
        )
        if notify:
            transaction.on_commit(lambda: study_status_notify(study_id=study_id))
    return study


def study_view_record(*, user: Any, study: Study, client_address: str | None) -> None:
    """A person opened the study (detail page or API, DICOMweb retrieve or metadata).

    Recorded once per ``ONFH_STUDY_VIEW_AUDIT_WINDOW_S`` per person and study: the viewer
    polls the detail while an analysis runs, and every poll is not a new look. The first
    view is always recorded; the next one after the window is recorded again."""
    audit_record_once(
        within_s=settings.ONFH_STUDY_VIEW_AUDIT_WINDOW_S,
        actor=user,
        action="study.view",
        object_type="study",
        object_id=study.pk,
        study=study,
        client_address=client_address,
    )


def study_share(
    *, user: Any, study: Study, with_user: Any, note: str = "", client_address: str | None
) -> StudyShare:
    """Show the study to a user of another site (a second opinion, a teaching case)."""
    from grading.selectors import user_can_share

    if not user_can_share(user=user, study=study):
        raise PermissionDenied("You may not share this study.")
    if with_user.pk == user.pk:
        raise ValidationError("A study cannot be shared with yourself.")
    with transaction.atomic():
        share, created = StudyShare.objects.get_or_create(
            study=study, user=with_user, defaults={"shared_by": user, "note": note[:500]}
        )
        if created:
            audit_record(
                actor=user,
                action="study.share",
                object_type="study",
                object_id=study.pk,
                study=study,
                after={"shared_with": with_user.username, "note": note[:500]},
                client_address=client_address,
            )
    return share


def study_export(*, user: Any, study: Study, client_address: str | None) -> dict[str, Any]:
    """The study's results as a plain dict (for a JSON or CSV download), audited."""
    latest = latest_analyses(study_id=study.pk)
    hips = HipResult.objects.filter(analysis__in=list(latest.values())).select_related(
        "analysis__series"
    )
    data = {
        "study_instance_uid": study.study_instance_uid,
        "patient_id": study.patient_id,
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "site": study.site.name,
        "status": study.status,
        "note": "Research and teaching software, not a medical device.",
        "hips": [
            {
                "series_instance_uid": h.analysis.series.series_instance_uid,
                "model_version": h.analysis.model_version,
                "side": h.side,
                "head_volume_mm3": h.head_volume_mm3,
                "necrosis_volume_mm3": h.necrosis_volume_mm3,
                "proportion": h.proportion,
                "ai_grade": h.ai_grade,
                "grade": h.grade,
                "flags": h.flags,
            }
            for h in hips
        ],
    }
    audit_record(
        actor=user,
        action="study.export",
        object_type="study",
        object_id=study.pk,
        study=study,
        after={"hips": len(data["hips"])},
        client_address=client_address,
    )
    return data
