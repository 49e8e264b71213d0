"""Form errors name the field they are about."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from grading.form_errors import validation_text


def test_each_message_is_led_by_its_field() -> None:
    exc = ValidationError({"study_id": ["Only a graded study can be explained."], "days": ["1-90"]})
    assert validation_text(exc) == "Study: Only a graded study can be explained.; Days: 1-90"
    assert validation_text(exc, {"days": "Link valid for (days)"}).endswith(
        "Link valid for (days): 1-90"
    )


def test_errors_without_a_field_stay_as_they_are() -> None:
    assert validation_text(ValidationError("The marked necrosis could not be read.")) == (
        "The marked necrosis could not be read."
    )
    exc = ValidationError({"__all__": ["Ask either a colleague or a site."]})
    assert validation_text(exc) == "Ask either a colleague or a site."
