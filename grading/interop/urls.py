"""DICOMweb routes, included by ``grading.urls`` under ``/api/dicomweb/``.

Every path below that is not one of these answers a JSON 404 (``DicomWebNotFoundApi``),
so a DICOMweb client never gets an HTML page."""

from django.urls import path, re_path

from grading.apis.dicomweb import (
    DicomWebNotFoundApi,
    QidoAllInstancesApi,
    QidoAllSeriesApi,
    QidoInstancesApi,
    QidoSeriesApi,
    QidoStudiesApi,
    QidoStudyInstancesApi,
    WadoFramesApi,
    WadoInstanceApi,
    WadoInstanceMetadataApi,
    WadoSeriesApi,
    WadoSeriesMetadataApi,
    WadoStudyApi,
    WadoStudyMetadataApi,
)

_STUDY = "studies/<str:study_uid>"
_SERIES = f"{_STUDY}/series/<str:series_uid>"
_INSTANCE = f"{_SERIES}/instances/<str:sop_uid>"

urlpatterns = [
    path("studies", QidoStudiesApi.as_view(), name="dicomweb-studies"),
    path("series", QidoAllSeriesApi.as_view(), name="dicomweb-all-series"),
    path("instances", QidoAllInstancesApi.as_view(), name="dicomweb-all-instances"),
    path(_STUDY, WadoStudyApi.as_view(), name="dicomweb-study-retrieve"),
    path(f"{_STUDY}/metadata", WadoStudyMetadataApi.as_view(), name="dicomweb-study-metadata"),
    path(f"{_STUDY}/series", QidoSeriesApi.as_view(), name="dicomweb-series"),
    path(f"{_STUDY}/instances", QidoStudyInstancesApi.as_view(), name="dicomweb-study-instances"),
    path(_SERIES, WadoSeriesApi.as_view(), name="dicomweb-series-retrieve"),
    path(f"{_SERIES}/metadata", WadoSeriesMetadataApi.as_view(), name="dicomweb-series-metadata"),
    path(f"{_SERIES}/instances", QidoInstancesApi.as_view(), name="dicomweb-instances"),
    path(_INSTANCE, WadoInstanceApi.as_view(), name="dicomweb-instance"),
    path(
        f"{_INSTANCE}/metadata",
        WadoInstanceMetadataApi.as_view(),
        name="dicomweb-instance-metadata",
    ),
    path(f"{_INSTANCE}/frames/<str:frames>", WadoFramesApi.as_view(), name="dicomweb-frames"),
    re_path(r"^.*$", DicomWebNotFoundApi.as_view(), name="dicomweb-not-found"),
]
