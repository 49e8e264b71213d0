"""C-GET from the receiver with dcmtk's ``getscu`` as the real peer: a workstation AE with
``may_retrieve`` gets its own site's studies and series (audited ``study.get``); a study of
another site, a sender without ``may_retrieve`` and an unknown AE get nothing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from unittest import mock

import pydicom
import pydicom.uid
import pytest

from grading import tasks
from grading.interop.models import RemoteAE
from grading.interop.scp import StorageSCP
from grading.models import AuditEvent, Instance
from grading.services import audit_verify
from tests.grading_tests.factories import SiteFactory
from tests.grading_tests.interop.conftest import Series, write_series

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]

DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def _dcmtk(tool: str, *args: str, port: int, aet: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool, "-v", "-aet", aet, "-aec", "ONFH", "-to", "20", "127.0.0.1", str(port), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=DCMTK_ENV,
    )


def _second_series(series: Series, out_dir: Path) -> Series:
    """Another series of the same study (new series and instance UIDs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    series_uid = str(pydicom.uid.generate_uid())
    paths, uids = [], []
    for path in series.paths:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = 2
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
        target = out_dir / path.name
        ds.save_as(target, enforce_file_format=True)
        paths.append(target)
        uids.append(str(ds.SOPInstanceUID))
    return Series(paths, series.study_instance_uid, series_uid, uids, series.truth)


@pytest.fixture
def stored(db, tmp_path: Path, mr_series):
    """The receiver; North holds a study of two series (sent by SCANNER1), South one
    study (sent by SCANNER2). VIEWER1 (North) may retrieve; SCANNER1 may only send."""
    north, south = SiteFactory(name="North", code="north"), SiteFactory(name="South", code="south")
    RemoteAE.objects.create(ae_title="SCANNER1", site=north, address="127.0.0.1")
    RemoteAE.objects.create(ae_title="SCANNER2", site=south, address="127.0.0.1")
    RemoteAE.objects.create(ae_title="VIEWER1", site=north, address="127.0.0.1", may_retrieve=True)
    RemoteAE.objects.create(
        ae_title="VIEWER9", site=north, address="192.0.2.9", may_retrieve=True
    )  # a workstation elsewhere: this peer's address is not its own
    second = _second_series(mr_series, tmp_path / "second")
    southern = write_series(tmp_path / "south", seed=12, n_slices=3, patient_id="MRN-SOUTH")
    scp = StorageSCP(ae_title="ONFH", host="127.0.0.1", port=0)
    scp.start()
    try:
        with mock.patch.object(tasks.study_ingest, "delay"):
            for aet, series in (
                ("SCANNER1", mr_series),
                ("SCANNER1", second),
                ("SCANNER2", southern),
            ):
                done = _dcmtk("storescu", *map(str, series.paths), port=scp.port, aet=aet)
                assert done.returncode == 0, done.stdout + done.stderr
        yield scp, mr_series, second, southern
    finally:
        scp.stop()


def _got(folder: Path) -> dict[str, pydicom.Dataset]:
    return {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, folder.iterdir())}


def _gets() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="study.get").order_by("seq"))


def test_getscu_gets_a_study_and_a_series_of_its_site(stored, tmp_path: Path) -> None:
    scp, first, second, _ = stored
    study_dir, series_dir = tmp_path / "got-study", tmp_path / "got-series"
    study_dir.mkdir(), series_dir.mkdir()
    done = _dcmtk(
        "getscu",
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={first.study_instance_uid}",
        "-od",
        str(study_dir),
        port=scp.port,
        aet="VIEWER1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    got = _got(study_dir)
    assert set(got) == set(first.sop_instance_uids) | set(second.sop_instance_uids)
    # The stored bytes, as the scanner sent them.
    for path, uid in zip(first.paths, first.sop_instance_uids, strict=True):
        assert got[uid].PixelData == pydicom.dcmread(path).PixelData
        assert got[uid].PatientID == "MRN-4711"

    # Series level, Patient Root (getscu's default model).
    done = _dcmtk(
        "getscu",
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        "PatientID=MRN-4711",
        "-k",
        f"StudyInstanceUID={first.study_instance_uid}",
        "-k",
        f"SeriesInstanceUID={second.series_instance_uid}",
        "-od",
        str(series_dir),
        port=scp.port,
        aet="VIEWER1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert set(_got(series_dir)) == set(second.sop_instance_uids)

    study_id = Instance.objects.get(sop_instance_uid=first.sop_instance_uids[0]).series.study_id
    events = _gets()
    assert [(e.study_id, e.after["level"], e.after["instances"]) for e in events] == [
        (study_id, "STUDY", len(first.paths) * 2),
        (study_id, "SERIES", len(first.paths)),
    ]
    assert events[1].after["series"] == [second.series_instance_uid]
    assert all(
        e.actor is None and e.after["calling_ae"] == "VIEWER1" and e.client_address == "127.0.0.1"
        for e in events
    )
    assert audit_verify().ok


@pytest.mark.parametrize(
    ("aet", "why"),
    [
        ("VIEWER1", "a study of another site"),
        ("SCANNER1", "a sender without may_retrieve"),
        ("VIEWER9", "a retrieving AE from an address not its own"),
    ],
)
def test_getscu_gets_nothing_it_may_not_see(stored, tmp_path: Path, aet: str, why: str) -> None:
    scp, first, _, southern = stored
    target = southern if aet == "VIEWER1" else first
    out = tmp_path / "got"
    out.mkdir()
    done = _dcmtk(
        "getscu",
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={target.study_instance_uid}",
        "-od",
        str(out),
        port=scp.port,
        aet=aet,
    )
    assert list(out.iterdir()) == [], why
    assert _gets() == [], why
    if aet == "SCANNER1":
        assert "C-GET Response (Failed: UnableToProcess)" in done.stdout + done.stderr, done.stderr
        [refused] = AuditEvent.objects.filter(action="dicom.get_refused")
        assert refused.object_id == "SCANNER1" and refused.client_address == "127.0.0.1"


def test_an_unknown_ae_is_rejected_at_association(stored, tmp_path: Path) -> None:
    scp, first, _, _ = stored
    out = tmp_path / "got"
    out.mkdir()
    done = _dcmtk(
        "getscu",
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={first.study_instance_uid}",
        "-od",
        str(out),
        port=scp.port,
        aet="STRANGER",
    )
    assert done.returncode != 0 and list(out.iterdir()) == []
    assert _gets() == []


def test_a_get_without_the_level_uid_is_refused(stored, tmp_path: Path) -> None:
    scp, first, _, _ = stored
    out = tmp_path / "got"
    out.mkdir()
    done = _dcmtk(
        "getscu",
        "-S",
        "-k",
        "QueryRetrieveLevel=SERIES",
        "-k",
        f"StudyInstanceUID={first.study_instance_uid}",
        "-od",
        str(out),
        port=scp.port,
        aet="VIEWER1",
    )
    assert list(out.iterdir()) == [] and _gets() == []
    assert "C-GET Response (Error: DataSetDoesNotMatchSOPClass)" in done.stdout + done.stderr, (
        done.stderr
    )
