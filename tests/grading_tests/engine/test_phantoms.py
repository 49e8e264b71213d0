"""Synthetic T1 hip phantoms: determinism, label invariants, truth, grade targeting, mimics."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from grading.engine.grading_rules import grade_from_proportion
from grading.engine.phantoms import (
    PhantomSeries,
    grade_balanced_series,
    make_bilateral_series,
    make_hip_crop,
    make_training_crops,
)
from grading.engine.types import NECROSIS, VIABLE_HEAD, Grade

SMALL = {"matrix": (160, 192), "pixel_spacing_mm": 2.4, "n_slices": 14}


class Bilateral(NamedTuple):
    series: PhantomSeries
    right: Grade
    left: Grade


@pytest.fixture(scope="module")
def bilateral() -> Bilateral:
    # coarse grid keeps the test fast; spacing outside the clinical range is fine for the maths
    series = make_bilateral_series(
        11, necrosis={"right": "moderate", "left": "severe"}, slice_thickness_mm=4.0, **SMALL
    )
    return Bilateral(series, Grade.MODERATE, Grade.SEVERE)


def _side_masks(series: PhantomSeries) -> tuple[np.ndarray, np.ndarray]:
    """Columns left of the image centre show the patient's right (and the other way round)."""
    cols = series.labels.shape[2]
    right = np.zeros(series.labels.shape[1:], bool)
    right[:, : cols // 2] = True
    return right, ~right


def test_same_seed_same_series_other_seed_differs() -> None:
    a = make_bilateral_series(3, **SMALL)
    b = make_bilateral_series(3, **SMALL)
    c = make_bilateral_series(4, **SMALL)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.truth == b.truth
    assert a.images.shape != c.images.shape or not np.array_equal(a.images, c.images)


def test_series_shapes_types_and_geometry(bilateral: Bilateral) -> None:
    s = bilateral.series
    assert s.images.shape == (14, 160, 192) and s.images.dtype == np.float32
    assert s.labels.shape == s.images.shape and s.labels.dtype == np.uint8
    assert set(np.unique(s.labels)) <= {0, VIABLE_HEAD, NECROSIS}
    assert s.images.min() >= 0 and s.images.max() <= s.acquisition.intensity_max
    np.testing.assert_array_equal(s.images, np.rint(s.images))  # whole stored values
    assert s.pixel_spacing_mm == (2.4, 2.4)
    assert s.slice_thickness_mm == s.spacing_between_slices_mm == 4.0
    assert s.image_orientation == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert s.position(3)[2] == pytest.approx(s.first_position[2] + 12.0)
    slices = s.mr_slices()
    assert len(slices) == 14 and slices[0].pixels.shape == (160, 192)


def test_random_matrix_spacing_and_thickness_in_range() -> None:
    for seed in range(6):
        s = make_bilateral_series(seed, n_slices=1)
        assert 0.6 <= min(s.pixel_spacing_mm) <= max(s.pixel_spacing_mm) <= 1.6
        assert 3.0 <= s.slice_thickness_mm <= 5.0
        assert s.acquisition.intensity_max in (1000, 4095, 30000)
        assert 8.0 <= s.acquisition.snr <= 40.0


def test_heads_on_middle_slices_absent_above_and_below(bilateral: Bilateral) -> None:
    s = bilateral.series
    for side in ("right", "left"):
        present = s.truth[side].head_slices
        assert present, side
        assert min(present) > 0 and max(present) < s.images.shape[0] - 1
        # contiguous run of slices through the sphere
        assert list(present) == list(range(min(present), max(present) + 1))
    head = (s.labels > 0).reshape(s.labels.shape[0], -1).any(axis=1)
    assert not head[0] and not head[-1]
    assert head[s.images.shape[0] // 2]
    for k in range(s.images.shape[0]):
        assert bool(s.slice_truth[k]) == bool(head[k])


def test_each_head_on_its_own_side(bilateral: Bilateral) -> None:
    s = bilateral.series
    right, left = _side_masks(s)
    for k in s.truth["right"].head_slices:
        assert (s.labels[k][right] > 0).any()
    for k in s.truth["left"].head_slices:
        assert (s.labels[k][left] > 0).any()


def test_truth_matches_label_volumes_and_requested_grade(bilateral: Bilateral) -> None:
    s = bilateral.series
    voxel = s.pixel_spacing_mm[0] * s.pixel_spacing_mm[1] * s.spacing_between_slices_mm
    right, left = _side_masks(s)
    for side, mask, grade in (("right", right, bilateral.right), ("left", left, bilateral.left)):
        lab = s.labels[:, mask]
        head = np.count_nonzero(lab > 0) * voxel
        nec = np.count_nonzero(lab == NECROSIS) * voxel
        t = s.truth[side]
        assert t.head_volume_mm3 == pytest.approx(head)
        assert t.necrosis_volume_mm3 == pytest.approx(nec)
        assert t.proportion == pytest.approx(nec / head)
        assert t.proportion == pytest.approx(t.target_proportion, abs=0.01)
        assert t.grade == grade == grade_from_proportion(t.proportion)
        per_slice = [h for hips in s.slice_truth for h in hips if h.side == side]
        assert sum(
            h.head_area_mm2 for h in per_slice
        ) * s.spacing_between_slices_mm == pytest.approx(head)


def test_necrosis_is_anterosuperior_and_varies_along_the_slices(bilateral: Bilateral) -> None:
    s = bilateral.series
    t = s.truth["left"]
    props = [h.proportion for k in t.head_slices for h in s.slice_truth[k] if h.side == "left"]
    assert max(props) - min(props) > 0.2  # a 3-D blob, not the same share on every slice
    upper = np.mean(props[len(props) // 2 :])
    lower = np.mean(props[: len(props) // 2])
    assert upper > lower  # slices go inferior -> superior
    rows = np.nonzero(s.labels == NECROSIS)[1]
    head_rows = np.nonzero(s.labels > 0)[1]
    assert rows.mean() < head_rows.mean()  # anterior = towards the top of the image


def test_necrosis_always_inside_the_head() -> None:
    for seed in range(3):
        crop = make_hip_crop(seed, size=96, pixel_spacing_mm=1.4, necrosis="severe")
        assert set(np.unique(crop.labels)) <= {0, 1, 2}
        assert crop.has_head and crop.proportion > 0.30 and crop.grade == Grade.SEVERE
    # dilating necrosis never reaches background: it sits within head pixels
    s = make_bilateral_series(5, necrosis={"right": "severe", "left": "mild"}, **SMALL)
    assert np.all(s.labels[s.labels == NECROSIS] > 0)


@pytest.mark.parametrize("grade", list(Grade))
def test_requested_grade_is_what_the_labels_say(grade: Grade) -> None:
    s = make_bilateral_series(21, necrosis={"right": grade.value, "left": 0.0}, **SMALL)
    assert s.truth["right"].grade == grade
    assert s.truth["left"].grade == Grade.NONE
    assert s.truth["left"].necrosis_volume_mm3 == 0.0


def test_exact_proportion_target() -> None:
    s = make_bilateral_series(8, necrosis={"right": 0.2, "left": 0.05}, **SMALL)
    assert s.truth["right"].proportion == pytest.approx(0.2, abs=0.005)
    assert s.truth["left"].proportion == pytest.approx(0.05, abs=0.005)


def test_grade_balanced_series_spans_all_grades() -> None:
    sets = grade_balanced_series(2, 4, matrix=(96, 128), pixel_spacing_mm=3.6, n_slices=10)
    for side in ("right", "left"):
        assert {s.truth[side].grade for s in sets} == set(Grade)


@pytest.mark.parametrize("mimic", ["physeal_scar", "oedema"])
def test_mimics_are_labelled_viable_head(mimic: str) -> None:
    crop = make_hip_crop(
        4, size=128, pixel_spacing_mm=0.9, necrosis=0.0, mimic=mimic, level_mm=6.0, snr=1e6
    )
    assert crop.mimic == mimic and crop.has_head
    assert not (crop.labels == NECROSIS).any() and crop.grade == Grade.NONE
    plain = make_hip_crop(
        4, size=128, pixel_spacing_mm=0.9, necrosis=0.0, mimic=None, level_mm=6.0, snr=1e6
    )
    head = crop.labels == VIABLE_HEAD
    np.testing.assert_array_equal(head, plain.labels == VIABLE_HEAD)
    # the mimic lowers signal in the head, never to a lesion-wide dark region
    ratio = crop.image[head] / np.maximum(plain.image[head], 1)
    if mimic == "physeal_scar":  # a thin dark line
        assert ratio.min() < 0.7
        assert 0 < np.mean(ratio < 0.8) < 0.15
    else:  # mild diffuse oedema: slightly lower signal, no band
        assert 0.75 < ratio.mean() < 0.97
        assert ratio.min() > 0.6


def test_crop_above_the_head_has_no_head() -> None:
    crop = make_hip_crop(1, size=64, pixel_spacing_mm=2.0, level_mm=40.0)
    assert not crop.has_head and not crop.labels.any() and crop.grade == Grade.NONE


def test_training_crops_shapes_determinism_and_mix() -> None:
    a_img, a_lab = make_training_crops(24, 7, 64)
    b_img, b_lab = make_training_crops(24, 7, 64)
    assert a_img.shape == (24, 64, 64) and a_img.dtype == np.float32
    assert a_lab.shape == (24, 64, 64) and a_lab.dtype == np.uint8
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    assert set(np.unique(a_lab)) <= {0, 1, 2}
    with_head = (a_lab.reshape(24, -1) > 0).any(axis=1)
    assert 0 < np.count_nonzero(~with_head) < 12  # some windows show no femoral head
    assert (a_lab == NECROSIS).any()


def test_bad_side_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="right"):
        make_bilateral_series(0, necrosis={"middle": 0.1}, **SMALL)


def test_onfh_phantoms_writes_dicom_labels_and_truth(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from PIL import Image

    from grading.cli.phantoms import write_phantoms
    from grading.dicom.reader import read_mr_slice

    truth = write_phantoms(
        tmp_path,
        count=1,
        seed=3,
        n_slices=4,
        crops=1,
        series_options={"matrix": (64, 80), "pixel_spacing_mm": 5.0},
        crop_options={"size": 64, "pixel_spacing_mm": 2.0},
    )
    assert json.loads((tmp_path / "truth.json").read_text()) == json.loads(json.dumps(truth))
    series = truth["series"][0]
    assert [h["side"] for h in series["hips"]] == ["right", "left"]
    for entry in series["slices"]:
        mr = read_mr_slice(tmp_path / entry["file"])
        labels = np.asarray(Image.open(tmp_path / entry["labelmap"]))
        assert mr.sop_instance_uid == entry["sop_instance_uid"]
        assert entry["labelmap"].endswith(f"{mr.sop_instance_uid}.png")
        assert labels.shape == mr.shape == (64, 80) and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= {0, 1, 2}
        assert mr.pixel_spacing_mm == (5.0, 5.0)
    crop = truth["crops"][0]
    mr = read_mr_slice(tmp_path / crop["file"])
    assert mr.shape == (64, 64) and mr.laterality in ("L", "R")


def test_normal_head_variants_are_viable_head_and_darker_than_marrow() -> None:
    """Seed 3's right hip has all three variants of its head (fovea capitis, a red marrow
    island, the compressive trabeculae): drawn darker than the head's fatty marrow,
    labelled viable head, and the hip is graded none by its truth."""
    from grading.engine.phantoms.tissues import HEAD_VARIANT_CLASSES, TissueClass

    series = make_bilateral_series(
        3,
        necrosis={"right": 0.0, "left": 0.0},
        mimics={"right": None, "left": None},
        matrix=(256, 256),
        pixel_spacing_mm=1.4,
        slice_thickness_mm=3.0,
        snr=1e6,
    )
    assert series.tissue is not None and series.truth["right"].grade == Grade.NONE
    right = np.zeros(series.labels.shape, dtype=bool)
    right[:, :, :128] = True  # the patient's right is the image's left
    head = (series.labels == VIABLE_HEAD) & right
    marrow = float(np.median(series.images[head & (series.tissue == TissueClass.HEAD_MARROW)]))
    for variant in HEAD_VARIANT_CLASSES:
        drawn = (series.tissue == variant) & right
        assert drawn.any(), variant
        inside = drawn & head
        assert inside.any() and not (series.labels[drawn] == NECROSIS).any()
        assert float(np.median(series.images[inside])) < 0.98 * marrow, variant


def test_chemical_shift_darkens_one_side_of_a_fat_water_edge() -> None:
    """Fat displaced 2 pixels along the columns: a gap (water signal only) on one side
    of the edge between muscle and fat, an overlap (brighter than either) on the other
    side of the opposite edge."""
    from grading.engine.phantoms.acquisition import chemical_shift
    from grading.engine.phantoms.tissues import TissueClass

    tissue = np.full((8, 40), int(TissueClass.MUSCLE), dtype=np.uint8)
    tissue[:, 10:30] = int(TissueClass.FAT)
    signal = np.where(tissue == int(TissueClass.FAT), 1.0, 0.33).astype(np.float32)
    moved = chemical_shift(signal, tissue, 2.0, axis=1)
    assert moved[4, 10] < 0.33 and moved[4, 11] < 0.33  # the fat has left: a dark rim
    assert moved[4, 30] > 1.0 and moved[4, 31] > 1.0  # fat over muscle: a bright rim
    np.testing.assert_allclose(moved[:, 14:28], 1.0)
