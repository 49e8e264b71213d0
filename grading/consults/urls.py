"""``/api/consults/...``, included from ``grading.urls``."""

from django.urls import path

from grading.consults.apis import (
    ConsultAnswerCreateApi,
    ConsultCloseApi,
    ConsultDetailApi,
    ConsultListCreateApi,
)

urlpatterns = [
    path("consults/", ConsultListCreateApi.as_view(), name="api-consults"),
    path("consults/<int:request_id>/", ConsultDetailApi.as_view(), name="api-consult-detail"),
    path(
        "consults/<int:request_id>/answers/",
        ConsultAnswerCreateApi.as_view(),
        name="api-consult-answers",
    ),
    path("consults/<int:request_id>/close/", ConsultCloseApi.as_view(), name="api-consult-close"),
]
