"""Test-wide overrides: the only settings that differ from the embedded mode.

Files go to a temporary folder, Celery messages to kombu's in-memory transport (a test
that wants a task runs it directly; the real broker is tested in test_embedded_mode and
test_production_mode), and the segmenter is not preloaded.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from django.conf import settings

_MEDIA = Path(tempfile.mkdtemp(prefix="onfh-test-media-"))

settings.MEDIA_ROOT = _MEDIA
settings.STORAGES = {
    **settings.STORAGES,
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(_MEDIA), "base_url": "/media/"},
    },
}
if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not SQLite's shared-cache memory DB: threads then wait for the write lock
    # (busy timeout) as the web and worker processes do, instead of failing at once.
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        _MEDIA.parent / f"{_MEDIA.name}.sqlite3"
    )
settings.CELERY_BROKER_URL = "memory://"
settings.CELERY_BROKER_TRANSPORT_OPTIONS = {}
settings.ONFH_PRELOAD_SEGMENTER = False
settings.ONFH_SWEEP_EVERY_S = 0
settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

from onfh_site.celery import app as _celery_app  # noqa: E402

_celery_app.conf.broker_url = "memory://"
_celery_app.conf.broker_transport_options = {}


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_MEDIA, ignore_errors=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{_MEDIA}.sqlite3{suffix}").unlink(missing_ok=True)


@pytest.fixture
def media_root() -> Path:
    return _MEDIA


# --- scenario fixtures shared by the portal tests ----------------------------------------

from typing import NamedTuple  # noqa: E402


class PhantomFiles(NamedTuple):
    """A small bilateral phantom series written as DICOM files."""

    paths: list[Path]
    study_instance_uid: str
    series_instance_uid: str
    truth: dict
    labels: object  # (N, H, W) uint8 ground-truth label maps, slice k = paths[k]


def write_phantom_series(
    out_dir: Path, *, seed: int = 1, n_slices: int = 6, matrix: tuple[int, int] = (256, 256),
    study_uid: str | None = None, series_uid: str | None = None, series_number: int = 1,
    patient_id: str = "PHANTOM", necrosis: dict | None = None,
    image_orientation: tuple | None = None,
) -> PhantomFiles:
    import pydicom.uid

    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series

    phantom = make_bilateral_series(seed, n_slices=n_slices, matrix=matrix, necrosis=necrosis)
    study_uid = study_uid or pydicom.uid.generate_uid()
    series_uid = series_uid or pydicom.uid.generate_uid()
    paths = write_mr_series(
        phantom.images, out_dir,
        pixel_spacing_mm=phantom.pixel_spacing_mm,
        slice_thickness_mm=phantom.slice_thickness_mm,
        spacing_between_slices_mm=phantom.spacing_between_slices_mm,
        image_orientation=image_orientation or phantom.image_orientation,
        first_position=phantom.first_position,
        patient_id=patient_id,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        series_number=series_number,
        study_date="20240102",
    )
    return PhantomFiles(paths, study_uid, series_uid, phantom.truth, phantom.labels)


@pytest.fixture(scope="session")
def phantom_files(tmp_path_factory: pytest.TempPathFactory) -> PhantomFiles:
    return write_phantom_series(
        tmp_path_factory.mktemp("phantom"), seed=3, n_slices=6,
        necrosis={"right": "moderate", "left": "none"},
    )


class Scenario(NamedTuple):
    site: object
    other_site: object
    clinician: object
    student: object
    outsider: object


@pytest.fixture
def scenario(db: None) -> Scenario:
    from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

    site, other = SiteFactory(name="North"), SiteFactory(name="South")
    clinician = UserFactory(username="clin")
    student = UserFactory(username="stud")
    outsider = UserFactory(username="out")
    MembershipFactory(user=clinician, site=site, role="clinician")
    MembershipFactory(user=student, site=site, role="student")
    MembershipFactory(user=outsider, site=other, role="clinician")
    return Scenario(site, other, clinician, student, outsider)
