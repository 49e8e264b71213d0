"""Every UID that comes in is a DICOM UID (issue 13 item 19), and download names are
built by Django's Content-Disposition helper.

Input paths: a file's Study/Series/SOP Instance UID (upload, STOW-RS and C-STORE all
check files with ``dicom_file_check``), DICOMweb URL segments and QIDO queries, and the
UIDs in request bodies (grades, label maps, consult answers, explanations).
"""

from __future__ import annotations

import io

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from grading.dicom.uids import is_dicom_uid
from grading.models import Instance, Site
from grading.services.ingest import file_check, upload_ingest
from tests.grading_tests.apis.conftest import World

pytestmark = pytest.mark.django_db

BAD_UIDS = [
    "1.2.3.abc",  # letters
    "1.02.3",  # a leading zero
    "1.2.",  # an empty component
    "1." + "2" * 63,  # 65 characters
    '1.2"; drop',  # quote and spaces
]


@pytest.mark.parametrize(
    ("value", "valid"),
    [("1.2.840.10008.5.1.4.1.1.4", True), ("0.1", True), ("1.2\n", False), ("", False)]
    + [(bad, False) for bad in BAD_UIDS],
)
def test_the_dicom_uid_grammar(value, valid) -> None:
    assert is_dicom_uid(value) is valid


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
@pytest.mark.parametrize("keyword", ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"])
@pytest.mark.parametrize("bad", BAD_UIDS[:3])
def test_a_file_with_a_bad_uid_is_refused(scenario, phantom_files, keyword, bad) -> None:
    ds = pydicom.dcmread(phantom_files.paths[0])
    setattr(ds, keyword, bad)
    if keyword == "SOPInstanceUID":
        ds.file_meta.MediaStorageSOPInstanceUID = bad
    buffer = io.BytesIO()
    ds.save_as(buffer)
    report = upload_ingest(
        user=scenario.clinician,
        site=scenario.site,
        files=[SimpleUploadedFile("bad.dcm", buffer.getvalue())],
        client_address=None,
    )
    assert report.stored == 0 and not Instance.objects.exists()
    assert [r.reason for r in report.rejected] == [
        f"{keyword} is not a DICOM UID: digits and dots, at most 64 characters, no leading zeros"
    ]
    # The DICOM receiver and STOW-RS check each file the same way.
    from grading.dicom.reader import DicomReadError

    with pytest.raises(DicomReadError):
        file_check(name="bad.dcm", data=buffer.getvalue())


@pytest.mark.parametrize("bad", BAD_UIDS)
def test_dicomweb_refuses_bad_uids_in_urls_and_queries(world: World, bad) -> None:
    client = world.client("clinician")
    study, series = world.study.study_instance_uid, world.series.series_instance_uid
    sop = world.instances[0].sop_instance_uid
    from urllib.parse import quote

    q = quote(bad, safe="")
    for url in (
        f"/api/dicomweb/studies?StudyInstanceUID={q}",
        f"/api/dicomweb/studies/{study}/series?SeriesInstanceUID={q}",
        f"/api/dicomweb/studies/{study}/series/{series}/instances?SOPInstanceUID={q}",
        f"/api/dicomweb/studies/{q}/series",
        f"/api/dicomweb/studies/{study}/series/{q}/metadata",
        f"/api/dicomweb/studies/{study}/series/{series}/instances/{q}",
    ):
        answer = client.get(url)
        assert answer.status_code == 400, (url, answer.status_code)
    # The good ones still answer.
    assert (
        client.get(f"/api/dicomweb/studies/{study}/series/{series}/instances/{sop}").status_code
        == 200
    )


@pytest.mark.parametrize("bad", BAD_UIDS)
def test_request_bodies_refuse_bad_uids(world: World, bad) -> None:
    client = world.client("clinician")
    answer = client.post(
        f"/api/studies/{world.study.pk}/grades/",
        {"series_instance_uid": bad, "side": "right", "grade": "mild", "reason": "x"},
        format="json",
    )
    assert answer.status_code == 400 and "not a DICOM UID" in str(answer.json())
    answer = client.post(
        f"/api/series/{world.series.pk}/labelmaps/",
        {"reason": "x", "labelmaps": [{"sop_instance_uid": bad, "png_base64": "AAAA"}]},
        format="json",
    )
    assert answer.status_code == 400 and "not a DICOM UID" in str(answer.json())
    answer = client.post(
        "/api/explanations/",
        {"study_id": world.study.pk, "series_instance_uid": bad},
        format="json",
    )
    assert answer.status_code == 400 and "not a DICOM UID" in str(answer.json())


def test_download_names_are_quoted_by_djangos_helper(world: World) -> None:
    # A site code is a slug; one written past the form (a database edit) must still not
    # break the header.
    Site.objects.filter(pk=world.site.pk).update(code='north"; x=y')
    answer = world.client("clinician").get(f"/api/sites/{world.site.pk}/export/results.csv")
    assert answer.status_code == 200
    assert answer["Content-Disposition"] == 'attachment; filename="north\\"; x=y-results.csv"'
