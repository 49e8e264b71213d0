"""A request for a second opinion on one study, and the consultant's answers.

The consultant's answer is an opinion shown beside the requester's grade, never a
clinical ``GradeRevision``: it changes no grade of the study.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from grading.models import Site, Study


class ConsultStatus(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed"
    EXPIRED = "expired", "Expired"


# While a request is in one of these (and not past ``expires_at``) the consultant may
# see the study; an answered request stays open for a revised answer until the
# requester closes it or it expires.
ACTIVE_STATUSES = (ConsultStatus.OPEN, ConsultStatus.ANSWERED)


class SecondOpinionRequest(models.Model):
    study = models.ForeignKey(
        Study, on_delete=models.CASCADE, related_name="second_opinion_requests"
    )
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consults_requested"
    )
    consultant = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="consults_received",
    )
    consultant_site = models.ForeignKey(
        Site, on_delete=models.PROTECT, null=True, blank=True, related_name="consults_received"
    )
    question = models.TextField()
    status = models.CharField(
        max_length=10, choices=ConsultStatus.choices, default=ConsultStatus.OPEN, db_index=True
    )
    expires_at = models.DateTimeField(db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(consultant__isnull=False, consultant_site__isnull=True)
                    | models.Q(consultant__isnull=True, consultant_site__isnull=False)
                ),
                name="consult_one_consultant",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in ConsultStatus]),
                name="consult_status_valid",
            ),
            models.CheckConstraint(condition=~models.Q(question=""), name="consult_has_question"),
        ]

    def __str__(self) -> str:
        return f"second opinion {self.pk} on study {self.study_id} ({self.status})"

    def clean(self) -> None:
        if (self.consultant_id is None) == (self.consultant_site_id is None):
            raise ValidationError("Ask either a colleague or a site, not both or neither.")
        if not (self.question or "").strip():
            raise ValidationError({"question": "A request needs a question."})

    @property
    def consultant_label(self) -> str:
        if self.consultant_id is not None:
            return self.consultant.get_full_name() or self.consultant.get_username()
        return f"site {self.consultant_site.name}" if self.consultant_site else ""


class SecondOpinionAnswer(models.Model):
    """``hips``: ``[{"series_instance_uid", "side", "grade"}]``, one per hip answered."""

    request = models.ForeignKey(
        SecondOpinionRequest, on_delete=models.CASCADE, related_name="answers"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consult_answers"
    )
    hips = models.JSONField(default=list)
    comment = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["request_id", "created", "id"]

    def __str__(self) -> str:
        return f"answer {self.pk} to second opinion {self.request_id}"
