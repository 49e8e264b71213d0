"""A full hip protocol study uploaded: only T1 without fat suppression in an axial plane is
graded; every other series is kept, viewable, with the reason it was not graded."""

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
)


@pytest.fixture(scope="module")
def protocol_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("protocol")
    written = write_protocol_study(make_volume_phantom(11), out, plans=PLANS)
    # The last series: a STIR whose header says nothing (no timing, no sequence name,
    # an uninformative description): only the pixels can tell.
    for path in written[-1].paths:
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


def test_only_t1_axial_series_are_graded(scenario, protocol_dir: Path) -> None:
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
        "COR T1 TSE": ("T1", "coronal", False),
        "COR STIR": ("STIR", "coronal", False),
        "AX T1 TSE": ("T1", "axial", True),
        "AX T2 FS": ("fat_saturated", "axial", False),
        "AX STIR NOHEADER": ("unknown", "axial", True),  # until the pixels are seen
    }
    reasons = {s.description: s.not_graded_reason for s in by_uid.values()}
    assert "STIR" in reasons["COR STIR"]
    assert reasons["COR T1 TSE"].startswith("coronal series")
    assert "fat-suppressed" in reasons["AX T2 FS"]
    assert reasons["AX T1 TSE"] == ""


@pytest.mark.slow
def test_stir_never_grades_and_unknown_weighting_is_checked_on_the_pixels(
    scenario, protocol_dir: Path
) -> None:
    _upload(scenario, protocol_dir)
    study = Series.objects.first().study
    analyses = study_analyses_request(study_id=study.pk)
    analysed = {a.series.description for a in analyses}
    assert analysed == {"AX T1 TSE", "AX HIP 5"}  # AX HIP 5: the STIR without header
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
    assert {a.series.description for a in again} == {"AX T1 TSE"}
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
