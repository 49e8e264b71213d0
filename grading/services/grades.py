"""Grades set by people. The AI grade never changes; the current grade is the latest
revision, else the AI grade."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from grading.models import GradeChoice, GradeRevision, HipResult, RevisionSource
from grading.services.audit import audit_record
from grading.services.studies import study_status_refresh


def grade_revision_create(
    *,
    user: Any,
    hip_result: HipResult,
    grade: str,
    reason: str,
    client_address: str | None,
    source: str = RevisionSource.MANUAL,
    check_permission: bool = True,
) -> GradeRevision:
    """Set a hip's grade with a reason. Raises ValidationError (no reason, unknown grade)
    or PermissionDenied (a student, a user who only has the study shared with them)."""
    from grading.selectors import user_can_grade

    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A grade change needs a reason."})
    if grade not in GradeChoice.values:
        raise ValidationError({"grade": f"Unknown grade {grade!r}; one of {GradeChoice.values}."})
    with transaction.atomic():
        hip = (
            HipResult.objects.select_for_update()
            .select_related("analysis__series__study")
            .get(pk=hip_result.pk)
        )
        study = hip.analysis.series.study
        if check_permission and not user_can_grade(user=user, study=study):
            raise PermissionDenied("You may not change the grade of this study.")
        before = hip.grade
        revision = GradeRevision.objects.create(
            hip_result=hip, grade=grade, reason=reason, author=user, source=source
        )
        hip.grade = grade
        # A person graded the hip after the AI changed: it is reviewed again.
        hip.ai_changed_since_review = False
        hip.ai_grade_at_review = None
        hip.save(update_fields=["grade", "ai_changed_since_review", "ai_grade_at_review"])
        audit_record(
            actor=user,
            action="grade.change",
            object_type="hip_result",
            object_id=hip.pk,
            study=study,
            before={"grade": before},
            after={
                "grade": grade,
                "side": hip.side,
                "series_instance_uid": hip.analysis.series.series_instance_uid,
                "source": source,
            },
            reason=reason,
            client_address=client_address,
        )
        study_status_refresh(study_id=study.pk)
        # A site's rule: results go to its PACS nodes on every grade confirmation.
        from grading.interop.services import series_sends_on_confirmation

        series_sends_on_confirmation(user=user, series=hip.analysis.series)
    hip_result.grade = grade
    return revision
