"""Teaching collections, their de-identified cases and the students' attempts.

A case is a COPY: its own de-identified DICOM files (``CaseInstance.file``), remapped UIDs
and the reference (grades and label maps) taken from the source study's current results
when the case was added. Later changes to the source do not reach the case, and nothing a
student is served comes from the source study's rows or files.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from grading.models import GradeChoice, Series, Site, Study


class Collection(models.Model):
    """A teacher's set of cases for the students enrolled in it.

    ``deid_seed`` and ``date_offset_days`` make the de-identification consistent within the
    collection (same source UID -> same new UID, one date shift) and different across
    collections; both are secrets and never leave the server.
    """

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="teaching_collections")
    teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="collections_taught"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    students = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="Enrolment",
        related_name="collections_enrolled",
        blank=True,
    )
    deid_seed = models.CharField(max_length=64, editable=False)
    date_offset_days = models.IntegerField(editable=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(date_offset_days__lt=0), name="collection_dates_shift_back"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def clean(self) -> None:
        if not self.title.strip():
            raise ValidationError({"title": "A collection needs a title."})


class Enrolment(models.Model):
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="enrolments")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="enrolments"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["collection_id", "student__username"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "student"], name="enrolment_unique_student"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.student} in {self.collection}"


class Case(models.Model):
    """One de-identified series in a collection, shown to students as "Case {number}".

    ``source_study``/``source_series`` are for the teacher only (never in a student's
    answer). ``reference_hips``: ``[{"side","grade","ai_grade","proportion"}]``, the
    source's current results when the case was added.
    """

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="cases")
    number = models.PositiveIntegerField()
    source_study = models.ForeignKey(
        Study, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    source_series = models.ForeignKey(
        Series, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    study_instance_uid = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64)
    reference_hips = models.JSONField(default=list)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["collection_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "number"], name="case_unique_number"),
            models.UniqueConstraint(
                fields=["collection", "source_series"], name="case_unique_source_series"
            ),
            models.CheckConstraint(condition=models.Q(number__gte=1), name="case_number_1"),
        ]

    def __str__(self) -> str:
        return f"{self.pseudonym} of {self.collection}"

    @property
    def pseudonym(self) -> str:
        return f"Case {self.number}"

    @property
    def sides(self) -> list[str]:
        return [hip["side"] for hip in self.reference_hips]


def case_file_upload_to(instance: CaseInstance, filename: str) -> str:
    return f"teaching/{instance.case_id}/{filename}"


class CaseInstance(models.Model):
    """One de-identified slice of a case, in stack order (``index`` from 0), with the
    reference label map (8-bit PNG, 0 background, 1 head, 2 necrosis) when the source had
    one."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="instances")
    index = models.PositiveIntegerField()
    sop_instance_uid = models.CharField(max_length=64)
    file = models.FileField(upload_to=case_file_upload_to, max_length=255)
    reference_labelmap = models.FileField(upload_to=case_file_upload_to, max_length=255, blank=True)
    rows = models.PositiveIntegerField()
    columns = models.PositiveIntegerField()

    class Meta:
        ordering = ["case_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["case", "index"], name="case_instance_unique_index"),
            models.UniqueConstraint(
                fields=["case", "sop_instance_uid"], name="case_instance_unique_uid"
            ),
        ]

    def __str__(self) -> str:
        return f"slice {self.index + 1} of case {self.case_id}"


class Attempt(models.Model):
    """A student's answer to a case. Retakes are new rows (``number`` 1, 2, ...): nothing
    is overwritten.

    ``grades``: ``{side: grade}``. ``hips``: the scored hips
    ``[{"side","grade","reference_grade","score","mask_proportion","mask_grade"}]``.
    ``score``: mean per-hip grade score (exact 1, one grade off 0.5, else 0).
    ``dice``: necrosis Dice of the student's mask against the reference over the whole
    series, null when no mask was marked.
    """

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attempts")
    student = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="teaching_attempts"
    )
    number = models.PositiveIntegerField()
    grades = models.JSONField(default=dict)
    jic_types = models.JSONField(default=dict, blank=True)  # {side: "A"|"B"|"C1"|"C2"}
    hips = models.JSONField(default=list)
    score = models.FloatField()
    jic_score = models.FloatField(null=True, blank=True)  # None: no reference JIC type
    dice = models.FloatField(null=True, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["case_id", "student_id", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "student", "number"], name="attempt_unique_number"
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=0) & models.Q(score__lte=1),
                name="attempt_score_fraction",
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.student} on case {self.case_id}"

    def clean(self) -> None:
        for grade in self.grades.values():
            if grade not in GradeChoice.values:
                raise ValidationError({"grades": f"Unknown grade {grade!r}."})


def attempt_mask_upload_to(mask: AttemptMask, filename: str) -> str:
    return f"teaching/attempts/{mask.attempt_id}/{filename}"


class AttemptMask(models.Model):
    """The necrosis a student marked on one slice: 8-bit PNG, 0 or 1."""

    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="masks")
    case_instance = models.ForeignKey(CaseInstance, on_delete=models.CASCADE, related_name="+")
    file = models.FileField(upload_to=attempt_mask_upload_to, max_length=255)
    necrosis_pixels = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempt_id", "case_instance__index"]
        constraints = [
            models.UniqueConstraint(
                fields=["attempt", "case_instance"], name="attempt_mask_unique_slice"
            ),
        ]

    def __str__(self) -> str:
        return f"mask of {self.case_instance} in attempt {self.attempt_id}"
