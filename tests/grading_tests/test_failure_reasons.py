"""Failed analyses are explained in a clinician's words, never by an exception name."""

from __future__ import annotations

import pytest

from grading.failure_reasons import GENERIC_REASON, failure_reason


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("a stored slice could not be read: 1.2.3: truncated DICOM file", "damaged"),
        ("no axial MR series to analyse", "no axial MR series"),
        ("the series has no instances", "without images"),
        ("the analysis took longer than the time limit", "took too long"),
        ("gave up after 3 attempts (the worker stopped each time)", "interrupted"),
        ("the model could not be loaded: weights missing", "model is not available"),
        # Every series judged not gradable (a probe's upload without an orientation got
        # the generic "unexpected error" sentence before this rule).
        (
            "no series to grade (AX T1 HIP: missing or unusable ImageOrientationPatient "
            "on 1 of 1 images: the plane and the sides cannot be known)",
            "None of the study's series can be graded",
        ),
        (
            "no series to grade (AX T2: T2-weighted series: the grading method needs T1 "
            "(bright fatty marrow))",
            "None of the study's series can be graded",
        ),
        ("no series to grade", "None of the study's series can be graded"),
        # A study joins its analyses' errors: the first rule that matches speaks.
        ("ValueError: x; a stored slice could not be read: 1.2", "damaged"),
    ],
)
def test_known_errors_get_their_sentence(error: str, words: str) -> None:
    assert words in failure_reason(error)


def test_an_unknown_error_gets_the_generic_sentence_without_the_exception() -> None:
    reason = failure_reason("ZeroDivisionError: division by zero")
    assert reason == GENERIC_REASON
    assert "ZeroDivisionError" not in reason and "division" not in reason


@pytest.mark.parametrize("error", ["", "   "])
def test_no_error_no_reason(error: str) -> None:
    assert failure_reason(error) == ""
