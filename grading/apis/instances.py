"""Stored files of one instance: the DICOM file and its label map PNG."""

from __future__ import annotations

import io
import json
from typing import Any

from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer
from grading.permissions import redaction_for, student_view_dicom
from grading.selectors import instance_get_visible, labelmap_for_instance

# PS3.15 basic-profile patient attributes. Type 2 ones are kept empty, the rest removed.
_EMPTIED = ("PatientName", "PatientID", "PatientBirthDate")
_REMOVED = (
    "PatientBirthTime",
    "PatientBirthName",
    "PatientMotherBirthName",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "MedicalRecordLocator",
    "IssuerOfPatientID",
    "ReferencedPatientSequence",
    "PatientInsurancePlanCodeSequence",
    "MilitaryRank",
    "BranchOfService",
    "CountryOfResidence",
    "RegionOfResidence",
    "EthnicGroup",
    "PatientComments",
    "AdditionalPatientHistory",
    "ResponsiblePerson",
)


class _FileRenderer(BaseRenderer):
    """Lets a client ask for the file's own media type; an error body is still JSON."""

    charset = None

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


class DicomRenderer(_FileRenderer):
    media_type = "application/dicom"
    format = "dcm"


class PngRenderer(_FileRenderer):
    media_type = "image/png"
    format = "png"


def deidentified_dicom(stream: Any, *, study_id: int) -> bytes:
    """The DICOM file as a student gets it (``grading.permissions.student_view_dicom``:
    the PS3.15 basic profile; pixel data, geometry and UIDs untouched)."""
    return student_view_dicom(stream.read(), study_id=study_id)


class InstanceDicomApi(ApiAuthMixin, APIView):
    """The stored DICOM file (Part 10, ``application/dicom``), for the viewer's image
    loader. A student gets it with the patient's name, ID and birth date emptied."""

    renderer_classes = [JSONRenderer, DicomRenderer]

    @extend_schema(
        operation_id="instances_dicom_retrieve",
        responses={
            (200, "application/dicom"): OpenApiResponse(OpenApiTypes.BINARY),
            401: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["images"],
    )
    def get(self, request: Request, instance_id: int) -> FileResponse:
        instance = instance_get_visible(user=request.user, instance_id=instance_id)
        filename = f"{instance.sop_instance_uid}.dcm"
        study = instance.series.study
        if redaction_for(user=request.user).hides_patient_of(study.site_id):
            with instance.file.open("rb") as handle:
                payload = io.BytesIO(deidentified_dicom(handle, study_id=study.pk))
            return FileResponse(payload, content_type="application/dicom", filename=filename)
        return FileResponse(
            instance.file.open("rb"), content_type="application/dicom", filename=filename
        )


class InstanceLabelmapApi(ApiAuthMixin, APIView):
    """The slice's label map: 8-bit greyscale PNG, Rows x Columns, 0 background,
    1 femoral head, 2 necrosis. ``version=current`` (default: the latest, edited or
    not) or ``ai`` (the engine's, never changed). 404 before the analysis is stored."""

    renderer_classes = [JSONRenderer, PngRenderer]

    @extend_schema(
        operation_id="instances_labelmap_retrieve",
        parameters=[
            OpenApiParameter(
                "version", str, enum=["current", "ai"], default="current", required=False
            )
        ],
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY),
            400: ErrorSerializer,
            401: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["images"],
    )
    def get(self, request: Request, instance_id: int) -> FileResponse:
        version = request.query_params.get("version") or "current"
        if version not in ("current", "ai"):
            raise ValidationError({"version": ["One of 'current', 'ai'."]})
        instance = instance_get_visible(user=request.user, instance_id=instance_id)
        labelmap = labelmap_for_instance(instance=instance, version=version)
        if labelmap is None:
            raise Http404("This slice has no label map yet.")
        response = FileResponse(labelmap.file.open("rb"), content_type="image/png")
        # Edits replace "current": the viewer must not keep a stale copy.
        response["Cache-Control"] = "private, no-cache"
        return response
