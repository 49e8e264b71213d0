"""S3 storage for real (issue 15 item 5): moto's stand-alone server as the peer. A missing
bucket or wrong credentials stop the portal at start-up with a sentence that says which;
an upload lands in the bucket and is served back from it.

(``ONFH_STORAGE=s3 pytest ...`` runs the upload, analysis, label map, export and DICOMweb
tests on S3 too: ``make test`` does, see the Makefile's ``test-s3``.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from rest_framework.test import APIClient

from grading.services.storage import StorageMisconfigured, storage_verify
from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory
from tests.s3_server import start_moto_s3

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = start_moto_s3(tmp_path_factory.mktemp("moto") / "moto.log", bucket="onfh-s3-test")
    try:
        yield server
    finally:
        server.stop()


def _check(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k not in ("DATABASE_URL", "ONFH_STORAGE")
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**base, "ONFH_VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_start_up_says_when_the_bucket_or_the_credentials_are_wrong(s3, tmp_path) -> None:
    assert _check(s3.environment(), tmp_path).returncode == 0
    missing = _check(s3.environment(AWS_STORAGE_BUCKET_NAME="no-such-bucket"), tmp_path)
    assert missing.returncode != 0
    assert "the bucket 'no-such-bucket' does not exist" in missing.stderr
    wrong = _check(s3.environment(AWS_SECRET_ACCESS_KEY="wrong"), tmp_path)
    assert wrong.returncode != 0
    assert "refused the credentials" in wrong.stderr and "AWS_SECRET_ACCESS_KEY" in wrong.stderr
    unnamed = _check(s3.environment(AWS_STORAGE_BUCKET_NAME=""), tmp_path)
    assert unnamed.returncode != 0 and "needs AWS_STORAGE_BUCKET_NAME" in unnamed.stderr


def test_the_asgi_application_refuses_to_load_without_its_bucket(s3, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "DATABASE_URL"}
    env.update(s3.environment(AWS_STORAGE_BUCKET_NAME="no-such-bucket"), ONFH_VAR_DIR=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-c", "import onfh_site.asgi"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0 and "StorageMisconfigured" in done.stderr
    assert "does not exist" in done.stderr


@pytest.mark.django_db
def test_an_upload_lands_in_the_bucket_and_is_served_from_it(s3, settings, mr_files) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3.storage_options()},
    }
    storage_verify()
    site = SiteFactory()
    user = UserFactory()
    MembershipFactory(user=user, site=site, role="clinician")
    client = APIClient()
    client.force_authenticate(user)
    with pytest.MonkeyPatch.context() as patch:
        from grading import tasks

        patch.setattr(tasks.study_ingest, "delay", lambda **kwargs: None)
        handles = [open(p, "rb") for p in mr_files.paths]  # noqa: SIM115
        try:
            answer = client.post("/api/uploads/", {"files": handles}, format="multipart")
        finally:
            for handle in handles:
                handle.close()
    assert answer.status_code == 201, answer.content
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=s3.bucket).get("Contents", [])]
    assert len([k for k in keys if k.startswith("dicom/")]) == len(mr_files.paths)
    from grading.models import Instance

    instance = Instance.objects.first()
    served = client.get(f"/api/instances/{instance.pk}/dicom/")
    assert served.status_code == 200
    body = b"".join(served.streaming_content) if served.streaming else served.content
    ds = pydicom.dcmread(__import__("io").BytesIO(body))
    assert ds.SOPInstanceUID == instance.sop_instance_uid


def test_a_key_that_is_not_ours_is_refused_by_the_server(s3, settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {**s3.storage_options(), "secret_key": "wrong"},
        },
    }
    with pytest.raises(StorageMisconfigured, match="refused the credentials"):
        storage_verify()


@pytest.fixture(scope="module")
def mr_files(tmp_path_factory):
    from tests.conftest import write_phantom_series

    return write_phantom_series(tmp_path_factory.mktemp("s3-series"), n_slices=3)
