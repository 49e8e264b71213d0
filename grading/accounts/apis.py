"""A site's sign-in settings, for its site admins (and superusers): the identity
provider's groups that give a role at the site, and whether members need a TOTP code."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.accounts.selectors import site_sign_in_read, user_administers_site
from grading.accounts.services import site_sign_in_update
from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address, drf_validation
from grading.models import Site
from grading.selectors import site_get_visible


def _site_for_admin(*, user: Any, site_id: int) -> Site:
    site = site_get_visible(user=user, site_id=site_id)
    if not user_administers_site(user=user, site=site):
        raise PermissionDenied("Only the site's administrators may change its sign-in.")
    return site


@extend_schema_serializer(component_name="SiteSignIn")
class SiteSignInSerializer(serializers.Serializer):
    require_totp = serializers.BooleanField()
    idp_groups = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField()),
        help_text='[{"group": "<a value of the groups claim>", "role": "clinician"}, ...]',
    )


class SiteSignInApi(ApiAuthMixin, APIView):
    @extend_schema(
        operation_id="site_sign_in_retrieve",
        responses={
            200: SiteSignInSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["sites"],
    )
    def get(self, request: Request, site_id: int) -> Response:
        site = _site_for_admin(user=request.user, site_id=site_id)
        return Response(site_sign_in_read(site=site))

    @extend_schema(
        operation_id="site_sign_in_update",
        request=SiteSignInSerializer,
        responses={
            200: SiteSignInSerializer,
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
        },
        tags=["sites"],
    )
    def put(self, request: Request, site_id: int) -> Response:
        site = _site_for_admin(user=request.user, site_id=site_id)
        serializer = SiteSignInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        wanted = {str(g.get("group", "")): str(g.get("role", "")) for g in data["idp_groups"]}
        with drf_validation():
            site_sign_in_update(
                site=site,
                require_totp=data["require_totp"],
                idp_groups=wanted,
                actor=request.user,
                client_address=client_address(request),
            )
        return Response(site_sign_in_read(site=site))
