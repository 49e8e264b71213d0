"""Why an analysis failed, in a clinician's words.

The services keep the technical error on ``Analysis.error`` (and, joined, on
``Study.error``) for operators; the pages and the API also give ``failure_reason``: what
happened and what the clinician can do, from this ordered list of rules (first match
wins). A rule names the message the services write (``grading/services/analyses.py``,
``grading/services/studies.py``); an error no rule knows gets the generic sentence, never
an exception name.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class FailureRule(NamedTuple):
    pattern: re.Pattern[str]
    reason: str


_RULES: list[FailureRule] = [
    # grading/services/studies.py: every series of the study was judged not gradable;
    # the series' own reasons follow in brackets (and each series shows its reason).
    FailureRule(
        re.compile(r"^no series to grade\b", re.I),
        "None of the study's series can be graded: the grading needs a T1-weighted series "
        "without fat suppression whose images have a usable orientation. Each series "
        "says why it was not graded; upload a T1 series of the hips.",
    ),
    FailureRule(
        re.compile(r"stored slice could not be read", re.I),
        "One of the study's images is damaged in the portal's storage and could not be "
        "read. Upload the study again (or ask the PACS to send it again).",
    ),
    FailureRule(
        re.compile(r"no axial MR series", re.I),
        "The study has no axial MR series, which the grading needs (coronal and sagittal "
        "series are kept but not graded). Upload the axial T1 series.",
    ),
    FailureRule(
        re.compile(r"has no instances", re.I),
        "The series arrived without images. Upload the study again.",
    ),
    FailureRule(
        re.compile(r"longer than the time limit", re.I),
        "The analysis took too long and was stopped. A very large series can do this; "
        "ask the portal's operator to run it again.",
    ),
    FailureRule(
        re.compile(r"gave up after|worker stopped|worker process .* is gone", re.I),
        "The analysis was interrupted several times (the analysis service stopped). Ask "
        "the portal's operator to check the service and run it again.",
    ),
    FailureRule(
        re.compile(r"model could not be loaded", re.I),
        "The grading model is not available on the server. Ask the portal's operator.",
    ),
]

GENERIC_REASON = (
    "The analysis stopped with an unexpected error. The study's images are kept; ask the "
    "portal's operator (the technical detail is in the study's audit trail)."
)


def failure_reason(error: str) -> str:
    """The clinician's sentence for a technical error; '' when there is no error.
    ``error`` may join several analyses' errors with '; ' (the study's)."""
    if not (error or "").strip():
        return ""
    for rule in _RULES:
        if rule.pattern.search(error):
            return rule.reason
    return GENERIC_REASON
