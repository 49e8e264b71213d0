"""``onfh grade``: the results.json contract end to end on DICOM phantoms.

Inputs are written as real DICOM with :func:`grading.dicom.writer.write_mr_series`: a
small bilateral series, a single-hip crop with ImageLaterality, and a file that is not
DICOM. ``test_grade_with_the_shipped_network`` grades them with the real shipped weights
(skipped, saying why, only while ``grading/engine/weights/onfh_net.pt`` does not exist);
the other tests use a ground-truth stand-in for the network (see
``tests/grading_tests/engine/test_pipeline.py``) so they can check grades exactly.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from grading.cli import grade as grade_cli
from grading.engine.threshold_benchmark import TruthSegmenter, encode_truth
from grading.engine.types import Grade

WEIGHTS = Path(grade_cli.__file__).resolve().parents[1] / "engine" / "weights" / "onfh_net.pt"

IMAGE_KEYS = {"path", "sop_instance_uid", "labelmap", "hips"}
HIP_KEYS = {
    "side",
    "head_area_mm2",
    "necrosis_area_mm2",
    "proportion",
    "grade",
    "flags",
    "proportion_interval",
    "grade_probabilities",
}
SERIES_HIP_KEYS = {
    "series_instance_uid",
    "side",
    "head_volume_mm3",
    "necrosis_volume_mm3",
    "proportion",
    "grade",
    "flags",
    "proportion_interval",
    "grade_probabilities",
    "method_proportions",
}
GRADES = {g.value for g in Grade}


def run_grade(argv: list[str]) -> int:
    """Parse and run ``onfh grade`` with only this sub-command registered."""
    parser = argparse.ArgumentParser(prog="onfh")
    subparsers = parser.add_subparsers(dest="command", required=True)
    grade_cli.register(subparsers)
    args = parser.parse_args(["grade", *argv])
    return int(args.func(args))


@pytest.fixture(scope="module")
def dicom_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A bilateral phantom series and a crop as DICOM files, plus a bad file."""
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series, make_hip_crop

    root = tmp_path_factory.mktemp("dicom")
    series = make_bilateral_series(
        9002,
        n_slices=8,
        matrix=(256, 256),
        pixel_spacing_mm=1.5,
        necrosis={"right": "moderate", "left": "severe"},
    )
    encoded = encode_truth(series.images, series.labels)
    bilateral_paths = write_mr_series(
        encoded,
        root / "series" / "nested",
        pixel_spacing_mm=series.pixel_spacing_mm,
        slice_thickness_mm=series.slice_thickness_mm,
        spacing_between_slices_mm=series.spacing_between_slices_mm,
        image_orientation=series.image_orientation,
        first_position=series.first_position,
        series_instance_uid="1.2.826.0.1.3680043.10.1.1",
    )
    crop = make_hip_crop(5300, necrosis="moderate", pattern="homogeneous", mimic=None, level_mm=2)
    crop_encoded = encode_truth(crop.image, crop.labels)
    crop_paths = write_mr_series(
        crop_encoded[None],
        root / "crop",
        pixel_spacing_mm=crop.pixel_spacing_mm,
        slice_thickness_mm=3.0,
        laterality="L",
        series_instance_uid="1.2.826.0.1.3680043.10.1.2",
        series_number=2,
    )
    bad = root / "notes.dcm"
    bad.write_text("this is not a DICOM file\n")
    return {
        "root": root,
        "series": series,
        "bilateral": bilateral_paths,
        "crop": crop,
        "crop_paths": crop_paths,
        "bad": bad,
    }


def check_contract(out: Path, document: dict[str, Any]) -> None:
    """The exact shape of results.json and its label maps."""
    assert json.loads((out / "results.json").read_text()) == document
    assert isinstance(document["images"], list) and isinstance(document["hips"], list)
    for image in document["images"]:
        assert IMAGE_KEYS <= set(image)
        assert isinstance(image["path"], str) and isinstance(image["sop_instance_uid"], str)
        png = out / image["labelmap"]
        assert not Path(image["labelmap"]).is_absolute() and png.is_file()
        with Image.open(png) as picture:
            assert picture.mode == "L"
            labels = np.asarray(picture)
        import pydicom

        header = pydicom.dcmread(image["path"], stop_before_pixels=True)
        assert labels.shape == (header.Rows, header.Columns)
        assert set(np.unique(labels)) <= {0, 1, 2}
        assert bool(labels.any()) == bool(image["hips"])
        for hip in image["hips"]:
            assert set(hip) == HIP_KEYS
            assert hip["side"] in {"left", "right", "unknown"}
            assert hip["grade"] in GRADES
            assert 0.0 <= hip["proportion"] <= 1.0
            assert isinstance(hip["head_area_mm2"], float) and hip["head_area_mm2"] > 0
            assert 0.0 <= hip["necrosis_area_mm2"] <= hip["head_area_mm2"]
            assert all(isinstance(f, str) and ": " in f for f in hip["flags"])
            check_uncertainty(hip)
    for hip in document["hips"]:
        assert SERIES_HIP_KEYS <= set(hip)
        assert hip["grade"] in GRADES and 0.0 <= hip["proportion"] <= 1.0
        assert hip["necrosis_volume_mm3"] <= hip["head_volume_mm3"]
        check_uncertainty(hip)
        assert hip["method_proportions"]["threshold"] == pytest.approx(hip["proportion"])


def check_uncertainty(hip: dict[str, Any]) -> None:
    """``proportion_interval`` [low, high] around the proportion; ``grade_probabilities``
    over the four grades, summing to 1."""
    low, high = hip["proportion_interval"]
    assert 0.0 <= low <= hip["proportion"] <= high <= 1.0
    probabilities = hip["grade_probabilities"]
    assert set(probabilities) == GRADES
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-3)


def test_results_contract_with_a_bad_file(
    dicom_inputs: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(grade_cli, "load_segmenter", lambda weights, device: TruthSegmenter())
    out = tmp_path / "out"
    status = run_grade([str(dicom_inputs["root"]), "--out", str(out), "--no-progress"])
    assert status == 0
    err = capsys.readouterr().err
    assert f"{dicom_inputs['bad']}:" in err  # one line naming the bad file
    document = json.loads((out / "results.json").read_text())
    check_contract(out, document)
    assert len(document["images"]) == 9
    assert len(document["errors"]) == 1
    series = dicom_inputs["series"]
    by_path = {image["path"]: image for image in document["images"]}
    # the bilateral series: label maps are the true heads, grades per slice and per hip
    for k, path in enumerate(dicom_inputs["bilateral"]):
        image = by_path[str(path)]
        labels = np.asarray(Image.open(out / image["labelmap"]))
        truth = series.labels[k] > 0
        assert (labels > 0).sum() == pytest.approx(truth.sum(), abs=20)
        assert {h["side"] for h in image["hips"]} <= {"left", "right"}
    hips = {(h["series_instance_uid"], h["side"]): h for h in document["hips"]}
    for side in ("right", "left"):
        hip = hips[("1.2.826.0.1.3680043.10.1.1", side)]
        assert hip["grade"] == series.truth[side].grade.value
    # the crop: one hip, its side from ImageLaterality
    (crop_image,) = [by_path[str(p)] for p in dicom_inputs["crop_paths"]]
    (crop_hip,) = crop_image["hips"]
    assert crop_hip["side"] == "left"
    assert crop_hip["grade"] == dicom_inputs["crop"].grade.value
    assert hips[("1.2.826.0.1.3680043.10.1.2", "left")]["grade"] == crop_hip["grade"]


def test_nothing_readable_exits_non_zero(
    dicom_inputs: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(grade_cli, "load_segmenter", lambda weights, device: TruthSegmenter())
    out = tmp_path / "out"
    missing = tmp_path / "missing.dcm"
    status = run_grade([str(dicom_inputs["bad"]), str(missing), "--out", str(out)])
    assert status != 0
    err = capsys.readouterr().err
    assert f"{dicom_inputs['bad']}:" in err and f"{missing}:" in err
    document = json.loads((out / "results.json").read_text())
    assert document["images"] == [] and document["hips"] == []


def test_a_network_that_cannot_load_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = run_grade([str(tmp_path), "--out", str(tmp_path / "o"), "--weights", "nope.pt"])
    assert status != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.pt" in err[0]


@pytest.mark.skipif(
    not WEIGHTS.is_file(),
    reason=f"shipped weights {WEIGHTS} do not exist yet (the ML engineer trains them)",
)
def test_grade_with_the_shipped_network(
    dicom_inputs: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    started = time.perf_counter()
    status = run_grade([str(dicom_inputs["root"]), "--out", str(out)])
    elapsed = time.perf_counter() - started
    assert status == 0
    err = capsys.readouterr().err
    assert f"{dicom_inputs['bad']}:" in err
    document = json.loads((out / "results.json").read_text())
    check_contract(out, document)
    assert len(document["images"]) == 9
    assert document["model_version"].startswith("onfh-net")
    series = dicom_inputs["series"]
    by_path = {image["path"]: image for image in document["images"]}
    # the network finds both heads on the slices through the heads' centres
    for k, path in enumerate(dicom_inputs["bilateral"]):
        areas = [t.head_area_mm2 for t in series.slice_truth[k]]
        if len(areas) == 2 and min(areas) > 1000:
            assert {h["side"] for h in by_path[str(path)]["hips"]} == {"left", "right"}
    sides = {h["side"] for h in document["hips"] if h["series_instance_uid"].endswith(".1.1")}
    assert sides == {"left", "right"}
    assert elapsed < 120


def test_frames_of_a_multi_frame_file_keep_the_file_path() -> None:
    assert grade_cli._path_and_frame("a/b c.dcm [frame 3]") == ("a/b c.dcm", 3)
    assert grade_cli._path_and_frame("a/b.dcm") == ("a/b.dcm", None)
    assert grade_cli._path_and_frame("odd [frame x]") == ("odd [frame x]", None)


def test_a_sub_command_that_cannot_import_leaves_the_others_working(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    from grading import cli

    real_import = importlib.import_module

    def import_module(name: str, package: str | None = None) -> object:
        if name == "grading.cli.phantoms":
            raise ImportError("No module named 'pydicom'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", import_module)
    # a working sub-command still parses and runs its own arguments
    parser = cli.build_parser()
    args = parser.parse_args(["train", "--minutes", "1"])
    assert args.command == "train" and args.minutes == 1.0
    # the broken one says why, on one line, with a non-zero status
    assert cli.main(["phantoms", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["onfh phantoms is unavailable: No module named 'pydicom'"]


@pytest.mark.skipif(not WEIGHTS.is_file(), reason=f"shipped weights {WEIGHTS} do not exist yet")
def test_a_protocol_study_grades_only_its_axial_t1(tmp_path: Path) -> None:
    from grading.dicom.protocol_writer import SeriesPlan, write_protocol_study
    from grading.engine.phantoms.volume import make_volume_phantom

    plans = (
        SeriesPlan("COR STIR", "coronal", "STIR", 6, 4.0, pixel_mm=1.2),
        SeriesPlan("AX T1 TSE", "axial", "T1", 8, 4.0, pixel_mm=1.2, enhanced=True),
        SeriesPlan("AX STIR", "axial", "STIR", 6, 4.0, pixel_mm=1.2),
    )
    written = write_protocol_study(make_volume_phantom(8), tmp_path / "in", plans=plans)
    out = tmp_path / "out"
    assert run_grade([str(tmp_path / "in"), "--out", str(out), "--no-progress"]) == 0
    document = json.loads((out / "results.json").read_text())
    rows = {r["series_instance_uid"]: r for r in document["series"]}
    stir_cor, t1_ax, stir_ax = (rows[w.series_instance_uid] for w in written)
    assert (t1_ax["weighting"], t1_ax["plane"], t1_ax["graded"]) == ("T1", "axial", True)
    assert t1_ax["not_graded_reason"] is None
    for stir in (stir_cor, stir_ax):
        assert stir["weighting"] == "STIR" and stir["graded"] is False
        assert "STIR" in stir["not_graded_reason"]
    assert {h["series_instance_uid"] for h in document["hips"]} <= {written[1].series_instance_uid}
    assert {i["series_instance_uid"] for i in document["images"]} == {
        written[1].series_instance_uid
    }
    assert all(i.get("frame") for i in document["images"])  # the Enhanced MR's frames
    for hip in document["hips"]:
        assert {
            "jic_type",
            "kerboul_angle_deg",
            "kerboul_partial",
            "extent",
            "stage",
            "stage_source",
        } <= set(hip)
        assert hip["stage_source"] == "mri"


def test_grade_speed_times_a_series_with_and_without_the_uncertainty() -> None:
    """``onfh benchmark --speed``'s series row: both settings timed through grade_inputs
    (a stand-in network that finds nothing keeps it fast; the figures come from the
    shipped network in docs/benchmarks.md)."""
    from grading.cli.grade_speed import grade_speed_markdown, run_grade_speed

    class Nothing:
        model_version = "nothing"
        calls = 0

        def predict(self, images, *, batch_size=16):  # type: ignore[no-untyped-def]
            Nothing.calls += 1
            return [np.zeros(im.shape, dtype=np.float32) for im in images]

    report = run_grade_speed(Nothing(), n_series=1, repeats=1)
    assert set(report["median_s"]) == {"with_uncertainty", "without_uncertainty"}
    assert all(v > 0 for v in report["median_s"].values())
    assert Nothing.calls == 4  # one coarse pass per run: warm-up and one timed, twice
    assert "20-slice bilateral series" in grade_speed_markdown(report)


@pytest.mark.slow
def test_a_protocol_study_gives_jic_kerboul_and_series_disagreement(tmp_path: Path) -> None:
    """Coronal, axial and sagittal T1 of one phantom through ``onfh grade``: the three are
    graded; every hip of a side shows the coronal series' JIC type and the coronal plus
    sagittal arcs; a side graded differently by two series is flagged on each of its hips."""
    from grading.dicom.protocol_writer import SeriesPlan, write_protocol_study
    from grading.engine.phantoms.volume import make_volume_phantom

    plans = (
        SeriesPlan("COR T1", "coronal", "T1", 10, 4.0, pixel_mm=1.2),
        SeriesPlan("AX T1", "axial", "T1", 10, 4.0, pixel_mm=1.2),
        SeriesPlan("SAG T1 R", "sagittal", "T1", 10, 4.0, pixel_mm=1.2),
        SeriesPlan("COR STIR", "coronal", "STIR", 4, 4.0, pixel_mm=1.2),
    )
    written = write_protocol_study(make_volume_phantom(15), tmp_path / "in", plans=plans)
    out = tmp_path / "out"
    assert run_grade([str(tmp_path / "in"), "--out", str(out)]) == 0
    document = json.loads((out / "results.json").read_text())
    uid = {s.plan.description: s.series_instance_uid for s in written}
    graded = {row["series_instance_uid"]: row["graded"] for row in document["series"]}
    assert graded == {
        uid["COR T1"]: True,
        uid["AX T1"]: True,
        uid["SAG T1 R"]: True,
        uid["COR STIR"]: False,
    }
    hips = document["hips"]
    coronal = {h["side"]: h for h in hips if h["series_instance_uid"] == uid["COR T1"]}
    sagittal = {h["side"]: h for h in hips if h["series_instance_uid"] == uid["SAG T1 R"]}
    assert set(coronal) == {"left", "right"} and set(sagittal) <= {"right"}
    for hip in hips:
        mine = coronal[hip["side"]]["classification"] if hip["side"] in coronal else None
        assert mine is not None and mine["plane"] == "coronal"
        other = sagittal.get(hip["side"], {}).get("classification")
        assert hip["jic_type"] == mine["jic_type"]
        expected = mine["arc_deg"] + (other["arc_deg"] if other else 0.0)
        assert hip["kerboul_angle_deg"] == pytest.approx(expected, abs=0.1)
        assert hip["kerboul_partial"] is (other is None)
        if hip["series_instance_uid"] == uid["AX T1"]:
            assert hip["classification"] is None
    for side in ("left", "right"):
        grades = {h["grade"] for h in hips if h["side"] == side}
        for hip in (h for h in hips if h["side"] == side):
            flagged = any(f.startswith("series_disagreement:") for f in hip["flags"])
            assert flagged is (len(grades) > 1)


def _copy_with(paths: list[Path], out: Path, **changes: Any) -> list[Path]:
    """The files of ``paths`` written again under ``out`` with new SOP instance UIDs and
    the header ``changes`` (a callable value gets the file's index)."""
    import pydicom
    from pydicom.uid import generate_uid

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        for key, value in changes.items():
            setattr(ds, key, value(k) if callable(value) else value)
        written.append(out / f"{k:03d}.dcm")
        ds.save_as(written[-1])
    return written


def test_a_stack_with_repeated_positions_is_not_graded_and_says_why(
    dicom_inputs: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two slices written twice at their own position (a repeat in one series): the
    volume cannot be measured, the series is not graded, and the reason is printed."""
    monkeypatch.setattr(grade_cli, "load_segmenter", lambda weights, device: TruthSegmenter())
    stack = dicom_inputs["bilateral"]
    _copy_with(stack, tmp_path / "in" / "a")
    _copy_with(stack[2:4], tmp_path / "in" / "b")
    out = tmp_path / "out"
    assert run_grade([str(tmp_path / "in"), "--out", str(out), "--no-progress"]) == 1
    document = json.loads((out / "results.json").read_text())
    (row,) = document["series"]
    assert row["graded"] is False
    assert row["not_graded_reason"].startswith("2 of 10 images lie at the position of another")
    assert document["hips"] == [] and document["images"] == []
    err = capsys.readouterr().err
    assert f"not graded: {row['not_graded_reason']}" in err and "1 series not graded" in err


def test_images_at_one_position_are_graded_each_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crops written as one series, all at one position: not a stack, so each is graded
    as it would be on its own, and no volumetric hip is made of them."""
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_hip_crop

    monkeypatch.setattr(grade_cli, "load_segmenter", lambda weights, device: TruthSegmenter())
    crops = [
        make_hip_crop(5400 + k, necrosis=grade, pattern="homogeneous", mimic=None, level_mm=2)
        for k, grade in enumerate(("none", "mild", "severe"))
    ]
    alone = []
    for k, crop in enumerate(crops):
        alone += write_mr_series(
            encode_truth(crop.image, crop.labels)[None],
            tmp_path / "alone" / str(k),
            pixel_spacing_mm=crops[0].pixel_spacing_mm,
            slice_thickness_mm=3.0,
            laterality="L",
            series_instance_uid=f"1.2.826.0.1.3680043.10.1.3{k}",
        )
    _copy_with(
        alone,
        tmp_path / "together",
        SeriesInstanceUID="1.2.826.0.1.3680043.10.1.4",
        InstanceNumber=lambda k: k + 1,
    )
    out_alone, out_together = tmp_path / "out-alone", tmp_path / "out-together"
    assert run_grade([str(tmp_path / "alone"), "--out", str(out_alone), "--no-progress"]) == 0
    assert run_grade([str(tmp_path / "together"), "--out", str(out_together), "--no-progress"]) == 0
    one = json.loads((out_alone / "results.json").read_text())
    three = json.loads((out_together / "results.json").read_text())
    assert [r["graded"] for r in three["series"]] == [True]
    assert three["hips"] == []  # three separate images make no volume
    by_number = {i["instance_number"]: i["hips"] for i in three["images"]}
    expected = [i["hips"] for i in sorted(one["images"], key=lambda i: i["series_instance_uid"])]
    assert [by_number[k] for k in (1, 2, 3)] == expected
    assert [h["grade"] for (h,) in expected] == [c.grade.value for c in crops]
