"""DICOMweb routes, included by ``grading.urls`` under ``/api/dicomweb/``."""

from django.urls import path

from grading.apis.dicomweb import (
    QidoInstancesApi,
    QidoSeriesApi,
    QidoStudiesApi,
    WadoFramesApi,
    WadoInstanceApi,
    WadoInstanceMetadataApi,
    WadoSeriesApi,
    WadoSeriesMetadataApi,
)

_SERIES = "studies/<str:study_uid>/series/<str:series_uid>"
_INSTANCE = f"{_SERIES}/instances/<str:sop_uid>"

urlpatterns = [
    path("studies", QidoStudiesApi.as_view(), name="dicomweb-studies"),
    path("studies/<str:study_uid>/series", QidoSeriesApi.as_view(), name="dicomweb-series"),
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
]
