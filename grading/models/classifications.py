"""What a clinician sets about a hip beside the grade: JIC type, Kerboul angle and the
radiograph/CT findings that give the stage (docs/grading.md section 5)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from grading.models.analyses import HipResult


class JicChoice(models.TextChoices):
    A = "A", "A (medial third)"
    B = "B", "B (medial two thirds)"
    C1 = "C1", "C1 (beyond two thirds, inside the acetabular edge)"
    C2 = "C2", "C2 (past the acetabular edge)"


class ClassificationRevision(models.Model):
    """One change by a person; the latest revision of a hip holds every value a person
    has set (a null value: not set, the AI's value, if any, stands). Never edited."""

    hip_result = models.ForeignKey(
        HipResult, on_delete=models.CASCADE, related_name="classification_revisions"
    )
    jic_type = models.CharField(max_length=2, choices=JicChoice.choices, blank=True)
    kerboul_angle_deg = models.FloatField(null=True, blank=True)
    kerboul_partial = models.BooleanField(null=True, blank=True)
    # Radiograph / CT findings (only a clinician can give them): the stage follows.
    findings_entered = models.BooleanField(default=False)
    radiograph_abnormal = models.BooleanField(default=False)
    crescent_sign = models.BooleanField(default=False)
    collapse_mm = models.FloatField(default=0.0)
    joint_space_narrowed = models.BooleanField(default=False)
    acetabular_changes = models.BooleanField(default=False)
    reason = models.TextField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["hip_result_id", "created", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(reason=""), name="classification_has_reason"
            ),
            models.CheckConstraint(
                condition=models.Q(kerboul_angle_deg__isnull=True)
                | (models.Q(kerboul_angle_deg__gte=0) & models.Q(kerboul_angle_deg__lte=720)),
                name="classification_kerboul_range",
            ),
            models.CheckConstraint(
                condition=models.Q(collapse_mm__gte=0), name="classification_collapse_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"classification of hip {self.hip_result_id} by {self.author}"

    def clean(self) -> None:
        if not self.reason.strip():
            raise ValidationError({"reason": "A change needs a reason."})
