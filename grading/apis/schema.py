"""OpenAPI schema and its docs pages, served with no CDN.

The Swagger UI assets come from the ``drf-spectacular-sidecar``
package through Django's static files, whatever ``SPECTACULAR_SETTINGS`` say
(the package must be in ``INSTALLED_APPS`` for ``collectstatic`` and the
static files finder to see its files).
"""

from __future__ import annotations

from django.templatetags.static import static
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny


def _sidecar(path: str) -> str:
    return static(f"drf_spectacular_sidecar/{path}")


class SchemaApi(SpectacularAPIView):
    """The OpenAPI 3 document (YAML by default, ``?format=json`` for JSON)."""

    permission_classes = [AllowAny]
    # The schema must list every endpoint, not only those the caller may use.
    serve_public = True


class SwaggerDocsApi(SpectacularSwaggerView):
    permission_classes = [AllowAny]
    url_name = "api-schema"
    title = "ONFH grading portal API"

    @staticmethod
    def _swagger_ui_resource(filename: str) -> str:
        return _sidecar(f"swagger-ui-dist/{filename}")

    @staticmethod
    def _swagger_ui_favicon() -> str:
        return _sidecar("swagger-ui-dist/favicon-32x32.png")
