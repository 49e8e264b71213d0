"""One run of the engine on a series and what it found; what people changed afterwards."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from grading.models.studies import GradeChoice, Instance, Series


class AnalysisStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


ACTIVE_STATUSES = (AnalysisStatus.QUEUED, AnalysisStatus.RUNNING)


class Analysis(models.Model):
    """The engine on one series. At most one queued/running analysis per series.

    ``heartbeat`` is refreshed while a worker runs it; a running analysis whose heartbeat
    is stale belonged to a worker that died and is sent again
    (``grading.services.analyses.analysis_requeue_stale``). ``attempts`` counts claims.
    """

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="analyses")
    model_version = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=10, choices=AnalysisStatus.choices, default=AnalysisStatus.QUEUED
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    timings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created = models.DateTimeField(auto_now_add=True)
    sent = models.DateTimeField(null=True, blank=True, help_text="Last time a task was sent.")
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    celery_task_id = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    # The engine's raw answer (label maps + hips, .npz), written by the gpu task and read
    # by the store task; kept so that a lost store step never needs the model again.
    result_file = models.FileField(upload_to="analyses/", max_length=255, blank=True)
    instance_count = models.PositiveIntegerField(default=0, help_text="Slices analysed.")

    class Meta:
        ordering = ["series_id", "-created", "-id"]
        verbose_name_plural = "analyses"
        constraints = [
            models.UniqueConstraint(
                fields=["series"],
                condition=models.Q(status__in=["queued", "running"]),
                name="analysis_one_active_per_series",
            ),
            models.CheckConstraint(
                condition=models.Q(progress_done__lte=models.F("progress_total")),
                name="analysis_progress_within_total",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in AnalysisStatus]),
                name="analysis_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["status", "heartbeat"], name="analysis_status_hb")]

    def __str__(self) -> str:
        return f"analysis {self.pk} of series {self.series_id} ({self.status})"

    def clean(self) -> None:
        if self.progress_done > self.progress_total:
            raise ValidationError({"progress_done": "Progress cannot exceed its total."})
        if self.status == AnalysisStatus.FAILED and not self.error:
            raise ValidationError({"error": "A failed analysis says why."})
        if self.finished and self.started and self.finished < self.started:
            raise ValidationError({"finished": "Finished before it started."})


class Side(models.TextChoices):
    LEFT = "left", "Left"
    RIGHT = "right", "Right"
    UNKNOWN = "unknown", "Unknown"


class HipResult(models.Model):
    """One femoral head over a series.

    ``ai_*`` are what the engine found and never change. ``head_volume_mm3``,
    ``necrosis_volume_mm3``, ``proportion`` and ``flags`` follow the current label maps
    (the AI's until someone edits a mask). The current grade is the latest
    GradeRevision, else ``ai_grade``; ``grade`` stores it for fast listing.
    ``ai_grade`` is null for a hip the AI did not find and a person drew.
    """

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="hips")
    side = models.CharField(max_length=10, choices=Side.choices)
    ai_head_volume_mm3 = models.FloatField(null=True, blank=True)
    ai_necrosis_volume_mm3 = models.FloatField(null=True, blank=True)
    ai_proportion = models.FloatField(null=True, blank=True)
    ai_grade = models.CharField(max_length=10, choices=GradeChoice.choices, null=True, blank=True)  # noqa: DJ001 - null: no grade yet
    ai_flags = models.JSONField(default=list, blank=True)
    head_volume_mm3 = models.FloatField(default=0.0)
    necrosis_volume_mm3 = models.FloatField(default=0.0)
    proportion = models.FloatField(default=0.0)
    grade = models.CharField(max_length=10, choices=GradeChoice.choices, null=True, blank=True)  # noqa: DJ001 - null: no grade yet
    flags = models.JSONField(default=list, blank=True)
    slice_count = models.PositiveIntegerField(default=0)
    # The series was analysed again after a person reviewed this hip (a grade or a mask
    # edit) and the AI's answer changed; the person's grade and masks were kept
    # (``grading.services.reviews``). Cleared by the next grade a person gives.
    ai_changed_since_review = models.BooleanField(default=False)
    ai_grade_at_review = models.CharField(  # noqa: DJ001 - null: not changed since review
        max_length=10, choices=GradeChoice.choices, null=True, blank=True
    )
    # How sure the engine is (step 14 of docs/grading.md); null for analyses made before
    # it existed. They describe ``ai_proportion`` and never change.
    ai_proportion_interval = models.JSONField(null=True, blank=True)
    """``[low, high]``, fractions: the 85 % interval of the AI's proportion."""
    ai_grade_probabilities = models.JSONField(null=True, blank=True)
    """``{"none", "mild", "moderate", "severe"}`` -> probability (they sum to 1)."""
    ai_method_proportions = models.JSONField(default=dict, blank=True)
    """The proportion by each necrosis method that ran (``threshold``, ``learned``)."""
    # JIC type, roof edge and necrotic arc from this series' mid slice (coronal and
    # sagittal series; grading.engine.hip_classification): HipClassification.as_dict().
    ai_classification = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["analysis_id", "side"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "side"], name="hip_unique_side"),
            models.CheckConstraint(
                condition=models.Q(proportion__gte=0) & models.Q(proportion__lte=1),
                name="hip_proportion_fraction",
            ),
            models.CheckConstraint(
                condition=models.Q(necrosis_volume_mm3__lte=models.F("head_volume_mm3") + 1e-6),
                name="hip_necrosis_within_head",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} hip of analysis {self.analysis_id}"

    @property
    def is_edited(self) -> bool:
        return any(str(f).split(":", 1)[0].strip() == "edited" for f in self.flags or [])

    @property
    def proportion_interval(self) -> list[float] | None:
        """The AI's 85 % interval while ``proportion`` is still the AI's (no edited mask)."""
        if not self.ai_proportion_interval or self.is_edited:
            return None
        return [float(v) for v in self.ai_proportion_interval]

    @property
    def grade_probabilities(self) -> dict[str, float] | None:
        """The AI's grade probabilities while ``proportion`` is still the AI's."""
        if not self.ai_grade_probabilities or self.is_edited:
            return None
        return {str(k): float(v) for k, v in self.ai_grade_probabilities.items()}

    def clean(self) -> None:
        if not 0.0 <= self.proportion <= 1.0:
            raise ValidationError({"proportion": "A proportion is a fraction 0..1."})
        if self.necrosis_volume_mm3 > self.head_volume_mm3 + 1e-6:
            raise ValidationError("Necrosis cannot exceed the femoral head.")

    @property
    def current_grade(self) -> str | None:
        """Latest revision, else the AI grade (uses prefetched ``revisions`` if present)."""
        revisions = list(self.revisions.all())
        if revisions:
            return max(revisions, key=lambda r: (r.created, r.pk)).grade
        return self.ai_grade


class SliceResult(models.Model):
    """The hips found on one slice. ``hips``/``ai_hips``: lists of
    ``{"side","head_area_mm2","necrosis_area_mm2","proportion","grade","flags",
    "bbox","confidence"}``; ``ai_hips`` is the engine's and never changes."""

    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="slices")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="slice_results")
    hips = models.JSONField(default=list, blank=True)
    ai_hips = models.JSONField(default=list, blank=True)
    edited = models.BooleanField(default=False)

    class Meta:
        ordering = ["analysis_id", "instance__position", "instance__instance_number", "id"]
        constraints = [
            models.UniqueConstraint(fields=["analysis", "instance"], name="slice_unique_instance"),
        ]

    def __str__(self) -> str:
        return f"slice {self.instance_id} of analysis {self.analysis_id}"


class LabelMapKind(models.TextChoices):
    AI = "ai", "AI"
    EDITED = "edited", "Edited"


def labelmap_upload_to(labelmap: LabelMap, filename: str) -> str:
    return f"labelmaps/{labelmap.analysis_id}/{labelmap.instance_id}/v{labelmap.version}.png"


class LabelMap(models.Model):
    """A version of one slice's label map (8-bit PNG, 0 background, 1 head, 2 necrosis).

    Version 1 is the AI's and is kept for ever; the current one is the highest version.
    A revert adds a version of kind ``ai`` that points at the AI's PNG again.
    """

    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="labelmaps")
    analysis = models.ForeignKey(Analysis, on_delete=models.CASCADE, related_name="labelmaps")
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=LabelMapKind.choices)
    file = models.FileField(upload_to=labelmap_upload_to, max_length=255)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["analysis_id", "instance_id", "version"]
        constraints = [
            models.UniqueConstraint(
                fields=["analysis", "instance", "version"], name="labelmap_unique_version"
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="labelmap_version_1"),
            models.CheckConstraint(
                condition=~models.Q(kind="edited") | models.Q(author__isnull=False),
                name="labelmap_edit_has_author",
            ),
        ]

    def __str__(self) -> str:
        return f"labelmap v{self.version} ({self.kind}) of instance {self.instance_id}"

    def clean(self) -> None:
        if self.kind == LabelMapKind.EDITED and self.author_id is None:
            raise ValidationError({"author": "An edited label map has an author."})
        if self.version == 1 and self.kind != LabelMapKind.AI:
            raise ValidationError({"kind": "Version 1 is the AI's label map."})


class RevisionSource(models.TextChoices):
    MANUAL = "manual", "Set by hand"
    MASK_EDIT = "mask_edit", "Mask edited"
    MASK_REVERT = "mask_revert", "Mask reverted to the AI's"


class GradeRevision(models.Model):
    """A grade set by a person. The AI grade stays as it was."""

    hip_result = models.ForeignKey(HipResult, on_delete=models.CASCADE, related_name="revisions")
    grade = models.CharField(max_length=10, choices=GradeChoice.choices)
    reason = models.TextField()
    source = models.CharField(
        max_length=12, choices=RevisionSource.choices, default=RevisionSource.MANUAL
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="grade_revisions"
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["hip_result_id", "created", "id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(reason=""), name="revision_has_reason"),
            models.CheckConstraint(
                condition=models.Q(grade__in=[g.value for g in GradeChoice]),
                name="revision_grade_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grade} by {self.author} on hip {self.hip_result_id}"

    def clean(self) -> None:
        if not self.reason or not self.reason.strip():
            raise ValidationError({"reason": "A grade change needs a reason."})
