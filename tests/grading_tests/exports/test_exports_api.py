"""Exports through the API: DICOM SEG and SR of a series (validated with dciodvfy, read
back with highdicom), a site's results as CSV/JSON; permissions and the audit trail."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from grading.dicom.seg import segmentation_labelmaps
from grading.dicom.sr import NECROTIC_PROPORTION
from grading.dicom.uids import is_dicom_uid
from grading.models import AuditEvent, HipResult
from grading.services.exports import RESULT_COLUMNS, research_uid, study_pseudonym
from tests.grading_tests.apis.conftest import (
    PATIENT_ID,
    assert_no_patient_identifiers,
    png_array,
    png_base64,
)
from tests.grading_tests.dicom.dciodvfy import dciodvfy
from tests.grading_tests.factories import AnalysisFactory, SeriesFactory

pytestmark = pytest.mark.django_db


def seg_url(world) -> str:
    return f"/api/series/{world.series.pk}/export/seg/"


def sr_url(world) -> str:
    return f"/api/series/{world.series.pk}/export/sr/"


def site_url(world, fmt: str) -> str:
    return f"/api/sites/{world.site.pk}/export/results.{fmt}"


def get_dicom(world, url: str, who: str = "clinician") -> pydicom.Dataset:
    answer = world.client(who).get(url)
    assert answer.status_code == 200, answer.content[:500]
    assert answer["Content-Type"] == "application/dicom"
    assert answer["Content-Disposition"].startswith("attachment;")
    return pydicom.dcmread(io.BytesIO(answer.content))


def current_labelmaps(world) -> np.ndarray:
    client = world.client("clinician")
    planes = []
    for instance in world.instances:
        answer = client.get(f"/api/instances/{instance.pk}/labelmap.png")
        planes.append(png_array(b"".join(answer.streaming_content)))
    return np.stack(planes).astype(np.uint8)


def uids(world) -> list[str]:
    return [i.sop_instance_uid for i in world.instances]


def edit_slice(world, who: str = "clinician") -> None:
    """Remove the necrosis on the second slice (label 2 -> 1)."""
    instance = world.instances[1]
    labels = world.phantom.labels[instance.sop_instance_uid].copy()
    assert (labels == 2).any()
    labels[labels == 2] = 1
    answer = world.client(who).post(
        f"/api/series/{world.series.pk}/labelmaps/",
        {
            "reason": "no necrosis here",
            "labelmaps": [
                {"sop_instance_uid": instance.sop_instance_uid, "png_base64": png_base64(labels)}
            ],
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content


# --- DICOM SEG --------------------------------------------------------------------------


def test_seg_of_the_ai_label_maps(world, tmp_path: Path):
    ds = get_dicom(world, seg_url(world))
    seg = hd.seg.Segmentation.from_dataset(ds)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == ["Femoral head", "Necrosis"]
    assert {s.SegmentAlgorithmType for s in seg.SegmentSequence} == {"AUTOMATIC"}
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmVersion == "truth-for-tests"  # the analysis' model version
    assert seg.StudyInstanceUID == world.study.study_instance_uid
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == world.series.series_instance_uid
    truth = np.stack([world.phantom.labels[u] for u in uids(world)])
    assert np.array_equal(segmentation_labelmaps(seg, uids(world)), truth)
    verdict = dciodvfy(ds, tmp_path, name="api-seg-automatic.dcm")
    assert verdict.errors == [], verdict.output

    event = AuditEvent.objects.filter(action="series.export").get()
    assert event.actor == world.users["clinician"]
    assert event.study_id == world.study.pk
    assert event.object_type == "series" and event.object_id == str(world.series.pk)
    assert event.after["format"] == "dicom-seg"
    assert event.after["sop_instance_uid"] == ds.SOPInstanceUID
    assert event.after["edited"] is False
    assert event.client_address == "127.0.0.1"


def test_seg_after_an_edit_is_semiautomatic_and_reloads_pixel_exact(world, tmp_path: Path):
    user = world.users["radiologist"]
    user.first_name, user.last_name = "Meredith", "Grey"
    user.save()
    edit_slice(world, who="radiologist")
    stored = current_labelmaps(world)
    assert not np.array_equal(stored[1], world.phantom.labels[uids(world)[1]])

    ds = get_dicom(world, seg_url(world))
    assert {s.SegmentAlgorithmType for s in ds.SegmentSequence} == {"SEMIAUTOMATIC"}
    assert ds.SegmentSequence[0].SegmentAlgorithmName  # still names the algorithm
    assert str(ds.ContentCreatorName) == "Grey^Meredith"
    assert np.array_equal(segmentation_labelmaps(ds, uids(world)), stored)
    verdict = dciodvfy(ds, tmp_path, name="api-seg-semiautomatic.dcm")
    assert verdict.errors == [], verdict.output

    revert = world.client("clinician").post(
        f"/api/series/{world.series.pk}/labelmaps/revert/", {"reason": "AI was right"}
    )
    assert revert.status_code == 200
    ds = get_dicom(world, seg_url(world))
    assert {s.SegmentAlgorithmType for s in ds.SegmentSequence} == {"AUTOMATIC"}
    truth = np.stack([world.phantom.labels[u] for u in uids(world)])
    assert np.array_equal(segmentation_labelmaps(ds, uids(world)), truth)


# --- DICOM SR ---------------------------------------------------------------------------


def sr_groups(ds: pydicom.Dataset) -> tuple[dict[str, object], hd.sr.Comprehensive3DSR]:
    sr = hd.sr.Comprehensive3DSR.from_dataset(ds)
    return {g.tracking_identifier: g for g in sr.content.get_image_measurement_groups()}, sr


def test_sr_unconfirmed_names_the_algorithm(world, tmp_path: Path):
    ds = get_dicom(world, sr_url(world))
    groups, sr = sr_groups(ds)
    hips = {h.side: h for h in HipResult.objects.filter(analysis__series=world.series)}
    assert set(hips) == {"left", "right"}
    for side, hip in hips.items():
        head = groups[f"{side} femoral head"]
        (volume,) = head.get_measurements(name=codes.SCT.Volume)
        assert volume.value == pytest.approx(hip.head_volume_mm3, rel=1e-6)
        assert head.get_measurements(name=codes.SCT.Area)  # per-slice areas
        necrosis = groups[f"{side} femoral head necrosis"]
        (volume,) = necrosis.get_measurements(name=codes.SCT.Volume)
        assert volume.value == pytest.approx(hip.necrosis_volume_mm3, rel=1e-6, abs=1e-9)
        (proportion,) = necrosis.get_measurements(name=NECROTIC_PROPORTION)
        assert proportion.value == pytest.approx(hip.proportion, rel=1e-6, abs=1e-9)
        (grade,) = necrosis.get_qualitative_evaluations(name=codes.SCT.Severity)
        assert grade.value.meaning.lower() == {"none": "absent"}.get(hip.grade, hip.grade)
    assert sr.content.get_observer_contexts(observer_type=codes.DCM.Person) == []
    assert sr.VerificationFlag == "UNVERIFIED"
    verdict = dciodvfy(ds, tmp_path, name="api-sr-unverified.dcm")
    assert verdict.errors == [], verdict.output
    event = AuditEvent.objects.filter(action="series.export").get()
    assert event.after["format"] == "dicom-sr" and event.after["confirmed_by"] is None


def test_sr_confirmed_by_the_latest_revision_author(world, tmp_path: Path):
    radiologist = world.users["radiologist"]
    radiologist.first_name, radiologist.last_name = "Meredith", "Grey"
    radiologist.save()
    for who, grade in (("clinician", "mild"), ("radiologist", "severe")):
        answer = world.client(who).post(
            f"/api/studies/{world.study.pk}/grades/",
            {
                "series_instance_uid": world.series.series_instance_uid,
                "side": "right",
                "grade": grade,
                "reason": "second look",
            },
            format="json",
        )
        assert answer.status_code == 201, answer.content
    ds = get_dicom(world, sr_url(world))
    groups, sr = sr_groups(ds)
    (grade,) = groups["right femoral head necrosis"].get_qualitative_evaluations(
        name=codes.SCT.Severity
    )
    assert grade.value.value == codes.SCT.Severe.value
    (person,) = sr.content.get_observer_contexts(observer_type=codes.DCM.Person)
    assert str(person.observer_identifying_attributes.name) == "Grey^Meredith"
    assert sr.VerificationFlag == "VERIFIED"
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "Grey^Meredith"
    assert sr.VerifyingObserverSequence[0].VerifyingOrganization == world.site.name
    verdict = dciodvfy(ds, tmp_path, name="api-sr-verified.dcm")
    assert verdict.errors == [], verdict.output
    event = AuditEvent.objects.filter(action="series.export").get()
    assert event.after["confirmed_by"] == "radiologist"


# --- site results -----------------------------------------------------------------------


def test_site_results_csv(world):
    edit_slice(world)
    answer = world.client("site_admin").get(site_url(world, "csv"))
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    assert f"{world.site.code}-results.csv" in answer["Content-Disposition"]
    assert_no_patient_identifiers(answer.content)
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert tuple(rows[0]) == RESULT_COLUMNS
    assert sorted(r["side"] for r in rows) == ["left", "right"]
    hips = {h.side: h for h in HipResult.objects.filter(analysis__series=world.series)}
    for row in rows:
        hip = hips[row["side"]]
        assert row["site"] == world.site.name
        # Real UIDs remapped with a key that is not in the database; dates to the month.
        assert row["study_instance_uid"] == research_uid(world.study.study_instance_uid)
        assert row["series_instance_uid"] == research_uid(world.series.series_instance_uid)
        assert is_dicom_uid(row["study_instance_uid"]) and is_dicom_uid(row["series_instance_uid"])
        assert row["study_pseudonym"] == study_pseudonym(study=world.study)
        assert row["study_date"] == "2024-01"
        assert float(row["proportion"]) == pytest.approx(hip.proportion)
        assert float(row["head_volume_mm3"]) == pytest.approx(hip.head_volume_mm3)
        assert row["ai_grade"] == hip.ai_grade and row["grade"] == hip.current_grade
        assert row["model_version"] == "truth-for-tests"
        assert row["edited"] == "yes"
        assert "edited:" in row["flags"]
        assert re.fullmatch(r"\d{4}-\d{2}", row["analysed_at"])
    text = answer.content.decode()
    assert PATIENT_ID not in text
    for real in (world.study.study_instance_uid, world.series.series_instance_uid, "2024-01-02"):
        assert real not in text
    event = AuditEvent.objects.filter(action="site.export").get()
    assert event.actor == world.users["site_admin"]
    assert event.object_type == "site" and event.object_id == str(world.site.pk)
    assert event.after == {"format": "csv", "rows": 2}


def test_site_results_json(world):
    answer = world.client("radiologist").post(
        f"/api/studies/{world.study.pk}/grades/",
        {
            "series_instance_uid": world.series.series_instance_uid,
            "side": "left",
            "grade": "severe",
            "reason": "collapse on coronal",
        },
        format="json",
    )
    assert answer.status_code == 201
    answer = world.client("clinician").get(site_url(world, "json"))
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/json"
    assert_no_patient_identifiers(answer.content)
    data = answer.json()
    assert data["site"] == {"id": world.site.pk, "name": world.site.name}
    assert data["columns"] == list(RESULT_COLUMNS)
    rows = {r["side"]: r for r in data["results"]}
    assert set(rows["left"]) == set(RESULT_COLUMNS)
    assert rows["left"]["grade"] == "severe"
    assert rows["left"]["confirmed_by"] == "radiologist"
    assert re.fullmatch(r"\d{4}-\d{2}", rows["left"]["confirmed_at"])
    assert rows["right"]["confirmed_by"] is None
    assert rows["left"]["edited"] is False
    assert isinstance(rows["left"]["flags"], list)
    assert rows["left"]["study_pseudonym"].startswith("S-")
    assert rows["left"]["study_pseudonym"] not in (PATIENT_ID, world.study.study_instance_uid)


def test_site_results_leave_out_other_sites_and_unfinished_analyses(world):
    from tests.grading_tests.factories import HipResultFactory

    HipResultFactory(analysis__series__study__site=world.other_site)
    AnalysisFactory(series=SeriesFactory(study=world.study, number=2), status="running")
    data = world.client("clinician").get(site_url(world, "json")).json()
    assert {r["series_instance_uid"] for r in data["results"]} == {
        research_uid(world.series.series_instance_uid)
    }


def test_research_uids_follow_the_key_not_the_database(world, settings):
    first = world.client("clinician").get(site_url(world, "json")).json()["results"]
    again = world.client("clinician").get(site_url(world, "json")).json()["results"]
    assert [r["study_instance_uid"] for r in first] == [r["study_instance_uid"] for r in again]
    settings.ONFH_RESEARCH_KEY = "another-key-kept-outside-the-database"
    other = world.client("clinician").get(site_url(world, "json")).json()["results"]
    assert {r["study_instance_uid"] for r in other}.isdisjoint(
        {r["study_instance_uid"] for r in first}
    )


# --- permissions ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["seg", "sr", "csv", "json"])
def test_foreign_users_get_404_and_anonymous_401(world, kind):
    url = site_url(world, kind) if kind in ("csv", "json") else f"{seg_url(world)[:-4]}{kind}/"
    assert world.client("foreign").get(url).status_code == 404
    assert world.client(None).get(url).status_code == 401
    assert not AuditEvent.objects.filter(action__in=["series.export", "site.export"]).exists()


@pytest.mark.parametrize("kind", ["seg", "sr", "csv", "json"])
def test_students_get_403(world, kind):
    url = site_url(world, kind) if kind in ("csv", "json") else f"{seg_url(world)[:-4]}{kind}/"
    answer = world.client("student").get(url)
    assert answer.status_code == 403
    assert_no_patient_identifiers(answer.content)
    assert not AuditEvent.objects.filter(action__in=["series.export", "site.export"]).exists()


def test_teachers_export_dicom_but_not_the_site_table(world):
    client = world.client("teacher")
    assert client.get(seg_url(world)).status_code == 200
    assert client.get(sr_url(world)).status_code == 200
    assert client.get(site_url(world, "csv")).status_code == 403
    assert client.get(site_url(world, "json")).status_code == 403


def test_missing_and_unanalysed_series(world):
    client = world.client("clinician")
    assert client.get("/api/series/999999/export/seg/").status_code == 404
    assert client.get("/api/sites/999999/export/results.csv").status_code == 404
    bare = SeriesFactory(study=world.study, number=3)
    for kind in ("seg", "sr"):
        answer = client.get(f"/api/series/{bare.pk}/export/{kind}/")
        assert answer.status_code == 400
        assert "no finished analysis" in answer.content.decode()
