"""The grading domain's models (see docs/architecture.md)."""

from grading.models.analyses import (
    ACTIVE_STATUSES,
    Analysis,
    AnalysisStatus,
    GradeRevision,
    HipResult,
    LabelMap,
    LabelMapKind,
    RevisionSource,
    Side,
    SliceResult,
)
from grading.models.audit import (
    GENESIS_HASH,
    AuditChainHead,
    AuditEvent,
    AuditImmutableError,
    OutboxMessage,
)
from grading.models.classifications import ClassificationRevision, JicChoice
from grading.models.sites import GRADING_ROLES, UPLOAD_ROLES, Membership, Role, Site
from grading.models.studies import (
    GRADE_RANK,
    GradeChoice,
    IncomingSeries,
    Instance,
    Plane,
    Series,
    Study,
    StudyShare,
    StudyStatus,
    worst_grade,
)
from grading.models.tokens import ApiToken
from grading.models.workers import WorkerBeat

__all__ = [
    "ACTIVE_STATUSES",
    "GENESIS_HASH",
    "GRADE_RANK",
    "GRADING_ROLES",
    "UPLOAD_ROLES",
    "Analysis",
    "AnalysisStatus",
    "ApiToken",
    "AuditChainHead",
    "AuditEvent",
    "AuditImmutableError",
    "ClassificationRevision",
    "JicChoice",
    "GradeChoice",
    "GradeRevision",
    "HipResult",
    "IncomingSeries",
    "Instance",
    "LabelMap",
    "LabelMapKind",
    "Membership",
    "OutboxMessage",
    "Plane",
    "RevisionSource",
    "Role",
    "Series",
    "Side",
    "SliceResult",
    "Site",
    "Study",
    "StudyShare",
    "StudyStatus",
    "WorkerBeat",
    "worst_grade",
]
