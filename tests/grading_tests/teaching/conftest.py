"""Scenario for the teaching tests.

``classroom``: at "North General" a teacher, two enrolled students, a student of the same
site enrolled only in another collection, and a clinician; at "South Clinic" a student
enrolled in a collection there. One real phantom study of North (DICOM written by the
project's writer, with extra patient attributes and a private tag added), analysed with the
phantom's ground truth as the AI label maps (the engine's ``measure_labelmap`` and
``summarise_series`` give the grades), copied as "Case 1" into the teacher's collection.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.grading_tests.apis.conftest import (
    PhantomDicom,
    store_truth_analysis,
    uploaded,
    write_phantom_dicom,
)
from tests.grading_tests.factories import MembershipFactory, SiteFactory, UserFactory

STUDY_DATE = "20240102"
# Source strings that must never reach a student (beside the source UIDs).
SOURCE_STRINGS = (
    "DOE",
    "JANE",
    "MRN-4711",
    "19500102",
    "1950-01-02",
    STUDY_DATE,
    "2024-01-02",
    "St Elsewhere",
    "HOUSE^GREGORY",
    "SECRET-PRIVATE",
)


def add_phi(path: Path) -> None:
    """Patient, institution and physician attributes, a nested PN and a private tag."""
    ds = pydicom.dcmread(path)
    ds.PatientBirthDate = "19500102"
    ds.PatientAge = "074Y"
    ds.OtherPatientIDs = "MRN-4711-OLD"
    ds.PatientAddress = "1 Main Street"
    ds.InstitutionName = "St Elsewhere"
    ds.ReferringPhysicianName = "HOUSE^GREGORY"
    ds.AccessionNumber = "ACC-MRN-4711"
    ds.StudyDescription = "HIP DOE JANE"
    item = Dataset()
    item.VerifyingObserverName = "HOUSE^GREGORY"
    item.VerificationDateTime = "20240102120000"
    ds.VerifyingObserverSequence = [item]
    block = ds.private_block(0x0011, "ACME HOSPITAL", create=True)
    block.add_new(0x01, "LO", "SECRET-PRIVATE MRN-4711")
    ds.save_as(path)


@pytest.fixture(scope="session")
def teaching_phantom(tmp_path_factory: pytest.TempPathFactory) -> PhantomDicom:
    phantom = write_phantom_dicom(tmp_path_factory.mktemp("teaching-phantom"), seed=11, n_slices=3)
    for path in phantom.paths:
        add_phi(path)
    return phantom


class Classroom(NamedTuple):
    site: Any
    other_site: Any
    users: dict[str, Any]
    study: Any
    series: Any
    collection: Any
    other_collection: Any
    foreign_collection: Any
    case: Any
    phantom: PhantomDicom

    def client(self, who: str | None) -> APIClient:
        client = APIClient()
        if who is not None:
            token, _ = Token.objects.get_or_create(user=self.users[who])
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    def source_uids(self) -> list[str]:
        uids = [self.study.study_instance_uid, self.series.series_instance_uid]
        uids += list(self.series.instances.values_list("sop_instance_uid", flat=True))
        return uids


@pytest.fixture
def classroom(db: None, teaching_phantom: PhantomDicom) -> Classroom:
    from grading.services.ingest import upload_ingest
    from grading.teaching import services

    site, other_site = SiteFactory(name="North General"), SiteFactory(name="South Clinic")
    users = {}
    for name, role in (
        ("teacher", "teacher"),
        ("alice", "student"),
        ("bob", "student"),
        ("carol", "student"),
        ("clinician", "clinician"),
    ):
        users[name] = UserFactory(username=name)
        MembershipFactory(user=users[name], site=site, role=role)
    for name, role in (("south_teacher", "teacher"), ("dave", "student")):
        users[name] = UserFactory(username=name)
        MembershipFactory(user=users[name], site=other_site, role=role)

    report = upload_ingest(
        user=users["clinician"],
        site=site,
        files=uploaded(teaching_phantom.paths),
        client_address="127.0.0.1",
    )
    assert report.accepted == len(teaching_phantom.paths), report.rejected
    study = report.studies[0]
    series = study.series.get()
    store_truth_analysis(series=series, labels=teaching_phantom.labels)
    study.refresh_from_db()

    teacher = users["teacher"]
    collection = services.collection_create(user=teacher, site=site, title="Hip MRI basics")
    services.collection_enrol(
        user=teacher, collection=collection, students=[users["alice"], users["bob"]]
    )
    other = services.collection_create(user=teacher, site=site, title="Advanced")
    services.collection_enrol(user=teacher, collection=other, students=[users["carol"]])
    foreign = services.collection_create(
        user=users["south_teacher"], site=other_site, title="South course"
    )
    services.collection_enrol(
        user=users["south_teacher"], collection=foreign, students=[users["dave"]]
    )
    case = services.case_add(user=teacher, collection=collection, study_id=study.pk)
    return Classroom(
        site, other_site, users, study, series, collection, other, foreign, case, teaching_phantom
    )


def rgba_png(mask: np.ndarray) -> bytes:
    """A mask as a browser canvas exports it: RGBA, marked pixels opaque red."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    rgba[mask] = (255, 64, 64, 255)
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()


def reference_necrosis(case: Any) -> dict[int, np.ndarray]:
    from django.core.files.storage import default_storage

    out = {}
    for row in case.instances.order_by("index"):
        with default_storage.open(row.reference_labelmap.name, "rb") as handle:
            out[row.pk] = np.asarray(Image.open(handle).convert("L")) == 2
    return out
