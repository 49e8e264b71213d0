"""A study's audit trail."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer
from grading.apis.serializers import AuditEventOutputSerializer
from grading.permissions import redact_patient_keys, redaction_for, sees_client_addresses
from grading.selectors import study_audit_events, study_get_visible


class StudyAuditListApi(ApiAuthMixin, APIView):
    """Every event of the study (upload, analysis, views, grade and mask changes), oldest
    first. A student gets patient keys inside ``before``/``after`` set to null; anyone
    but the site's admins (and superusers) gets ``client_address`` null."""

    @extend_schema(
        operation_id="studies_audit_list",
        responses={
            200: AuditEventOutputSerializer(many=True),
            401: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["audit"],
    )
    def get(self, request: Request, study_id: int) -> Response:
        study = study_get_visible(user=request.user, study_id=study_id)
        rows = AuditEventOutputSerializer(study_audit_events(study=study), many=True).data
        if redaction_for(user=request.user).hides_patient_of(study.site_id):
            for row in rows:
                row["before"] = redact_patient_keys(row["before"])
                row["after"] = redact_patient_keys(row["after"])
        if not sees_client_addresses(user=request.user, site_id=study.site_id):
            for row in rows:
                row["client_address"] = None
        return Response(rows)
