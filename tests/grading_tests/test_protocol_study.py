"""A full hip protocol study uploaded: only T1 without fat suppression in an axial or
coronal plane is graded; every other series is kept, viewable, with the reason it was
not graded. The coronal T1 gives each hip its JIC type and Kerboul arc from the engine's
masks, in the API beside the axial grade, and a clinician's classification survives a
re-analysis."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from grading.dicom.protocol_writer import SeriesPlan, write_protocol_study
from grading.engine.phantoms.volume import make_volume_phantom
from grading.models import HipResult, Series
from grading.services import upload_ingest
from grading.services.analyses import analysis_run, study_analyses_request

pytestmark = pytest.mark.django_db

PLANS = (
    SeriesPlan("COR T1 TSE", "coronal", "T1", 8, 4.0, pixel_mm=1.2),
    SeriesPlan("COR STIR", "coronal", "STIR", 8, 4.0, pixel_mm=1.2),
    SeriesPlan("AX T1 TSE", "axial", "T1", 10, 4.0, pixel_mm=1.2),
    SeriesPlan("AX T2 FS", "axial", "T2FS", 6, 4.0, pixel_mm=1.2),
    SeriesPlan("AX STIR NOHEADER", "axial", "STIR", 10, 4.0, pixel_mm=1.2),
    SeriesPlan("SAG T1 RIGHT", "sagittal", "T1", 10, 4.0, pixel_mm=1.2, enhanced=True),
)


@pytest.fixture(scope="module")
def protocol_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("protocol")
    written = write_protocol_study(make_volume_phantom(11), out, plans=PLANS)
    # The fifth series: a STIR whose header says nothing (no timing, no sequence name,
    # an uninformative description): only the pixels can tell.
    for path in written[4].paths:
        ds = pydicom.dcmread(path)
        for keyword in (
            "ScanningSequence",
            "SequenceVariant",
            "ScanOptions",
            "RepetitionTime",
            "EchoTime",
            "InversionTime",
            "SequenceName",
        ):
            if keyword in ds:
                delattr(ds, keyword)
        ds.SeriesDescription = "AX HIP 5"
        ds.save_as(path, enforce_file_format=True)
    return out


def _upload(scenario, folder: Path):
    files = [p for p in sorted(folder.rglob("*.dcm"))]
    return upload_ingest(
        user=scenario.clinician,
        site=scenario.site,
        client_address=None,
        files=[SimpleUploadedFile(p.name, p.read_bytes()) for p in files],
    )


def test_only_t1_axial_and_coronal_series_are_graded(scenario, protocol_dir: Path) -> None:
    report = _upload(scenario, protocol_dir)
    assert report.rejected == []
    truth = json.loads((protocol_dir / "truth.json").read_text())
    by_uid = {s.series_instance_uid: s for s in Series.objects.all()}
    decided = {
        t["description"]: (
            by_uid[t["series_instance_uid"]].weighting,
            by_uid[t["series_instance_uid"]].plane,
            by_uid[t["series_instance_uid"]].graded,
        )
        for t in truth["series"]
    }
    assert decided == {
        "COR T1 TSE": ("T1", "coronal", True),
        "COR STIR": ("STIR", "coronal", False),
        "AX T1 TSE": ("T1", "axial", True),
        "AX T2 FS": ("fat_saturated", "axial", False),
        "AX STIR NOHEADER": ("unknown", "axial", True),  # until the pixels are seen
        "SAG T1 RIGHT": ("T1", "sagittal", True),
    }
    reasons = {s.description: s.not_graded_reason for s in by_uid.values()}
    assert "STIR" in reasons["COR STIR"]
    assert reasons["COR T1 TSE"] == ""
    assert [t["expected_graded"] for t in truth["series"]] == [
        True,
        False,
        True,
        False,
        False,
        True,
    ]
    assert "fat-suppressed" in reasons["AX T2 FS"]
    assert reasons["AX T1 TSE"] == ""


@pytest.mark.slow
def test_stir_never_grades_and_unknown_weighting_is_checked_on_the_pixels(
    scenario, protocol_dir: Path
) -> None:
    _upload(scenario, protocol_dir)
    study = Series.objects.first().study
    analyses = study_analyses_request(study_id=study.pk)
    # highdicom names the multi-frame series "... (enhanced conversion)"
    analysed = {a.series.description.split(" (")[0] for a in analyses}
    # AX HIP 5: the STIR without header
    assert analysed == {"COR T1 TSE", "AX T1 TSE", "AX HIP 5", "SAG T1 RIGHT"}
    for analysis in analyses:
        assert analysis_run(analysis_id=analysis.pk)
    stir = Series.objects.get(description="AX HIP 5")
    assert stir.graded is False
    assert stir.not_graded_reason.startswith("unknown weighting and the images do not look like T1")
    assert not HipResult.objects.filter(analysis__series=stir).exists()
    assert not HipResult.objects.filter(analysis__series__weighting="STIR").exists()
    t1 = Series.objects.get(description="AX T1 TSE")
    assert t1.graded is True and t1.analyses.get().status == "done"
    # A second request keeps the pixels' verdict and sends nothing new.
    again = study_analyses_request(study_id=study.pk)
    assert {a.series.description.split(" (")[0] for a in again} == {
        "COR T1 TSE",
        "AX T1 TSE",
        "SAG T1 RIGHT",
    }
    assert Series.objects.get(pk=stir.pk).graded is False


def test_the_same_hip_graded_differently_by_two_series_is_flagged() -> None:
    from grading.models import Analysis
    from grading.services.studies import series_disagreements

    def hip(description: str, number: int, side: str, grade: str) -> HipResult:
        series = Series(description=description, number=number)
        return HipResult(side=side, grade=grade, analysis=Analysis(series=series))

    axial, coronal = "AX T1 TSE", "COR T1 TSE"
    flags = series_disagreements(
        [
            hip(axial, 1, "right", "moderate"),
            hip(coronal, 2, "right", "mild"),
            hip(axial, 1, "left", "none"),
            hip(coronal, 2, "left", "none"),
        ]
    )
    assert flags == [
        "series_disagreement: the right hip is graded moderate on AX T1 TSE, mild on COR T1 TSE"
    ]
    assert series_disagreements([hip(axial, 1, "right", "mild")]) == []


@pytest.mark.slow
def test_coronal_t1_gives_jic_and_kerboul_in_the_api_and_a_clinician_edit_stays(
    scenario, protocol_dir: Path
) -> None:
    from rest_framework.test import APIClient

    from grading.services.analyses import analysis_request

    _upload(scenario, protocol_dir)
    study = Series.objects.first().study
    for analysis in study_analyses_request(study_id=study.pk):
        assert analysis_run(analysis_id=analysis.pk)
    coronal = Series.objects.get(description="COR T1 TSE")
    sagittal = {
        h.side: h.ai_classification
        for h in HipResult.objects.filter(analysis__series__description__startswith="SAG T1 RIGHT")
    }
    assert set(sagittal) <= {"right"}  # one hip, its side from the series' Laterality
    coronal_hips = {h.side: h for h in HipResult.objects.filter(analysis__series=coronal)}
    assert set(coronal_hips) == {"left", "right"}
    instances = set(coronal.instances.values_list("sop_instance_uid", flat=True))
    for hip in coronal_hips.values():
        found = hip.ai_classification
        assert found["plane"] == "coronal"
        assert found["mid_sop_instance_uid"] in instances
        assert 0.0 <= found["arc_deg"] <= 360.0
        # The roof is found in the image: the phantom's lateral edge lies 24-38 degrees
        # from vertical at the head centre, measured at the roof's inner rim.
        assert found["roof_edge_deg"] is not None and 5.0 <= found["roof_edge_deg"] <= 50.0
        assert found["jic_type"] in (None, "A", "B", "C1", "C2")

    client = APIClient()
    client.force_authenticate(scenario.clinician)
    body = client.get(f"/api/studies/{study.pk}/").json()
    graded_uids = {s["series_instance_uid"] for s in body["series"] if s["graded"]}
    assert {h["series_instance_uid"] for h in body["hips"]} <= graded_uids
    axial_and_coronal = {
        s["series_instance_uid"] for s in body["series"] if s["plane"] in ("axial", "coronal")
    } & graded_uids
    by_side: dict[str, list[dict]] = {}
    for hip in body["hips"]:
        by_side.setdefault(hip["side"], []).append(hip)
    for side, hips in by_side.items():
        found = coronal_hips[side].ai_classification
        side_arc = (sagittal.get(side) or {}).get("arc_deg")
        for hip in hips:  # one hip, one JIC type and Kerboul angle, whichever series shows it
            assert hip["jic_type"] == found["jic_type"]
            assert hip["jic_source"] == ("ai" if found["jic_type"] else None)
            assert hip["kerboul_source"] == "ai"
            # mid-coronal plus mid-sagittal arc; the coronal arc alone, partial, without one
            expected = found["arc_deg"] + (side_arc or 0.0)
            assert hip["kerboul_angle_deg"] == pytest.approx(expected, abs=0.1)
            assert hip["kerboul_partial"] is (side_arc is None)
        assert axial_and_coronal <= {h["series_instance_uid"] for h in hips}
        disagree = len({h["grade"] for h in hips}) > 1
        for hip in hips:
            assert any(f.startswith("series_disagreement:") for f in hip["flags"]) is disagree

    # A clinician's classification stands over the AI's, through a re-analysis.
    right = next(
        h
        for h in body["hips"]
        if h["side"] == "right" and h["series_instance_uid"] == coronal.series_instance_uid
    )
    answer = client.post(
        f"/api/studies/{study.pk}/classifications/",
        {
            "series_instance_uid": right["series_instance_uid"],
            "side": "right",
            "jic_type": "C2",
            "kerboul_angle_deg": 250.0,
            "reason": "read on the films",
        },
        format="json",
    )
    assert answer.status_code == 201, answer.content
    again = analysis_request(series=coronal, force=True)
    assert analysis_run(analysis_id=again.pk)
    body = client.get(f"/api/studies/{study.pk}/").json()
    right = next(
        h
        for h in body["hips"]
        if h["side"] == "right" and h["series_instance_uid"] == coronal.series_instance_uid
    )
    assert (right["jic_type"], right["kerboul_angle_deg"]) == ("C2", 250.0)
    assert (right["jic_source"], right["kerboul_source"]) == ("clinician", "clinician")
    new_hip = HipResult.objects.get(analysis=again, side="right")
    assert new_hip.classification_revisions.get().reason == "read on the films"


def test_a_series_with_a_repeated_slice_is_kept_but_not_graded(
    scenario, protocol_dir: Path, tmp_path: Path
) -> None:
    """The axial T1 with one slice sent twice under a new SOP instance UID (a repeat at
    the same position): stored and viewable, not graded, with the reason."""
    from pydicom.uid import generate_uid

    truth = json.loads((protocol_dir / "truth.json").read_text())
    axial = next(t for t in truth["series"] if t["description"] == "AX T1 TSE")
    paths = sorted(
        p
        for p in protocol_dir.rglob("*.dcm")
        if pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID
        == axial["series_instance_uid"]
    )
    folder = tmp_path / "repeat"
    folder.mkdir()
    for path in paths:
        (folder / path.name).write_bytes(path.read_bytes())
    ds = pydicom.dcmread(paths[4])
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(folder / "repeat.dcm")
    report = _upload(scenario, folder)
    assert report.rejected == []
    series = Series.objects.get(series_instance_uid=axial["series_instance_uid"])
    assert series.instances.count() == len(paths) + 1
    assert series.graded is False
    assert series.not_graded_reason.startswith(
        f"1 of {len(paths) + 1} images lie at the position of another image"
    )
    requested = study_analyses_request(study_id=series.study_id)
    assert all(a.series_id != series.pk for a in requested)
