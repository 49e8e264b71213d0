"""What was uploaded: Study > Series > Instance (one stored DICOM file each)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from grading.models.sites import Site


class StudyStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class GradeChoice(models.TextChoices):
    NONE = "none", "None (< 0.1 %)"
    MILD = "mild", "Mild (< 15 %)"
    MODERATE = "moderate", "Moderate (15-30 %)"
    SEVERE = "severe", "Severe (> 30 %)"


GRADE_RANK = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}


def worst_grade(grades: list[str | None]) -> str | None:
    known = [g for g in grades if g]
    return max(known, key=GRADE_RANK.__getitem__) if known else None


class Study(models.Model):
    """One DICOM study at one site.

    ``status``, ``progress_*``, ``error``, ``ai_grade``, ``grade`` and ``flags`` are
    stored, not computed per request: the services that change an analysis, a grade or a
    mask refresh them (``grading.services.studies.study_status_refresh`` and
    ``study_grades_refresh``), so the study list needs no joins. ``status`` is derived
    from the latest analysis of each analysable series: running if any runs (or some
    are done and others still wait), queued while all wait, failed if any failed and
    none is pending, done when all are done.
    """

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    patient_name = models.CharField(max_length=200, blank=True)
    patient_id = models.CharField(max_length=64, blank=True)
    patient_birth_date = models.DateField(null=True, blank=True)
    patient_sex = models.CharField(max_length=16, blank=True)
    study_date = models.DateField(null=True, blank=True)
    study_description = models.CharField(max_length=200, blank=True)
    accession_number = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="studies_uploaded",
    )
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)
    status = models.CharField(
        max_length=10, choices=StudyStatus.choices, default=StudyStatus.QUEUED, db_index=True
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    ai_grade = models.CharField(max_length=10, choices=GradeChoice.choices, null=True, blank=True)  # noqa: DJ001 - null: no grade yet
    grade = models.CharField(  # noqa: DJ001 - null: no grade yet
        max_length=10, choices=GradeChoice.choices, null=True, blank=True, db_index=True
    )
    flags = models.JSONField(default=list, blank=True)
    # A hip a person reviewed was analysed again and the AI's answer changed since
    # (``HipResult.ai_changed_since_review`` of any current hip); for the worklist.
    ai_changed_since_review = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name_plural = "studies"
        constraints = [
            models.UniqueConstraint(
                fields=["site", "study_instance_uid"], name="study_unique_uid_per_site"
            ),
            models.CheckConstraint(
                condition=models.Q(progress_done__lte=models.F("progress_total")),
                name="study_progress_within_total",
            ),
        ]
        indexes = [
            # The study list: newest first, optionally filtered by status or grade; with
            # these the database reads the first page in order instead of sorting.
            models.Index(fields=["-created", "-id"], name="study_newest"),
            models.Index(fields=["status", "-created", "-id"], name="study_status_newest"),
            models.Index(fields=["grade", "-created", "-id"], name="study_grade_newest"),
            models.Index(fields=["site", "-created"], name="study_site_created"),
            models.Index(fields=["study_date"], name="study_date"),
        ]

    def __str__(self) -> str:
        return f"{self.patient_name or self.patient_id or 'study'} {self.study_instance_uid}"

    def clean(self) -> None:
        if not self.study_instance_uid.strip():
            raise ValidationError({"study_instance_uid": "StudyInstanceUID is required."})
        if self.progress_done > self.progress_total:
            raise ValidationError({"progress_done": "Progress cannot exceed its total."})


class StudyShare(models.Model):
    """A study shown to a user outside its site (a second opinion, a teaching case)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="shares")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_shares"
    )
    shared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="study_shares_given",
    )
    note = models.CharField(max_length=500, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="share_unique_study_user"),
        ]

    def __str__(self) -> str:
        return f"{self.study_id} -> {self.user}"


class Plane(models.TextChoices):
    AXIAL = "axial", "Axial"
    CORONAL = "coronal", "Coronal"
    SAGITTAL = "sagittal", "Sagittal"
    OBLIQUE = "oblique", "Oblique"
    UNKNOWN = "unknown", "Unknown"


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    # The study's site, copied here so that the database holds UIDs unique per site.
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    # Unique per site (issue 13 item 7): the ingest finds a series by its UID among its
    # own site's studies; the database holds it unique within its study and its site.
    series_instance_uid = models.CharField(max_length=64)
    description = models.CharField(max_length=200, blank=True)
    number = models.IntegerField(null=True, blank=True)
    modality = models.CharField(max_length=16, default="MR")
    plane = models.CharField(max_length=10, choices=Plane.choices, default=Plane.UNKNOWN)
    # Sequence and plane awareness (grading.dicom.protocol.series_decision): set when the
    # study's analyses are requested; graded None = not decided yet.
    weighting = models.CharField(max_length=16, blank=True)
    graded = models.BooleanField(null=True, blank=True)
    not_graded_reason = models.TextField(blank=True)
    protocol_flags = models.JSONField(default=list, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    # When an instance of the series was last stored (the quiet period before an
    # analysis counts from here).
    last_arrival = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study_id", "number", "id"]
        verbose_name_plural = "series"
        constraints = [
            models.UniqueConstraint(
                fields=["site", "series_instance_uid"], name="series_unique_uid_per_site"
            ),
            models.UniqueConstraint(
                fields=["study", "series_instance_uid"], name="series_unique_uid_per_study"
            ),
        ]
        indexes = [models.Index(fields=["series_instance_uid"], name="series_uid")]

    def __str__(self) -> str:
        return f"{self.description or 'series'} {self.series_instance_uid}"

    def clean(self) -> None:
        if not self.series_instance_uid.strip():
            raise ValidationError({"series_instance_uid": "SeriesInstanceUID is required."})
        if self.study_id is not None and self.site_id != self.study.site_id:
            raise ValidationError({"site": "A series belongs to its study's site."})

    @property
    def analysable(self) -> bool:
        """An MR series is analysed unless the protocol decision said it is not graded
        (a series not decided yet counts as analysable)."""
        return self.modality == "MR" and self.graded is not False


def slice_key(sop_instance_uid: str, frame_number: int | None) -> str:
    """See :attr:`Instance.slice_key`."""
    return sop_instance_uid if frame_number is None else f"{sop_instance_uid}:{frame_number}"


def instances_by_slice_key(series: Series, keys: list[str]) -> dict[str, Instance]:
    """The instances of ``series`` named by slice keys (unknown keys are left out)."""
    uids = {key.split(":", 1)[0] for key in keys}
    found = Instance.objects.filter(series=series, sop_instance_uid__in=uids)
    wanted = set(keys)
    return {i.slice_key: i for i in found if i.slice_key in wanted}


class IncomingSeries(models.Model):
    """Instances of a series are being received right now (an upload request or a DICOM
    association that has checked one of its files and not yet ended). Written outside
    the receiver's transaction so that workers see it; removed when the receiver ends,
    and ignored after ``expires`` (a receiver that died). No analysis of the series is
    requested while one exists."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    series_instance_uid = models.CharField(max_length=64)
    receiver = models.CharField(max_length=100, help_text="upload or association, and its id")
    started = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()

    class Meta:
        verbose_name_plural = "incoming series"
        indexes = [models.Index(fields=["series_instance_uid"], name="incoming_series_uid")]

    def __str__(self) -> str:
        return f"{self.series_instance_uid} arriving by {self.receiver}"


def dicom_file_name(sha256: str) -> str:
    """Content-addressed: the same bytes always land at the same name."""
    return f"dicom/{sha256[:2]}/{sha256}.dcm"


def instance_upload_to(instance: Instance, filename: str) -> str:
    return dicom_file_name(instance.sha256)


class Instance(models.Model):
    """One MR slice: a stored single-frame DICOM file, or one frame of a multi-frame file
    (Enhanced MR, Legacy Converted Enhanced MR), which then has one row per frame sharing
    the file and the SOPInstanceUID, told apart by ``frame_number`` (1-based; null for a
    single-frame file). Files are never deleted by the portal."""

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    # The series' site, copied here so that the database holds UIDs unique per site.
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    # Unique per site (the ingest looks it up among its site's instances); the database
    # holds it unique within its series (per frame for a multi-frame file).
    sop_instance_uid = models.CharField(max_length=64)
    frame_number = models.PositiveIntegerField(null=True, blank=True)
    file = models.FileField(upload_to=instance_upload_to, max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    size_bytes = models.PositiveBigIntegerField()
    original_name = models.CharField(max_length=255, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    # Position of the slice along its normal (mm): the viewer's stack order.
    position = models.FloatField(null=True, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()
    pixel_spacing_row_mm = models.FloatField(null=True, blank=True)
    pixel_spacing_col_mm = models.FloatField(null=True, blank=True)
    slice_thickness_mm = models.FloatField(null=True, blank=True)
    # From the header (grading.dicom.protocol): for the series decision.
    weighting = models.CharField(max_length=16, blank=True)
    orientation = models.JSONField(null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["series_id", "position", "instance_number", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rows__gt=0) & models.Q(columns__gt=0),
                name="instance_has_pixels",
            ),
            models.UniqueConstraint(
                fields=["series", "sop_instance_uid"],
                condition=models.Q(frame_number__isnull=True),
                name="instance_unique_uid_per_series",
            ),
            models.UniqueConstraint(
                fields=["series", "sop_instance_uid", "frame_number"],
                name="instance_unique_uid_frame_per_series",
            ),
            models.CheckConstraint(
                condition=models.Q(frame_number__isnull=True) | models.Q(frame_number__gte=1),
                name="instance_frame_from_1",
            ),
            models.UniqueConstraint(
                fields=["site", "sop_instance_uid"],
                condition=models.Q(frame_number__isnull=True),
                name="instance_unique_uid_per_site",
            ),
            models.UniqueConstraint(
                fields=["site", "sop_instance_uid", "frame_number"],
                name="instance_unique_uid_frame_per_site",
            ),
        ]
        indexes = [models.Index(fields=["sop_instance_uid"], name="instance_sop_uid")]

    def __str__(self) -> str:
        if self.frame_number is not None:
            return f"{self.sop_instance_uid} [frame {self.frame_number}]"
        return self.sop_instance_uid

    def clean(self) -> None:
        if len(self.sha256) != 64:
            raise ValidationError({"sha256": "A sha256 digest has 64 hex digits."})
        if self.rows <= 0 or self.columns <= 0:
            raise ValidationError("An instance needs rows and columns.")
        for name in ("pixel_spacing_row_mm", "pixel_spacing_col_mm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValidationError({name: "Pixel spacing must be positive."})

    @property
    def slice_key(self) -> str:
        """``"<SOPInstanceUID>"``, or ``"<SOPInstanceUID>:<frame>"`` for a frame (UIDs
        hold only digits and dots): one slice of the study."""
        return slice_key(self.sop_instance_uid, self.frame_number)
