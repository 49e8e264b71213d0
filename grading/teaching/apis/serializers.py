"""Output shapes of the teaching API, and the functions that build them.

What a student is given never names the source: no source study or series, no original
UID, no patient attribute; case images are served from the case's own de-identified
copies. The answer (reference grades, AI grade, reference masks) is included only when
``revealed`` (the teacher, or a student after an attempt).
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers

from grading.apis.serializers import GradeField
from grading.teaching.models import Attempt, Case, CaseInstance, Collection


class TeachingSiteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class TeachingProgressSerializer(serializers.Serializer):
    cases = serializers.IntegerField()
    done = serializers.IntegerField()
    attempts = serializers.IntegerField()
    mean_first_score = serializers.FloatField(allow_null=True)
    mean_latest_score = serializers.FloatField(allow_null=True)


@extend_schema_serializer(component_name="TeachingCollection")
class CollectionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    site = TeachingSiteSerializer()
    teacher = serializers.CharField()
    role = serializers.ChoiceField(choices=["teacher", "student"])
    case_count = serializers.IntegerField()
    created = serializers.DateTimeField()
    progress = TeachingProgressSerializer(allow_null=True, help_text="Yours, as a student.")


class TeachingReferenceHipSerializer(serializers.Serializer):
    side = serializers.CharField()
    grade = GradeField()
    ai_grade = GradeField(allow_null=True)
    proportion = serializers.FloatField()
    jic_type = serializers.CharField(allow_null=True, required=False)


class TeachingScoredHipSerializer(serializers.Serializer):
    side = serializers.CharField()
    grade = GradeField()
    reference_grade = GradeField()
    score = serializers.FloatField()
    mask_proportion = serializers.FloatField(allow_null=True)
    mask_grade = GradeField(allow_null=True)
    jic_type = serializers.CharField(allow_null=True, required=False)
    reference_jic_type = serializers.CharField(allow_null=True, required=False)
    jic_score = serializers.FloatField(allow_null=True, required=False)


@extend_schema_serializer(component_name="TeachingAttempt")
class AttemptSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    case = serializers.IntegerField()
    number = serializers.IntegerField()
    grades = serializers.DictField(child=GradeField())
    jic_types = serializers.DictField(child=serializers.CharField())
    hips = TeachingScoredHipSerializer(many=True)
    score = serializers.FloatField()
    jic_score = serializers.FloatField(allow_null=True)
    dice = serializers.FloatField(allow_null=True)
    submitted_at = serializers.DateTimeField()
    marked_images = serializers.ListField(child=serializers.IntegerField())
    reference = TeachingReferenceHipSerializer(many=True)


class TeachingCaseImageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    index = serializers.IntegerField()
    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    dicom_url = serializers.CharField()
    png_url = serializers.CharField()
    reference_url = serializers.CharField(allow_null=True)


class TeachingCaseSourceSerializer(serializers.Serializer):
    study_id = serializers.IntegerField(allow_null=True)
    series_id = serializers.IntegerField(allow_null=True)


@extend_schema_serializer(component_name="TeachingCaseSummary")
class CaseSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    pseudonym = serializers.CharField()
    sides = serializers.ListField(child=serializers.CharField())
    slice_count = serializers.IntegerField()
    my_attempts = serializers.IntegerField()
    my_latest_score = serializers.FloatField(allow_null=True)
    source = TeachingCaseSourceSerializer(allow_null=True, help_text="The teacher's only.")


@extend_schema_serializer(component_name="TeachingCaseDetail")
class CaseDetailSerializer(CaseSummarySerializer):
    collection = serializers.IntegerField()
    study_instance_uid = serializers.CharField(help_text="The copy's own (remapped) UID.")
    series_instance_uid = serializers.CharField(help_text="The copy's own (remapped) UID.")
    revealed = serializers.BooleanField()
    reference = TeachingReferenceHipSerializer(many=True, allow_null=True)
    images = TeachingCaseImageSerializer(many=True)
    attempts = AttemptSerializer(many=True)


class TeachingStudentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


@extend_schema_serializer(component_name="TeachingCollectionDetail")
class CollectionDetailSerializer(CollectionSerializer):
    cases = CaseSummarySerializer(many=True)
    students = TeachingStudentRefSerializer(
        many=True, allow_null=True, help_text="The teacher's only."
    )


# --- builders ------------------------------------------------------------------------------


def collection_data(
    collection: Collection, *, teaches: bool, progress: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": collection.pk,
        "title": collection.title,
        "description": collection.description,
        "site": {"id": collection.site_id, "name": collection.site.name},
        "teacher": collection.teacher.get_username(),
        "role": "teacher" if teaches else "student",
        "case_count": collection.cases.count(),
        "created": collection.created,
        "progress": progress,
    }


def reference_data(case: Case) -> list[dict[str, Any]]:
    return [
        {
            "side": hip["side"],
            "grade": hip["grade"],
            "ai_grade": hip.get("ai_grade"),
            "proportion": hip.get("proportion", 0.0),
            "jic_type": hip.get("jic_type"),
        }
        for hip in case.reference_hips
    ]


def attempt_data(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.pk,
        "case": attempt.case_id,
        "number": attempt.number,
        "grades": attempt.grades,
        "jic_types": attempt.jic_types or {},
        "hips": attempt.hips,
        "score": attempt.score,
        "jic_score": attempt.jic_score,
        "dice": attempt.dice,
        "submitted_at": attempt.submitted_at,
        "marked_images": list(attempt.masks.values_list("case_instance_id", flat=True)),
        "reference": reference_data(attempt.case),
    }


def case_summary_data(case: Case, *, teaches: bool, attempts: list[Attempt]) -> dict[str, Any]:
    return {
        "id": case.pk,
        "number": case.number,
        "pseudonym": case.pseudonym,
        "sides": case.sides,
        "slice_count": case.instances.count(),
        "my_attempts": len(attempts),
        "my_latest_score": attempts[-1].score if attempts else None,
        "source": (
            {"study_id": case.source_study_id, "series_id": case.source_series_id}
            if teaches
            else None
        ),
    }


def image_data(row: CaseInstance, *, revealed: bool) -> dict[str, Any]:
    return {
        "id": row.pk,
        "index": row.index,
        "rows": row.rows,
        "columns": row.columns,
        "dicom_url": reverse("teaching-api:image-dicom", args=[row.pk]),
        "png_url": reverse("teaching-api:image-png", args=[row.pk]),
        "reference_url": (
            reverse("teaching-api:image-reference", args=[row.pk])
            if revealed and row.reference_labelmap
            else None
        ),
    }


def case_detail_data(
    case: Case,
    *,
    teaches: bool,
    revealed: bool,
    attempts: list[Attempt],
    images: list[CaseInstance],
) -> dict[str, Any]:
    return {
        **case_summary_data(case, teaches=teaches, attempts=attempts),
        "collection": case.collection_id,
        "study_instance_uid": case.study_instance_uid,
        "series_instance_uid": case.series_instance_uid,
        "revealed": revealed,
        "reference": reference_data(case) if revealed else None,
        "images": [image_data(row, revealed=revealed) for row in images],
        "attempts": [attempt_data(a) for a in attempts],
    }
