"""Sites (hospitals, organisations) and who belongs to them with which role."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    RADIOLOGIST = "radiologist", "Radiologist"
    TEACHER = "teacher", "Teacher"
    STUDENT = "student", "Student"
    SITE_ADMIN = "site_admin", "Site administrator"


# Roles that may set a clinical grade or edit a mask; a student may only look.
GRADING_ROLES = frozenset({Role.CLINICIAN, Role.RADIOLOGIST, Role.TEACHER, Role.SITE_ADMIN})
UPLOAD_ROLES = GRADING_ROLES


class Site(models.Model):
    name = models.CharField(max_length=200, unique=True)
    code = models.SlugField(max_length=50, unique=True, help_text="Short stable identifier.")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if not self.name.strip():
            raise ValidationError({"name": "A site needs a name."})


class Membership(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site__name", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "site"], name="membership_unique_user_site"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]),
                name="membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site} ({self.role})"

    def clean(self) -> None:
        if self.role not in Role.values:
            raise ValidationError({"role": f"Unknown role {self.role!r}."})
