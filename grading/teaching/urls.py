"""The teaching API, mounted under ``/api/teaching/`` by ``grading.urls``."""

from django.urls import path

from grading.teaching.apis.cases import CaseAttemptsApi, CaseDetailApi
from grading.teaching.apis.collections import (
    CollectionCasesApi,
    CollectionDetailApi,
    CollectionListCreateApi,
    CollectionResultsApi,
    CollectionStudentsApi,
)
from grading.teaching.apis.images import (
    AttemptMaskApi,
    CaseImageDicomApi,
    CaseImagePngApi,
    CaseImageReferenceApi,
)

app_name = "teaching-api"

urlpatterns = [
    path("collections/", CollectionListCreateApi.as_view(), name="collections"),
    path("collections/<int:collection_id>/", CollectionDetailApi.as_view(), name="collection"),
    path(
        "collections/<int:collection_id>/students/",
        CollectionStudentsApi.as_view(),
        name="collection-students",
    ),
    path(
        "collections/<int:collection_id>/cases/",
        CollectionCasesApi.as_view(),
        name="collection-cases",
    ),
    path(
        "collections/<int:collection_id>/results/",
        CollectionResultsApi.as_view(),
        name="collection-results",
    ),
    path("cases/<int:case_id>/", CaseDetailApi.as_view(), name="case"),
    path("cases/<int:case_id>/attempts/", CaseAttemptsApi.as_view(), name="case-attempts"),
    path("images/<int:image_id>/dicom/", CaseImageDicomApi.as_view(), name="image-dicom"),
    path("images/<int:image_id>/image.png", CaseImagePngApi.as_view(), name="image-png"),
    path(
        "images/<int:image_id>/reference.png",
        CaseImageReferenceApi.as_view(),
        name="image-reference",
    ),
    path(
        "attempts/<int:attempt_id>/images/<int:image_id>/mask.png",
        AttemptMaskApi.as_view(),
        name="attempt-mask",
    ),
]
