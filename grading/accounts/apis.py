"""A site's sign-in settings, for its site admins (and superusers): the identity
provider's groups that give a role at the site, and whether members need a TOTP code."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.accounts.models import IdentityProviderGroup, SiteSignInPolicy
from grading.accounts.services import idp_group_delete, idp_group_set, site_sign_in_policy_set
from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address, drf_validation
from grading.models import Site
from grading.models.sites import Role
from grading.selectors import site_get_visible, user_role_at


def _site_for_admin(*, user: Any, site_id: int) -> Site:
    site = site_get_visible(user=user, site_id=site_id)
    if not (user.is_superuser or user_role_at(user=user, site=site) == Role.SITE_ADMIN):
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
        return Response(_read(site))

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
        address = client_address(request)
        wanted = {str(g.get("group", "")).strip(): g.get("role", "") for g in data["idp_groups"]}
        with drf_validation(), transaction.atomic():
            site_sign_in_policy_set(
                site=site,
                require_totp=data["require_totp"],
                actor=request.user,
                client_address=address,
            )
            for row in IdentityProviderGroup.objects.filter(site=site):
                if row.group not in wanted:
                    idp_group_delete(row=row, actor=request.user, client_address=address)
            for group, role in wanted.items():
                idp_group_set(
                    site=site, group=group, role=role, actor=request.user, client_address=address
                )
        return Response(_read(site))


def _read(site: Site) -> dict[str, Any]:
    policy = SiteSignInPolicy.objects.filter(site=site).first()
    return {
        "require_totp": bool(policy and policy.require_totp),
        "idp_groups": [
            {"group": g.group, "role": g.role}
            for g in IdentityProviderGroup.objects.filter(site=site)
        ],
    }
