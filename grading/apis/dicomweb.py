"""DICOMweb (PS3.18) over the studies a user may see: STOW-RS, QIDO-RS, WADO-RS.

Mounted under ``/api/dicomweb/``; token or session authentication like the rest of the
API. Visibility is the selectors' (``studies_visible_to``): a study, series or instance
of a site the user does not belong to answers 404, and searches never return it. A
student gets what the REST API gives a student: PatientName, PatientID and
PatientBirthDate empty in QIDO answers and metadata, the served files de-identified
(``grading.apis.instances.deidentified_dicom``), and search on patient attributes
ignored (a match would reveal them).

Routes (below ``/api/dicomweb/``):

* ``POST studies`` (``multipart/related; type="application/dicom"``, optional ``?site=``):
  STOW-RS; the store response (DICOM JSON) is 200 when all were stored, 202 when some
  failed, 409 when none was stored.
* ``GET studies``: QIDO-RS on StudyInstanceUID (a list), PatientID and PatientName
  (``*``/``?`` wildcards), AccessionNumber, StudyDate (``a-b``, ``a-``, ``-b`` ranges),
  ModalitiesInStudy; ``limit`` and ``offset``.
* ``GET studies/{study}/series`` (Modality, SeriesInstanceUID, SeriesNumber) and
  ``GET studies/{study}/series/{series}/instances`` (SOPInstanceUID, InstanceNumber).
* ``GET studies/{study}/series/{series}``: WADO-RS, every instance as
  ``multipart/related; type="application/dicom"``; ``.../metadata``: DICOM JSON of each
  instance, pixel data as a BulkDataURI.
* ``GET .../instances/{instance}``: the stored file as one ``application/dicom`` part;
  ``.../metadata``: its DICOM JSON; ``.../frames/{n[,m...]}``: each frame's uncompressed
  pixel bytes as ``application/octet-stream`` parts.

Stored files are returned in their own transfer syntax (``transfer-syntax=*``); frames
are always the native (uncompressed, little endian) pixel bytes. Opening a series
(its metadata or the whole series) records a ``study.view`` audit event, as opening
the study page does; single instances and frames, which a viewer fetches by the
hundred, do not.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from datetime import date
from typing import Any

import pydicom
import pydicom.datadict
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db.models import Count, F, Lookup, Q, QuerySet, Value
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage
from rest_framework.exceptions import NotAcceptable, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address
from grading.apis.instances import deidentified_dicom
from grading.apis.uploads import _upload_site
from grading.dicom.multipart import (
    MultipartError,
    accepted_part_types,
    multipart_chunks,
    multipart_decode,
    multipart_type,
    new_boundary,
)
from grading.dicom.uids import uid_problem
from grading.models import Instance, Series, Study
from grading.permissions import Redaction, redaction_for
from grading.selectors import studies_visible_to
from grading.services.ingest import UploadError, upload_ingest
from grading.services.studies import study_view_record

DICOM_JSON = "application/dicom+json"
_MULTIPART_SLACK_BYTES = 1024 * 1024
_NATIVE_LITTLE_ENDIAN = {pydicom.uid.ExplicitVRLittleEndian, pydicom.uid.ImplicitVRLittleEndian}

# Failure reasons of the store response (PS3.18 Table I.2-1 / PS3.4 C.4.2.1.4).
FAILURE_PROCESSING = 0x0110
FAILURE_NOT_AUTHORISED = 0x0124
FAILURE_CANNOT_UNDERSTAND = 0xC000


class DicomJsonRenderer(JSONRenderer):
    media_type = DICOM_JSON
    format = "dicomjson"


class DicomWebApi(ApiAuthMixin, APIView):
    """Answers DICOM JSON, or a multipart body built by the view. The ``Accept`` header
    is checked against what the resource answers (``answers``: ``"json"`` for QIDO and
    metadata, ``"dicom"`` for instances, ``"frames"`` for pixel data): anything else is
    406, in JSON, as every error here is (never an HTML page)."""

    renderer_classes = [DicomJsonRenderer, JSONRenderer]
    answers = "json"
    # For ``answers = "dicom"``: the transfer syntax the Accept header chose (None: each
    # file as stored, ``transfer-syntax=*``).
    transfer_syntax: str | None = None

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if request.method in ("GET", "HEAD"):
            self.transfer_syntax = accept_check(request.META.get("HTTP_ACCEPT", ""), self.answers)


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(JSONRenderer().render(data), status=status, content_type=DICOM_JSON)


def _streamed(request: Request, chunks: Iterator[bytes], content_type: str) -> HttpResponseBase:
    """A streamed answer: under ASGI (daphne) each chunk is made in a worker thread and
    sent before the next is made; under WSGI the iterator is consumed as it is sent."""
    if isinstance(request._request, ASGIRequest):
        next_chunk = sync_to_async(next, thread_sensitive=True)

        async def chunks_async() -> AsyncIterator[bytes]:
            while (chunk := await next_chunk(chunks, None)) is not None:
                yield chunk

        return StreamingHttpResponse(chunks_async(), content_type=content_type)
    return StreamingHttpResponse(chunks, content_type=content_type)


def _multipart(request: Request, bodies: Iterable[bytes], part_type: str) -> HttpResponseBase:
    boundary = new_boundary()
    return _streamed(
        request,
        multipart_chunks(bodies, part_type=part_type, boundary=boundary),
        multipart_type(part_type, boundary),
    )


# --- Accept -------------------------------------------------------------------------------

_JSON_TYPES = {DICOM_JSON, "application/json", "application/*", "*/*"}
_ANY_MULTIPART = {"multipart/*", "*/*"}


def accept_check(accept: str, answers: str) -> str | None:
    """The first media range of ``accept`` (PS3.18 8.7) this resource can answer; for
    ``answers="dicom"`` returns the transfer syntax to send (Explicit VR Little Endian
    when none is named, PS3.18's default; None for ``transfer-syntax=*``: as stored).
    Raises NotAcceptable (406) when none fits."""
    ranges = accepted_part_types(accept) if accept.strip() else [("*/*", {})]
    for media, params in ranges:
        if answers == "json":
            if media in _JSON_TYPES:
                return None
            continue
        part = (params.get("type") or "").lower()
        syntax = params.get("transfer-syntax")
        wanted = "application/dicom" if answers == "dicom" else "application/octet-stream"
        if media in _ANY_MULTIPART or (
            media == "multipart/related" and part in ("", wanted, "application/*", "*/*")
        ):
            if syntax in (None, "", str(ExplicitVRLittleEndian)):
                return str(ExplicitVRLittleEndian) if answers == "dicom" else None
            if syntax == "*":
                return None
    what = {
        "json": "application/dicom+json",
        "dicom": 'multipart/related; type="application/dicom" (transfer-syntax * or '
        f"{ExplicitVRLittleEndian})",
        "frames": 'multipart/related; type="application/octet-stream"',
    }[answers]
    raise NotAcceptable(f"This resource answers {what}.")


# --- DICOM JSON ---------------------------------------------------------------------------


def _tag(keyword: str) -> str:
    return f"{pydicom.datadict.tag_for_keyword(keyword):08X}"


def _element(keyword: str, value: Any) -> tuple[str, dict[str, Any]]:
    vr = pydicom.datadict.dictionary_VR(keyword)
    if value is None or value == "":
        return _tag(keyword), {"vr": vr}
    if vr == "PN":
        value = {"Alphabetic": str(value)}
    elif vr == "DA" and isinstance(value, date):
        value = value.strftime("%Y%m%d")
    return _tag(keyword), {"vr": vr, "Value": [value]}


def _attributes(**values: Any) -> dict[str, Any]:
    return dict(_element(k, v) for k, v in values.items())


def _base_url(request: Request) -> str:
    return request.build_absolute_uri("/api/dicomweb").rstrip("/")


def _study_url(request: Request, study_uid: str) -> str:
    return f"{_base_url(request)}/studies/{study_uid}"


def _series_url(request: Request, study_uid: str, series_uid: str) -> str:
    return f"{_study_url(request, study_uid)}/series/{series_uid}"


def _instance_url(request: Request, study_uid: str, series_uid: str, sop_uid: str) -> str:
    return f"{_series_url(request, study_uid, series_uid)}/instances/{sop_uid}"


# --- query parameters ---------------------------------------------------------------------


def _query(request: Request) -> dict[str, str]:
    """Query parameters by keyword; ``0020000D=...`` is the same as
    ``StudyInstanceUID=...``."""
    out: dict[str, str] = {}
    for key, value in request.query_params.items():
        if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
            key = pydicom.datadict.keyword_for_tag(int(key, 16)) or key
        out[key] = value
    return out


def _int_param(params: dict[str, str], name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValidationError({name: ["An integer."]}) from exc
    if value < 0:
        raise ValidationError({name: ["Not negative."]})
    return min(value, maximum)


def _dicom_date(value: str, name: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    if not re.fullmatch(r"\d{8}", value):
        raise ValidationError({name: ["Dates are YYYYMMDD; a range is YYYYMMDD-YYYYMMDD."]})
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError as exc:
        raise ValidationError({name: [f"{value} is not a date."]}) from exc


class DicomMatch(Lookup):  # type: ignore[type-arg]
    """``UPPER(field) LIKE UPPER(pattern) ESCAPE '\\'``: used directly in ``filter()``
    (not registered on any field). Unlike the regex this replaced (``*a*a*a*...b`` took
    7.5 s), the LIKE matchers of SQLite and PostgreSQL give up on a ``%`` that cannot
    match instead of backtracking through every split, and ``%``/``_`` typed by a user
    are escaped, so a crafted pattern cannot stall the database."""

    lookup_name = "dicom_match"

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"UPPER({lhs}) LIKE UPPER({rhs}) ESCAPE '\\'", [*lhs_params, *rhs_params]


def like_pattern(value: str) -> str:
    """A DICOM wildcard value (``*`` any run, ``?`` one character) as a LIKE pattern
    with ``\\`` as the escape character: ``%``, ``_`` and ``\\`` match themselves."""
    out = []
    for char in value:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in "%_\\":
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def _wildcard(field: str, value: str) -> Q:
    """DICOM matching: ``*`` any run, ``?`` one character, else exact."""
    if "*" not in value and "?" not in value:
        return Q(**{field: value})
    return Q(DicomMatch(F(field), Value(like_pattern(value))))


def _uid_list(value: str) -> list[str]:
    return [u.strip() for u in re.split(r"[,\\]", value) if u.strip()]


def _checked_uid(value: str, what: str) -> str:
    """400 for anything that is not a DICOM UID (a URL segment or a query value)."""
    if (problem := uid_problem(value, what=what)) is not None:
        raise ValidationError({what: [problem]})
    return value


def _uids(params: Any, what: str) -> list[str]:
    """The UIDs of a query's ``what`` (a list split by commas or backslashes), checked."""
    return [_checked_uid(u, what) for u in _uid_list(params.get(what, ""))]


# --- lookups ------------------------------------------------------------------------------


def _visible_studies(user: Any, study_uid: str) -> QuerySet[Study]:
    _checked_uid(study_uid, "StudyInstanceUID")
    return studies_visible_to(user=user).filter(study_instance_uid=study_uid)


def _series_get(user: Any, study_uid: str, series_uid: str) -> Series:
    _checked_uid(series_uid, "SeriesInstanceUID")
    series = (
        Series.objects.select_related("study")
        .filter(
            series_instance_uid=series_uid,
            study__in=_visible_studies(user, study_uid),
        )
        .first()
    )
    if series is None:
        raise Http404("No such series.")
    return series


def _instance_get(user: Any, study_uid: str, series_uid: str, sop_uid: str) -> Instance:
    _checked_uid(series_uid, "SeriesInstanceUID")
    _checked_uid(sop_uid, "SOPInstanceUID")
    instance = (
        Instance.objects.select_related("series__study")
        .filter(
            sop_instance_uid=sop_uid,
            series__series_instance_uid=series_uid,
            series__study__in=_visible_studies(user, study_uid),
        )
        .first()
    )
    if instance is None:
        raise Http404("No such instance.")
    return instance


def as_transfer_syntax(data: bytes, syntax: str | None) -> bytes:
    """A Part 10 file in ``syntax`` (None: unchanged). Only Explicit VR Little Endian is
    asked for here: a compressed, implicit, deflated or big endian file is decoded and
    written again; a file already in it is returned as it is."""
    if syntax is None:
        return data
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=[])
    stored = pydicom.uid.UID(str(header.file_meta.get("TransferSyntaxUID", "")))
    if stored == syntax:
        return data
    ds = pydicom.dcmread(io.BytesIO(data))
    if stored.is_compressed:
        ds.decompress()
    elif "PixelData" in ds and not stored.is_little_endian:
        pixels = ds.pixel_array
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()


def _instance_bytes(
    instance: Instance, redaction: Redaction, transfer_syntax: str | None = None
) -> bytes:
    with instance.file.open("rb") as handle:
        if redaction.hides_patient_of(instance.series.study.site_id):
            data = deidentified_dicom(handle, study_id=instance.series.study_id)
        else:
            data = bytes(handle.read())
    return as_transfer_syntax(data, transfer_syntax)


def _metadata(request: Request, instance: Instance, redaction: Redaction) -> dict[str, Any]:
    """DICOM JSON of the stored instance; pixel data by BulkDataURI (its frames)."""
    study = instance.series.study
    if redaction.hides_patient_of(study.site_id):
        ds = pydicom.dcmread(
            io.BytesIO(_instance_bytes(instance, redaction)), stop_before_pixels=True
        )
    else:
        with instance.file.open("rb") as handle:
            ds = pydicom.dcmread(handle, stop_before_pixels=True)
    data = ds.to_json_dict(bulk_data_threshold=1024 * 1024, bulk_data_element_handler=lambda e: "")
    url = _instance_url(
        request,
        study.study_instance_uid,
        instance.series.series_instance_uid,
        instance.sop_instance_uid,
    )
    data["7FE00010"] = {"vr": "OW", "BulkDataURI": f"{url}/frames/1"}
    return data


# --- STOW-RS ------------------------------------------------------------------------------


def _failed_item(name: str, data: bytes | None, reason: int) -> dict[str, Any]:
    sop_class = sop_instance = ""
    if data:
        try:
            ds = pydicom.dcmread(
                io.BytesIO(data),
                stop_before_pixels=True,
                force=True,
                specific_tags=["SOPClassUID", "SOPInstanceUID"],
            )
            sop_class = str(ds.get("SOPClassUID", "") or "")
            sop_instance = str(ds.get("SOPInstanceUID", "") or "")
        except Exception:  # noqa: BLE001 - whatever it is, it failed
            pass
    return _attributes(
        ReferencedSOPClassUID=sop_class,
        ReferencedSOPInstanceUID=sop_instance,
        FailureReason=reason,
    )


_META_SOP_CLASS = b"\x02\x00\x02\x00UI"  # (0002,0002) MediaStorageSOPClassUID, explicit VR


def _sop_class_of(data: bytes) -> str:
    """The SOP Class UID from the file meta (always explicit VR little endian), without
    parsing the data set; a full header read only when the meta is not where it should be."""
    at = data.find(_META_SOP_CLASS, 128, 512)
    if at >= 0:
        length = int.from_bytes(data[at + 6 : at + 8], "little")
        value = data[at + 8 : at + 8 + length].rstrip(b"\x00 ").decode("ascii", "replace")
        if value:
            return value
    try:
        ds = pydicom.dcmread(
            io.BytesIO(data), stop_before_pixels=True, specific_tags=["SOPClassUID"]
        )
        return str(ds.get("SOPClassUID", "") or MRImageStorage)
    except Exception:  # noqa: BLE001
        return str(MRImageStorage)


class _Part(io.BytesIO):
    """An in-memory file with a name and a size, as the ingest wants uploads."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(data)
        self.name = name
        self.size = len(data)


class StowApi(DicomWebApi):
    """STOW-RS: store the instances of a ``multipart/related; type="application/dicom"``
    body through the same ingest as an upload (checks, deduplication, storage,
    grouping, audit, analysis)."""

    @extend_schema(
        operation_id="dicomweb_studies_store",
        parameters=[OpenApiParameter("site", int, required=False)],
        request={"multipart/related": OpenApiTypes.BINARY},
        responses={
            (200, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="All stored."),
            (202, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="Some failed."),
            (409, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT, description="None stored."),
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            413: ErrorSerializer,
            415: ErrorSerializer,
        },
        tags=["dicomweb"],
    )
    def post(self, request: Request) -> HttpResponse:
        limit = settings.ONFH_MAX_UPLOAD_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit + _MULTIPART_SLACK_BYTES:
            return _json({"detail": f"the body is {length} bytes, over {limit}"}, 413)
        site_param = request.query_params.get("site")
        try:
            site_id = int(site_param) if site_param not in (None, "") else None
        except ValueError as exc:
            raise ValidationError({"site": ["A site id."]}) from exc
        site = _upload_site(user=request.user, site_id=site_id)
        content_type = request.META.get("CONTENT_TYPE", "")
        try:
            parts = multipart_decode(request._request.body, content_type)
        except MultipartError as exc:
            return _json({"detail": str(exc)}, 415)
        files: list[_Part] = []
        failed: list[dict[str, Any]] = []
        for k, part in enumerate(parts, start=1):
            kind = part.content_type.split(";")[0].strip().lower()
            name = f"part-{k}"
            if kind not in ("", "application/dicom") or part.body[:4] == b"PK\x03\x04":
                failed.append(_failed_item(name, None, FAILURE_CANNOT_UNDERSTAND))
                continue
            files.append(_Part(name, part.body))
        if not files and not failed:
            return _json({"detail": "the body has no parts"}, 400)
        stored_items: list[dict[str, Any]] = []
        if files:
            try:
                report = upload_ingest(
                    user=request.user,
                    site=site,
                    files=files,
                    client_address=client_address(request),
                )
            except UploadError as exc:
                return _json({"detail": str(exc)}, exc.status_code)
            by_name = {f.name: f for f in files}
            for accepted in report.files:
                data = by_name[accepted.name].getvalue()
                stored_items.append(
                    _attributes(
                        ReferencedSOPClassUID=_sop_class_of(data),
                        ReferencedSOPInstanceUID=accepted.sop_instance_uid,
                        RetrieveURL=_instance_url(
                            request,
                            accepted.study_instance_uid,
                            accepted.series_instance_uid,
                            accepted.sop_instance_uid,
                        ),
                    )
                )
            for rejected in report.rejected:
                reason = (
                    FAILURE_NOT_AUTHORISED
                    if "another site" in rejected.reason or "another study" in rejected.reason
                    else FAILURE_CANNOT_UNDERSTAND
                )
                upload = by_name.get(rejected.name)
                sent = upload.getvalue() if upload is not None else None
                failed.append(_failed_item(rejected.name, sent, reason))
        answer: dict[str, Any] = {}
        if stored_items and len(report.studies) == 1:
            study_uid = report.studies[0].study_instance_uid
            answer.update(_attributes(RetrieveURL=_study_url(request, study_uid)))
        if stored_items:
            answer[_tag("ReferencedSOPSequence")] = {"vr": "SQ", "Value": stored_items}
        if failed:
            answer[_tag("FailedSOPSequence")] = {"vr": "SQ", "Value": failed}
        status = 200 if not failed else 202 if stored_items else 409
        return _json(answer, status)


# --- QIDO-RS ------------------------------------------------------------------------------


class QidoStudiesApi(StowApi):
    """QIDO-RS studies search (GET); STOW-RS (POST, :class:`StowApi`) shares the path."""

    @extend_schema(
        operation_id="dicomweb_studies_search",
        parameters=[
            OpenApiParameter(name, str, required=False)
            for name in (
                "StudyInstanceUID",
                "PatientID",
                "PatientName",
                "AccessionNumber",
                "StudyDate",
                "ModalitiesInStudy",
                "limit",
                "offset",
            )
        ],
        responses={
            (200, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT),
            400: ErrorSerializer,
            401: ErrorSerializer,
        },
        tags=["dicomweb"],
    )
    def get(self, request: Request) -> HttpResponse:
        params = _query(request)
        redaction = redaction_for(user=request.user)
        qs = studies_visible_to(user=request.user).annotate(
            series_count=Count("series", distinct=True),
            instance_count=Count("series__instances", distinct=True),
        )
        if uids := _uids(params, "StudyInstanceUID"):
            qs = qs.filter(study_instance_uid__in=uids)
        # A student searches neither by patient nor by accession number or date.
        hidden_anywhere = redaction.hides_patient_anywhere
        if not hidden_anywhere:
            if value := params.get("PatientID", "").strip():
                qs = qs.filter(_wildcard("patient_id", value))
            if value := params.get("PatientName", "").strip():
                # Stored with the components joined by spaces.
                qs = qs.filter(_wildcard("patient_name", value.replace("^", " ").strip()))
        if (value := params.get("AccessionNumber", "").strip()) and not hidden_anywhere:
            qs = qs.filter(_wildcard("accession_number", value))
        if value := params.get("ModalitiesInStudy", "").strip():
            qs = qs.filter(series__modality__in=_uid_list(value.upper())).distinct()
        if (value := params.get("StudyDate", "").strip()) and not hidden_anywhere:
            low, sep, high = value.partition("-")
            if sep:
                if d := _dicom_date(low, "StudyDate"):
                    qs = qs.filter(study_date__gte=d)
                if d := _dicom_date(high, "StudyDate"):
                    qs = qs.filter(study_date__lte=d)
            else:
                qs = qs.filter(study_date=_dicom_date(low, "StudyDate"))
        offset = _int_param(params, "offset", 0, 10**9)
        limit = _int_param(params, "limit", 100, 1000)
        studies = list(qs.order_by("-study_date", "-id")[offset : offset + limit])
        modalities: dict[int, list[str]] = {}
        for study_id, modality in (
            Series.objects.filter(study_id__in=[s.pk for s in studies])
            .values_list("study_id", "modality")
            .distinct()
        ):
            modalities.setdefault(study_id, []).append(modality)
        answer = []
        for s in studies:
            hidden = redaction.hides_patient_of(s.site_id)
            item = _attributes(
                StudyInstanceUID=s.study_instance_uid,
                StudyDate=None if hidden else s.study_date,
                AccessionNumber=None if hidden else s.accession_number,
                StudyDescription=None if hidden else s.study_description,
                PatientName=None if hidden else s.patient_name,
                PatientID=None if hidden else s.patient_id,
                PatientBirthDate=None if hidden else s.patient_birth_date,
                PatientSex=None if hidden else s.patient_sex,
                NumberOfStudyRelatedSeries=s.series_count,
                NumberOfStudyRelatedInstances=s.instance_count,
                RetrieveURL=_study_url(request, s.study_instance_uid),
            )
            mods = sorted(modalities.get(s.pk, []))
            item[_tag("ModalitiesInStudy")] = {"vr": "CS", **({"Value": mods} if mods else {})}
            answer.append(item)
        return _json(answer)


_SERIES_PARAMS = ("StudyInstanceUID", "Modality", "SeriesInstanceUID", "SeriesNumber")
_INSTANCE_PARAMS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "InstanceNumber")
_QIDO_JSON = {
    (200, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT),
    400: ErrorSerializer,
    401: ErrorSerializer,
    404: ErrorSerializer,
    406: ErrorSerializer,
}


def _int_filter(qs: QuerySet[Any], params: dict[str, str], name: str, field: str) -> Any:
    if value := params.get(name, "").strip():
        try:
            return qs.filter(**{field: int(value)})
        except ValueError as exc:
            raise ValidationError({name: ["An integer."]}) from exc
    return qs


def _series_search(request: Request, series: QuerySet[Series]) -> HttpResponse:
    """QIDO-RS series search over ``series`` (already limited to visible studies)."""
    params = _query(request)
    qs = series.select_related("study").annotate(instance_count=Count("instances"))
    if uids := _uids(params, "StudyInstanceUID"):
        qs = qs.filter(study__study_instance_uid__in=uids)
    if uids := _uids(params, "SeriesInstanceUID"):
        qs = qs.filter(series_instance_uid__in=uids)
    if value := params.get("Modality", "").strip():
        qs = qs.filter(modality__iexact=value)
    qs = _int_filter(qs, params, "SeriesNumber", "number")
    offset = _int_param(params, "offset", 0, 10**9)
    limit = _int_param(params, "limit", 1000, 1000)
    answer = []
    for s in qs.order_by("study__study_instance_uid", "number", "id")[offset : offset + limit]:
        study_uid = s.study.study_instance_uid
        answer.append(
            _attributes(
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=s.series_instance_uid,
                Modality=s.modality,
                SeriesNumber=s.number,
                SeriesDescription=s.description,
                NumberOfSeriesRelatedInstances=s.instance_count,
                RetrieveURL=_series_url(request, study_uid, s.series_instance_uid),
            )
        )
    return _json(answer)


def _instance_search(request: Request, instances: QuerySet[Instance]) -> HttpResponse:
    """QIDO-RS instance search over ``instances`` (already limited to visible studies)."""
    params = _query(request)
    qs = instances.select_related("series__study")
    if uids := _uids(params, "StudyInstanceUID"):
        qs = qs.filter(series__study__study_instance_uid__in=uids)
    if uids := _uids(params, "SeriesInstanceUID"):
        qs = qs.filter(series__series_instance_uid__in=uids)
    if uids := _uids(params, "SOPInstanceUID"):
        qs = qs.filter(sop_instance_uid__in=uids)
    qs = _int_filter(qs, params, "InstanceNumber", "instance_number")
    offset = _int_param(params, "offset", 0, 10**9)
    limit = _int_param(params, "limit", 5000, 5000)
    answer = []
    ordered = qs.order_by("series__study_id", "series__number", "series_id", "position", "id")
    # One entry per stored file: the frames of a multi-frame file are one instance.
    for i, frames in _files_of(ordered)[offset : offset + limit]:
        study_uid = i.series.study.study_instance_uid
        series_uid = i.series.series_instance_uid
        answer.append(
            _attributes(
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=series_uid,
                SOPClassUID=str(MRImageStorage) if frames == 1 else _sop_class_of_file(i),
                SOPInstanceUID=i.sop_instance_uid,
                InstanceNumber=i.instance_number if frames == 1 else 1,
                Rows=i.rows,
                Columns=i.columns,
                NumberOfFrames=frames,
                RetrieveURL=_instance_url(request, study_uid, series_uid, i.sop_instance_uid),
            )
        )
    return _json(answer)


def _study_list(user: Any, study_uid: str) -> list[Study]:
    studies = list(_visible_studies(user, study_uid))
    if not studies:
        raise Http404("No such study.")
    return studies


def _qido_schema(operation_id: str, names: tuple[str, ...]) -> Any:
    return extend_schema(
        operation_id=operation_id,
        parameters=[OpenApiParameter(n, str, required=False) for n in (*names, "limit", "offset")],
        responses=_QIDO_JSON,
        tags=["dicomweb"],
    )


class QidoAllSeriesApi(DicomWebApi):
    """``GET series``: every visible series (PS3.18 10.6, all studies)."""

    @_qido_schema("dicomweb_all_series_search", _SERIES_PARAMS)
    def get(self, request: Request) -> HttpResponse:
        return _series_search(
            request, Series.objects.filter(study__in=studies_visible_to(user=request.user))
        )


class QidoSeriesApi(DicomWebApi):
    """``GET studies/{study}/series``."""

    @_qido_schema("dicomweb_series_search", _SERIES_PARAMS[1:])
    def get(self, request: Request, study_uid: str) -> HttpResponse:
        studies = _study_list(request.user, study_uid)
        return _series_search(request, Series.objects.filter(study__in=studies))


class QidoAllInstancesApi(DicomWebApi):
    """``GET instances``: every visible instance."""

    @_qido_schema("dicomweb_all_instances_search", _INSTANCE_PARAMS)
    def get(self, request: Request) -> HttpResponse:
        return _instance_search(
            request,
            Instance.objects.filter(series__study__in=studies_visible_to(user=request.user)),
        )


class QidoStudyInstancesApi(DicomWebApi):
    """``GET studies/{study}/instances``."""

    @_qido_schema("dicomweb_study_instances_search", _INSTANCE_PARAMS[1:])
    def get(self, request: Request, study_uid: str) -> HttpResponse:
        studies = _study_list(request.user, study_uid)
        return _instance_search(request, Instance.objects.filter(series__study__in=studies))


class QidoInstancesApi(DicomWebApi):
    """``GET studies/{study}/series/{series}/instances``."""

    @_qido_schema("dicomweb_instances_search", _INSTANCE_PARAMS[2:])
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponse:
        series = _series_get(request.user, study_uid, series_uid)
        return _instance_search(request, Instance.objects.filter(series=series))


def _files_of(instances: Iterable[Instance]) -> list[tuple[Instance, int]]:
    """One entry per stored file: a multi-frame file (one Instance row per frame) once,
    with its number of frames, where its first row comes in the given order."""
    seen: dict[str, int] = {}
    files: list[tuple[Instance, int]] = []
    for instance in instances:
        if instance.sop_instance_uid in seen:
            index = seen[instance.sop_instance_uid]
            files[index] = (files[index][0], files[index][1] + 1)
            continue
        seen[instance.sop_instance_uid] = len(files)
        files.append((instance, 1))
    return files


def _sop_class_of_file(instance: Instance) -> str:
    with instance.file.open("rb") as handle:
        ds = pydicom.dcmread(handle, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    return str(ds.get("SOPClassUID", MRImageStorage))


# --- WADO-RS ------------------------------------------------------------------------------

_WADO_BINARY = {
    (200, "multipart/related"): OpenApiResponse(OpenApiTypes.BINARY),
    401: ErrorSerializer,
    404: ErrorSerializer,
    406: ErrorSerializer,
}
_WADO_JSON = {
    (200, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT),
    401: ErrorSerializer,
    404: ErrorSerializer,
    406: ErrorSerializer,
}
_STACK_ORDER = ("series__study_id", "series__number", "series_id", "position", "id")


def _opened(request: Request, studies: Iterable[Study]) -> None:
    for study in studies:
        study_view_record(user=request.user, study=study, client_address=client_address(request))


class _WadoDicom(DicomWebApi):
    answers = "dicom"

    def _send(self, request: Request, instances: list[Instance]) -> HttpResponseBase:
        """The instances as ``multipart/related; type="application/dicom"``, streamed:
        one file in memory at a time."""
        redaction = redaction_for(user=request.user)
        syntax = self.transfer_syntax
        return _multipart(
            request,
            # A multi-frame file (one Instance row per frame) is sent once.
            (_instance_bytes(i, redaction, syntax) for i, _ in _files_of(instances)),
            "application/dicom"
            + (f"; transfer-syntax={syntax}" if syntax else "; transfer-syntax=*"),
        )


class WadoStudyApi(_WadoDicom):
    """``GET studies/{study}``: every instance of the study."""

    @extend_schema(
        operation_id="dicomweb_study_retrieve", responses=_WADO_BINARY, tags=["dicomweb"]
    )
    def get(self, request: Request, study_uid: str) -> HttpResponseBase:
        studies = _study_list(request.user, study_uid)
        _opened(request, studies)
        instances = Instance.objects.filter(series__study__in=studies)
        return self._send(
            request, list(instances.select_related("series__study").order_by(*_STACK_ORDER))
        )


class WadoStudyMetadataApi(DicomWebApi):
    @extend_schema(operation_id="dicomweb_study_metadata", responses=_WADO_JSON, tags=["dicomweb"])
    def get(self, request: Request, study_uid: str) -> HttpResponse:
        studies = _study_list(request.user, study_uid)
        redaction = redaction_for(user=request.user)
        _opened(request, studies)
        instances = (
            Instance.objects.filter(series__study__in=studies)
            .select_related("series__study")
            .order_by(*_STACK_ORDER)
        )
        return _json([_metadata(request, i, redaction) for i, _ in _files_of(instances)])


class WadoSeriesApi(_WadoDicom):
    @extend_schema(
        operation_id="dicomweb_series_retrieve", responses=_WADO_BINARY, tags=["dicomweb"]
    )
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponseBase:
        series = _series_get(request.user, study_uid, series_uid)
        _opened(request, [series.study])
        instances = Instance.objects.filter(series=series).select_related("series__study")
        return self._send(request, list(instances.order_by(*_STACK_ORDER)))


class WadoSeriesMetadataApi(DicomWebApi):
    @extend_schema(operation_id="dicomweb_series_metadata", responses=_WADO_JSON, tags=["dicomweb"])
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponse:
        series = _series_get(request.user, study_uid, series_uid)
        redaction = redaction_for(user=request.user)
        _opened(request, [series.study])
        instances = (
            Instance.objects.filter(series=series)
            .select_related("series__study")
            .order_by(*_STACK_ORDER)
        )
        return _json([_metadata(request, i, redaction) for i, _ in _files_of(instances)])


class WadoInstanceApi(_WadoDicom):
    @extend_schema(
        operation_id="dicomweb_instance_retrieve", responses=_WADO_BINARY, tags=["dicomweb"]
    )
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str
    ) -> HttpResponseBase:
        return self._send(request, [_instance_get(request.user, study_uid, series_uid, sop_uid)])


class WadoInstanceMetadataApi(DicomWebApi):
    @extend_schema(
        operation_id="dicomweb_instance_metadata", responses=_WADO_JSON, tags=["dicomweb"]
    )
    def get(self, request: Request, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
        instance = _instance_get(request.user, study_uid, series_uid, sop_uid)
        return _json([_metadata(request, instance, redaction_for(user=request.user))])


def frame_numbers(frames: str, *, limit: int) -> list[int]:
    """``"3,1,3"`` -> ``[3, 1]``: 1-based frame numbers, each once, in the order asked,
    at most ``limit`` of them (a longer list is a 400, not a larger answer)."""
    numbers: dict[int, None] = {}
    for piece in frames.split(","):
        if not piece.strip():
            continue
        try:
            numbers[int(piece)] = None
        except ValueError as exc:
            raise ValidationError({"frames": ["Comma-separated frame numbers."]}) from exc
        if len(numbers) > limit:
            raise ValidationError({"frames": [f"At most {limit} different frames per request."]})
    if not numbers:
        raise ValidationError({"frames": ["At least one frame number."]})
    return list(numbers)


def frame_bytes(data: bytes, numbers: list[int]) -> Iterator[bytes]:
    """The native (uncompressed, little endian) pixel bytes of each 1-based frame, one
    at a time. Raises Http404 (before yielding anything) for a frame the instance does
    not have."""
    ds = pydicom.dcmread(io.BytesIO(data))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if any(n < 1 or n > frames for n in numbers):
        raise Http404(f"The instance has {frames} frame(s).")
    return _frames_of(ds, frames, numbers)


def _frames_of(ds: pydicom.Dataset, frames: int, numbers: list[int]) -> Iterator[bytes]:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax in _NATIVE_LITTLE_ENDIAN and ds.BitsAllocated % 8 == 0:
        size = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated // 8
        pixels = memoryview(ds.PixelData)
        for n in numbers:
            yield bytes(pixels[(n - 1) * size : n * size])
        return
    array = ds.pixel_array
    if frames == 1:
        array = array[None]
    for n in numbers:
        yield array[n - 1].astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


class WadoFramesApi(DicomWebApi):
    """``.../frames/{list}``: each asked frame once (repeats are dropped), at most
    ``ONFH_WADO_MAX_FRAMES`` of them, streamed one frame at a time."""

    answers = "frames"

    @extend_schema(
        operation_id="dicomweb_frames_retrieve", responses=_WADO_BINARY, tags=["dicomweb"]
    )
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, frames: str
    ) -> HttpResponseBase:
        numbers = frame_numbers(frames, limit=settings.ONFH_WADO_MAX_FRAMES)
        instance = _instance_get(request.user, study_uid, series_uid, sop_uid)
        with instance.file.open("rb") as handle:
            data = handle.read()
        return _multipart(request, frame_bytes(data, numbers), "application/octet-stream")


class DicomWebNotFoundApi(DicomWebApi):
    """Any other path under ``/api/dicomweb/``: a JSON 404 a DICOMweb client can read,
    not Django's HTML page."""

    schema = None  # not in the OpenAPI document

    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        raise Http404("No such DICOMweb resource.")

    post = put = patch = delete = get


__all__ = [
    "DicomWebNotFoundApi",
    "QidoAllInstancesApi",
    "QidoAllSeriesApi",
    "QidoInstancesApi",
    "QidoSeriesApi",
    "QidoStudiesApi",
    "QidoStudyInstancesApi",
    "StowApi",
    "WadoFramesApi",
    "WadoInstanceApi",
    "WadoInstanceMetadataApi",
    "WadoSeriesApi",
    "WadoSeriesMetadataApi",
    "WadoStudyApi",
    "WadoStudyMetadataApi",
]
