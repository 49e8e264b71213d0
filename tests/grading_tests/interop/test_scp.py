"""The C-STORE receiver with dcmtk's ``echoscu`` and ``storescu`` as real clients
against ``StorageSCP`` listening on a free loopback port in this process."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from unittest import mock

import pydicom
import pytest
from pydicom.uid import CTImageStorage

from grading import tasks
from grading.interop.models import RemoteAE
from grading.interop.scp import StorageSCP
from grading.models import Analysis, AuditEvent, HipResult, Instance, Series, Study
from grading.services import analyses as analysis_services
from tests.grading_tests.factories import SiteFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk is not installed"),
    pytest.mark.timeout(120),
]

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


@pytest.fixture
def receiver(db):
    site = SiteFactory(name="North", code="north")
    RemoteAE.objects.create(ae_title="SCANNER1", site=site, address="127.0.0.1")
    scp = StorageSCP(ae_title="ONFH", host="127.0.0.1", port=0)
    scp.start()
    try:
        yield scp, site
    finally:
        scp.stop()


def _dcmtk(tool: str, *args: str, port: int, aet: str = "SCANNER1") -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool, "-aet", aet, "-aec", "ONFH", "-to", "20", "127.0.0.1", str(port), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=DCMTK_ENV,
    )


def _wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_echoscu_gets_a_c_echo_answer(receiver) -> None:
    scp, _ = receiver
    done = _dcmtk("echoscu", port=scp.port)
    assert done.returncode == 0, done.stderr


def test_storescu_series_is_stored_grouped_audited_and_analysed_once(receiver, mr_series) -> None:
    scp, site = receiver
    with mock.patch.object(tasks.study_ingest, "delay") as send:
        done = _dcmtk("storescu", *map(str, mr_series.paths), port=scp.port)
        assert done.returncode == 0, done.stdout + done.stderr
        event = _wait_for(lambda: AuditEvent.objects.filter(action="study.receive").first())
        _wait_for(lambda: send.called)
    study = Study.objects.get(study_instance_uid=mr_series.study_instance_uid)
    assert study.site_id == site.pk and study.patient_id == "MRN-4711"
    assert study.created_by is None
    series = Series.objects.get(study=study)
    assert series.series_instance_uid == mr_series.series_instance_uid
    stored = {i.sop_instance_uid: i for i in Instance.objects.filter(series=series)}
    assert set(stored) == set(mr_series.sop_instance_uids)
    # The bytes are the sender's, byte for byte after the file meta.
    for path, uid in zip(mr_series.paths, mr_series.sop_instance_uids, strict=True):
        sent = pydicom.dcmread(path)
        with stored[uid].file.open("rb") as handle:
            kept = pydicom.dcmread(handle)
        assert kept.PixelData == sent.PixelData and kept.SOPInstanceUID == uid
    # One event for the association, from the system, with the calling AE and address.
    assert AuditEvent.objects.filter(action="study.receive").count() == 1
    assert event.actor is None and event.client_address == "127.0.0.1"
    assert event.after["calling_ae"] == "SCANNER1" and event.after["called_ae"] == "ONFH"
    assert event.after["stored"] == len(mr_series.paths) and event.after["created"] is True
    assert event.after["association"] == "released"
    # The analysis is sent once, at release, not once per instance.
    send.assert_called_once_with(study_id=study.pk)

    # What the worker would do: the scheduled task, then the analysis in-process.
    with mock.patch.object(analysis_services, "_send_compute"):
        tasks.study_ingest(study_id=study.pk)
    analysis = Analysis.objects.get(series=series)
    # The shipped network, as the worker runs it.
    assert analysis_services.analysis_run(analysis_id=analysis.pk)
    analysis.refresh_from_db()
    assert analysis.status == "done", analysis.error
    study.refresh_from_db()
    assert study.status == "done"
    grades = {h.side: h.ai_grade for h in HipResult.objects.filter(analysis=analysis)}
    # Both hips graded (the exact grades are the engine's business, tested there).
    assert set(grades) == {"right", "left"}
    assert set(grades.values()) <= {"none", "mild", "moderate", "severe"}

    # Sending the same series again stores nothing new and schedules nothing.
    with mock.patch.object(tasks.study_ingest, "delay") as again:
        done = _dcmtk("storescu", *map(str, mr_series.paths), port=scp.port)
        assert done.returncode == 0, done.stdout + done.stderr
        _wait_for(lambda: AuditEvent.objects.filter(action="study.receive").count() == 2)
    again.assert_not_called()
    assert Instance.objects.count() == len(mr_series.paths)
    second = AuditEvent.objects.filter(action="study.receive").order_by("-seq").first()
    assert second.after["duplicates"] == len(mr_series.paths) and second.after["stored"] == 0


def test_unknown_calling_ae_is_rejected(receiver, mr_series) -> None:
    scp, _ = receiver
    done = _dcmtk("storescu", str(mr_series.paths[0]), port=scp.port, aet="STRANGER")
    assert done.returncode != 0
    assert "Calling AE Title Not Recognized" in done.stdout + done.stderr
    assert not Instance.objects.exists()


def test_unknown_calling_ae_goes_to_the_default_site_when_configured(mr_series) -> None:
    site = SiteFactory(name="Default", code="default")
    scp = StorageSCP(ae_title="ONFH", host="127.0.0.1", port=0, default_site=site)
    scp.start()
    try:
        with mock.patch.object(tasks.study_ingest, "delay"):
            done = _dcmtk("storescu", str(mr_series.paths[0]), port=scp.port, aet="STRANGER")
            assert done.returncode == 0, done.stdout + done.stderr
            _wait_for(lambda: AuditEvent.objects.filter(action="study.receive").exists())
    finally:
        scp.stop()
    assert Instance.objects.get().series.study.site_id == site.pk


def test_a_remote_ae_bound_to_an_address_is_rejected_from_another(receiver, mr_series) -> None:
    scp, _ = receiver
    RemoteAE.objects.filter(ae_title="SCANNER1").update(address="10.9.8.7")
    done = _dcmtk("storescu", str(mr_series.paths[0]), port=scp.port)
    assert done.returncode != 0
    assert not Instance.objects.exists()


def test_non_mr_sop_class_is_refused(receiver, mr_series, tmp_path: Path) -> None:
    scp, _ = receiver
    ds = pydicom.dcmread(mr_series.paths[0])
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.Modality = "CT"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ct = tmp_path / "ct.dcm"
    ds.save_as(ct)
    done = _dcmtk("storescu", str(ct), port=scp.port)
    out = done.stdout + done.stderr
    assert "No presentation context" in out or "no acceptable presentation context" in out.lower()
    assert not Instance.objects.exists()


def test_an_enhanced_mr_is_stored_one_instance_per_frame(receiver, mr_series, tmp_path) -> None:
    from highdicom.legacy import LegacyConvertedEnhancedMRImage

    scp, _ = receiver
    legacy = [pydicom.dcmread(p) for p in mr_series.paths]
    enhanced = LegacyConvertedEnhancedMRImage(
        legacy_datasets=legacy,
        series_instance_uid=pydicom.uid.generate_uid(),
        series_number=9,
        sop_instance_uid=pydicom.uid.generate_uid(),
        instance_number=1,
    )
    path = tmp_path / "enhanced.dcm"
    enhanced.save_as(path, enforce_file_format=True)
    # -R: propose the file's own SOP class (storescu's default list lacks this one).
    done = _dcmtk("storescu", "-R", str(path), port=scp.port)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    rows = list(Instance.objects.order_by("frame_number"))
    assert [i.frame_number for i in rows] == list(range(1, len(legacy) + 1))
    assert {i.sop_instance_uid for i in rows} == {enhanced.SOPInstanceUID}
    assert len({i.file.name for i in rows}) == 1  # one stored file
    assert len({i.position for i in rows}) == len(legacy)  # each frame's own position


def test_dicom_scp_command_refuses_a_bad_ae_title_or_an_unknown_default_site() -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="1 to 16 characters"):
        call_command("dicom_scp", "--ae-title", "A_TITLE_OF_17_CHR", "--port", "0")
    with pytest.raises(CommandError, match="no site with code"):
        call_command("dicom_scp", "--default-site", "nowhere", "--port", "0")


def test_remote_ae_title_is_validated() -> None:
    from django.core.exceptions import ValidationError

    site = SiteFactory()
    for bad in ("", "A" * 17, "BACK\\SLASH"):
        with pytest.raises(ValidationError):
            RemoteAE(ae_title=bad, site=site).full_clean()
    RemoteAE(ae_title=" CT01 ", site=site, address="10.0.0.7").full_clean()
