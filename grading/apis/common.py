"""Pieces shared by the API modules: authentication, the JSON parser, client address,
error bodies.

Every API class answers an anonymous caller 401 (token auth comes first, so DRF
sends ``WWW-Authenticate: Token``); a logged-in browser session works too, with
Django's CSRF check on writes as usual for session auth.
"""

from __future__ import annotations

import io
import ipaddress
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import inline_serializer
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, ParseError, ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request

from grading.apis.authentication import ApiTokenAuthentication
from grading.dicom.uids import uid_problem


class ApiAuthMixin:
    """Token (``ApiToken``: expiring, revocable) or session auth, authenticated users only."""

    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "body_too_large"


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, with the two bounds a JSON body needs (the API's default parser).

    - At most ``ONFH_MAX_JSON_BODY_BYTES``: a larger declared ``Content-Length`` is a 413
      before a byte is read, and a body without one is read only that far. Uploads and
      STOW-RS bodies are not JSON and keep ``ONFH_MAX_UPLOAD_BYTES``; a JSON body would
      otherwise be held in memory up to that 2 GiB, several times over once parsed.
    - Nesting deeper than Python's recursion limit (a few kilobytes of ``[[[[``) is a 400
      like any other malformed JSON: ``json`` raises ``RecursionError`` there, which
      DRF's parser does not catch (a 500).
    """

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.ONFH_MAX_JSON_BODY_BYTES
        request = (parser_context or {}).get("request")
        meta = getattr(request, "META", {})
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            raise BodyTooLarge(
                f"the JSON body is {declared} bytes, over the limit of {limit} bytes"
            )
        data = stream.read(limit + 1)
        if len(data) > limit:
            raise BodyTooLarge(f"the JSON body is over the limit of {limit} bytes")
        try:
            return super().parse(io.BytesIO(data), media_type, parser_context)
        except RecursionError as exc:
            raise ParseError("JSON parse error - nested too deeply") from exc


def _ip_or_none(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def client_address(request: Request) -> str | None:
    """The caller's IP address for the audit trail.

    ``REMOTE_ADDR`` unless the settings say the portal sits behind a reverse proxy
    to trust (``ONFH_TRUST_X_FORWARDED_FOR``); then the right-most
    ``X-Forwarded-For`` entry, the one that proxy appended itself (entries to its
    left come from the client and can be forged). Anything that is not an IP
    address is ignored.
    """
    meta = request.META
    if getattr(settings, "ONFH_TRUST_X_FORWARDED_FOR", False):
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded and (address := _ip_or_none(forwarded[-1])):
            return address
    return _ip_or_none(meta.get("REMOTE_ADDR"))


# Bodies of error answers, for the schema.
ErrorSerializer = inline_serializer(
    name="Error",
    fields={"detail": serializers.CharField()},
)


@contextmanager
def drf_validation() -> Iterator[None]:
    """Turn a service's or selector's Django ``ValidationError`` into a DRF 400."""
    try:
        yield
    except DjangoValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise ValidationError(exc.message_dict) from exc
        raise ValidationError({"detail": exc.messages}) from exc


class UidField(serializers.CharField):
    """A DICOM UID in a request body: digits and dots, at most 64 characters, DICOM's
    grammar (``grading.dicom.uids``); anything else is a 400."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if (problem := uid_problem(value, what="the value")) is not None:
            raise serializers.ValidationError(problem)
        return value
