"""Phantom family B: determinism, label truth, geometry, grade balance, DICOM round trip."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from grading.cli import main
from grading.dicom.reader import read_mr_slice
from grading.engine.grading_rules import grade_from_proportion
from grading.engine.phantoms_b import (
    PhantomBSeries,
    make_crop,
    make_evaluation_set,
    make_series,
    make_training_crops,
)
from grading.engine.phantoms_b import anatomy as an
from grading.engine.types import Grade

BONE_IN_HEAD = {an.CORTEX, an.YELLOW, an.RED, an.NECROTIC, an.BAND, an.OEDEMA, an.FLUID}


@pytest.fixture(scope="module")
def series() -> PhantomBSeries:
    return make_series(11, grades=("severe", "none"), n_slices=5)


def _hip_counts(s: PhantomBSeries, side: str) -> tuple[int, int]:
    """Head and necrosis pixels of one hip from the label maps alone (split at x = 0)."""
    head = nec = 0
    for mr_slice, labels in zip(s.slices, s.labels, strict=True):
        x0 = mr_slice.image_position[0] if mr_slice.image_position else 0.0
        x = x0 + mr_slice.pixel_spacing_mm[1] * np.arange(labels.shape[1])
        cols = x > 0 if side == "left" else x < 0
        head += int(np.count_nonzero(labels[:, cols] > 0))
        nec += int(np.count_nonzero(labels[:, cols] == 2))
    return head, nec


def test_same_seed_same_series_other_seed_other(series: PhantomBSeries) -> None:
    again = make_series(11, grades=("severe", "none"), n_slices=5)
    for a, b in zip(series.slices, again.slices, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
        assert a.sop_instance_uid == b.sop_instance_uid
    assert all(np.array_equal(a, b) for a, b in zip(series.labels, again.labels, strict=True))
    other = make_series(12, grades=("severe", "none"), n_slices=5)
    assert other.slices[0].series_instance_uid != series.slices[0].series_instance_uid
    assert not np.array_equal(other.slices[2].pixels, series.slices[2].pixels)


def test_requested_grades_and_proportions_match_the_label_maps(series: PhantomBSeries) -> None:
    assert series.hips["left"].grade == Grade.SEVERE
    assert series.hips["right"].grade == Grade.NONE
    assert series.hips["right"].lesion_style == "none"
    for side, hip in series.hips.items():
        head, nec = _hip_counts(series, side)
        assert head == sum(hip.slice_head_pixels) > 0
        assert nec == sum(hip.slice_necrosis_pixels)
        assert hip.proportion == pytest.approx(nec / head)
        assert hip.grade == grade_from_proportion(hip.proportion)
        s0 = series.slices[0]
        voxel = s0.pixel_area_mm2 * float(s0.spacing_between_slices_mm or 0)
        assert hip.head_volume_mm3 == pytest.approx(head * voxel)


def test_necrosis_lies_inside_the_femoral_head_bone(series: PhantomBSeries) -> None:
    for labels, tissue in zip(series.labels, series.tissue, strict=True):
        assert set(np.unique(labels)) <= {0, 1, 2}
        assert set(np.unique(tissue[labels > 0])) <= BONE_IN_HEAD
        lesion_tissue = (tissue == an.NECROTIC) | (tissue == an.BAND)
        assert np.all(labels[lesion_tissue] == 2)


def test_geometry_spacing_orientation_and_sides(series: PhantomBSeries) -> None:
    first = series.slices[0]
    spacing = float(first.spacing_between_slices_mm or 0)
    assert 0.5 <= first.pixel_spacing_mm[0] == first.pixel_spacing_mm[1] <= 1.0
    assert 3.0 <= float(first.slice_thickness_mm or 0) <= 6.0
    assert float(first.slice_thickness_mm or 0) <= spacing
    zs = [s.image_position[2] for s in series.slices if s.image_position]
    assert np.allclose(np.diff(zs), spacing, atol=1e-3)
    assert all(s.image_orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0) for s in series.slices)
    assert [s.instance_number for s in series.slices] == [1, 2, 3, 4, 5]
    # the patient's left hip is on the image's right (larger column, larger x)
    k = int(np.argmax(series.hips["left"].slice_head_pixels))
    labels = series.labels[k]
    cols = np.nonzero(labels.any(axis=0))[0]
    left_cols = cols[cols > labels.shape[1] / 2]
    right_cols = cols[cols < labels.shape[1] / 2]
    assert np.count_nonzero(labels[:, left_cols] == 2) > 0  # the severe hip
    assert np.count_nonzero(labels[:, right_cols] == 2) == 0


def test_t1_contrast_fat_bright_muscle_intermediate_fluid_and_cortex_dark(
    series: PhantomBSeries,
) -> None:
    pixels = np.concatenate([s.pixels.ravel() for s in series.slices])
    tissue = np.concatenate([t.ravel() for t in series.tissue])

    def median(cls: int) -> float:
        return float(np.median(pixels[tissue == cls]))

    assert median(an.FAT) > 1.5 * median(an.MUSCLE)
    assert median(an.YELLOW) > 1.5 * median(an.MUSCLE)
    assert median(an.MUSCLE) > 1.5 * median(an.CORTEX)
    assert median(an.MUSCLE) > median(an.AIR)
    assert pixels.min() >= 0 and np.all(pixels == np.rint(pixels))


@pytest.mark.parametrize("grade", ["none", "mild", "moderate", "severe"])
def test_crop_has_the_requested_grade(grade: str) -> None:
    crop = make_crop(100 + len(grade), grade=grade)
    assert crop.slice.pixels.shape == crop.labels.shape == crop.tissue.shape == (256, 256)
    assert crop.grade == Grade(grade) == grade_from_proportion(crop.proportion)
    assert crop.slice.laterality == ("L" if crop.side == "left" else "R")
    head = np.count_nonzero(crop.labels > 0)
    assert head > 0 and crop.proportion == pytest.approx(np.count_nonzero(crop.labels == 2) / head)


def test_training_crops_shapes_all_grades_and_speed() -> None:
    start = time.process_time()
    images, labels, tissue = make_training_crops(5, 64)
    cpu_s = time.process_time() - start
    assert images.shape == (64, 128, 128) and images.dtype == np.float32
    assert labels.shape == tissue.shape == (64, 128, 128) and labels.dtype == np.uint8
    grades = Counter(
        grade_from_proportion(np.count_nonzero(lab == 2) / max(1, np.count_nonzero(lab > 0)))
        for lab in labels
    )
    assert set(grades) == set(Grade) and min(grades.values()) >= 12
    assert cpu_s < 30.0, f"64 training crops took {cpu_s:.1f} s of CPU (expected ~2 s)"
    again, _, _ = make_training_crops(5, 64)
    assert np.array_equal(images, again)


def test_evaluation_set_is_grade_balanced() -> None:
    data = make_evaluation_set(3, n_series=2, n_crops=8, n_slices=3)
    hips = Counter(h.grade for s in data.series for h in s.hips.values())
    crops = Counter(c.grade for c in data.crops)
    assert hips == dict.fromkeys(Grade, 1)
    assert crops == dict.fromkeys(Grade, 2)


def test_cli_writes_dicom_truth_and_label_maps_that_read_back(tmp_path: Path) -> None:
    out = tmp_path / "set"
    argv = ["phantoms-b", "--out", str(out), "--series", "1", "--crops", "2"]
    assert main([*argv, "--seed", "4", "--n-slices", "3"]) == 0
    truth = json.loads((out / "truth.json").read_text())
    expected = make_evaluation_set(4, n_series=1, n_crops=2, n_slices=3)
    entry, series = truth["series"][0], expected.series[0]
    for k, item in enumerate(entry["slices"]):
        read = read_mr_slice(out / item["file"])
        made = series.slices[k]
        assert np.array_equal(read.pixels, made.pixels)
        assert read.sop_instance_uid == item["sop_instance_uid"] == made.sop_instance_uid
        assert read.series_instance_uid == entry["series_instance_uid"]
        assert read.pixel_spacing_mm == pytest.approx(made.pixel_spacing_mm)
        assert read.image_position == pytest.approx(made.image_position)
        assert read.image_orientation == pytest.approx(made.image_orientation)
        labels = np.asarray(Image.open(out / item["labelmap"]))
        assert np.array_equal(labels, series.labels[k])
    for side in ("left", "right"):
        hip = entry["hips"][side]
        assert hip["grade"] == series.hips[side].grade.value
        assert hip["proportion"] == pytest.approx(series.hips[side].proportion)
        heads = [s["hips"][side]["head_area_mm2"] for s in entry["slices"]]
        necs = [s["hips"][side]["necrosis_area_mm2"] for s in entry["slices"]]
        assert sum(necs) / sum(heads) == pytest.approx(hip["proportion"])
    for item, crop in zip(truth["crops"], expected.crops, strict=True):
        read = read_mr_slice(out / item["file"])
        assert np.array_equal(read.pixels, crop.slice.pixels)
        assert read.laterality == crop.slice.laterality
        labels = np.asarray(Image.open(out / item["labelmap"]))
        head = np.count_nonzero(labels > 0)
        assert item["proportion"] == pytest.approx(np.count_nonzero(labels == 2) / head)
        assert item["grade"] == grade_from_proportion(item["proportion"]).value
    _check_compare(out, truth)


def _check_compare(out: Path, truth: dict[str, object]) -> None:
    """--compare: results equal to the truth score 100 %; one wrong hip shows in the matrix."""
    series = truth["series"]
    crops = truth["crops"]
    assert isinstance(series, list) and isinstance(crops, list)
    hips = [
        {"series_instance_uid": s["series_instance_uid"], "side": side, **hip}
        for s in series
        for side, hip in s["hips"].items()
    ]
    hips += [{"series_instance_uid": c["series_instance_uid"], **c} for c in crops[1:]]
    wrong = dict(hips[0], grade="severe" if hips[0]["grade"] != "severe" else "none")
    wrong["proportion"] = 0.5 if wrong["grade"] == "severe" else 0.0
    results = out / "results.json"
    results.write_text(json.dumps({"hips": [wrong, *hips[1:]]}))
    assert main(["phantoms-b", "--out", str(out), "--compare", str(results)]) == 0
    summary = json.loads((out / "comparison.json").read_text())
    assert summary["series"]["grade_accuracy"] == 0.5
    assert sum(map(sum, summary["series"]["confusion"])) == 2
    assert summary["crops"] | {"confusion": None} == {
        "hips": 2,
        "missing": 1,
        "grade_accuracy": 1.0,
        "confusion": None,
        "proportion_mae_pp": 0.0,
    }
