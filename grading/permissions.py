"""What the API hides from whom, on top of the selectors' visibility rules.

Visibility itself (which studies a user may see at all; a foreign site answers 404) and
who may grade, edit masks or upload live in ``grading.selectors``. This module holds
the one rule the API adds:

**Students see their site's studies de-identified.** A student must learn to grade
from the images and the results, not from whose hip it is; so every API answer a
student gets has the patient's identifiers removed: ``patient_name``, ``patient_id``
and ``study_date`` are ``null`` in study summaries and details (and the study page),
the keys of ``PATIENT_FIELDS`` inside audit ``before``/``after`` are ``null``, every
DICOM file, QIDO answer and metadata is served through the PS3.15 basic profile
(``grading.dicom.deidentify`` with the Retain UIDs option, dates shifted by a per-study
offset from a key that is not in the database: :func:`student_view_key`), and
``search`` / ``ordering`` / date filters on the study list ignore the patient fields,
the accession number and the study date (or the results would leak them).

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

# Keys nulled in what a student gets: the patient's identifiers, and what the PS3.15
# basic profile removes or shifts beside them (accession number, sex, exact dates).
PATIENT_FIELDS = (
    "patient_name",
    "patient_id",
    "patient_birth_date",
    "patient_sex",
    "accession_number",
    "study_date",
)


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


def student_view_key(*, study_id: int) -> Any:
    """The de-identification key of a study shown to a student: its date offset (whole
    days, 1 to 10 years back) and UID seed from an HMAC of the study id under the
    portal's SECRET_KEY, so the same study always looks the same and nothing in the
    database gives the offset away."""
    from django.utils.crypto import salted_hmac

    from grading.dicom.deidentify import DeidentificationKey

    digest = salted_hmac("onfh.student-view", str(study_id), algorithm="sha256").hexdigest()
    return DeidentificationKey(
        seed=digest[:32], date_offset_days=-(365 + int(digest[32:40], 16) % 3288)
    )


def student_view_dicom(data: bytes, *, study_id: int) -> bytes:
    """One stored DICOM file as a student gets it: the PS3.15 basic profile with the
    Retain UIDs option (the viewer names slices by SOPInstanceUID)."""
    from grading.dicom.deidentify import deidentify_bytes

    return deidentify_bytes(
        data,
        key=student_view_key(study_id=study_id),
        pseudonym="",
        retain_uids=True,
    )


def sees_client_addresses(*, user: Any, site_id: int) -> bool:
    """Client IP addresses in the audit trail are for the study site's admins and
    superusers only (they identify staff and patients' devices)."""
    if getattr(user, "is_superuser", False):
        return True
    return any(
        m.site_id == site_id and m.role == Role.SITE_ADMIN for m in memberships_of(user=user)
    )
