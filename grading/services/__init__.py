"""Writes of the grading domain (HackSoft-style services: keyword-only, annotated,
``<entity>_<action>``, transactions; tasks are sent only from ``transaction.on_commit``).
Every service that changes something a person would ask about writes an AuditEvent.

The names below are loaded on first use (PEP 562), so that importing a Django-free
module of this package (``grading.services.dicom_checks``, used in ingest worker
processes) does not import Django models.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "analyses": (
        "analysis_compute",
        "analysis_fail",
        "analysis_request",
        "analysis_requeue_stale",
        "analysis_run",
        "analysis_store",
        "study_analyses_request",
    ),
    "audit": (
        "AuditVerifyReport",
        "audit_checkpoint_write",
        "audit_record",
        "audit_verify",
    ),
    "audit_replay": ("AuditReplayReport", "audit_replay"),
    "grades": ("grade_revision_create",),
    "ingest": (
        "ArchiveRefused",
        "IngestReport",
        "RejectedFile",
        "UploadError",
        "UploadTooLarge",
        "upload_ingest",
    ),
    "labelmaps": ("labelmap_from_png", "labelmaps_revert", "labelmaps_save"),
    "notify": (
        "audit_event_as_dict",
        "study_audit_notify",
        "study_status_message",
        "study_status_notify",
    ),
    "studies": ("study_export", "study_share", "study_status_refresh", "study_view_record"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
