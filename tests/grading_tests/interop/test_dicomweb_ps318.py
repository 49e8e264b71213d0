"""DICOMweb as PS3.18 asks (issue 15 item 4, issue 13 items 10 and 11): study-level
WADO-RS, QIDO-RS at every level, Accept negotiation, JSON errors, frames de-duplicated
and capped, wildcards as an escaped LIKE. ``dicomweb-client`` against the live server."""

from __future__ import annotations

import io

import pydicom
import pytest
import requests
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from grading.apis.dicomweb import (
    _wildcard,
    accept_check,
    as_transfer_syntax,
    frame_numbers,
    like_pattern,
)
from grading.models import AuditEvent, Study
from tests.grading_tests.factories import SiteFactory
from tests.grading_tests.interop.test_dicomweb import stored, web  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _get(web, path: str, who: str = "clin", accept: str | None = None) -> requests.Response:  # noqa: F811
    headers = {"Authorization": f"Token {web.tokens[who]}"}
    if accept is not None:
        headers["Accept"] = accept
    return requests.get(f"{web.url}/{path}", headers=headers, timeout=60)


def test_whole_study_retrieve_and_metadata(web, stored, mr_series) -> None:  # noqa: F811
    client = web("clin")
    study_uid = mr_series.study_instance_uid
    datasets = client.retrieve_study(study_uid)
    originals = {
        str(pydicom.dcmread(p).SOPInstanceUID): pydicom.dcmread(p) for p in mr_series.paths
    }
    assert {str(d.SOPInstanceUID) for d in datasets} == set(originals)
    for ds in datasets:
        assert ds.PixelData == originals[str(ds.SOPInstanceUID)].PixelData
    # transfer-syntax=* (as stored) works too, and so does the study's metadata.
    assert len(client.retrieve_study(study_uid, media_types=(("application/dicom", "*"),))) == 6
    metadata = client.retrieve_study_metadata(study_uid)
    assert {m["00080018"]["Value"][0] for m in metadata} == set(originals)
    assert AuditEvent.objects.filter(action="study.view").count() >= 1
    # Another site's user: 404, in JSON.
    for path in (f"studies/{study_uid}", f"studies/{study_uid}/metadata"):
        answer = _get(web, path, who="out")
        assert answer.status_code == 404 and "json" in answer.headers["Content-Type"]


def test_qido_series_and_instances_at_every_level(web, stored, mr_series) -> None:  # noqa: F811
    client = web("clin")
    study_uid, series_uid = mr_series.study_instance_uid, mr_series.series_instance_uid
    [series] = client.search_for_series()
    assert series["0020000E"]["Value"] == [series_uid]
    assert series["0020000D"]["Value"] == [study_uid]
    assert client.search_for_series(search_filters={"Modality": "CT"}) == []
    everything = client.search_for_instances()
    in_study = client.search_for_instances(study_uid)
    in_series = client.search_for_instances(study_uid, series_uid)
    uids = set(mr_series.sop_instance_uids)
    for answer in (everything, in_study, in_series):
        assert {i["00080018"]["Value"][0] for i in answer} == uids
    assert len(client.search_for_instances(search_filters={"SeriesInstanceUID": "1.2.3"})) == 0
    # Nothing of it for a user of another site.
    other = web("out")
    assert other.search_for_series() == [] and other.search_for_instances() == []


def test_accept_negotiation_and_json_errors(web, stored, mr_series) -> None:  # noqa: F811
    study_uid = mr_series.study_instance_uid
    dicom = 'multipart/related; type="application/dicom"'
    assert _get(web, f"studies/{study_uid}", accept=dicom).status_code == 200
    assert _get(web, f"studies/{study_uid}", accept="*/*").status_code == 200
    refused = _get(web, f"studies/{study_uid}", accept='multipart/related; type="image/jpeg"')
    assert refused.status_code == 406 and "detail" in refused.json()
    jpeg_ls = f"{dicom}; transfer-syntax=1.2.840.10008.1.2.4.80"
    assert _get(web, f"studies/{study_uid}", accept=jpeg_ls).status_code == 406
    assert _get(web, "studies", accept="application/dicom+xml").status_code == 406
    assert _get(web, "studies", accept="application/json").status_code == 200
    # An unknown resource is a JSON 404, not an HTML page (Orthanc gave up on one).
    missing = _get(web, f"studies/{study_uid}/rendered")
    assert missing.status_code == 404
    assert missing.headers["Content-Type"].startswith("application/")
    assert missing.json()["detail"]
    assert requests.get(f"{web.url}/nowhere", timeout=30).status_code == 401


def test_frames_are_deduplicated_capped_and_streamed(web, stored, mr_series, settings) -> None:  # noqa: F811
    study_uid, series_uid = mr_series.study_instance_uid, mr_series.series_instance_uid
    uid = mr_series.sop_instance_uids[0]
    path = f"studies/{study_uid}/series/{series_uid}/instances/{uid}/frames/"
    answer = _get(web, path + ",".join(["1"] * 5000))
    assert answer.status_code == 200
    assert answer.headers.get("Content-Length") is None  # streamed
    frames = web("clin").retrieve_instance_frames(
        study_uid, series_uid, uid, frame_numbers=[1, 1, 1]
    )
    assert frames == [pydicom.dcmread(mr_series.paths[0]).PixelData]  # once, not three times
    assert _get(web, path + "2").status_code == 404
    assert _get(web, path + "1,x").status_code == 400
    settings.ONFH_WADO_MAX_FRAMES = 3
    assert frame_numbers("1,2,2,3,1", limit=3) == [1, 2, 3]
    with pytest.raises(Exception, match="At most 3"):
        frame_numbers("1,2,3,4", limit=3)
    assert _get(web, path + "1,2,3,4").status_code == 400


def test_accept_check_unit() -> None:
    assert accept_check("", "dicom") == ExplicitVRLittleEndian
    assert (
        accept_check('multipart/related; type="application/dicom"; transfer-syntax=*', "dicom")
        is None
    )
    assert accept_check("application/dicom+json, */*;q=0.1", "json") is None
    assert accept_check('multipart/related; type="application/octet-stream"', "frames") is None
    with pytest.raises(Exception, match="answers"):
        accept_check("text/html", "json")


def test_a_file_is_sent_in_explicit_vr_little_endian_when_asked(mr_series) -> None:
    ds = pydicom.dcmread(mr_series.paths[0])
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True, implicit_vr=True, little_endian=True)
    implicit = buffer.getvalue()
    assert as_transfer_syntax(implicit, None) == implicit
    converted = pydicom.dcmread(io.BytesIO(as_transfer_syntax(implicit, ExplicitVRLittleEndian)))
    assert converted.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert converted.PixelData == ds.PixelData and converted.PatientID == ds.PatientID
    explicit = mr_series.paths[0].read_bytes()
    assert as_transfer_syntax(explicit, ExplicitVRLittleEndian) is explicit


def test_wildcards_are_an_escaped_like_not_a_regex(db) -> None:
    site = SiteFactory()
    for name, pid in (("DOE JANE", "50%_A1"), ("ROE RICHARD", "50XYA1"), ("A" * 60, "x")):
        Study.objects.create(
            site=site,
            study_instance_uid=f"1.2.{len(name)}.{pid[:2]}",
            patient_name=name,
            patient_id=pid,
        )
    pathological = "*a*a*a*a*a*a*a*a*b"
    with CaptureQueriesContext(connection) as queries:
        assert not Study.objects.filter(_wildcard("patient_name", pathological)).exists()
    [sql] = [q["sql"] for q in queries.captured_queries]
    assert " LIKE " in sql and "ESCAPE" in sql
    assert "REGEXP" not in sql.upper() and "~" not in sql
    assert like_pattern(pathological) == "%a%a%a%a%a%a%a%a%b"
    # % and _ in a value match only themselves; ? is one character; case is ignored.
    assert like_pattern("50%_?1") == "50\\%\\_" + "_1"
    match = Study.objects.filter(_wildcard("patient_id", "50%_?1"))
    assert [s.patient_id for s in match] == ["50%_A1"]
    assert Study.objects.filter(_wildcard("patient_name", "doe*")).count() == 1
    assert Study.objects.filter(_wildcard("patient_name", "?OE *")).count() == 2
