"""The REST API, mounted under ``/api/`` by ``onfh_site.urls``."""

from django.urls import include, path

from grading.apis.audit import StudyAuditListApi
from grading.apis.auth import MeApi, TokenObtainApi
from grading.apis.classifications import ClassificationRevisionCreateApi
from grading.apis.exports import (
    SeriesSegExportApi,
    SeriesSrExportApi,
    SiteResultsCsvExportApi,
    SiteResultsJsonExportApi,
)
from grading.apis.grades import GradeRevisionCreateApi
from grading.apis.instances import InstanceDicomApi, InstanceLabelmapApi
from grading.apis.labelmaps import LabelmapsRevertApi, LabelmapsSaveApi
from grading.apis.schema import SchemaApi, SwaggerDocsApi
from grading.apis.studies import StudyDetailApi, StudyListApi
from grading.apis.tokens import ApiTokenListApi, ApiTokenRevokeApi
from grading.apis.uploads import UploadCreateApi
from grading.apis.workers import WorkerStatusApi

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="api-auth-token"),
    path("auth/tokens/", ApiTokenListApi.as_view(), name="api-auth-tokens"),
    path("auth/tokens/<int:token_id>/", ApiTokenRevokeApi.as_view(), name="api-auth-token-revoke"),
    path("me/", MeApi.as_view(), name="api-me"),
    path("workers/", WorkerStatusApi.as_view(), name="api-workers"),
    path("uploads/", UploadCreateApi.as_view(), name="api-uploads"),
    path("studies/", StudyListApi.as_view(), name="api-study-list"),
    path("studies/<int:study_id>/", StudyDetailApi.as_view(), name="api-study-detail"),
    path(
        "studies/<int:study_id>/grades/",
        GradeRevisionCreateApi.as_view(),
        name="api-study-grades",
    ),
    path(
        "studies/<int:study_id>/classifications/",
        ClassificationRevisionCreateApi.as_view(),
        name="api-study-classifications",
    ),
    path("studies/<int:study_id>/audit/", StudyAuditListApi.as_view(), name="api-study-audit"),
    path(
        "instances/<int:instance_id>/dicom/", InstanceDicomApi.as_view(), name="api-instance-dicom"
    ),
    path(
        "instances/<int:instance_id>/labelmap.png",
        InstanceLabelmapApi.as_view(),
        name="api-instance-labelmap",
    ),
    path(
        "series/<int:series_id>/labelmaps/",
        LabelmapsSaveApi.as_view(),
        name="api-series-labelmaps",
    ),
    path(
        "series/<int:series_id>/labelmaps/revert/",
        LabelmapsRevertApi.as_view(),
        name="api-series-labelmaps-revert",
    ),
    path(
        "series/<int:series_id>/export/seg/",
        SeriesSegExportApi.as_view(),
        name="api-series-export-seg",
    ),
    path(
        "series/<int:series_id>/export/sr/",
        SeriesSrExportApi.as_view(),
        name="api-series-export-sr",
    ),
    path(
        "sites/<int:site_id>/export/results.csv",
        SiteResultsCsvExportApi.as_view(),
        name="api-site-export-results-csv",
    ),
    path(
        "sites/<int:site_id>/export/results.json",
        SiteResultsJsonExportApi.as_view(),
        name="api-site-export-results-json",
    ),
    path("", include("grading.consults.urls")),
    path("", include("grading.accounts.api_urls")),
    path("", include("grading.explanations.urls")),
    path("teaching/", include("grading.teaching.urls")),
    path("dicomweb/", include("grading.interop.urls")),
    path("", include("grading.interop.pacs_urls")),
    path("schema/", SchemaApi.as_view(), name="api-schema"),
    path("docs/", SwaggerDocsApi.as_view(), name="api-docs"),
]
