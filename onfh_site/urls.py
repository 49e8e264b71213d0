# Uploaded DICOM and label maps are never served as plain media: they go out through the
# API, which checks that the user may see the study.
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("grading.urls")),
    path("teaching/", include("grading.teaching.page_urls")),
    path("", include("grading.consults.page_urls")),
    path("", include("grading.explanations.page_urls")),
    path("", include("viewer.urls")),
    path("", include("grading.accounts.urls")),
]
if settings.ONFH_OIDC_ENABLED:  # the hospital's identity provider (docs/operations.md)
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
