"""Scenario fixtures for the REST API tests.

``world``: two sites; at the first a user of every role, at the second a clinician
(the "foreign" user); one real phantom study of the first site, uploaded through the
ingest service from DICOM files written by ``grading.dicom.writer.write_mr_series``,
with an analysis whose AI label maps are the phantom's ground truth and whose areas,
volumes, proportions and grades come from the engine's own ``measure_labelmap`` and
``summarise_series`` (the trained network is not needed to test the API).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pydicom
import pydicom.uid
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

ROLES = ("clinician", "radiologist", "teacher", "student", "site_admin")
PATIENT_NAME = "DOE^JANE"
PATIENT_ID = "MRN-4711-XYZ"
PATIENT_BIRTH_DATE = "19500102"
# Strings that must never appear in an answer to a student.
PATIENT_STRINGS = ("DOE", "JANE", "MRN-4711", "19500102", "1950-01-02")


class PhantomDicom(NamedTuple):
    paths: list[Path]
    study_instance_uid: str
    series_instance_uid: str
    labels: dict[str, np.ndarray]  # SOPInstanceUID -> (H, W) uint8 ground truth
    shape: tuple[int, int]


def write_phantom_dicom(
    out_dir: Path, *, seed: int = 7, n_slices: int = 4, matrix: tuple[int, int] = (256, 256)
) -> PhantomDicom:
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series

    phantom = make_bilateral_series(
        seed, n_slices=n_slices, matrix=matrix, necrosis={"right": "moderate", "left": "mild"}
    )
    study_uid, series_uid = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    paths = write_mr_series(
        phantom.images,
        out_dir,
        pixel_spacing_mm=phantom.pixel_spacing_mm,
        slice_thickness_mm=phantom.slice_thickness_mm,
        spacing_between_slices_mm=phantom.spacing_between_slices_mm,
        image_orientation=phantom.image_orientation,
        first_position=phantom.first_position,
        patient_name=PATIENT_NAME,
        patient_id=PATIENT_ID,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        study_date="20240102",
    )
    labels: dict[str, np.ndarray] = {}
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.PatientBirthDate = PATIENT_BIRTH_DATE  # the writer leaves it empty
        ds.save_as(path)
        labels[str(ds.SOPInstanceUID)] = phantom.labels[k].astype(np.uint8)
    return PhantomDicom(paths, study_uid, series_uid, labels, matrix)


@pytest.fixture(scope="session")
def phantom_dicom(tmp_path_factory: pytest.TempPathFactory) -> PhantomDicom:
    return write_phantom_dicom(tmp_path_factory.mktemp("api-phantom"))


def uploaded(paths: list[Path]) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(p.name, p.read_bytes(), "application/dicom") for p in paths]


def store_truth_analysis(*, series: Any, labels: dict[str, np.ndarray]) -> Any:
    """A done analysis of the series whose AI label maps are ``labels``: the rows
    ``analysis_store`` would write, measured by the engine's label-map functions."""
    from grading.engine.measure import measure_labelmap, summarise_series
    from grading.models import Analysis, HipResult, LabelMap, SliceResult
    from grading.services.analyses import labelmap_png
    from grading.services.engine import hip_slice_as_dict, instance_read, series_hip_as_dict
    from grading.services.studies import study_status_refresh

    now = timezone.now()
    instances = list(series.instances.order_by("position", "instance_number", "id"))
    analysis = Analysis.objects.create(
        series=series,
        status="done",
        model_version="truth-for-tests",
        started=now,
        finished=now,
        progress_done=len(instances),
        progress_total=len(instances),
        instance_count=len(instances),
    )
    per_slice = []
    for instance in instances:
        mr_slice = instance_read(instance)
        labelmap = labels[instance.sop_instance_uid]
        hips = measure_labelmap(labelmap, mr_slice)
        as_dicts = [hip_slice_as_dict(h) for h in hips]
        SliceResult.objects.create(
            analysis=analysis, instance=instance, hips=as_dicts, ai_hips=as_dicts
        )
        row = LabelMap(analysis=analysis, instance=instance, version=1, kind="ai")
        row.file.save("v1.png", ContentFile(labelmap_png(labelmap)), save=False)
        row.save()
        per_slice.append((mr_slice, hips))
    for hip in summarise_series(series.series_instance_uid, per_slice):
        h = series_hip_as_dict(hip)
        HipResult.objects.create(
            analysis=analysis,
            side=h["side"],
            ai_head_volume_mm3=h["head_volume_mm3"],
            ai_necrosis_volume_mm3=h["necrosis_volume_mm3"],
            ai_proportion=h["proportion"],
            ai_grade=h["grade"],
            ai_flags=h["flags"],
            head_volume_mm3=h["head_volume_mm3"],
            necrosis_volume_mm3=h["necrosis_volume_mm3"],
            proportion=h["proportion"],
            grade=h["grade"],
            flags=h["flags"],
            slice_count=h["slice_count"],
        )
    study_status_refresh(study_id=series.study_id, notify=False)
    return analysis


class World(NamedTuple):
    site: Any
    other_site: Any
    users: dict[str, Any]  # ROLES + "foreign"
    study: Any
    series: Any
    instances: list[Any]  # stack order
    phantom: PhantomDicom

    def client(self, who: str | None, *, auth: str = "token") -> APIClient:
        """An API client for a role ("foreign" for the other site's clinician, None for
        anonymous), authenticated by token or by session login."""
        client = APIClient()
        if who is None:
            return client
        user = self.users[who]
        if auth == "token":
            from grading.services.tokens import api_token_create

            _, key = api_token_create(user=user, name="test")
            client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        else:
            client.force_login(user)
        return client


@pytest.fixture
def world(db: None, phantom_dicom: PhantomDicom) -> World:
    from grading.services.ingest import upload_ingest

    site, other_site = SiteFactory(name="North General"), SiteFactory(name="South Clinic")
    users = {}
    for role in ROLES:
        users[role] = UserFactory(username=role)
        MembershipFactory(user=users[role], site=site, role=role)
    users["foreign"] = UserFactory(username="foreign")
    MembershipFactory(user=users["foreign"], site=other_site, role="clinician")

    report = upload_ingest(
        user=users["clinician"],
        site=site,
        files=uploaded(phantom_dicom.paths),
        client_address="127.0.0.1",
    )
    assert report.accepted == len(phantom_dicom.paths), report.rejected
    study = report.studies[0]
    series = study.series.get()
    store_truth_analysis(series=series, labels=phantom_dicom.labels)
    study.refresh_from_db()
    instances = list(series.instances.order_by("position", "instance_number", "id"))
    return World(site, other_site, users, study, series, instances, phantom_dicom)


def grade_body(world: World, **overrides: Any) -> dict[str, Any]:
    """The body of ``POST /api/studies/{id}/grades/`` for the world's right hip."""
    body = {
        "series_instance_uid": world.phantom.series_instance_uid,
        "side": "right",
        "grade": "severe",
        "reason": "collapse on the coronal images",
    }
    body.update(overrides)
    return body


def png_bytes(array: np.ndarray, mode: str = "L") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    if mode == "I;16":
        image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint16))
    else:
        image = Image.fromarray(np.ascontiguousarray(array)).convert(mode)
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def png_base64(array: np.ndarray, mode: str = "L") -> str:
    import base64

    if mode == "L":
        array = array.astype(np.uint8)
    return base64.b64encode(png_bytes(array, mode)).decode()


def png_array(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)))


def assert_no_patient_identifiers(content: bytes, *, dicom: bool = False) -> None:
    """No patient string in an answer. For a DICOM file every element but the pixel
    data is checked (random pixel bytes can spell anything)."""
    if dicom:
        ds = pydicom.dcmread(io.BytesIO(content))
        del ds.PixelData
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=False)
        content = buffer.getvalue() + str(ds).encode()
    text = content.decode("latin-1").upper()
    for needle in PATIENT_STRINGS:
        assert needle.upper() not in text, f"{needle!r} in an answer to a student"
