"""Save edited label maps of a series; revert them to the AI's."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
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
from grading.apis.serializers import StudyDetailOutputSerializer
from grading.apis.studies import study_detail_answer
from grading.models import Series
from grading.models.studies import instances_by_slice_key, slice_key
from grading.selectors import series_get_visible, user_can_edit_masks
from grading.services.labelmaps import labelmap_from_png, labelmaps_revert, labelmaps_save


def _visible_editable_series(*, user: Any, series_id: int) -> Series:
    """404 for a series the user may not see, 403 when they may see but not edit it."""
    series = series_get_visible(user=user, series_id=series_id)
    if not user_can_edit_masks(user=user, study=series.study):
        raise PermissionDenied("Your role may not edit the masks of this study.")
    return series


def _decode_labelmaps(*, series: Series, items: list[dict[str, str]]) -> dict[str, np.ndarray]:
    """``{slice key: (Rows, Columns) uint8}`` from the request's base64 PNGs (the key is
    the SOPInstanceUID, with ``:<frame>`` for a frame of a multi-frame file), or a 400
    naming the first bad item and why."""
    uids = [slice_key(item["sop_instance_uid"], item.get("frame_number")) for item in items]
    shapes = {
        key: (instance.rows, instance.columns)
        for key, instance in instances_by_slice_key(series, uids).items()
    }
    decoded: dict[str, np.ndarray] = {}
    for index, uid in enumerate(uids):
        where = f"labelmaps[{index}] ({uid})"

        def bad(reason: str, where: str = where) -> ValidationError:
            return ValidationError({"labelmaps": [f"{where}: {reason}"]})

        if uid in decoded:
            raise bad("the same slice is sent twice")
        if uid not in shapes:
            raise bad("not an instance of this series")
        try:
            data = base64.b64decode(items[index]["png_base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad("png_base64 is not valid base64") from exc
        rows, columns = shapes[uid]
        try:
            array = labelmap_from_png(data, shape=(rows, columns))
        except DjangoValidationError as exc:
            raise bad("; ".join(exc.messages)) from exc
        if array.shape != (rows, columns):
            raise bad(
                f"the PNG is {array.shape[1]}x{array.shape[0]} (width x height), "
                f"the image is {columns}x{rows}"
            )
        values = np.unique(array)
        if values.size and int(values.max()) > 2:
            raise bad(
                f"values {values.tolist()}; a label map holds only 0 (background), "
                "1 (femoral head) and 2 (necrosis)"
            )
        decoded[uid] = array
    return decoded


class LabelmapsSaveApi(ApiAuthMixin, APIView):
    """Save edited label maps of some slices of the series (each an 8-bit greyscale PNG,
    Rows x Columns, values 0/1/2, base64). The server recomputes areas, volumes,
    proportions and grades from the masks, keeps the AI's masks, records a grade
    revision per hip whose grade changed and an audit event; answers the study detail.
    """

    @extend_schema_serializer(component_name="LabelmapsSave")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(help_text="Why; required, kept in the audit trail.")
        labelmaps = inline_serializer(
            name="LabelmapUpload",
            many=True,
            allow_empty=False,
            fields={
                "sop_instance_uid": UidField(),
                "frame_number": serializers.IntegerField(
                    required=False,
                    allow_null=True,
                    min_value=1,
                    help_text="The frame, for a slice of a multi-frame (Enhanced MR) file.",
                ),
                "png_base64": serializers.CharField(
                    help_text="8-bit greyscale PNG, Rows x Columns, values 0/1/2, base64."
                ),
            },
        )

    @extend_schema(
        operation_id="series_labelmaps_create",
        request=InputSerializer,
        responses={
            201: StudyDetailOutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["labelmaps"],
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = _visible_editable_series(user=request.user, series_id=series_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        labelmaps = _decode_labelmaps(series=series, items=serializer.validated_data["labelmaps"])
        with drf_validation():
            labelmaps_save(
                user=request.user,
                series=series,
                labelmaps=labelmaps,
                reason=serializer.validated_data["reason"],
                client_address=client_address(request),
            )
        _, data = study_detail_answer(user=request.user, study_id=series.study_id)
        return Response(data, status=status.HTTP_201_CREATED)


class LabelmapsRevertApi(ApiAuthMixin, APIView):
    """Back to the AI's label maps and measurements for the whole series (kept as new
    versions, nothing is lost); answers the study detail."""

    @extend_schema_serializer(component_name="LabelmapsRevert")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(help_text="Why; required, kept in the audit trail.")

    @extend_schema(
        operation_id="series_labelmaps_revert",
        request=InputSerializer,
        responses={
            200: StudyDetailOutputSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["labelmaps"],
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = _visible_editable_series(user=request.user, series_id=series_id)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with drf_validation():
            labelmaps_revert(
                user=request.user,
                series=series,
                reason=serializer.validated_data["reason"],
                client_address=client_address(request),
            )
        _, data = study_detail_answer(user=request.user, study_id=series.study_id)
        return Response(data)
