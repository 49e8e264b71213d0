"""``POST /api/uploads/`` with real DICOM files written by ``write_mr_series``."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from grading.models import AuditEvent, Instance, Study
from tests.grading_tests.apis.conftest import uploaded
from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def uploader():
    user = UserFactory(username="uploader")
    site = SiteFactory(name="Upload site")
    MembershipFactory(user=user, site=site, role="radiologist")
    client = APIClient()
    client.force_authenticate(user)
    return client, user, site


def not_dicom(name: str = "notes.txt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"this is not a DICOM file at all", "text/plain")


def test_good_files_accepted_bad_file_rejected_with_reason(uploader, phantom_dicom):
    client, user, site = uploader
    files = [*uploaded(phantom_dicom.paths), not_dicom()]
    answer = client.post(
        "/api/uploads/",
        {"files": files, "site": site.pk},
        format="multipart",
        REMOTE_ADDR="10.1.2.3",
    )
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert set(body) >= {"studies", "accepted", "rejected"}
    study = Study.objects.get(study_instance_uid=phantom_dicom.study_instance_uid)
    assert body["studies"] == [{"id": study.pk, "study_instance_uid": study.study_instance_uid}]
    assert body["accepted"] == len(phantom_dicom.paths)
    assert len(body["rejected"]) == 1
    assert body["rejected"][0]["name"] == "notes.txt"
    assert body["rejected"][0]["reason"]
    assert study.site == site
    assert Instance.objects.filter(series__study=study).count() == len(phantom_dicom.paths)
    event = AuditEvent.objects.get(study=study, action="study.upload")
    assert event.actor == user
    assert event.client_address == "10.1.2.3"


def test_reupload_is_no_error_and_no_duplicate(uploader, phantom_dicom):
    client, _, site = uploader
    first = client.post(
        "/api/uploads/",
        {"files": uploaded(phantom_dicom.paths), "site": site.pk},
        format="multipart",
    )
    assert first.status_code == 201
    count = Instance.objects.count()
    again = client.post(
        "/api/uploads/",
        {"files": uploaded(phantom_dicom.paths), "site": site.pk},
        format="multipart",
    )
    assert again.status_code == 201
    assert again.json()["accepted"] == len(phantom_dicom.paths)
    assert again.json()["duplicates"] == len(phantom_dicom.paths)
    assert again.json()["stored"] == 0
    assert again.json()["studies"] == first.json()["studies"]
    assert Instance.objects.count() == count
    assert Study.objects.count() == 1


def test_zip_archive(uploader, phantom_dicom):
    client, _, _ = uploader
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in phantom_dicom.paths:
            archive.write(path, f"study/{path.name}")
    answer = client.post(
        "/api/uploads/",
        {"files": [SimpleUploadedFile("study.zip", buffer.getvalue(), "application/zip")]},
        format="multipart",
    )
    assert answer.status_code == 201
    assert answer.json()["accepted"] == len(phantom_dicom.paths)


def test_nothing_accepted_is_400_with_the_same_body(uploader):
    client, _, _ = uploader
    answer = client.post(
        "/api/uploads/", {"files": [not_dicom("a.txt"), not_dicom("b.dcm")]}, format="multipart"
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["accepted"] == 0
    assert body["studies"] == []
    assert [r["name"] for r in body["rejected"]] == ["a.txt", "b.dcm"]
    assert all(r["reason"] for r in body["rejected"])


def test_no_files_400(uploader):
    client, _, _ = uploader
    answer = client.post("/api/uploads/", {}, format="multipart")
    assert answer.status_code == 400
    assert "files" in answer.json()


def test_site_may_be_omitted_with_one_site(uploader, phantom_dicom):
    client, _, site = uploader
    answer = client.post(
        "/api/uploads/", {"files": uploaded(phantom_dicom.paths[:1])}, format="multipart"
    )
    assert answer.status_code == 201
    assert Study.objects.get().site == site


def test_site_required_with_several_sites(uploader, phantom_dicom):
    client, user, _ = uploader
    MembershipFactory(user=user, site=SiteFactory(), role="clinician")
    answer = client.post(
        "/api/uploads/", {"files": uploaded(phantom_dicom.paths[:1])}, format="multipart"
    )
    assert answer.status_code == 400
    assert "site" in answer.json()
    assert Study.objects.count() == 0


def test_user_without_site_400(phantom_dicom):
    client = APIClient()
    client.force_authenticate(UserFactory())
    answer = client.post(
        "/api/uploads/", {"files": uploaded(phantom_dicom.paths[:1])}, format="multipart"
    )
    assert answer.status_code == 400


@pytest.mark.parametrize("site_kind", ["foreign", "missing", "not-a-number"])
def test_site_not_yours_is_400_and_says_nothing_about_it(uploader, phantom_dicom, site_kind):
    client, _, _ = uploader
    site = {
        "foreign": lambda: SiteFactory().pk,
        "missing": lambda: 999999,
        "not-a-number": lambda: "x",
    }[site_kind]()
    answer = client.post(
        "/api/uploads/",
        {"files": uploaded(phantom_dicom.paths[:1]), "site": site},
        format="multipart",
    )
    assert answer.status_code == 400
    assert Study.objects.count() == 0


def test_student_may_not_upload(phantom_dicom):
    user, site = UserFactory(), SiteFactory()
    MembershipFactory(user=user, site=site, role="student")
    client = APIClient()
    client.force_authenticate(user)
    answer = client.post(
        "/api/uploads/",
        {"files": uploaded(phantom_dicom.paths[:1]), "site": site.pk},
        format="multipart",
    )
    assert answer.status_code == 403
    assert Study.objects.count() == 0
    # Also when the student's only site is implied.
    answer = client.post(
        "/api/uploads/", {"files": uploaded(phantom_dicom.paths[:1])}, format="multipart"
    )
    assert answer.status_code == 403


def test_too_large_413_and_nothing_stored(uploader, phantom_dicom, settings):
    client, _, site = uploader
    settings.ONFH_MAX_UPLOAD_BYTES = 1000
    answer = client.post(
        "/api/uploads/",
        {"files": uploaded(phantom_dicom.paths), "site": site.pk},
        format="multipart",
    )
    assert answer.status_code == 413
    assert "limit" in answer.json()["detail"]
    assert Study.objects.count() == 0
    assert Instance.objects.count() == 0


def test_a_body_far_over_the_limit_is_refused_unread(uploader, settings):
    client, _, _ = uploader
    settings.ONFH_MAX_UPLOAD_BYTES = 10
    big = SimpleUploadedFile("big.dcm", b"\0" * (2 * 1024 * 1024), "application/dicom")
    answer = client.post("/api/uploads/", {"files": [big]}, format="multipart")
    assert answer.status_code == 413


@pytest.mark.parametrize(("trusted", "expected"), [(False, "10.0.0.9"), (True, "203.0.113.7")])
def test_client_address_from_x_forwarded_for_only_behind_a_trusted_proxy(
    uploader, phantom_dicom, settings, trusted, expected
):
    client, _, _ = uploader
    settings.ONFH_TRUST_X_FORWARDED_FOR = trusted
    client.post(
        "/api/uploads/",
        {"files": uploaded(phantom_dicom.paths[:1])},
        format="multipart",
        REMOTE_ADDR="10.0.0.9",
        HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.7",
    )
    assert AuditEvent.objects.get(action="study.upload").client_address == expected


def test_anonymous_upload_401(phantom_dicom):
    answer = APIClient().post(
        "/api/uploads/", {"files": uploaded(phantom_dicom.paths[:1])}, format="multipart"
    )
    assert answer.status_code == 401
    assert Study.objects.count() == 0
