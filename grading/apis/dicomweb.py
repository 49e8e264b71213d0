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
from collections.abc import Iterable
from datetime import date
from typing import Any

import pydicom
import pydicom.datadict
from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from pydicom.uid import MRImageStorage
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from grading.apis.common import ApiAuthMixin, ErrorSerializer, client_address
from grading.apis.instances import deidentified_dicom
from grading.apis.uploads import _upload_site
from grading.dicom.multipart import MultipartError, multipart_decode, multipart_encode
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
    """Answers DICOM JSON, or a multipart body built by the view; never 406 for a
    DICOMweb Accept header that DRF has no renderer for."""

    renderer_classes = [DicomJsonRenderer, JSONRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        return super().perform_content_negotiation(request, force=True)


def _json(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(JSONRenderer().render(data), status=status, content_type=DICOM_JSON)


def _multipart(bodies: Iterable[bytes], part_type: str) -> HttpResponse:
    body, content_type = multipart_encode(bodies, part_type=part_type)
    return HttpResponse(body, content_type=content_type)


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


def _wildcard(field: str, value: str) -> Q:
    """DICOM matching: ``*`` any run, ``?`` one character, else exact."""
    if "*" not in value and "?" not in value:
        return Q(**{field: value})
    pattern = (
        "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in value) + "$"
    )
    return Q(**{f"{field}__iregex": pattern})


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


def _instance_bytes(instance: Instance, redaction: Redaction) -> bytes:
    with instance.file.open("rb") as handle:
        if redaction.hides_patient_of(instance.series.study.site_id):
            return deidentified_dicom(handle, study_id=instance.series.study_id)
        return bytes(handle.read())


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


class QidoSeriesApi(DicomWebApi):
    @extend_schema(
        operation_id="dicomweb_series_search",
        parameters=[
            OpenApiParameter(n, str, required=False)
            for n in ("Modality", "SeriesInstanceUID", "SeriesNumber", "limit", "offset")
        ],
        responses={
            (200, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT),
            401: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["dicomweb"],
    )
    def get(self, request: Request, study_uid: str) -> HttpResponse:
        studies = list(_visible_studies(request.user, study_uid))
        if not studies:
            raise Http404("No such study.")
        params = _query(request)
        qs = Series.objects.filter(study__in=studies).annotate(instance_count=Count("instances"))
        if uids := _uids(params, "SeriesInstanceUID"):
            qs = qs.filter(series_instance_uid__in=uids)
        if value := params.get("Modality", "").strip():
            qs = qs.filter(modality__iexact=value)
        if value := params.get("SeriesNumber", "").strip():
            try:
                qs = qs.filter(number=int(value))
            except ValueError as exc:
                raise ValidationError({"SeriesNumber": ["An integer."]}) from exc
        offset = _int_param(params, "offset", 0, 10**9)
        limit = _int_param(params, "limit", 1000, 1000)
        answer = [
            _attributes(
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=s.series_instance_uid,
                Modality=s.modality,
                SeriesNumber=s.number,
                SeriesDescription=s.description,
                NumberOfSeriesRelatedInstances=s.instance_count,
                RetrieveURL=_series_url(request, study_uid, s.series_instance_uid),
            )
            for s in qs.order_by("number", "id")[offset : offset + limit]
        ]
        return _json(answer)


class QidoInstancesApi(DicomWebApi):
    @extend_schema(
        operation_id="dicomweb_instances_search",
        parameters=[
            OpenApiParameter(n, str, required=False)
            for n in ("SOPInstanceUID", "InstanceNumber", "limit", "offset")
        ],
        responses={
            (200, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT),
            401: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["dicomweb"],
    )
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponse:
        series = _series_get(request.user, study_uid, series_uid)
        params = _query(request)
        qs = Instance.objects.filter(series=series)
        if uids := _uids(params, "SOPInstanceUID"):
            qs = qs.filter(sop_instance_uid__in=uids)
        if value := params.get("InstanceNumber", "").strip():
            try:
                qs = qs.filter(instance_number=int(value))
            except ValueError as exc:
                raise ValidationError({"InstanceNumber": ["An integer."]}) from exc
        offset = _int_param(params, "offset", 0, 10**9)
        limit = _int_param(params, "limit", 5000, 5000)
        answer = [
            _attributes(
                StudyInstanceUID=study_uid,
                SeriesInstanceUID=series_uid,
                SOPClassUID=str(MRImageStorage),
                SOPInstanceUID=i.sop_instance_uid,
                InstanceNumber=i.instance_number,
                Rows=i.rows,
                Columns=i.columns,
                NumberOfFrames=1,
                RetrieveURL=_instance_url(request, study_uid, series_uid, i.sop_instance_uid),
            )
            for i in qs.order_by("position", "instance_number", "id")[offset : offset + limit]
        ]
        return _json(answer)


# --- WADO-RS ------------------------------------------------------------------------------

_WADO_BINARY = {
    (200, "multipart/related"): OpenApiResponse(OpenApiTypes.BINARY),
    401: ErrorSerializer,
    404: ErrorSerializer,
}


class WadoSeriesApi(DicomWebApi):
    @extend_schema(
        operation_id="dicomweb_series_retrieve", responses=_WADO_BINARY, tags=["dicomweb"]
    )
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponse:
        series = _series_get(request.user, study_uid, series_uid)
        redaction = redaction_for(user=request.user)
        study_view_record(
            user=request.user, study=series.study, client_address=client_address(request)
        )
        instances = Instance.objects.filter(series=series).select_related("series__study")
        return _multipart(
            (
                _instance_bytes(i, redaction)
                for i in instances.order_by("position", "instance_number", "id")
            ),
            "application/dicom",
        )


class WadoSeriesMetadataApi(DicomWebApi):
    @extend_schema(
        operation_id="dicomweb_series_metadata",
        responses={
            (200, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT),
            401: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["dicomweb"],
    )
    def get(self, request: Request, study_uid: str, series_uid: str) -> HttpResponse:
        series = _series_get(request.user, study_uid, series_uid)
        redaction = redaction_for(user=request.user)
        study_view_record(
            user=request.user, study=series.study, client_address=client_address(request)
        )
        instances = (
            Instance.objects.filter(series=series)
            .select_related("series__study")
            .order_by("position", "instance_number", "id")
        )
        return _json([_metadata(request, i, redaction) for i in instances])


class WadoInstanceApi(DicomWebApi):
    @extend_schema(
        operation_id="dicomweb_instance_retrieve", responses=_WADO_BINARY, tags=["dicomweb"]
    )
    def get(self, request: Request, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
        instance = _instance_get(request.user, study_uid, series_uid, sop_uid)
        redaction = redaction_for(user=request.user)
        return _multipart([_instance_bytes(instance, redaction)], "application/dicom")


class WadoInstanceMetadataApi(DicomWebApi):
    @extend_schema(
        operation_id="dicomweb_instance_metadata",
        responses={
            (200, DICOM_JSON): OpenApiResponse(OpenApiTypes.OBJECT),
            401: ErrorSerializer,
            404: ErrorSerializer,
        },
        tags=["dicomweb"],
    )
    def get(self, request: Request, study_uid: str, series_uid: str, sop_uid: str) -> HttpResponse:
        instance = _instance_get(request.user, study_uid, series_uid, sop_uid)
        return _json([_metadata(request, instance, redaction_for(user=request.user))])


def frame_bytes(data: bytes, numbers: list[int]) -> list[bytes]:
    """The native (uncompressed, little endian) pixel bytes of each 1-based frame.
    Raises Http404 for a frame the instance does not have."""
    ds = pydicom.dcmread(io.BytesIO(data))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if any(n < 1 or n > frames for n in numbers):
        raise Http404(f"The instance has {frames} frame(s).")
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if syntax in _NATIVE_LITTLE_ENDIAN and ds.BitsAllocated % 8 == 0:
        size = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated // 8
        pixels = ds.PixelData
        return [bytes(pixels[(n - 1) * size : n * size]) for n in numbers]
    array = ds.pixel_array
    if frames == 1:
        array = array[None]
    return [
        array[n - 1].astype(array.dtype.newbyteorder("<"), copy=False).tobytes() for n in numbers
    ]


class WadoFramesApi(DicomWebApi):
    @extend_schema(
        operation_id="dicomweb_frames_retrieve", responses=_WADO_BINARY, tags=["dicomweb"]
    )
    def get(
        self, request: Request, study_uid: str, series_uid: str, sop_uid: str, frames: str
    ) -> HttpResponse:
        try:
            numbers = [int(n) for n in frames.split(",") if n.strip()]
        except ValueError as exc:
            raise ValidationError({"frames": ["Comma-separated frame numbers."]}) from exc
        if not numbers:
            raise ValidationError({"frames": ["At least one frame number."]})
        instance = _instance_get(request.user, study_uid, series_uid, sop_uid)
        with instance.file.open("rb") as handle:
            data = handle.read()
        return _multipart(frame_bytes(data, numbers), "application/octet-stream")


__all__ = [
    "QidoInstancesApi",
    "QidoSeriesApi",
    "QidoStudiesApi",
    "StowApi",
    "WadoFramesApi",
    "WadoInstanceApi",
    "WadoInstanceMetadataApi",
    "WadoSeriesApi",
    "WadoSeriesMetadataApi",
]
