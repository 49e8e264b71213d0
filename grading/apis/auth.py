"""Log in for a token; who am I."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.accounts.selectors import user_needs_second_factor
from grading.accounts.services import totp_verify
from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address
from grading.selectors import memberships_of


class TokenObtainApi(APIView):
    """``{"username","password"}`` -> ``{"token","expires"}``; then send
    ``Authorization: Token <token>``. Each call makes a new token (listed and revocable
    under ``/api/auth/tokens/``), valid ``ONFH_API_TOKEN_TTL_DAYS`` days and only until the
    password changes."""

    authentication_classes: list = []  # credentials are in the body; no CSRF dance
    permission_classes: list = []

    @extend_schema_serializer(component_name="TokenObtain")
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
        otp = serializers.CharField(
            required=False, help_text="The authenticator's code, when the user has a second factor."
        )

    @extend_schema_serializer(component_name="Token")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expires = serializers.DateTimeField()

    @extend_schema(
        operation_id="auth_token_create",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(description="Bad credentials, or the second factor missing."),
            429: OpenApiResponse(description="Locked out after repeated failures."),
        },
        auth=[],
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        # The Django request, so django-axes can mark a locked-out sign-in on it (429).
        serializer = AuthTokenSerializer(data=request.data, context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        if user_needs_second_factor(user=user):
            code = str(request.data.get("otp") or "")
            if not code or totp_verify(user=user, token=code) is None:
                raise ValidationError({"otp": ["A valid code from the authenticator is needed."]})
        from grading.services.tokens import api_token_create

        token, key = api_token_create(user=user, client_address=client_address(request))
        return Response(self.OutputSerializer({"token": key, "expires": token.expires}).data)


class MeApi(ApiAuthMixin, APIView):
    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        sites = inline_serializer(
            name="MeSite",
            many=True,
            fields={
                "id": serializers.IntegerField(source="site.id"),
                "name": serializers.CharField(source="site.name"),
                "role": serializers.CharField(),
            },
        )

    @extend_schema(
        operation_id="me_retrieve",
        responses={200: OutputSerializer, 401: ErrorSerializer},
        tags=["auth"],
    )
    def get(self, request: Request) -> Response:
        data = {"username": request.user.get_username(), "sites": memberships_of(user=request.user)}
        return Response(self.OutputSerializer(data).data)
