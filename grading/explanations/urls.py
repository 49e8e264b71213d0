"""``/api/explanations/...``, included from ``grading.urls``."""

from django.urls import path

from grading.explanations.apis import (
    ExplanationCreateApi,
    ExplanationDetailApi,
    ExplanationPdfApi,
    ShareLinkCreateApi,
    ShareLinkRevokeApi,
)

urlpatterns = [
    path("explanations/", ExplanationCreateApi.as_view(), name="api-explanations"),
    path(
        "explanations/<int:explanation_id>/",
        ExplanationDetailApi.as_view(),
        name="api-explanation-detail",
    ),
    path(
        "explanations/<int:explanation_id>/pdf/",
        ExplanationPdfApi.as_view(),
        name="api-explanation-pdf",
    ),
    path(
        "explanations/<int:explanation_id>/links/",
        ShareLinkCreateApi.as_view(),
        name="api-explanation-links",
    ),
    path(
        "explanations/links/<int:link_id>/revoke/",
        ShareLinkRevokeApi.as_view(),
        name="api-explanation-link-revoke",
    ),
]
