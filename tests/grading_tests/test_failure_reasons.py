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
