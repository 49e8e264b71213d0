"""Writes of the grading domain (HackSoft-style services: keyword-only, annotated,
``<entity>_<action>``, transactions; tasks are sent only from ``transaction.on_commit``).
Every service that changes something a person would ask about writes an AuditEvent."""

from grading.services.analyses import (
    analysis_compute,
    analysis_fail,
    analysis_request,
    analysis_requeue_stale,
    analysis_run,
    analysis_store,
    study_analyses_request,
)
from grading.services.audit import AuditVerifyReport, audit_record, audit_verify
from grading.services.grades import grade_revision_create
from grading.services.ingest import (
    ArchiveRefused,
    IngestReport,
    RejectedFile,
    UploadError,
    UploadTooLarge,
    upload_ingest,
)
from grading.services.labelmaps import labelmap_from_png, labelmaps_revert, labelmaps_save
from grading.services.notify import (
    audit_event_as_dict,
    study_audit_notify,
    study_status_message,
    study_status_notify,
)
from grading.services.studies import (
    study_export,
    study_share,
    study_status_refresh,
    study_view_record,
)

__all__ = [
    "ArchiveRefused",
    "AuditVerifyReport",
    "IngestReport",
    "RejectedFile",
    "UploadError",
    "UploadTooLarge",
    "analysis_compute",
    "analysis_fail",
    "analysis_request",
    "analysis_requeue_stale",
    "analysis_run",
    "analysis_store",
    "audit_event_as_dict",
    "audit_record",
    "audit_verify",
    "grade_revision_create",
    "labelmap_from_png",
    "labelmaps_revert",
    "labelmaps_save",
    "study_analyses_request",
    "study_audit_notify",
    "study_export",
    "study_share",
    "study_status_message",
    "study_status_notify",
    "study_status_refresh",
    "study_view_record",
    "upload_ingest",
]
