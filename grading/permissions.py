"""What the API hides from whom, on top of the selectors' visibility rules.

Visibility itself (which studies a user may see at all; a foreign site answers 404) and
who may grade, edit masks or upload live in ``grading.selectors``. This module holds
the one rule the API adds:

**Students see their site's studies de-identified.** A student must learn to grade
from the images and the results, not from whose hip it is; so every API answer a
student gets has the patient's name, ID and birth date removed: ``patient_name`` and
``patient_id`` are ``null`` in study summaries and details, patient keys inside audit
``before``/``after`` are ``null``, the DICOM file is served with PatientName,
PatientID, PatientBirthDate (and the other patient-identifying attributes) emptied,
and ``search`` / ``ordering`` on the study list ignore the patient fields (or the
results would leak them).

The rule is per study, by the user's role at the study's site: a user who is a
student at site A and a clinician at site B sees A's studies de-identified and B's
in full. A study shared with a user who is not a member of its site is de-identified
unless the user holds a non-student role at some site (a consultant giving a second
opinion sees what a clinician sees). A superuser is never redacted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from grading.models import Role
from grading.selectors import memberships_of

PATIENT_FIELDS = ("patient_name", "patient_id", "patient_birth_date")


@dataclass(frozen=True)
class Redaction:
    """Which sites' studies a user sees de-identified. Built once per request."""

    student_site_ids: frozenset[int]
    member_site_ids: frozenset[int]
    student_only: bool
    superuser: bool

    @property
    def hides_patient_anywhere(self) -> bool:
        """Whether some visible study is de-identified for this user: then the study list
        neither searches nor orders by patient fields at all (a match would leak them)."""
        if self.superuser:
            return False
        return bool(self.student_site_ids) or self.student_only

    def hides_patient_of(self, site_id: int) -> bool:
        if self.superuser:
            return False
        if site_id in self.member_site_ids:
            return site_id in self.student_site_ids
        return self.student_only


def redaction_for(*, user: Any) -> Redaction:
    roles = {m.site_id: m.role for m in memberships_of(user=user)}
    student_sites = frozenset(pk for pk, role in roles.items() if role == Role.STUDENT)
    return Redaction(
        student_site_ids=student_sites,
        member_site_ids=frozenset(roles),
        student_only=len(student_sites) == len(roles),
        superuser=bool(getattr(user, "is_superuser", False)),
    )


def redact_study_data(data: dict[str, Any]) -> dict[str, Any]:
    """Null the patient identifiers of one serialized study (summary or detail)."""
    for key in PATIENT_FIELDS:
        if key in data:
            data[key] = None
    return data


def redact_study_list(*, redaction: Redaction, rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        if redaction.hides_patient_of(row["site"]["id"]):
            redact_study_data(row)


def redact_patient_keys(value: Any) -> Any:
    """A copy of a JSON value with every patient-identifying key set to None
    (audit ``before``/``after`` are free-form; this keeps them safe for students)."""
    if isinstance(value, dict):
        return {
            key: (None if key in PATIENT_FIELDS else redact_patient_keys(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_patient_keys(item) for item in value]
    return value
