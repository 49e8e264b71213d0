"""A doctor's explanation of a graded study for the patient, and links to share it.

What the patient sees is fixed when the explanation is made (grade, proportion,
picture, the doctor's name): a later change of the study makes a new explanation,
not a different page behind an old link.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from grading.models import GradeChoice, Instance, Series, Side, Study


def explanation_image_upload_to(explanation: PatientExplanation, filename: str) -> str:
    return f"explanations/{explanation.study_id}/{filename}"


class PatientExplanation(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="explanations")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="explanations"
    )
    author_name = models.CharField(max_length=200, help_text="The doctor's name as shown.")
    note = models.TextField(blank=True, help_text="The doctor's own words for the patient.")
    series = models.ForeignKey(Series, on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=10, choices=Side.choices)
    instance = models.ForeignKey(
        Instance, on_delete=models.PROTECT, related_name="+", help_text="The slice shown."
    )
    proportion = models.FloatField()
    grade = models.CharField(max_length=10, choices=GradeChoice.choices)
    # The hip's classifications when the explanation was made (docs/grading.md section 5);
    # blank: not known.
    extent = models.CharField(max_length=1, blank=True)
    jic_type = models.CharField(max_length=2, blank=True)
    stage = models.CharField(max_length=80, blank=True)
    stage_source = models.CharField(max_length=10, blank=True)
    proportion_interval = models.JSONField(
        null=True, blank=True, help_text="[low, high]: the engine's 85 % interval, if it gave one."
    )
    image = models.FileField(upload_to=explanation_image_upload_to, max_length=255)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(proportion__gte=0) & models.Q(proportion__lte=1),
                name="explanation_proportion_fraction",
            ),
        ]

    def __str__(self) -> str:
        return f"explanation {self.pk} of study {self.study_id}"


class ShareLink(models.Model):
    """A link to the patient page. Only the sha256 of the token is stored; the token
    itself is shown once, when the link is made."""

    explanation = models.ForeignKey(
        PatientExplanation, on_delete=models.CASCADE, related_name="links"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"link {self.pk} to explanation {self.explanation_id}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()
