"""A ValidationError as one line a person can act on, each message led by the field it is
about (``Title: A collection needs a title.``), for the pages' error banners."""

from __future__ import annotations

from collections.abc import Mapping

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


def field_label(field: str) -> str:
    return field.replace("_id", "").replace("_", " ").strip().capitalize() or field


def validation_text(exc: ValidationError, labels: Mapping[str, str] | None = None) -> str:
    """``labels`` names a field as its form does (``{"study_id": "Study"}``); otherwise
    the field name is made readable. Errors without a field are given as they are."""
    if not hasattr(exc, "error_dict"):
        return "; ".join(exc.messages)
    labels = labels or {}
    parts = []
    for field, messages in exc.message_dict.items():
        for message in messages:
            if field == NON_FIELD_ERRORS:
                parts.append(message)
            else:
                parts.append(f"{labels.get(field) or field_label(field)}: {message}")
    return "; ".join(parts)
