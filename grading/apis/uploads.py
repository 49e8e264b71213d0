"""Upload DICOM files and zip archives into a site."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address
from grading.models import Membership, Site
from grading.selectors import memberships_of, sites_of, user_can_upload
from grading.services.ingest import UploadError, UploadTooLarge, upload_ingest

# Multipart framing around the files; a body past limit + slack is refused unread.
_MULTIPART_SLACK_BYTES = 1024 * 1024


def _upload_site(*, user: Any, site_id: int | None) -> Site:
    """The site to store into, or a 400/403.

    A site the user does not belong to (or that does not exist) is a 400 with the same
    message either way, so its existence is not revealed; a member whose role may not
    upload (a student) gets 403. Without ``site`` a user with exactly one site uses it.
    """
    if site_id is None:
        memberships: list[Membership] = list(memberships_of(user=user)[:2])
        if len(memberships) != 1:
            raise ValidationError(
                {
                    "site": [
                        "Say which site to upload into (you belong to "
                        f"{'no site' if not memberships else 'several sites'})."
                    ]
                }
            )
        site = memberships[0].site
    else:
        candidates = Site.objects.all() if user.is_superuser else sites_of(user=user)
        site = candidates.filter(pk=site_id).first()
        if site is None:
            raise ValidationError({"site": ["No such site among yours."]})
    if not user_can_upload(user=user, site=site):
        raise PermissionDenied("Your role at this site may not upload studies.")
    return site


class UploadCreateApi(ApiAuthMixin, APIView):
    """Check, deduplicate and store DICOM files (and zip archives of them).

    Each bad file is rejected with a reason and the good ones go on; a file already
    stored (same SOPInstanceUID) counts as accepted and is not stored twice. 201 when
    at least one file was accepted, else 400 with the same body; 413 when the request
    is over ``ONFH_MAX_UPLOAD_BYTES``. Analysis starts in the background.
    """

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema_serializer(component_name="Upload")
    class InputSerializer(serializers.Serializer):
        files = serializers.ListField(
            child=serializers.FileField(allow_empty_file=True, use_url=False),
            allow_empty=False,
            help_text="DICOM files and/or zip archives (repeat the field).",
        )
        site = serializers.IntegerField(
            required=False, help_text="Site id; optional when you belong to one site."
        )

    @extend_schema_serializer(component_name="UploadResult")
    class OutputSerializer(serializers.Serializer):
        studies = inline_serializer(
            name="UploadStudy",
            many=True,
            fields={
                "id": serializers.IntegerField(),
                "study_instance_uid": serializers.CharField(),
            },
        )
        accepted = serializers.IntegerField(help_text="Files stored now or already stored.")
        stored = serializers.IntegerField(help_text="New files stored (accepted less re-uploads).")
        duplicates = serializers.IntegerField(help_text="Files that were stored already.")
        rejected = inline_serializer(
            name="UploadRejected",
            many=True,
            fields={"name": serializers.CharField(), "reason": serializers.CharField()},
        )

    @extend_schema(
        operation_id="uploads_create",
        request={"multipart/form-data": InputSerializer},
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(OutputSerializer, description="Nothing accepted, or bad input."),
            401: ErrorSerializer,
            403: ErrorSerializer,
            413: ErrorSerializer,
        },
        tags=["uploads"],
    )
    def post(self, request: Request) -> Response:
        limit = settings.ONFH_MAX_UPLOAD_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit + _MULTIPART_SLACK_BYTES:
            return Response(
                {"detail": f"the upload is {length} bytes, over the limit of {limit} bytes"},
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        data = {"files": request.FILES.getlist("files")}
        if request.data.get("site") not in (None, ""):
            data["site"] = request.data.get("site")
        serializer = self.InputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        site = _upload_site(user=request.user, site_id=serializer.validated_data.get("site"))
        try:
            report = upload_ingest(
                user=request.user,
                site=site,
                files=serializer.validated_data["files"],
                client_address=client_address(request),
            )
        except UploadTooLarge as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        except UploadError as exc:
            return Response({"detail": str(exc)}, status=exc.status_code)
        body = self.OutputSerializer(report.as_dict()).data
        return Response(
            body, status=status.HTTP_201_CREATED if report.accepted else status.HTTP_400_BAD_REQUEST
        )
