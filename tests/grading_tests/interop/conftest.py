"""Fixtures for the DICOM networking tests: a phantom series (graded by the shipped
network where a test runs the analysis), sites, users and tokens."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pydicom
import pydicom.uid
import pytest


class Series(NamedTuple):
    paths: list[Path]
    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uids: list[str]
    truth: dict


def write_series(
    out_dir: Path,
    *,
    seed: int = 11,
    n_slices: int = 6,
    matrix: tuple[int, int] = (256, 256),
    patient_name: str = "DOE^JANE",
    patient_id: str = "MRN-4711",
    study_date: str = "20240102",
) -> Series:
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series

    phantom = make_bilateral_series(
        seed, n_slices=n_slices, matrix=matrix, necrosis={"right": "moderate", "left": "none"}
    )
    encoded = (np.floor(phantom.images / 2.0) * 2.0 + (phantom.labels > 0)).astype(np.float32)
    study_uid, series_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    paths = write_mr_series(
        encoded,
        out_dir,
        pixel_spacing_mm=phantom.pixel_spacing_mm,
        slice_thickness_mm=phantom.slice_thickness_mm,
        spacing_between_slices_mm=phantom.spacing_between_slices_mm,
        image_orientation=phantom.image_orientation,
        first_position=phantom.first_position,
        patient_name=patient_name,
        patient_id=patient_id,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        study_date=study_date,
    )
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths]
    return Series(paths, study_uid, series_uid, uids, phantom.truth)


@pytest.fixture(scope="session")
def mr_series(tmp_path_factory: pytest.TempPathFactory) -> Series:
    return write_series(tmp_path_factory.mktemp("interop-series"))


# --- Orthanc, a real PACS: started by the tests (a missing Orthanc fails, never skips) ----

import json  # noqa: E402
import urllib.request  # noqa: E402


class OrthancPeer(NamedTuple):
    server: object  # grading.interop.management.commands.bench_interop.Orthanc
    http: str  # http://127.0.0.1:<port>
    dicom_port: int

    def upload(self, paths: list[Path]) -> None:
        for path in paths:
            request = urllib.request.Request(
                f"{self.http}/instances", data=path.read_bytes(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=60) as answer:
                assert answer.status == 200

    def get(self, path: str) -> object:
        with urllib.request.urlopen(f"{self.http}{path}", timeout=60) as answer:
            return json.loads(answer.read())

    def post(self, path: str, body: object) -> object:
        request = urllib.request.Request(
            f"{self.http}{path}", data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=300) as answer:
            return json.loads(answer.read() or b"null")

    def instances_of(self, study_uid: str) -> list[dict]:
        return self.post(
            "/tools/find",
            {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}, "Expand": True},
        )


def start_orthanc(folder: Path, *, scp_port: int | None = None, extra: dict | None = None):
    """Debian's Orthanc with a generated configuration on free loopback ports and a
    temporary storage folder. ``scp_port``: the portal's receiver, known to Orthanc as
    the modality ``ONFH`` (the C-MOVE destination, and the only peer that may store)."""
    from grading.interop.management.commands.bench_interop import DICOMWEB_PLUGIN, Orthanc

    server = Orthanc(folder)
    if not server.available or not DICOMWEB_PLUGIN.exists():
        pytest.fail("Orthanc is not installed: apt-get install -y orthanc orthanc-dicomweb")
    config: dict = {
        "DicomAlwaysAllowStore": False,
        "DicomCheckModalityHost": True,
        "DicomModalities": {},
        **(extra or {}),
    }
    if scp_port is not None:
        config["DicomModalities"]["onfh"] = ["ONFH", "127.0.0.1", scp_port]
    server.start(config)
    return OrthancPeer(server, f"http://127.0.0.1:{server.http_port}", server.dicom_port)


@pytest.fixture
def receiver_and_orthanc(db, tmp_path: Path):
    """The portal's receiver (AE ONFH, in this process, loopback) and an Orthanc that
    knows it."""
    from grading.interop.scp import StorageSCP

    scp = StorageSCP(ae_title="ONFH", host="127.0.0.1", port=0)
    scp.start()
    orthanc = None
    try:
        orthanc = start_orthanc(tmp_path / "orthanc", scp_port=scp.port)
        yield scp, orthanc
    finally:
        if orthanc is not None:
            orthanc.server.stop()
        scp.stop()


@pytest.fixture
def people(db):
    """Sites North and South; North's site admin, clinician and student, South's admin."""
    from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

    north, south = SiteFactory(name="North", code="north"), SiteFactory(name="South", code="south")
    users = {}
    for name, site, role in (
        ("admin", north, "site_admin"),
        ("clin", north, "clinician"),
        ("stud", north, "student"),
        ("out", south, "site_admin"),
    ):
        users[name] = UserFactory(username=name)
        MembershipFactory(user=users[name], site=site, role=role)
    return north, users
