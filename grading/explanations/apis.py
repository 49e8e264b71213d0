"""REST API of patient explanations, under ``/api/explanations/``. For the doctors of
the study's site (others, students and consultants included, get 404; a write by a
role that may not grade answers 403)."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.renderers import BaseRenderer, JSONRenderer
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
from grading.apis.serializers import GradeField
from grading.explanations.models import PatientExplanation
from grading.explanations.selectors import (
    explanation_get_visible,
    link_get_visible,
    share_link_url,
)
from grading.explanations.services import (
    LINK_DEFAULT_DAYS,
    LINK_MAX_DAYS,
    NOTE_MAX_CHARS,
    patient_explanation_create,
    patient_explanation_pdf,
    patient_explanation_pdf_record,
    share_link_create,
    share_link_revoke,
)
from grading.models import Side
from grading.selectors import study_get_visible


class LinkOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    revoked_at = serializers.DateTimeField(allow_null=True)
    is_live = serializers.BooleanField()


class LinkCreatedOutputSerializer(LinkOutputSerializer):
    token = serializers.CharField(help_text="Shown only now; only its hash is stored.")
    url = serializers.CharField(help_text="The patient page, no login needed.")


class ExplanationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study_id = serializers.IntegerField()
    author = serializers.CharField(source="author_name")
    note = serializers.CharField()
    series_instance_uid = serializers.CharField(source="series.series_instance_uid")
    side = serializers.ChoiceField(choices=Side.choices)
    instance_id = serializers.IntegerField()
    proportion = serializers.FloatField()
    grade = GradeField()
    created = serializers.DateTimeField()
    links = LinkOutputSerializer(many=True, source="link_list")


def _out(explanation: PatientExplanation) -> dict[str, Any]:
    explanation.link_list = list(explanation.links.order_by("-created", "-id"))  # type: ignore[attr-defined]
    return ExplanationOutputSerializer(explanation).data


class ExplanationCreateApi(ApiAuthMixin, APIView):
    """Make a patient explanation of a graded study (default: its worst hip)."""

    @extend_schema_serializer(component_name="PatientExplanationCreate")
    class InputSerializer(serializers.Serializer):
        study_id = serializers.IntegerField()
        side = serializers.ChoiceField(choices=Side.choices, required=False)
        series_instance_uid = UidField(required=False)
        note = serializers.CharField(
            max_length=NOTE_MAX_CHARS, required=False, allow_blank=True, default=""
        )

    @extend_schema(
        operation_id="explanations_create",
        request=InputSerializer,
        responses={
            201: ExplanationOutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["explanations"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        study = study_get_visible(user=request.user, study_id=data["study_id"])
        with drf_validation():
            explanation = patient_explanation_create(
                user=request.user,
                study=study,
                note=data["note"],
                side=data.get("side"),
                series_instance_uid=data.get("series_instance_uid"),
                client_address=client_address(request),
            )
        return Response(_out(explanation), status=status.HTTP_201_CREATED)


class ExplanationDetailApi(ApiAuthMixin, APIView):
    @extend_schema(
        operation_id="explanations_retrieve",
        responses={200: ExplanationOutputSerializer, 401: ErrorSerializer, 404: ErrorSerializer},
        tags=["explanations"],
    )
    def get(self, request: Request, explanation_id: int) -> Response:
        return Response(
            _out(explanation_get_visible(user=request.user, explanation_id=explanation_id))
        )


class PdfRenderer(BaseRenderer):
    media_type = "application/pdf"
    format = "pdf"
    charset = None

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class ExplanationPdfApi(ApiAuthMixin, APIView):
    """The one-page PDF the patient gets (the same as behind a share link)."""

    renderer_classes = [PdfRenderer, JSONRenderer]

    @extend_schema(
        operation_id="explanations_pdf_retrieve",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="A4, one page."
            ),
            (401, "application/json"): ErrorSerializer,
            (404, "application/json"): ErrorSerializer,
        },
        tags=["explanations"],
    )
    def get(self, request: Request, explanation_id: int) -> HttpResponse:
        explanation = explanation_get_visible(user=request.user, explanation_id=explanation_id)
        patient_explanation_pdf_record(
            user=request.user, explanation=explanation, client_address=client_address(request)
        )
        response = HttpResponse(
            patient_explanation_pdf(explanation=explanation), content_type="application/pdf"
        )
        response["Content-Disposition"] = content_disposition_header(
            False, f"explanation-{explanation.pk}.pdf"
        )
        return response


class ShareLinkCreateApi(ApiAuthMixin, APIView):
    """A link to the patient page that expires (and can be revoked)."""

    @extend_schema_serializer(component_name="ShareLinkCreate")
    class InputSerializer(serializers.Serializer):
        days = serializers.IntegerField(
            min_value=1, max_value=LINK_MAX_DAYS, default=LINK_DEFAULT_DAYS
        )

    @extend_schema(
        operation_id="explanations_links_create",
        request=InputSerializer,
        responses={
            201: LinkCreatedOutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["explanations"],
    )
    def post(self, request: Request, explanation_id: int) -> Response:
        explanation = explanation_get_visible(user=request.user, explanation_id=explanation_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with drf_validation():
            link, token = share_link_create(
                user=request.user,
                explanation=explanation,
                days=serializer.validated_data["days"],
                client_address=client_address(request),
            )
        data = dict(LinkOutputSerializer(link).data)
        data["token"] = token
        data["url"] = share_link_url(request=request, token=token)
        return Response(data, status=status.HTTP_201_CREATED)


class ShareLinkRevokeApi(ApiAuthMixin, APIView):
    @extend_schema(
        operation_id="explanations_links_revoke",
        request=None,
        responses={
            200: LinkOutputSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["explanations"],
    )
    def post(self, request: Request, link_id: int) -> Response:
        link = link_get_visible(user=request.user, link_id=link_id)
        with drf_validation():
            link = share_link_revoke(
                user=request.user, link=link, client_address=client_address(request)
            )
        return Response(LinkOutputSerializer(link).data)
