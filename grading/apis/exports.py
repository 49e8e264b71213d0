"""Exports of results: DICOM SEG and SR of a series, a site's results as CSV or JSON.

404 for a series or site you may not see; 403 when you see it but may not export it
(SEG and SR carry patient identifiers: never for a student; the site table only for
the site's admins, clinicians and radiologists); 400 before the series is analysed.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address, drf_validation
from grading.apis.instances import DicomRenderer, _FileRenderer
from grading.selectors import series_get_visible, site_get_visible
from grading.services.exports import (
    DicomExport,
    series_seg_export,
    series_sr_export,
    site_results_export,
)


class CsvRenderer(_FileRenderer):
    media_type = "text/csv"
    format = "csv"


def _dicom_response(export: DicomExport) -> HttpResponse:
    response = HttpResponse(export.content, content_type="application/dicom")
    response["Content-Disposition"] = content_disposition_header(True, export.filename)
    response["Cache-Control"] = "private, no-store"
    return response


_DICOM_RESPONSES = {
    (200, "application/dicom"): OpenApiResponse(OpenApiTypes.BINARY),
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
}


class SeriesSegExportApi(ApiAuthMixin, APIView):
    """The series' current label maps as a DICOM Segmentation (``application/dicom``):
    segments femoral head and necrosis, algorithm name and version, AUTOMATIC or
    SEMIAUTOMATIC (after a person edited a mask). Recorded in the audit trail."""

    renderer_classes = [JSONRenderer, DicomRenderer]

    @extend_schema(operation_id="series_export_seg", responses=_DICOM_RESPONSES, tags=["exports"])
    def get(self, request: Request, series_id: int) -> HttpResponse:
        series = series_get_visible(user=request.user, series_id=series_id)
        with drf_validation():
            export = series_seg_export(
                user=request.user, series=series, client_address=client_address(request)
            )
        return _dicom_response(export)


class SeriesSrExportApi(ApiAuthMixin, APIView):
    """The series' per-hip areas, volumes, proportions and grades as a DICOM
    Structured Report (TID 1500 Measurement Report, ``application/dicom``), with who
    confirmed the grades. Recorded in the audit trail."""

    renderer_classes = [JSONRenderer, DicomRenderer]

    @extend_schema(operation_id="series_export_sr", responses=_DICOM_RESPONSES, tags=["exports"])
    def get(self, request: Request, series_id: int) -> HttpResponse:
        series = series_get_visible(user=request.user, series_id=series_id)
        with drf_validation():
            export = series_sr_export(
                user=request.user, series=series, client_address=client_address(request)
            )
        return _dicom_response(export)


def _site_export(request: Request, site_id: int, fmt: str) -> HttpResponse:
    site = site_get_visible(user=request.user, site_id=site_id)
    with drf_validation():
        body = site_results_export(
            user=request.user, site=site, fmt=fmt, client_address=client_address(request)
        )
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, f"{site.code}-results.{fmt}")
    response["Cache-Control"] = "private, no-store"
    return response


_SITE_ERRORS = {401: ErrorSerializer, 403: ErrorSerializer, 404: ErrorSerializer}


class SiteResultsCsvExportApi(ApiAuthMixin, APIView):
    """The site's results for research, one row per hip per series (no patient name or
    ID; a pseudonymous study id). Site admins, clinicians and radiologists only."""

    renderer_classes = [JSONRenderer, CsvRenderer]

    @extend_schema(
        operation_id="sites_export_results_csv",
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), **_SITE_ERRORS},
        tags=["exports"],
    )
    def get(self, request: Request, site_id: int) -> HttpResponse:
        return _site_export(request, site_id, "csv")


class SiteResultsJsonExportApi(ApiAuthMixin, APIView):
    """The site's results for research as JSON: ``{"site","note","columns","results"}``,
    one result per hip per series, the columns of the CSV (flags as a list)."""

    @extend_schema(
        operation_id="sites_export_results_json",
        responses={(200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT), **_SITE_ERRORS},
        tags=["exports"],
    )
    def get(self, request: Request, site_id: int) -> HttpResponse:
        return _site_export(request, site_id, "json")
