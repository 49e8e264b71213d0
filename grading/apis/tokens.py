"""Your own API tokens: list, make one, revoke one (the "API tokens" page uses the same
services)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address
from grading.models import ApiToken
from grading.selectors import api_tokens_of
from grading.services.tokens import api_token_create, api_token_revoke, api_token_state


@extend_schema_serializer(component_name="ApiToken")
class ApiTokenOutputSerializer(serializers.Serializer):
    """A token as its owner sees it: never its key (shown once, when made)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The key's first 8 characters.")
    created = serializers.DateTimeField()
    expires = serializers.DateTimeField()
    last_used = serializers.DateTimeField(allow_null=True)
    revoked = serializers.DateTimeField(allow_null=True)
    state = serializers.SerializerMethodField(
        help_text='"active", "revoked", "expired" or "password changed".'
    )

    def get_state(self, token: ApiToken) -> str:
        return api_token_state(token=token)


class ApiTokenListApi(ApiAuthMixin, APIView):
    """Your tokens, newest first; POST makes one (its key is in this answer only)."""

    @extend_schema_serializer(component_name="ApiTokenCreate")
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)

    @extend_schema_serializer(component_name="ApiTokenCreated")
    class CreatedSerializer(ApiTokenOutputSerializer):
        token = serializers.CharField(help_text="The key: shown once, store it now.")

    @extend_schema(
        operation_id="auth_tokens_list",
        responses={200: ApiTokenOutputSerializer(many=True), 401: ErrorSerializer},
        tags=["auth"],
    )
    def get(self, request: Request) -> Response:
        tokens = api_tokens_of(user=request.user)
        return Response(ApiTokenOutputSerializer(tokens, many=True).data)

    @extend_schema(
        operation_id="auth_tokens_create",
        request=InputSerializer,
        responses={201: CreatedSerializer, 400: ErrorSerializer, 401: ErrorSerializer},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, key = api_token_create(
            user=request.user,
            name=serializer.validated_data["name"],
            client_address=client_address(request),
        )
        token.token = key  # type: ignore[attr-defined]
        return Response(self.CreatedSerializer(token).data, status=status.HTTP_201_CREATED)


class ApiTokenRevokeApi(ApiAuthMixin, APIView):
    """Revoke one of your tokens (404 for anyone else's)."""

    @extend_schema(
        operation_id="auth_tokens_revoke",
        request=None,
        responses={
            200: ApiTokenOutputSerializer,
            401: ErrorSerializer,
            404: OpenApiResponse(description="Not one of your tokens."),
        },
        tags=["auth"],
    )
    def delete(self, request: Request, token_id: int) -> Response:
        try:
            token = api_token_revoke(
                user=request.user, token_id=token_id, client_address=client_address(request)
            )
        except ApiToken.DoesNotExist:
            return Response({"detail": "No such token."}, status=status.HTTP_404_NOT_FOUND)
        return Response(ApiTokenOutputSerializer(token).data)
