"""grade_series / grade_slice end to end on phantoms, with a ground-truth test double.

``TruthSegmenter`` is a test double for the network, not a product path: the phantom's
true head is written into the least significant bit of the stored values (even = not
head, odd = head; a change of at most one unit in hundreds), and the double answers
"odd". It therefore returns the true head on ANY window the pipeline cuts, so these tests
check windowing, pasting, thresholding, measurement and summarising, not the network.
The shipped weights are tested by the ML engineer's regression test and by
``tests/grading_tests/test_cli_grade.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest
from scipy import ndimage

from grading.engine import threshold_benchmark
from grading.engine.flags import flag_code
from grading.engine.hips import DEFAULT_CONFIG
from grading.engine.pipeline import grade_series, grade_slice
from grading.engine.threshold_benchmark import encode_truth
from grading.engine.types import MRSlice


class TruthSegmenter(threshold_benchmark.TruthSegmenter):
    """The true head from the stored values' parity, counting the calls it gets."""

    model_version = "truth-double"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(
        self, images: Sequence[npt.NDArray[np.float32]], *, batch_size: int = 16
    ) -> list[npt.NDArray[np.float32]]:
        self.calls.append(len(images))
        return super().predict(images, batch_size=batch_size)


def visible_heads(labels: npt.NDArray[np.uint8], pixel_area: float) -> npt.NDArray[np.bool_]:
    """The true heads without the specks smaller than the hip finder keeps."""
    heads = labels > 0
    components, count = ndimage.label(heads)
    sizes = np.bincount(components.ravel(), minlength=count + 1) * pixel_area
    keep = sizes >= DEFAULT_CONFIG.min_head_area_mm2
    keep[0] = False
    return np.asarray(keep[components], dtype=bool)


@cache
def phantom(seed: int, right: str, left: str):  # type: ignore[no-untyped-def]
    from grading.engine.phantoms import make_bilateral_series

    return make_bilateral_series(seed, n_slices=20, necrosis={"right": right, "left": left})


def phantom_slices(series) -> list[MRSlice]:  # type: ignore[no-untyped-def]
    pixels = encode_truth(series.images, series.labels)
    return [
        replace(m, pixels=pixels[k], sop_instance_uid=f"1.2.3.{k}", series_instance_uid="1.2.3")
        for k, m in enumerate(series.mr_slices())
    ]


@pytest.mark.parametrize(
    ("seed", "right", "left"),
    [(9000, "none", "mild"), (9002, "moderate", "severe"), (9013, "mild", "moderate")],
)
def test_series_grades_match_the_truth(seed: int, right: str, left: str) -> None:
    series = phantom(seed, right, left)
    slices = phantom_slices(series)
    segmenter = TruthSegmenter()
    seen: list[tuple[int, int]] = []
    result = grade_series(slices, segmenter, progress=lambda d, t: seen.append((d, t)))

    # label maps on each slice's own grid, heads exactly where the truth is
    pixel_area = series.pixel_spacing_mm[0] * series.pixel_spacing_mm[1]
    for k, slice_result in enumerate(result.slices):
        assert slice_result.labelmap.shape == series.labels[k].shape
        assert slice_result.labelmap.dtype == np.uint8
        assert set(np.unique(slice_result.labelmap)) <= {0, 1, 2}
        assert np.array_equal(
            slice_result.labelmap > 0, visible_heads(series.labels[k], pixel_area)
        )
        assert slice_result.sop_instance_uid == f"1.2.3.{k}"
    # per hip over the series: the volumetric grade and proportion
    assert [h.side for h in result.hips] == ["right", "left"]
    for hip in result.hips:
        truth = series.truth[hip.side]
        assert hip.grade is truth.grade, (hip, truth)
        assert hip.proportion == pytest.approx(truth.proportion, abs=0.05)
        assert hip.head_volume_mm3 == pytest.approx(truth.head_volume_mm3, rel=0.02)
        assert hip.series_instance_uid == "1.2.3"
    # necrotic pixels agree with the truth overall
    ours = np.stack([r.labelmap for r in result.slices]) == 2
    true = series.labels == 2
    if true.any():
        assert 2 * (ours & true).sum() / (ours.sum() + true.sum()) > 0.85
    else:
        assert not ours.any()
    # few predict calls: one coarse pass, then fine windows in chunks of ~16
    heads = sum(len(r.hips) for r in result.slices)
    assert segmenter.calls[0] == 2 * len(slices)
    assert len(segmenter.calls) <= 1 + -(-heads // 16) + 1
    # progress: starts at 0, never goes back, ends at (n, n)
    assert seen[0] == (0, 20) and seen[-1] == (20, 20)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert set(result.timings_s) == {"coarse", "fine", "necrosis", "uncertainty", "total"}
    assert result.model_version == "truth-double"


def test_a_lesion_continues_into_the_sections_above_it() -> None:
    """Seed 14001's right hip is severe with a fat-like interior: towards the top pole its
    sections lie wholly inside the lesion, with the band that shows it below them. The
    slice alone shows nothing there; over the series the lesion is carried upwards and
    those slices say so (``continued``). It never adds necrosis where there is none."""
    from grading.engine.phantoms import make_bilateral_series

    series = make_bilateral_series(14001, n_slices=20)
    result = grade_series(phantom_slices(series), TruthSegmenter())
    continued = []
    for k, slice_result in enumerate(result.slices):
        truth = {t.side: t for t in series.slice_truth[k]}
        for hip in slice_result.hips:
            if "continued" in {flag_code(f) for f in hip.flags}:
                continued.append(k)
                reason = next(f for f in hip.flags if flag_code(f) == "continued")
                assert "inside the necrosis of the slice below" in reason
                assert truth[hip.side].proportion > 0.5, (k, hip)
                assert hip.grade is truth[hip.side].grade, (k, hip)
    assert len(continued) >= 3, continued
    right = next(h for h in result.hips if h.side == "right")
    assert right.grade is series.truth["right"].grade


@pytest.mark.xfail(
    strict=True,
    reason="known limit (docs/grading.md): since the phantoms draw chemical shift "
    "(2026-12-07 late), seed 14001's physeal scar reads band-dark beside its fat-like "
    "lesion and step 10 follows its lateral segment down five sections: 0.67 for 0.51",
)
def test_a_continued_severe_lesion_is_measured_within_five_points() -> None:
    from grading.engine.phantoms import make_bilateral_series

    series = make_bilateral_series(14001, n_slices=20)
    result = grade_series(phantom_slices(series), TruthSegmenter())
    right = next(h for h in result.hips if h.side == "right")
    assert right.proportion == pytest.approx(series.truth["right"].proportion, abs=0.05)


def test_no_continuation_without_an_axial_orientation() -> None:
    """Which way is up is unknown without ImageOrientationPatient: nothing is carried."""
    from grading.engine.phantoms import make_bilateral_series

    series = make_bilateral_series(14001, n_slices=20)
    slices = [replace(m, image_orientation=None) for m in phantom_slices(series)]
    result = grade_series(slices, TruthSegmenter())
    flags = {flag_code(f) for r in result.slices for h in r.hips for f in h.flags}
    assert "continued" not in flags


def test_input_order_is_kept_and_sorting_is_internal() -> None:
    series = phantom(9000, "none", "mild")
    slices = phantom_slices(series)
    rng = np.random.default_rng(1)
    order = rng.permutation(len(slices))
    shuffled = [slices[i] for i in order]
    result = grade_series(shuffled, TruthSegmenter())
    straight = grade_series(slices, TruthSegmenter())
    for position, index in enumerate(order):
        assert result.slices[position].sop_instance_uid == f"1.2.3.{index}"
        assert np.array_equal(result.slices[position].labelmap, straight.slices[index].labelmap)
    assert [h.proportion for h in result.hips] == [h.proportion for h in straight.hips]


def test_slices_without_heads_and_one_sided_slices() -> None:
    series = phantom(9000, "none", "mild")
    result = grade_series(phantom_slices(series), TruthSegmenter())
    pixel_area = series.pixel_spacing_mm[0] * series.pixel_spacing_mm[1]
    for k, slice_result in enumerate(result.slices):
        truth_heads = visible_heads(series.labels[k], pixel_area)
        if not truth_heads.any():
            assert slice_result.hips == ()
            assert not slice_result.labelmap.any()
        if len(slice_result.hips) == 1:
            assert "one_side_only" in {flag_code(f) for f in slice_result.hips[0].flags}


def test_grade_slice_on_a_crop() -> None:
    from grading.engine.phantoms import make_hip_crop

    crop = make_hip_crop(5300, necrosis="moderate", pattern="homogeneous", mimic=None, level_mm=2)
    mr = MRSlice(
        pixels=encode_truth(crop.image, crop.labels),
        pixel_spacing_mm=crop.pixel_spacing_mm,
        laterality="R",
    )
    result = grade_slice(mr, TruthSegmenter())
    (hip,) = result.hips
    assert hip.side == "right"
    assert np.array_equal(result.labelmap > 0, crop.labels > 0)
    assert hip.grade is crop.grade
    assert hip.proportion == pytest.approx(crop.proportion, abs=0.03)


def test_empty_series() -> None:
    result = grade_series([], TruthSegmenter())
    assert result.slices == () and result.hips == ()


def test_a_normal_hip_with_a_dark_edge_low_down_grades_none() -> None:
    """Phantom series 6 of ``grade_balanced_series(810001)``: on its third slice the left
    (normal) head's front edge used to be dark enough to read as a subchondral patch
    (2.5 % of the section, which made the hip mild). Since the phantoms draw chemical
    shift and a stronger coil bias (2026-12-07 late) the seed renders differently; the
    hip must still grade none with no necrosis on that section. The rule that removed the
    patch is part of step 11 now (``test_series_rules``)."""
    series = phantom(810001 * 100_003 + 6, "moderate", "none")
    result = grade_series(phantom_slices(series), TruthSegmenter())
    left = next(h for h in result.hips if h.side == "left")
    assert series.truth["left"].proportion == 0.0
    assert str(left.grade) == "none", left
    section = next(h for h in result.slices[3].hips if h.side == "left")
    assert section.necrosis_area_mm2 == 0.0
