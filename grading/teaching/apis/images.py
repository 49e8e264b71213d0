"""A case's images: the de-identified DICOM copy, a PNG rendering, the reference label map
(after an attempt) and a student's own mask. Never the source study's files."""

from __future__ import annotations

import io

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer
from grading.apis.instances import DicomRenderer, PngRenderer
from grading.teaching import selectors, services
from grading.teaching.models import AttemptMask

_ERRORS = {401: ErrorSerializer, 404: ErrorSerializer}


def _png_response(data: bytes | None = None, name: str | None = None) -> FileResponse:
    stream = io.BytesIO(data) if data is not None else default_storage.open(name, "rb")
    response = FileResponse(stream, content_type="image/png")
    response["Cache-Control"] = "private, no-cache"
    return response


class CaseImageDicomApi(ApiAuthMixin, APIView):
    """The slice's de-identified DICOM copy (``application/dicom``)."""

    renderer_classes = [JSONRenderer, DicomRenderer]

    @extend_schema(
        operation_id="teaching_images_dicom_retrieve",
        responses={(200, "application/dicom"): OpenApiResponse(OpenApiTypes.BINARY), **_ERRORS},
        tags=["teaching"],
    )
    def get(self, request: Request, image_id: int) -> FileResponse:
        row = selectors.case_instance_get_visible(user=request.user, instance_id=image_id)
        return FileResponse(
            default_storage.open(row.file.name, "rb"),
            content_type="application/dicom",
            filename=f"case-{row.case.number}-{row.index + 1:04d}.dcm",
        )


class CaseImagePngApi(ApiAuthMixin, APIView):
    """The slice rendered as an 8-bit greyscale PNG (1st-99.5th percentile window)."""

    renderer_classes = [JSONRenderer, PngRenderer]

    @extend_schema(
        operation_id="teaching_images_png_retrieve",
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY), **_ERRORS},
        tags=["teaching"],
    )
    def get(self, request: Request, image_id: int) -> FileResponse:
        row = selectors.case_instance_get_visible(user=request.user, instance_id=image_id)
        return _png_response(services.case_instance_png(row))


class CaseImageReferenceApi(ApiAuthMixin, APIView):
    """The reference label map (8-bit PNG: 0 background, 1 head, 2 necrosis). 404 until
    you submitted an attempt at the case."""

    renderer_classes = [JSONRenderer, PngRenderer]

    @extend_schema(
        operation_id="teaching_images_reference_retrieve",
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY), **_ERRORS},
        tags=["teaching"],
    )
    def get(self, request: Request, image_id: int) -> FileResponse:
        row = selectors.case_instance_get_visible(user=request.user, instance_id=image_id)
        if not selectors.answer_revealed(user=request.user, case=row.case):
            raise Http404("The reference is shown after your first attempt.")
        if not row.reference_labelmap:
            raise Http404("This slice has no reference label map.")
        return _png_response(name=row.reference_labelmap.name)


class AttemptMaskApi(ApiAuthMixin, APIView):
    """The necrosis marked in an attempt on one slice (8-bit PNG, 0 or 1); yours, or any
    of your class's for the teacher. 404 where nothing was marked."""

    renderer_classes = [JSONRenderer, PngRenderer]

    @extend_schema(
        operation_id="teaching_attempts_mask_retrieve",
        responses={(200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY), **_ERRORS},
        tags=["teaching"],
    )
    def get(self, request: Request, attempt_id: int, image_id: int) -> FileResponse:
        attempt = selectors.attempt_get_visible(user=request.user, attempt_id=attempt_id)
        mask = AttemptMask.objects.filter(attempt=attempt, case_instance_id=image_id).first()
        if mask is None:
            raise Http404("Nothing was marked on this slice.")
        return _png_response(name=mask.file.name)
