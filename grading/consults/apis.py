"""REST API of second opinions, under ``/api/consults/``.

A request the user may not see answers 404 (like a study); a consultant whose request
was closed or expired gets 404 too. Answering is for the consultant, closing for the
requesting side (403 for the others who may see the request).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
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
from grading.consults.models import SecondOpinionRequest
from grading.consults.selectors import (
    consultant_requests_active,
    request_answers,
    request_get_visible,
    requests_visible_to,
    user_is_consultant_of,
    user_is_requesting_side_of,
)
from grading.consults.services import (
    DEFAULT_DAYS,
    MAX_DAYS,
    consultant_site_get,
    consultant_user_get,
    second_opinion_answer_create,
    second_opinion_request_close,
    second_opinion_request_create,
    second_opinion_request_view_record,
    second_opinion_requests_expire,
)
from grading.models import HipResult, Side
from grading.selectors import study_get_visible
from grading.services.studies import latest_analyses


class HipGradeSerializer(serializers.Serializer):
    series_instance_uid = UidField()
    side = serializers.ChoiceField(choices=Side.choices)
    grade = GradeField()


class AnswerOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    author = serializers.CharField(source="author.username")
    hips = HipGradeSerializer(many=True)
    comment = serializers.CharField()
    created = serializers.DateTimeField()


class RequesterHipSerializer(serializers.Serializer):
    series_instance_uid = serializers.CharField()
    side = serializers.CharField()
    proportion = serializers.FloatField()
    ai_grade = serializers.CharField(allow_null=True)
    grade = serializers.CharField(allow_null=True)


class ConsultantSiteSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class RequestOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study_id = serializers.IntegerField()
    requester = serializers.CharField(source="requester.username")
    consultant = serializers.CharField(source="consultant.username", allow_null=True, default=None)
    consultant_site = serializers.SerializerMethodField()
    question = serializers.CharField()
    # A plain string: a "status" enum here would collide with the study status enum.
    status = serializers.CharField(help_text="open, answered, closed or expired")
    expires_at = serializers.DateTimeField()
    created = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    is_consultant = serializers.SerializerMethodField()

    @extend_schema_field(ConsultantSiteSerializer(allow_null=True))
    def get_consultant_site(self, obj: SecondOpinionRequest) -> dict[str, Any] | None:
        site = obj.consultant_site
        return {"id": site.pk, "code": site.code, "name": site.name} if site else None

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_is_consultant(self, obj: SecondOpinionRequest) -> bool:
        return obj.pk in self.context.get("consulting_ids", set())


class RequestDetailOutputSerializer(RequestOutputSerializer):
    answers = AnswerOutputSerializer(many=True)
    requester_hips = RequesterHipSerializer(many=True)


def requester_hips(*, study_id: int) -> list[dict[str, Any]]:
    """The study's current hips: what the consultant's answer is shown beside."""
    analyses = latest_analyses(study_id=study_id)
    return [
        {
            "series_instance_uid": h.analysis.series.series_instance_uid,
            "side": h.side,
            "proportion": h.proportion,
            "ai_grade": h.ai_grade,
            "grade": h.grade,
        }
        for h in HipResult.objects.filter(analysis__in=list(analyses.values()))
        .select_related("analysis__series")
        .order_by("analysis__series__number", "side")
    ]


def _detail(request: Request, consult: SecondOpinionRequest) -> dict[str, Any]:
    consult.answers_list = list(request_answers(consult=consult))  # type: ignore[attr-defined]
    data = RequestOutputSerializer(
        consult,
        context={
            "consulting_ids": {consult.pk}
            if user_is_consultant_of(user=request.user, consult=consult)
            else set()
        },
    ).data
    data["answers"] = AnswerOutputSerializer(consult.answers_list, many=True).data  # type: ignore[attr-defined]
    data["requester_hips"] = requester_hips(study_id=consult.study_id)
    return data


class ConsultListCreateApi(ApiAuthMixin, APIView):
    """``GET``: requests you are asked to answer (open or answered, not expired) and
    requests on studies of your sites, newest first; ``role=consultant`` or
    ``role=requester`` narrows it. ``POST``: ask a colleague (``consultant``, a
    username) or a site (``consultant_site``, its code) about a study you may grade."""

    @extend_schema_serializer(component_name="SecondOpinionRequestCreate")
    class InputSerializer(serializers.Serializer):
        study_id = serializers.IntegerField()
        consultant = serializers.CharField(required=False, help_text="A colleague's username.")
        consultant_site = serializers.CharField(required=False, help_text="A site's code.")
        question = serializers.CharField()
        days = serializers.IntegerField(
            min_value=1, max_value=MAX_DAYS, default=DEFAULT_DAYS, help_text="Days until expiry."
        )

    @extend_schema(
        operation_id="consults_list",
        parameters=[
            OpenApiParameter("role", str, enum=["consultant", "requester"], required=False)
        ],
        responses={200: RequestOutputSerializer(many=True), 401: ErrorSerializer},
        tags=["consults"],
    )
    def get(self, request: Request) -> Response:
        second_opinion_requests_expire()
        active = consultant_requests_active(user=request.user)
        role = request.query_params.get("role")
        if role == "consultant":
            qs = requests_visible_to(user=request.user).filter(pk__in=active.values("pk"))
        elif role == "requester":
            qs = requests_visible_to(user=request.user).exclude(pk__in=active.values("pk"))
        else:
            qs = requests_visible_to(user=request.user)
        consulting = set(active.values_list("pk", flat=True))
        rows = RequestOutputSerializer(
            qs[:200], many=True, context={"consulting_ids": consulting}
        ).data
        return Response(rows)

    @extend_schema(
        operation_id="consults_create",
        request=InputSerializer,
        responses={
            201: RequestOutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["consults"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        study = study_get_visible(user=request.user, study_id=data["study_id"])
        with drf_validation():
            consultant = (
                consultant_user_get(username=data["consultant"]) if data.get("consultant") else None
            )
            site = (
                consultant_site_get(code=data["consultant_site"])
                if data.get("consultant_site")
                else None
            )
            consult = second_opinion_request_create(
                user=request.user,
                study=study,
                question=data["question"],
                consultant=consultant,
                consultant_site=site,
                days=data["days"],
                client_address=client_address(request),
            )
        return Response(RequestOutputSerializer(consult).data, status=status.HTTP_201_CREATED)


class ConsultDetailApi(ApiAuthMixin, APIView):
    """One request with its answers and the study's current hips (the requester's
    grades) side by side. The consultant opening it is an audit event."""

    @extend_schema(
        operation_id="consults_retrieve",
        responses={200: RequestDetailOutputSerializer, 401: ErrorSerializer, 404: ErrorSerializer},
        tags=["consults"],
    )
    def get(self, request: Request, request_id: int) -> Response:
        second_opinion_requests_expire()
        consult = request_get_visible(user=request.user, request_id=request_id)
        second_opinion_request_view_record(
            user=request.user, consult=consult, client_address=client_address(request)
        )
        return Response(_detail(request, consult))


class ConsultAnswerCreateApi(ApiAuthMixin, APIView):
    """The consultant's grade per hip and comment (not a clinical grade revision)."""

    @extend_schema_serializer(component_name="SecondOpinionAnswerCreate")
    class InputSerializer(serializers.Serializer):
        hips = HipGradeSerializer(many=True, required=False, default=list)
        comment = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="consults_answers_create",
        request=InputSerializer,
        responses={
            201: AnswerOutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["consults"],
    )
    def post(self, request: Request, request_id: int) -> Response:
        second_opinion_requests_expire()
        consult = request_get_visible(user=request.user, request_id=request_id)
        if not user_is_consultant_of(user=request.user, consult=consult):
            raise PermissionDenied("Only the consultant answers.")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with drf_validation():
            answer = second_opinion_answer_create(
                user=request.user,
                consult=consult,
                hips=[dict(h) for h in serializer.validated_data["hips"]],
                comment=serializer.validated_data["comment"],
                client_address=client_address(request),
            )
        return Response(AnswerOutputSerializer(answer).data, status=status.HTTP_201_CREATED)


class ConsultCloseApi(ApiAuthMixin, APIView):
    """End the consultant's access (the requesting side only; 400 if already ended)."""

    @extend_schema(
        operation_id="consults_close",
        request=None,
        responses={
            200: RequestOutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["consults"],
    )
    def post(self, request: Request, request_id: int) -> Response:
        second_opinion_requests_expire()
        consult = request_get_visible(user=request.user, request_id=request_id)
        if not user_is_requesting_side_of(user=request.user, consult=consult):
            raise PermissionDenied("Only the requesting side closes a request.")
        with drf_validation():
            consult = second_opinion_request_close(
                user=request.user, consult=consult, client_address=client_address(request)
            )
        return Response(RequestOutputSerializer(consult).data)
