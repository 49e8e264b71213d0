"""A case as a student or the teacher sees it, and the student's attempts."""

from __future__ import annotations

import base64
import binascii

import numpy as np
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address, drf_validation
from grading.apis.serializers import GradeField
from grading.teaching import selectors, services
from grading.teaching.apis.serializers import (
    AttemptSerializer,
    CaseDetailSerializer,
    attempt_data,
    case_detail_data,
)

_ERRORS = {401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


class CaseDetailApi(ApiAuthMixin, APIView):
    """The case: its de-identified images (``/api/teaching/images/...``), the hips to
    grade, your attempts. ``reference`` (and the reference mask URLs) only once you
    submitted an attempt; the source study only for the teacher."""

    @extend_schema(
        operation_id="teaching_cases_retrieve",
        responses={200: CaseDetailSerializer, **_ERRORS},
        tags=["teaching"],
    )
    def get(self, request: Request, case_id: int) -> Response:
        case = selectors.case_get_visible(user=request.user, case_id=case_id)
        teaches = selectors.user_teaches(user=request.user, collection=case.collection)
        body = case_detail_data(
            case,
            teaches=teaches,
            revealed=selectors.answer_revealed(user=request.user, case=case),
            attempts=selectors.attempts_of(user=request.user, case=case),
            images=selectors.case_instances(case=case),
        )
        return Response(CaseDetailSerializer(body).data)


class CaseAttemptsApi(ApiAuthMixin, APIView):
    """Your attempts at the case (GET), or a new one (POST; retakes are new attempts).

    ``grades``: a grade for each hip of ``sides``. ``masks`` (optional): the necrosis you
    marked, one PNG per slice (``image_id`` from ``images``), Rows x Columns, greyscale
    non-zero or RGBA alpha > 0 = necrosis. The answer is the scored attempt with the
    reference."""

    @extend_schema_serializer(component_name="TeachingMask")
    class MaskSerializer(serializers.Serializer):
        image_id = serializers.IntegerField()
        png_base64 = serializers.CharField()

    @extend_schema_serializer(component_name="TeachingAttemptCreate")
    class InputSerializer(serializers.Serializer):
        grades = serializers.DictField(child=GradeField(), help_text="{side: grade}")
        jic_types = serializers.DictField(
            child=serializers.ChoiceField(choices=["A", "B", "C1", "C2"]),
            required=False,
            default=dict,
            help_text="{side: JIC type}, required for each hip whose reference has one "
            "(the case's ``jic_sides``)",
        )
        masks = serializers.ListField(required=False, default=list)

        def validate_masks(self, value: list) -> list:  # noqa: ANN001
            serializer = CaseAttemptsApi.MaskSerializer(data=value, many=True)
            serializer.is_valid(raise_exception=True)
            return list(serializer.validated_data)

    @extend_schema(
        operation_id="teaching_cases_attempts_list",
        responses={200: AttemptSerializer(many=True), **_ERRORS},
        tags=["teaching"],
    )
    def get(self, request: Request, case_id: int) -> Response:
        case = selectors.case_get_visible(user=request.user, case_id=case_id)
        attempts = selectors.attempts_of(user=request.user, case=case)
        return Response(AttemptSerializer([attempt_data(a) for a in attempts], many=True).data)

    @extend_schema(
        operation_id="teaching_cases_attempts_create",
        request=InputSerializer,
        responses={201: AttemptSerializer, 400: ErrorSerializer, **_ERRORS},
        tags=["teaching"],
    )
    def post(self, request: Request, case_id: int) -> Response:
        case = selectors.case_get_visible(user=request.user, case_id=case_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        images = {row.pk: row for row in selectors.case_instances(case=case)}
        masks: dict[int, np.ndarray] = {}
        for item in data["masks"]:
            row = images.get(item["image_id"])
            if row is None:
                raise ValidationError({"masks": [f"Image {item['image_id']} is not of this case."]})
            try:
                png = base64.b64decode(item["png_base64"].split(",")[-1], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValidationError({"masks": ["png_base64 is not base64."]}) from exc
            with drf_validation():
                masks[row.pk] = services.mask_from_png(png, shape=(row.rows, row.columns))
        with drf_validation():
            attempt = services.attempt_submit(
                user=request.user,
                case=case,
                grades=dict(data["grades"]),
                jic_types=dict(data["jic_types"]),
                masks=masks,
                client_address=client_address(request),
            )
        return Response(
            AttemptSerializer(attempt_data(attempt)).data, status=status.HTTP_201_CREATED
        )
