"""Set a hip's JIC type, Kerboul angle or radiograph/CT findings (the stage), with a reason."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address, drf_validation
from grading.models import JicChoice, Side
from grading.selectors import hip_result_get, study_get_visible, user_can_grade
from grading.services.classifications import hip_classification_revise, hip_classifications


class FindingsSerializer(serializers.Serializer):
    radiograph_abnormal = serializers.BooleanField(default=False)
    crescent_sign = serializers.BooleanField(default=False)
    collapse_mm = serializers.FloatField(default=0.0, min_value=0.0, max_value=30.0)
    joint_space_narrowed = serializers.BooleanField(default=False)
    acetabular_changes = serializers.BooleanField(default=False)


class ClassificationRevisionCreateApi(ApiAuthMixin, APIView):
    """Set any of a hip's JIC type (``""`` clears it), Kerboul combined angle (degrees) and
    partial flag, and radiograph/CT ``findings`` (null clears them; with findings the
    stage is Steinberg/ARCO, ``stage_source`` "clinician"). Fields left out stay as
    they were. 404 when the study is not visible; 403 for a role that may not grade;
    400 without a reason or for a bad value. Answers the hip's classifications."""

    @extend_schema_serializer(component_name="ClassificationRevisionCreate")
    class InputSerializer(serializers.Serializer):
        series_instance_uid = serializers.CharField(max_length=64)
        side = serializers.ChoiceField(choices=Side.choices)
        reason = serializers.CharField(help_text="Why; required, kept in the audit trail.")
        jic_type = serializers.ChoiceField(
            choices=[("", "not set"), *JicChoice.choices], required=False
        )
        kerboul_angle_deg = serializers.FloatField(
            required=False, allow_null=True, min_value=0.0, max_value=720.0
        )
        kerboul_partial = serializers.BooleanField(required=False, allow_null=True)
        findings = FindingsSerializer(required=False, allow_null=True)

    @extend_schema(
        operation_id="studies_classifications_create",
        request=InputSerializer,
        responses={
            201: inline_serializer(
                name="HipClassifications",
                fields={
                    "jic_type": serializers.CharField(allow_null=True),
                    "kerboul_angle_deg": serializers.FloatField(allow_null=True),
                    "kerboul_partial": serializers.BooleanField(allow_null=True),
                    "extent": serializers.CharField(allow_null=True),
                    "stage": serializers.CharField(),
                    "stage_source": serializers.CharField(),
                    "findings": FindingsSerializer(allow_null=True),
                    "set_by": serializers.CharField(allow_null=True),
                },
            ),
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
            raise PermissionDenied("Your role may not change the classifications of this study.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data: dict[str, Any] = dict(serializer.validated_data)
        try:
            hip = hip_result_get(
                study=study, series_instance_uid=data["series_instance_uid"], side=data["side"]
            )
        except Http404 as exc:
            raise ValidationError(
                {"series_instance_uid": [f"This study has no analysed {data['side']} hip there."]}
            ) from exc
        changes = {
            k: (dict(v) if k == "findings" and v is not None else v)
            for k, v in data.items()
            if k in ("jic_type", "kerboul_angle_deg", "kerboul_partial", "findings")
        }
        if not changes:
            raise ValidationError({"non_field_errors": ["Nothing to change."]})
        with drf_validation():
            hip_classification_revise(
                user=request.user,
                hip_result=hip,
                changes=changes,
                reason=data["reason"],
                client_address=client_address(request),
            )
        hip.refresh_from_db()
        return Response(hip_classifications(hip=hip), status=status.HTTP_201_CREATED)
