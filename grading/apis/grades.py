"""Set the grade of a hip, with a reason."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import (
    ApiAuthMixin,
    ErrorSerializer,
    UidField,
    client_address,
    drf_validation,
)
from grading.apis.serializers import GradeField, GradeRevisionOutputSerializer
from grading.models import Side
from grading.selectors import hip_result_get, study_get_visible, user_can_grade
from grading.services.grades import grade_revision_create


class GradeRevisionCreateApi(ApiAuthMixin, APIView):
    """A new grade for one hip of the study (the AI grade is kept as it was).

    404 when the study is not visible to you; 403 when it is but your role may not
    change a clinical grade (a student); 400 without a reason, for an unknown grade or
    side, or for a series/side of this study that has no result.
    """

    @extend_schema_serializer(component_name="GradeRevisionCreate")
    class InputSerializer(serializers.Serializer):
        series_instance_uid = UidField()
        side = serializers.ChoiceField(choices=Side.choices)
        grade = GradeField()
        reason = serializers.CharField(help_text="Why; required, kept in the audit trail.")

    @extend_schema(
        operation_id="studies_grades_create",
        request=InputSerializer,
        responses={
            201: GradeRevisionOutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["grades"],
    )
    def post(self, request: Request, study_id: int) -> Response:
        study = study_get_visible(user=request.user, study_id=study_id)
        if not user_can_grade(user=request.user, study=study):
            raise PermissionDenied("Your role may not change the grade of this study.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            hip = hip_result_get(
                study=study, series_instance_uid=data["series_instance_uid"], side=data["side"]
            )
        except Http404 as exc:
            raise ValidationError(
                {
                    "series_instance_uid": [
                        f"This study has no analysed {data['side']} hip in series "
                        f"{data['series_instance_uid']}."
                    ]
                }
            ) from exc
        with drf_validation():
            revision = grade_revision_create(
                user=request.user,
                hip_result=hip,
                grade=data["grade"],
                reason=data["reason"],
                client_address=client_address(request),
            )
        return Response(
            GradeRevisionOutputSerializer(revision).data, status=status.HTTP_201_CREATED
        )
