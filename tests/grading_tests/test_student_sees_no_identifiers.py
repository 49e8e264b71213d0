"""A student never gets a patient identifier (issue 13 item 2).

Every page and endpoint of the portal (each URL pattern, with the ids of a real study of
the student's site, its series, instances, a teaching case and the student's attempt) is
opened as a student, and the bytes served are read: no patient name, ID, birth date,
accession number, referring physician, institution or exact study date. A DICOM answer is
read element by element without its pixel data (random pixel bytes can spell anything),
a PNG must be a bare image. And a student cannot find a study by its accession number or
its date.
"""

from __future__ import annotations

import io
import json
import re

import pydicom
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from PIL import Image

from grading.dicom.multipart import multipart_decode
from grading.explanations.services import patient_explanation_create
from grading.teaching import services as teaching
from tests.grading_tests.teaching.conftest import classroom, teaching_phantom  # noqa: F401

pytestmark = pytest.mark.django_db

# Every identifier of the source study (tests/grading_tests/teaching/conftest.py add_phi).
IDENTIFIERS = (
    r"DOE\W?JANE",
    r"\bJANE\b",
    r"MRN-4711",
    r"19500102",
    r"1950-01-02",
    r"20240102",
    r"2024-01-02",
    r"ST ELSEWHERE",
    r"HOUSE\W?GREGORY",
    r"SECRET-PRIVATE",
    r"\b1 MAIN STREET\b",
)

SKIPPED_PREFIXES = ("admin/", "^static/", "api/schema/", "api/docs/", "login/", "logout/")


def _patterns(resolver: URLResolver, prefix: str = ""):
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _body(answer) -> bytes:
    if getattr(answer, "streaming", False):
        return b"".join(answer.streaming_content)
    return answer.content


def _dicom_text(data: bytes) -> str:
    ds = pydicom.dcmread(io.BytesIO(data))
    if "PixelData" in ds:
        del ds.PixelData
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    return buffer.getvalue().decode("latin-1") + str(ds)


def _served_text(answer) -> str:
    """What a person could read in the answer: text as is, DICOM without pixel data,
    multipart parts one by one; a PNG must carry no text chunk."""
    content = _body(answer)
    kind = answer.get("Content-Type", "")
    media_type = kind.split(";")[0].strip()
    if content.startswith(b"\x89PNG"):
        image = Image.open(io.BytesIO(content))
        image.load()
        assert not image.info.keys() - {"dpi", "gamma"}, image.info
        return ""
    if kind.startswith("multipart/related"):
        parts = multipart_decode(content, kind)
        return "".join(
            _dicom_text(p.body) if p.content_type.split(";")[0] == "application/dicom" else ""
            for p in parts
        )
    if media_type == "application/dicom":
        return _dicom_text(content)
    if kind.startswith("application/pdf") or kind.startswith("application/octet-stream"):
        return content.decode("latin-1")
    return content.decode("utf-8", errors="replace")


def _assert_clean(url: str, text: str) -> None:
    for needle in IDENTIFIERS:
        found = re.search(needle, text.upper())
        assert found is None, f"{url} served {found.group(0)!r} to a student"


@pytest.fixture
def student_world(classroom):  # noqa: F811 - the teaching scenario's fixture
    """The classroom, with the student's own attempt and a clinician's patient
    explanation of the study (a student must not open it)."""
    alice = classroom.users["alice"]
    case = classroom.case
    attempt = teaching.attempt_submit(
        user=alice, case=case, grades={side: "mild" for side in case.sides}
    )
    explanation = patient_explanation_create(
        user=classroom.users["clinician"], study=classroom.study, client_address=None
    )
    instance = classroom.series.instances.order_by("position").first()
    ids = {
        "study_id": classroom.study.pk,
        "series_id": classroom.series.pk,
        "instance_id": instance.pk,
        "site_id": classroom.site.pk,
        "collection_id": classroom.collection.pk,
        "case_id": case.pk,
        "image_id": case.instances.order_by("index").first().pk,
        "attempt_id": attempt.pk,
        "explanation_id": explanation.pk,
        "link_id": 1,
        "request_id": 1,
        "token": "not-a-token",
        "study_uid": classroom.study.study_instance_uid,
        "series_uid": classroom.series.series_instance_uid,
        "sop_uid": instance.sop_instance_uid,
        "frames": "1",
    }
    return classroom, alice, ids


def _url(pattern: str, ids: dict[str, object]) -> str:
    def fill(match: re.Match[str]) -> str:
        # A parameter of a newer page (an API token's id...) gets an id of 1: the page
        # is still opened and its bytes read.
        return str(ids.get(match.group(1), 1))

    path = re.sub(r"<(?:\w+:)?(\w+)>", fill, pattern)
    return "/" + path


def test_every_page_and_endpoint_a_student_opens_is_free_of_identifiers(
    student_world, client
) -> None:
    room, alice, ids = student_world
    client.force_login(alice)
    opened = []
    for pattern in _patterns(get_resolver()):
        if pattern.startswith(SKIPPED_PREFIXES):
            continue
        url = _url(pattern, ids)
        answer = client.get(url, HTTP_ACCEPT="*/*")
        if answer.status_code == 406:
            answer = client.get(url)
        opened.append((url, answer.status_code))
        _assert_clean(url, _served_text(answer))
    served = {url for url, status in opened if status == 200}
    # The pages that matter most were really served, not refused.
    for must in (
        f"/studies/{ids['study_id']}/",
        f"/api/studies/{ids['study_id']}/",
        "/api/studies/",
        f"/api/studies/{ids['study_id']}/audit/",
        f"/api/instances/{ids['instance_id']}/dicom/",
        "/api/dicomweb/studies",
        f"/api/dicomweb/studies/{ids['study_uid']}/series",
        f"/api/dicomweb/studies/{ids['study_uid']}/series/{ids['series_uid']}",
        f"/api/dicomweb/studies/{ids['study_uid']}/series/{ids['series_uid']}/metadata",
        f"/api/teaching/cases/{ids['case_id']}/",
        f"/teaching/cases/{ids['case_id']}/",
    ):
        assert must in served, (must, [o for o in opened if o[0] == must])


def test_the_dicom_served_to_a_student_follows_the_basic_profile(student_world, client) -> None:
    room, alice, ids = student_world
    client.force_login(alice)
    answer = client.get(f"/api/instances/{ids['instance_id']}/dicom/")
    ds = pydicom.dcmread(io.BytesIO(_body(answer)))
    assert ds.PatientIdentityRemoved == "YES"
    assert "113100" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert ds.AccessionNumber == "" and str(ds.ReferringPhysicianName) == ""
    assert "InstitutionName" not in ds
    assert ds.StudyDate and ds.StudyDate != "20240102"  # shifted, not exact
    # The viewer matches slices by UID: kept (the profile's Retain UIDs option).
    assert ds.SOPInstanceUID == ids["sop_uid"]
    # A clinician still gets the stored file.
    client.force_login(room.users["clinician"])
    full = pydicom.dcmread(
        io.BytesIO(_body(client.get(f"/api/instances/{ids['instance_id']}/dicom/")))
    )
    assert full.AccessionNumber == "ACC-MRN-4711" and full.StudyDate == "20240102"


@pytest.mark.parametrize(
    "query",
    ["/api/studies/?search={}", "/api/dicomweb/studies?AccessionNumber={}"],
)
def test_a_student_cannot_search_by_accession_number(student_world, client, query) -> None:
    """The answer to a search by the true accession number is the answer to a search by
    a wrong one: it tells a student nothing (a clinician finds the study by it)."""
    room, alice, _ = student_world
    client.force_login(room.users["clinician"])
    assert _found(client.get(query.format("ACC-MRN-4711"))) == 1
    assert _found(client.get(query.format("ACC-WRONG"))) == 0
    client.force_login(alice)
    right = _found(client.get(query.format("ACC-MRN-4711")))
    assert right == _found(client.get(query.format("ACC-WRONG")))


@pytest.mark.parametrize(
    "query",
    [
        "/api/studies/?date_from=2024-01-03",
        "/api/studies/?date_to=2024-01-01",
        "/api/dicomweb/studies?StudyDate=19000101",
    ],
)
def test_a_students_date_filter_reveals_nothing(student_world, client, query) -> None:
    """A date filter that excludes the study excludes it for a clinician; for a student
    it is ignored (else bisecting the date would reveal it)."""
    room, alice, _ = student_world
    client.force_login(room.users["clinician"])
    assert _found(client.get(query)) == 0
    client.force_login(alice)
    assert _found(client.get(query)) == 1


def _found(answer) -> int:
    assert answer.status_code == 200, answer.content[:300]
    data = json.loads(_body(answer))
    return data["count"] if isinstance(data, dict) else len(data)
