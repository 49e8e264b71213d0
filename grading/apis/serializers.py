"""Output serializers shared by several APIs (study summary and detail, revisions, audit).

They only reshape what the selectors loaded: no queries, no decisions. The study
detail reads the attributes ``grading.selectors.study_detail_get`` attaches
(``series_list``, ``hip_list``, ``slice_list``, ``latest_analysis``, ``instance_list``,
``current_labelmap``, ``ai_labelmap``, ``revision_list``).
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from grading.failure_reasons import failure_reason
from grading.models import GradeChoice, LabelMapKind, Side, StudyStatus


def _blank_to_none(value: str | None) -> str | None:
    return value or None


@extend_schema_field(
    {"type": "string", "enum": list(GradeChoice.values), "description": "Steinberg extent grade."},
    component_name="Grade",
)
class GradeField(serializers.ChoiceField):
    """A grade (none, mild, moderate, severe): one schema component wherever it appears."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=GradeChoice.choices, **kwargs)


class SiteRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


@extend_schema_serializer(component_name="StudySummary")
class StudySummaryOutputSerializer(serializers.Serializer):
    """``patient_name`` and ``patient_id`` are null for a student (see grading.permissions)."""

    id = serializers.IntegerField()
    study_instance_uid = serializers.CharField()
    patient_name = serializers.CharField(allow_null=True)
    patient_id = serializers.CharField(allow_null=True)
    study_date = serializers.DateField(allow_null=True)
    site = SiteRefSerializer()
    status = serializers.ChoiceField(choices=StudyStatus.choices)
    ai_grade = GradeField(allow_null=True)
    grade = GradeField(allow_null=True, help_text="Current grade, worst over hips.")
    flags = serializers.ListField(child=serializers.CharField())
    failure_reason = serializers.SerializerMethodField(
        help_text="Why the analysis failed, in a clinician's words (null unless failed)."
    )
    ai_changed_since_review = serializers.BooleanField(
        help_text="A hip a person reviewed was analysed again and the AI's answer changed."
    )
    created = serializers.DateTimeField()
    stalled = serializers.SerializerMethodField(
        help_text='"no worker" while the study waits for analysis and no worker is alive.'
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_stalled(self, study: Any) -> str | None:
        if study.status not in (StudyStatus.QUEUED, StudyStatus.RUNNING):
            return None
        if "stall" not in self.context:  # once per answer, not once per row
            from grading.selectors import analysis_stall_reason

            self.context["stall"] = analysis_stall_reason()
        return self.context["stall"]

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_failure_reason(self, study: Any) -> str | None:
        if study.status != StudyStatus.FAILED:
            return None
        return failure_reason(study.error) or None


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField()
    total = serializers.IntegerField()


@extend_schema_serializer(component_name="Analysis")
class AnalysisOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()
    model_version = serializers.CharField()
    error = serializers.SerializerMethodField()
    failure_reason = serializers.SerializerMethodField(
        help_text="``error`` in a clinician's words (null when there is no error)."
    )
    started = serializers.DateTimeField(allow_null=True)
    finished = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, analysis: Any) -> str | None:
        return _blank_to_none(analysis.error)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_failure_reason(self, analysis: Any) -> str | None:
        return failure_reason(analysis.error) or None


@extend_schema_serializer(component_name="Instance")
class InstanceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    sop_instance_uid = serializers.CharField()
    frame_number = serializers.IntegerField(
        allow_null=True, help_text="1-based frame of a multi-frame file; null for a single frame"
    )
    instance_number = serializers.IntegerField(allow_null=True)
    slice_location = serializers.FloatField(
        source="position", allow_null=True, help_text="Position along the slice normal, mm."
    )
    image_url = serializers.SerializerMethodField()
    labelmap_url = serializers.SerializerMethodField()
    ai_labelmap_url = serializers.SerializerMethodField()
    labelmap_edited = serializers.SerializerMethodField()

    def get_image_url(self, instance: Any) -> str:
        if instance.frame_number is None:
            return reverse("api-instance-dicom", kwargs={"instance_id": instance.pk})
        # Every frame of a file by one URL (fetched once), the frame as the viewer's
        # loaders name it (wadouri ``?frame=n``, 1-based).
        file_instance = getattr(instance, "file_instance_id", instance.pk)
        url = reverse("api-instance-dicom", kwargs={"instance_id": file_instance})
        return f"{url}?frame={instance.frame_number}"

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_labelmap_url(self, instance: Any) -> str | None:
        if getattr(instance, "current_labelmap", None) is None:
            return None
        return reverse("api-instance-labelmap", kwargs={"instance_id": instance.pk})

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_ai_labelmap_url(self, instance: Any) -> str | None:
        if getattr(instance, "ai_labelmap", None) is None:
            return None
        url = reverse("api-instance-labelmap", kwargs={"instance_id": instance.pk})
        return f"{url}?version=ai"

    def get_labelmap_edited(self, instance: Any) -> bool:
        current = getattr(instance, "current_labelmap", None)
        return current is not None and current.kind == LabelMapKind.EDITED


@extend_schema_serializer(component_name="Series")
class SeriesOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    series_instance_uid = serializers.CharField()
    description = serializers.CharField()
    instance_count = serializers.IntegerField()
    # Sequence and plane awareness (grading.dicom.protocol): graded null = not decided yet.
    weighting = serializers.CharField(
        help_text="T1, T2, PD, STIR, fat_saturated, post_contrast, unknown"
    )
    plane = serializers.CharField(help_text="axial, coronal, sagittal, oblique or unknown")
    graded = serializers.BooleanField(allow_null=True)
    not_graded_reason = serializers.SerializerMethodField()
    analysis = AnalysisOutputSerializer(source="latest_analysis", allow_null=True)
    instances = InstanceOutputSerializer(source="instance_list", many=True)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_not_graded_reason(self, series: Any) -> str | None:
        return _blank_to_none(series.not_graded_reason)


@extend_schema_serializer(component_name="Revision")
class RevisionOutputSerializer(serializers.Serializer):
    grade = GradeField()
    reason = serializers.CharField()
    author = serializers.CharField(source="author.username")
    time = serializers.DateTimeField(source="created")


@extend_schema_serializer(component_name="GradeProbabilities")
class GradeProbabilitiesSerializer(serializers.Serializer):
    """The engine's probability of each grade (step 14 of docs/grading.md); sums to 1."""

    none = serializers.FloatField()
    mild = serializers.FloatField()
    moderate = serializers.FloatField()
    severe = serializers.FloatField()


def _interval_field(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        allow_null=True,
        help_text="[low, high]: the 85 % interval of the AI's proportion (fractions); null "
        "when the engine gave none (analyses before 2026-12-07, edited label maps).",
        **kwargs,
    )


@extend_schema_serializer(component_name="Hip")
class HipOutputSerializer(serializers.Serializer):
    series_instance_uid = serializers.CharField(source="analysis.series.series_instance_uid")
    side = serializers.ChoiceField(choices=Side.choices)
    proportion = serializers.FloatField()
    head_volume_mm3 = serializers.FloatField()
    necrosis_volume_mm3 = serializers.FloatField()
    ai_grade = GradeField(allow_null=True)
    grade = GradeField(allow_null=True)
    flags = serializers.SerializerMethodField()
    ai_changed_since_review = serializers.BooleanField(
        help_text="The series was analysed again after a person graded this hip or edited "
        "its masks, and the AI's answer changed; the person's grade and masks were kept."
    )
    ai_grade_at_review = GradeField(
        allow_null=True, help_text="The AI grade the person saw when they reviewed the hip."
    )
    revisions = RevisionOutputSerializer(source="revision_list", many=True)
    # Classifications (grading.engine.classifications; issue 14 item 5).
    jic_type = serializers.SerializerMethodField()
    kerboul_angle_deg = serializers.SerializerMethodField()
    kerboul_partial = serializers.SerializerMethodField()
    jic_source = serializers.SerializerMethodField()
    kerboul_source = serializers.SerializerMethodField()
    extent = serializers.SerializerMethodField()
    stage = serializers.SerializerMethodField()
    stage_source = serializers.SerializerMethodField()

    @extend_schema_field(
        serializers.ListField(
            child=serializers.CharField(),
            help_text="The hip's flags, and the study's series_disagreement of its side.",
        )
    )
    def get_flags(self, hip: Any) -> list[str]:
        from grading.services.studies import hip_study_flags

        study = hip.analysis.series.study
        return list(hip.flags) + hip_study_flags(hip=hip, study_flags=list(study.flags or []))

    def _classifications(self, hip: Any) -> dict[str, Any]:
        from grading.services.classifications import hip_classifications

        cached = getattr(hip, "_classifications", None)
        if cached is None:
            cached = hip._classifications = hip_classifications(hip=hip)
        return cached

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="A, B, C1, C2"))
    def get_jic_type(self, hip: Any) -> str | None:
        return self._classifications(hip)["jic_type"]

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_kerboul_angle_deg(self, hip: Any) -> float | None:
        return self._classifications(hip)["kerboul_angle_deg"]

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_kerboul_partial(self, hip: Any) -> bool | None:
        return self._classifications(hip)["kerboul_partial"]

    @extend_schema_field(
        serializers.CharField(
            allow_null=True,
            help_text="clinician (a person set it) or ai (the engine's mid-coronal T1); null: none",
        )
    )
    def get_jic_source(self, hip: Any) -> str | None:
        return self._classifications(hip)["jic_source"]

    @extend_schema_field(
        serializers.CharField(
            allow_null=True,
            help_text="clinician or ai (mid-coronal plus mid-sagittal arcs); null: none",
        )
    )
    def get_kerboul_source(self, hip: Any) -> str | None:
        return self._classifications(hip)["kerboul_source"]

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="A, B, C"))
    def get_extent(self, hip: Any) -> str | None:
        return self._classifications(hip)["extent"]

    @extend_schema_field(serializers.CharField())
    def get_stage(self, hip: Any) -> str:
        return str(self._classifications(hip)["stage"])

    @extend_schema_field(serializers.CharField(help_text="mri or clinician"))
    def get_stage_source(self, hip: Any) -> str:
        return str(self._classifications(hip)["stage_source"])

    # uncertainty (engine-pipeline): describes ai_proportion
    ai_proportion = serializers.FloatField(allow_null=True)
    proportion_interval = _interval_field()
    grade_probabilities = GradeProbabilitiesSerializer(allow_null=True)
    method_proportions = serializers.DictField(
        source="ai_method_proportions",
        child=serializers.FloatField(),
        help_text="The AI proportion by each necrosis method that ran (threshold, learned).",
    )


@extend_schema_serializer(component_name="SliceHip")
class SliceHipOutputSerializer(serializers.Serializer):
    side = serializers.ChoiceField(choices=Side.choices)
    proportion = serializers.FloatField()
    grade = GradeField(allow_null=True)
    head_area_mm2 = serializers.FloatField()
    necrosis_area_mm2 = serializers.FloatField()
    flags = serializers.ListField(child=serializers.CharField())
    proportion_interval = _interval_field(default=None)
    grade_probabilities = GradeProbabilitiesSerializer(allow_null=True, default=None)


@extend_schema_serializer(component_name="Slice")
class SliceOutputSerializer(serializers.Serializer):
    sop_instance_uid = serializers.CharField(source="instance.sop_instance_uid")
    frame_number = serializers.IntegerField(source="instance.frame_number", allow_null=True)
    series_instance_uid = serializers.CharField(source="analysis.series.series_instance_uid")
    instance_number = serializers.IntegerField(source="instance.instance_number", allow_null=True)
    hips = SliceHipOutputSerializer(many=True)


@extend_schema_serializer(component_name="StudyDetail")
class StudyDetailOutputSerializer(StudySummaryOutputSerializer):
    """The summary plus progress, series with their instances, hips and slices
    (``slices`` in the viewer's stack order: by series, then along the slice normal)."""

    progress = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    series = SeriesOutputSerializer(source="series_list", many=True)
    hips = HipOutputSerializer(source="hip_list", many=True)
    slices = SliceOutputSerializer(source="slice_list", many=True)

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, study: Any) -> dict[str, int]:
        return {"done": study.progress_done, "total": study.progress_total}

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_error(self, study: Any) -> str | None:
        return _blank_to_none(study.error)


@extend_schema_serializer(component_name="GradeRevision")
class GradeRevisionOutputSerializer(serializers.Serializer):
    """A revision as answered by ``POST studies/{id}/grades/``."""

    id = serializers.IntegerField()
    series_instance_uid = serializers.CharField(
        source="hip_result.analysis.series.series_instance_uid"
    )
    side = serializers.ChoiceField(source="hip_result.side", choices=Side.choices)
    grade = GradeField()
    reason = serializers.CharField()
    author = serializers.CharField(source="author.username")
    time = serializers.DateTimeField(source="created")


@extend_schema_serializer(component_name="AuditEvent")
class AuditEventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    time = serializers.DateTimeField()
    actor = serializers.SerializerMethodField()
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)
    reason = serializers.CharField()
    client_address = serializers.IPAddressField(allow_null=True)

    @extend_schema_field(serializers.CharField(allow_null=True, help_text="null: the system"))
    def get_actor(self, event: Any) -> str | None:
        return event.actor_username or None


__all__ = [
    "AuditEventOutputSerializer",
    "GradeRevisionOutputSerializer",
    "StudyDetailOutputSerializer",
    "StudySummaryOutputSerializer",
]
