"""DICOM UIDs (PS3.5 section 9.1): digits and dots, at most 64 characters, each component
``0`` or a number without a leading zero. Every UID that comes into the portal (a file's
Study/Series/SOP Instance UID, a URL, a query, a request body) is checked here.

No Django here (``grading/dicom`` is below the portal).
"""

from __future__ import annotations

from pydicom.uid import RE_VALID_UID

UID_RULE = "a DICOM UID: digits and dots, at most 64 characters, no leading zeros"


def is_dicom_uid(value: object) -> bool:
    """True for a valid DICOM UID (pydicom's grammar: ``0|[1-9][0-9]*`` components joined
    by dots; 64 characters at most)."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 64
        and RE_VALID_UID.fullmatch(value) is not None
    )


def uid_problem(value: object, *, what: str = "UID") -> str | None:
    """None for a valid UID, else why it is refused (the value is not echoed: it may be
    anything an attacker sent)."""
    if is_dicom_uid(value):
        return None
    return f"{what} is not {UID_RULE}"


__all__ = ["UID_RULE", "is_dicom_uid", "uid_problem"]
