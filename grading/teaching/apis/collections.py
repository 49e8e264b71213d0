"""Collections: list and create, detail, enrol students, add cases, the class's results."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address, drf_validation
from grading.models import Site
from grading.teaching import selectors, services
from grading.teaching.apis.serializers import (
    CaseDetailSerializer,
    CollectionDetailSerializer,
    CollectionSerializer,
    case_detail_data,
    case_summary_data,
    collection_data,
)
from grading.teaching.models import Attempt

_ERRORS = {401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


def _progress(request: Request, collection, teaches: bool):  # noqa: ANN001, ANN202
    if teaches:
        return None
    return selectors.student_progress(user=request.user, collection=collection)


class CollectionListCreateApi(ApiAuthMixin, APIView):
    """The collections you teach or are enrolled in; a teacher (or site administrator)
    of a site starts a new one there."""

    @extend_schema_serializer(component_name="TeachingCollectionCreate")
    class InputSerializer(serializers.Serializer):
        site = serializers.IntegerField()
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(
        operation_id="teaching_collections_list",
        responses={200: CollectionSerializer(many=True), 401: ErrorSerializer},
        tags=["teaching"],
    )
    def get(self, request: Request) -> Response:
        rows = []
        for collection in selectors.collections_visible_to(user=request.user).order_by(
            "-created", "-id"
        ):
            teaches = selectors.user_teaches(user=request.user, collection=collection)
            rows.append(
                collection_data(
                    collection, teaches=teaches, progress=_progress(request, collection, teaches)
                )
            )
        return Response(CollectionSerializer(rows, many=True).data)

    @extend_schema(
        operation_id="teaching_collections_create",
        request=InputSerializer,
        responses={201: CollectionSerializer, 400: ErrorSerializer, **_ERRORS},
        tags=["teaching"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        site = Site.objects.filter(pk=data["site"]).first()
        if site is None:
            raise ValidationError({"site": ["No such site."]})
        with drf_validation():
            collection = services.collection_create(
                user=request.user,
                site=site,
                title=data["title"],
                description=data["description"],
            )
        return Response(
            CollectionSerializer(collection_data(collection, teaches=True, progress=None)).data,
            status=status.HTTP_201_CREATED,
        )


class CollectionDetailApi(ApiAuthMixin, APIView):
    """A collection and its cases (with your attempts); the teacher also gets the students."""

    @extend_schema(
        operation_id="teaching_collections_retrieve",
        responses={200: CollectionDetailSerializer, **_ERRORS},
        tags=["teaching"],
    )
    def get(self, request: Request, collection_id: int) -> Response:
        collection = selectors.collection_get_visible(
            user=request.user, collection_id=collection_id
        )
        teaches = selectors.user_teaches(user=request.user, collection=collection)
        mine: dict[int, list[Attempt]] = {}
        for attempt in Attempt.objects.filter(
            case__collection=collection, student=request.user
        ).order_by("number"):
            mine.setdefault(attempt.case_id, []).append(attempt)
        data = collection_data(
            collection, teaches=teaches, progress=_progress(request, collection, teaches)
        )
        data["cases"] = [
            case_summary_data(case, teaches=teaches, attempts=mine.get(case.pk, []))
            for case in collection.cases.order_by("number")
        ]
        data["students"] = (
            [
                {"id": e.student_id, "username": e.student.get_username()}
                for e in collection.enrolments.select_related("student")
            ]
            if teaches
            else None
        )
        return Response(CollectionDetailSerializer(data).data)


class CollectionStudentsApi(ApiAuthMixin, APIView):
    """Enrol members of the collection's site by username (the teacher only)."""

    @extend_schema_serializer(component_name="TeachingEnrol")
    class InputSerializer(serializers.Serializer):
        usernames = serializers.ListField(child=serializers.CharField(), min_length=1)

    @extend_schema_serializer(component_name="TeachingEnrolResult")
    class OutputSerializer(serializers.Serializer):
        enrolled = serializers.IntegerField(help_text="How many were new.")
        students = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        operation_id="teaching_collections_students_create",
        request=InputSerializer,
        responses={201: OutputSerializer, 400: ErrorSerializer, **_ERRORS},
        tags=["teaching"],
    )
    def post(self, request: Request, collection_id: int) -> Response:
        collection = selectors.collection_get_taught(user=request.user, collection_id=collection_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        names = serializer.validated_data["usernames"]
        # Only the site's members can be enrolled: an unknown name and another site's
        # user get the same answer (no username of another site can be told apart).
        users = list(
            get_user_model()
            .objects.filter(username__in=names, memberships__site=collection.site)
            .distinct()
        )
        refused = sorted(set(names) - {u.get_username() for u in users})
        if refused:
            raise ValidationError(
                {"usernames": [f"Not students of {collection.site.name}: {', '.join(refused)}"]}
            )
        with drf_validation():
            created = services.collection_enrol(
                user=request.user, collection=collection, students=users
            )
        students = [
            e.student.get_username() for e in collection.enrolments.select_related("student")
        ]
        return Response(
            self.OutputSerializer({"enrolled": created, "students": students}).data,
            status=status.HTTP_201_CREATED,
        )


class CollectionCasesApi(ApiAuthMixin, APIView):
    """Add a case: a de-identified copy of a finished study you may see (the teacher only).
    ``series_id`` picks the series; by default the first one with a finished analysis."""

    @extend_schema_serializer(component_name="TeachingCaseCreate")
    class InputSerializer(serializers.Serializer):
        study_id = serializers.IntegerField()
        series_id = serializers.IntegerField(required=False, allow_null=True, default=None)

    @extend_schema(
        operation_id="teaching_collections_cases_create",
        request=InputSerializer,
        responses={201: CaseDetailSerializer, 400: ErrorSerializer, **_ERRORS},
        tags=["teaching"],
    )
    def post(self, request: Request, collection_id: int) -> Response:
        collection = selectors.collection_get_taught(user=request.user, collection_id=collection_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with drf_validation():
            case = services.case_add(
                user=request.user,
                collection=collection,
                study_id=data["study_id"],
                series_id=data["series_id"],
                client_address=client_address(request),
            )
        body = case_detail_data(
            case,
            teaches=True,
            revealed=True,
            attempts=[],
            images=selectors.case_instances(case=case),
        )
        return Response(CaseDetailSerializer(body).data, status=status.HTTP_201_CREATED)


@extend_schema_serializer(component_name="TeachingResults")
class ResultsSerializer(serializers.Serializer):
    class TeachingHipResultsSerializer(serializers.Serializer):
        side = serializers.CharField()
        reference_grade = serializers.CharField()
        distribution = serializers.DictField(child=serializers.IntegerField())
        agreement = serializers.FloatField(allow_null=True)

    class TeachingCaseResultsSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        pseudonym = serializers.CharField()
        students_done = serializers.IntegerField()
        attempts = serializers.IntegerField()
        mean_first_score = serializers.FloatField(allow_null=True)
        mean_latest_score = serializers.FloatField(allow_null=True)
        mean_first_dice = serializers.FloatField(allow_null=True)
        hips = serializers.ListField(child=serializers.DictField())

    class TeachingStudentAttemptSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        case = serializers.IntegerField()
        pseudonym = serializers.CharField()
        number = serializers.IntegerField()
        score = serializers.FloatField()
        dice = serializers.FloatField(allow_null=True)
        submitted_at = serializers.DateTimeField()

    class TeachingStudentResultsSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        cases_done = serializers.IntegerField()
        cases = serializers.IntegerField()
        mean_first_score = serializers.FloatField(allow_null=True)
        mean_latest_score = serializers.FloatField(allow_null=True)
        attempts = serializers.ListField(child=serializers.DictField())

    grades = serializers.ListField(child=serializers.CharField())
    cases = TeachingCaseResultsSerializer(many=True)
    students = TeachingStudentResultsSerializer(many=True)
    confusion = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField()),
        help_text="First-attempt counts: rows the reference grade, columns the answer.",
    )


class CollectionResultsApi(ApiAuthMixin, APIView):
    """The class's results (the teacher only): per case the grade distribution per hip,
    agreement, mean first and latest score and Dice; per student progress and every
    attempt over time; a confusion matrix of first answers against the reference."""

    @extend_schema(
        operation_id="teaching_collections_results_retrieve",
        responses={200: ResultsSerializer, **_ERRORS},
        tags=["teaching"],
    )
    def get(self, request: Request, collection_id: int) -> Response:
        collection = selectors.collection_get_taught(user=request.user, collection_id=collection_id)
        return Response(ResultsSerializer(selectors.collection_results(collection=collection)).data)
