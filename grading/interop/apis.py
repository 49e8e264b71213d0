"""PACS query/retrieve and sending results back: the REST API (issue 15 items 2, 3).

* ``GET pacs/nodes/`` the nodes of the sites where the user may use them (not students);
  ``POST pacs/nodes/`` (site admin) ``{name, ae_title, host, port, site, send_on_confirm}``.
* ``GET pacs/nodes/{id}/studies/?PatientID=`` C-FIND: ``[{study_instance_uid, patient_id,
  study_date, study_description, modalities, number_of_series, already_here}]``.
* ``POST pacs/nodes/{id}/retrieve/`` ``{study_instance_uid}``: 202; the study arrives
  through the receiver and is analysed.
* ``POST series/{id}/send/`` ``{node, objects: ["seg","sr","summary"]}``: 202 with the
  send; ``GET series/{id}/sends/``: the series' sends and their states.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address, drf_validation
from grading.interop.models import PacsNode, PacsSend
from grading.interop.selectors import pacs_node_get_visible, pacs_nodes_visible_to, series_sends
from grading.interop.services import (
    SEND_OBJECTS,
    pacs_node_create,
    pacs_studies_find,
    pacs_study_retrieve_request,
    series_send_request,
)
from grading.selectors import series_get_visible, site_get_visible


class PacsNodeOutput(serializers.ModelSerializer[PacsNode]):
    class Meta:
        model = PacsNode
        fields = ["id", "name", "ae_title", "host", "port", "site", "send_on_confirm"]


class PacsNodeInput(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)
    ae_title = serializers.CharField(max_length=16)
    host = serializers.CharField(max_length=255)
    port = serializers.IntegerField(min_value=1, max_value=65535)
    site = serializers.IntegerField()
    send_on_confirm = serializers.BooleanField(required=False, default=False)


class FoundStudyOutput(serializers.Serializer[Any]):
    study_instance_uid = serializers.CharField()
    patient_id = serializers.CharField()
    study_date = serializers.CharField(help_text="YYYYMMDD, or empty")
    study_description = serializers.CharField()
    modalities = serializers.ListField(child=serializers.CharField())
    number_of_series = serializers.IntegerField(allow_null=True)
    already_here = serializers.BooleanField()


class RetrieveInput(serializers.Serializer[Any]):
    study_instance_uid = serializers.CharField(max_length=64)


class RetrieveOutput(serializers.Serializer[Any]):
    state = serializers.CharField()
    study_instance_uid = serializers.CharField()


class SendInput(serializers.Serializer[Any]):
    node = serializers.IntegerField()
    objects = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SEND_OBJECTS)),
        required=False,
        default=list(SEND_OBJECTS),
    )


class SendOutput(serializers.ModelSerializer[PacsSend]):
    node = serializers.SerializerMethodField()
    objects = serializers.ListField(source="objects_requested", child=serializers.CharField())
    requested_by = serializers.SerializerMethodField()

    class Meta:
        model = PacsSend
        fields = [
            "id",
            "node",
            "objects",
            "state",
            "attempts",
            "error",
            "sent",
            "trigger",
            "requested_by",
            "created",
            "updated",
        ]

    def get_node(self, send: PacsSend) -> dict[str, Any]:
        return {"id": send.node_id, "name": send.node.name}

    def get_requested_by(self, send: PacsSend) -> str | None:
        return send.requested_by.get_username() if send.requested_by else None


_ERRORS = {400: ErrorSerializer, 401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


class PacsNodeListApi(ApiAuthMixin, APIView):
    @extend_schema(
        operation_id="pacs_nodes_list",
        responses={200: PacsNodeOutput(many=True), 401: ErrorSerializer},
        tags=["pacs"],
    )
    def get(self, request: Request) -> Response:
        return Response(PacsNodeOutput(pacs_nodes_visible_to(user=request.user), many=True).data)

    @extend_schema(
        operation_id="pacs_nodes_create",
        request=PacsNodeInput,
        responses={201: PacsNodeOutput, **_ERRORS},
        tags=["pacs"],
    )
    def post(self, request: Request) -> Response:
        data = PacsNodeInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        site = site_get_visible(user=request.user, site_id=values.pop("site"))
        with drf_validation():
            node = pacs_node_create(
                user=request.user, site=site, client_address=client_address(request), **values
            )
        return Response(PacsNodeOutput(node).data, status=status.HTTP_201_CREATED)


class PacsStudiesApi(ApiAuthMixin, APIView):
    @extend_schema(
        operation_id="pacs_studies_find",
        parameters=[OpenApiParameter("PatientID", str, required=True)],
        responses={200: FoundStudyOutput(many=True), **_ERRORS},
        tags=["pacs"],
    )
    def get(self, request: Request, node_id: int) -> Response:
        node = pacs_node_get_visible(user=request.user, node_id=node_id)
        with drf_validation():
            found = pacs_studies_find(
                user=request.user,
                node=node,
                patient_id=request.query_params.get("PatientID", ""),
                client_address=client_address(request),
            )
        return Response(FoundStudyOutput(found, many=True).data)


class PacsRetrieveApi(ApiAuthMixin, APIView):
    @extend_schema(
        operation_id="pacs_study_retrieve",
        request=RetrieveInput,
        responses={202: RetrieveOutput, **_ERRORS},
        tags=["pacs"],
    )
    def post(self, request: Request, node_id: int) -> Response:
        node = pacs_node_get_visible(user=request.user, node_id=node_id)
        data = RetrieveInput(data=request.data)
        data.is_valid(raise_exception=True)
        uid = data.validated_data["study_instance_uid"]
        with drf_validation():
            pacs_study_retrieve_request(
                user=request.user,
                node=node,
                study_instance_uid=uid,
                client_address=client_address(request),
            )
        return Response(
            {"state": "requested", "study_instance_uid": uid.strip()},
            status=status.HTTP_202_ACCEPTED,
        )


class SeriesSendApi(ApiAuthMixin, APIView):
    @extend_schema(
        operation_id="series_send",
        request=SendInput,
        responses={202: SendOutput, **_ERRORS},
        tags=["pacs"],
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = series_get_visible(user=request.user, series_id=series_id)
        data = SendInput(data=request.data)
        data.is_valid(raise_exception=True)
        node = pacs_node_get_visible(user=request.user, node_id=data.validated_data["node"])
        with drf_validation():
            send = series_send_request(
                user=request.user,
                series=series,
                node=node,
                objects=data.validated_data["objects"],
                client_address=client_address(request),
            )
        return Response(SendOutput(send).data, status=status.HTTP_202_ACCEPTED)


class SeriesSendListApi(ApiAuthMixin, APIView):
    @extend_schema(
        operation_id="series_sends_list",
        responses={200: SendOutput(many=True), **_ERRORS},
        tags=["pacs"],
    )
    def get(self, request: Request, series_id: int) -> Response:
        series = series_get_visible(user=request.user, series_id=series_id)
        return Response(SendOutput(series_sends(series=series), many=True).data)
