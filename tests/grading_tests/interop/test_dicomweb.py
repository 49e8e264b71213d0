"""DICOMweb with the ``dicomweb-client`` package as a real client against the portal
served by pytest-django's live server (token authentication header)."""

from __future__ import annotations

from unittest import mock

import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from rest_framework.authtoken.models import Token

from grading import tasks
from grading.dicom.multipart import multipart_decode, multipart_encode
from grading.models import AuditEvent, Instance, Study
from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def web(live_server):
    north, south = SiteFactory(name="North", code="north"), SiteFactory(name="South", code="south")
    users = {}
    for name, site, role in (
        ("clin", north, "clinician"),
        ("stud", north, "student"),
        ("out", south, "clinician"),
    ):
        user = UserFactory(username=name)
        MembershipFactory(user=user, site=site, role=role)
        users[name] = Token.objects.create(user=user).key

    def client(name: str) -> DICOMwebClient:
        session = requests.Session()
        return DICOMwebClient(
            url=f"{live_server.url}/api/dicomweb",
            session=session,
            headers={"Authorization": f"Token {users[name]}"},
        )

    client.url = f"{live_server.url}/api/dicomweb"
    client.tokens = users
    client.north = north
    return client


@pytest.fixture
def stored(web, mr_series):
    """The phantom series stored by the clinician through STOW-RS."""
    datasets = [pydicom.dcmread(p) for p in mr_series.paths]
    with mock.patch.object(tasks.study_ingest, "delay") as send:
        answer = web("clin").store_instances(datasets)
    send.assert_called_once()
    return answer


def test_stow_stores_the_series_through_the_ingest(web, stored, mr_series) -> None:
    refs = stored.ReferencedSOPSequence
    assert {r.ReferencedSOPInstanceUID for r in refs} == set(mr_series.sop_instance_uids)
    assert all(r.ReferencedSOPClassUID == pydicom.uid.MRImageStorage for r in refs)
    assert all("/api/dicomweb/studies/" in r.RetrieveURL for r in refs)
    assert "FailedSOPSequence" not in stored
    study = Study.objects.get(study_instance_uid=mr_series.study_instance_uid)
    assert study.site_id == web.north.pk
    assert Instance.objects.filter(series__study=study).count() == len(mr_series.paths)
    event = AuditEvent.objects.get(action="study.upload")
    assert event.actor.username == "clin" and event.after["stored"] == len(mr_series.paths)


def test_qido_searches(web, stored, mr_series) -> None:
    client = web("clin")
    studies = client.search_for_studies()
    assert len(studies) == 1
    study = pydicom.Dataset.from_json(studies[0])
    assert study.StudyInstanceUID == mr_series.study_instance_uid
    assert study.PatientID == "MRN-4711" and study.StudyDate == "20240102"
    assert int(study.NumberOfStudyRelatedInstances) == len(mr_series.paths)
    assert study.ModalitiesInStudy == "MR"
    for filters, count in (
        ({"PatientID": "MRN-4711"}, 1),
        ({"PatientID": "MRN-*"}, 1),
        ({"PatientID": "other"}, 0),
        ({"StudyInstanceUID": mr_series.study_instance_uid}, 1),
        ({"StudyDate": "20240101-20240131"}, 1),
        ({"StudyDate": "20250101-"}, 0),
        ({"StudyDate": "-20231231"}, 0),
    ):
        assert len(client.search_for_studies(search_filters=filters)) == count, filters
    assert len(client.search_for_studies(offset=1)) == 0
    assert len(client.search_for_studies(limit=1)) == 1

    series = client.search_for_series(mr_series.study_instance_uid)
    assert [s["0020000E"]["Value"][0] for s in series] == [mr_series.series_instance_uid]
    instances = client.search_for_instances(
        mr_series.study_instance_uid, mr_series.series_instance_uid
    )
    assert {i["00080018"]["Value"][0] for i in instances} == set(mr_series.sop_instance_uids)
    two = client.search_for_instances(
        mr_series.study_instance_uid, mr_series.series_instance_uid, limit=2, offset=1
    )
    assert len(two) == 2


def test_wado_metadata_instances_and_frames_equal_the_files(web, stored, mr_series) -> None:
    client = web("clin")
    study_uid, series_uid = mr_series.study_instance_uid, mr_series.series_instance_uid
    metadata = client.retrieve_series_metadata(study_uid, series_uid)
    assert len(metadata) == len(mr_series.paths)
    by_uid = {m["00080018"]["Value"][0]: m for m in metadata}
    for path, uid in zip(mr_series.paths, mr_series.sop_instance_uids, strict=True):
        original = pydicom.dcmread(path)
        meta = pydicom.Dataset.from_json(by_uid[uid], bulk_data_uri_handler=lambda *a: b"")
        assert meta.PatientID == "MRN-4711" and meta.Rows == original.Rows
        assert by_uid[uid]["7FE00010"]["BulkDataURI"].endswith(f"/instances/{uid}/frames/1")

        retrieved = client.retrieve_instance(study_uid, series_uid, uid)
        assert retrieved == original
        assert retrieved.PixelData == original.PixelData

        frames = client.retrieve_instance_frames(study_uid, series_uid, uid, frame_numbers=[1])
        assert frames == [original.PixelData]
    assert AuditEvent.objects.filter(action="study.view").count() == 1


def test_a_foreign_site_user_sees_nothing(web, stored, mr_series) -> None:
    client = web("out")
    study_uid, series_uid = mr_series.study_instance_uid, mr_series.series_instance_uid
    assert client.search_for_studies() == []
    assert client.search_for_studies(search_filters={"StudyInstanceUID": study_uid}) == []
    for call in (
        lambda: client.search_for_series(study_uid),
        lambda: client.search_for_instances(study_uid, series_uid),
        lambda: client.retrieve_series_metadata(study_uid, series_uid),
        lambda: client.retrieve_instance(study_uid, series_uid, mr_series.sop_instance_uids[0]),
        lambda: client.retrieve_instance_frames(
            study_uid, series_uid, mr_series.sop_instance_uids[0], frame_numbers=[1]
        ),
    ):
        with pytest.raises(requests.HTTPError) as caught:
            call()
        assert caught.value.response.status_code == 404


def test_a_student_never_sees_patient_identifiers(web, stored, mr_series) -> None:
    client = web("stud")
    study_uid, series_uid = mr_series.study_instance_uid, mr_series.series_instance_uid
    [study] = client.search_for_studies()
    assert "Value" not in study["00100020"] and "Value" not in study["00100010"]
    # Searching by the patient does not reveal a match either: the filter is ignored.
    assert len(client.search_for_studies(search_filters={"PatientID": "nobody"})) == 1
    uid = mr_series.sop_instance_uids[0]
    meta = client.retrieve_instance_metadata(study_uid, series_uid, uid)
    assert "Value" not in meta.get("00100020", {}) and "Value" not in meta.get("00100010", {})
    ds = client.retrieve_instance(study_uid, series_uid, uid)
    assert ds.PatientID == "" and ds.PatientName == ""
    assert ds.PixelData == pydicom.dcmread(mr_series.paths[0]).PixelData
    # A student may not store.
    with pytest.raises(requests.HTTPError) as caught:
        client.store_instances([pydicom.dcmread(mr_series.paths[0])])
    assert caught.value.response.status_code == 403


def test_stow_reports_failed_parts_and_unauthenticated_is_refused(web, mr_series) -> None:
    good = mr_series.paths[0].read_bytes()
    body, content_type = multipart_encode(
        [good, b"not dicom at all"], part_type="application/dicom"
    )
    url = f"{web.url}/studies"
    with mock.patch.object(tasks.study_ingest, "delay"):
        answer = requests.post(
            url,
            data=body,
            headers={
                "Content-Type": content_type,
                "Accept": "application/dicom+json",
                "Authorization": f"Token {web.tokens['clin']}",
            },
            timeout=30,
        )
    assert answer.status_code == 202, answer.text
    result = pydicom.Dataset.from_json(answer.json())
    assert len(result.ReferencedSOPSequence) == 1
    [failed] = result.FailedSOPSequence
    assert failed.FailureReason == 0xC000
    assert requests.post(url, data=body, headers={"Content-Type": content_type}).status_code == 401
    assert requests.get(url, timeout=30).status_code == 401


def test_multipart_round_trip() -> None:
    bodies = [b"", b"\r\n--x\r\n", bytes(range(256)) * 10]
    body, content_type = multipart_encode(bodies, part_type="application/octet-stream")
    parts = multipart_decode(body, content_type)
    assert [p.body for p in parts] == bodies
    assert all(p.content_type == "application/octet-stream" for p in parts)
