"""The study list and the study detail."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address, drf_validation
from grading.apis.serializers import StudyDetailOutputSerializer, StudySummaryOutputSerializer
from grading.models import GradeChoice, Study, StudyStatus
from grading.permissions import redact_study_data, redact_study_list, redaction_for
from grading.selectors import study_detail_get
from grading.selectors_api import STUDY_ORDERINGS, study_list
from grading.services.studies import study_view_record


class StudyPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


def study_detail_answer(*, user: Any, study_id: int) -> tuple[Study, dict[str, Any]]:
    """The study and its detail answer (also the label map APIs' answer), de-identified
    for a student. Http404 for a study the user may not see."""
    study = study_detail_get(user=user, study_id=study_id)
    data = StudyDetailOutputSerializer(study).data
    if redaction_for(user=user).hides_patient_of(study.site_id):
        redact_study_data(data)
    return study, data


class StudyListApi(ApiAuthMixin, APIView):
    """The studies of your sites (and those shared with you), newest first by default."""

    @extend_schema_serializer(component_name="StudyListFilter")
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=StudyStatus.choices, required=False)
        grade = serializers.ChoiceField(
            choices=GradeChoice.choices,
            required=False,
            help_text="Current grade (the worst over the study's hips).",
        )
        ai_grade = serializers.ChoiceField(choices=GradeChoice.choices, required=False)
        site = serializers.IntegerField(required=False, help_text="Site id.")
        date_from = serializers.DateField(required=False, help_text="Study date on or after.")
        date_to = serializers.DateField(required=False, help_text="Study date on or before.")
        search = serializers.CharField(
            required=False,
            help_text="Words matched against patient name and ID (not for students), "
            "StudyInstanceUID, accession number and description.",
        )
        ordering = serializers.CharField(
            required=False,
            help_text="Comma-separated, '-' for descending; keys: "
            + ", ".join(sorted(STUDY_ORDERINGS)),
        )
        page = serializers.IntegerField(required=False)
        page_size = serializers.IntegerField(required=False, max_value=500)

    @extend_schema_serializer(component_name="PaginatedStudySummaryList")
    class OutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        next = serializers.URLField(allow_null=True)
        previous = serializers.URLField(allow_null=True)
        results = StudySummaryOutputSerializer(many=True)

    @extend_schema(
        operation_id="studies_list",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, 400: ErrorSerializer, 401: ErrorSerializer},
        tags=["studies"],
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        redaction = redaction_for(user=request.user)
        filters = {
            key: params[key]
            for key in ("status", "grade", "ai_grade", "site", "date_from", "date_to")
            if params.get(key) not in (None, "")
        }
        with drf_validation():
            queryset = study_list(
                user=request.user,
                filters=filters,
                search=params.get("search", ""),
                ordering=params.get("ordering", ""),
                patient_fields_hidden=redaction.hides_patient_anywhere,
            )
        paginator = StudyPagination()
        page: list[Study] = paginator.paginate_queryset(queryset, request, view=self) or []
        rows = StudySummaryOutputSerializer(page, many=True).data
        redact_study_list(redaction=redaction, rows=rows)
        return paginator.get_paginated_response(rows)


class StudyDetailApi(ApiAuthMixin, APIView):
    """One study with its series, instances, per-hip and per-slice results.

    Opening it is recorded in the audit trail (``study.view``).
    """

    @extend_schema(
        operation_id="studies_retrieve",
        responses={200: StudyDetailOutputSerializer, 401: ErrorSerializer, 404: ErrorSerializer},
        tags=["studies"],
    )
    def get(self, request: Request, study_id: int) -> Response:
        study, data = study_detail_answer(user=request.user, study_id=study_id)
        study_view_record(user=request.user, study=study, client_address=client_address(request))
        return Response(data)
