"""PACS routes, included by ``grading.urls`` under ``/api/``."""

from django.urls import path

from grading.interop.apis import (
    PacsNodeListApi,
    PacsRetrieveApi,
    PacsStudiesApi,
    SeriesSendApi,
    SeriesSendListApi,
)

urlpatterns = [
    path("pacs/nodes/", PacsNodeListApi.as_view(), name="api-pacs-nodes"),
    path("pacs/nodes/<int:node_id>/studies/", PacsStudiesApi.as_view(), name="api-pacs-studies"),
    path("pacs/nodes/<int:node_id>/retrieve/", PacsRetrieveApi.as_view(), name="api-pacs-retrieve"),
    path("series/<int:series_id>/send/", SeriesSendApi.as_view(), name="api-series-send"),
    path("series/<int:series_id>/sends/", SeriesSendListApi.as_view(), name="api-series-sends"),
]
