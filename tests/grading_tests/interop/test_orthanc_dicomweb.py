"""Orthanc's DICOMweb client against the portal (issue 15 item 4): Orthanc retrieves a
whole study and a series from the portal (``/dicom-web/servers/portal/retrieve``), and the
portal's DICOM SEG is stored into Orthanc by STOW-RS (``dicomweb-client``). Orthanc is a
real process; the portal is pytest-django's live server."""

from __future__ import annotations

import io
from unittest import mock

import pydicom
import pytest
from dicomweb_client import DICOMwebClient

from grading import tasks
from grading.models import Analysis, Series
from grading.services import analyses as analysis_services
from grading.services.exports import series_seg_export
from tests.grading_tests.interop.conftest import start_orthanc, write_series
from tests.grading_tests.interop.test_dicomweb import stored, web  # noqa: F401 - fixtures

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


@pytest.fixture
def orthanc_with_portal(web, tmp_path):  # noqa: F811
    server = start_orthanc(
        tmp_path / "orthanc",
        extra={
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "Servers": {
                    "portal": {
                        "Url": f"{web.url}/",
                        "HttpHeaders": {"Authorization": f"Token {web.tokens['clin']}"},
                    }
                },
            }
        },
    )
    try:
        yield server
    finally:
        server.server.stop()


def test_orthanc_retrieves_a_whole_study_and_a_series_from_the_portal(
    web,  # noqa: F811
    stored,  # noqa: F811
    mr_series,
    orthanc_with_portal,
    tmp_path,
) -> None:
    orthanc = orthanc_with_portal
    study_uid = mr_series.study_instance_uid
    answer = orthanc.post(
        "/dicom-web/servers/portal/retrieve", {"Resources": [{"Study": study_uid}]}
    )
    assert answer["ReceivedInstancesCount"] == str(len(mr_series.paths))
    got = orthanc.instances_of(study_uid)
    assert {i["MainDicomTags"]["SOPInstanceUID"] for i in got} == set(mr_series.sop_instance_uids)

    # A second series of the same study, stored in the portal, retrieved on its own.
    with mock.patch.object(tasks.study_ingest, "delay"):
        more = write_series(tmp_path / "more", seed=12, n_slices=3, patient_id="MRN-4711")
        datasets = []
        for path in more.paths:
            ds = pydicom.dcmread(path)
            ds.StudyInstanceUID = study_uid
            datasets.append(ds)
        web("clin").store_instances(datasets)
    orthanc.post(
        "/dicom-web/servers/portal/retrieve",
        {"Resources": [{"Study": study_uid, "Series": more.series_instance_uid}]},
    )
    got = orthanc.instances_of(study_uid)
    assert len(got) == len(mr_series.paths) + len(more.paths)


def test_the_portals_seg_is_stored_into_orthanc_by_stow(
    web,  # noqa: F811
    stored,  # noqa: F811
    mr_series,
    orthanc_with_portal,
) -> None:
    from django.contrib.auth import get_user_model

    series = Series.objects.get(series_instance_uid=mr_series.series_instance_uid)
    with mock.patch.object(analysis_services, "_send_compute"):
        tasks.study_ingest(study_id=series.study_id)
    analysis = Analysis.objects.get(series=series)
    assert analysis_services.analysis_run(analysis_id=analysis.pk)
    clin = get_user_model().objects.get(username="clin")
    export = series_seg_export(user=clin, series=series, client_address=None)
    seg = pydicom.dcmread(io.BytesIO(export.content))
    client = DICOMwebClient(url=f"{orthanc_with_portal.http}/dicom-web")
    answer = client.store_instances([seg])
    assert not answer.get("FailedSOPSequence")  # Orthanc sends it empty
    assert [r.ReferencedSOPInstanceUID for r in answer.ReferencedSOPSequence] == [
        export.sop_instance_uid
    ]
    [found] = client.search_for_instances(
        search_filters={"SOPInstanceUID": export.sop_instance_uid}
    )
    assert found["00080016"]["Value"] == [pydicom.uid.SegmentationStorage]
    back = client.retrieve_instance(
        mr_series.study_instance_uid, str(seg.SeriesInstanceUID), export.sop_instance_uid
    )
    assert back.SegmentSequence[1].SegmentLabel == seg.SegmentSequence[1].SegmentLabel
