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

from grading.engine import pipeline, threshold_benchmark
from grading.engine.hips import DEFAULT_CONFIG, Box, FemoralHead
from grading.engine.measure import flag_code
from grading.engine.necrosis import NecrosisResult
from grading.engine.pipeline import (
    GradedHead,
    continue_lesions,
    drop_isolated_caps,
    drop_lone_inferior,
    grade_series,
    grade_slice,
    support_lesions,
)
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
    assert set(result.timings_s) == {"coarse", "fine", "necrosis", "total"}
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


# ------------------------------------------------------------ series rules, unit level

GRID = (48, 48)  # pixels of 1 x 1 mm
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _stack(n: int) -> list[MRSlice]:
    """``n`` axial slices 4 mm apart on one grid, inferior to superior."""
    return [
        MRSlice(
            pixels=np.zeros(GRID, dtype=np.float32),
            pixel_spacing_mm=(1.0, 1.0),
            image_position=(0.0, 0.0, 4.0 * k),
            image_orientation=AXIAL,
        )
        for k in range(n)
    ]


def _disk_mask(radius: float) -> npt.NDArray[np.bool_]:
    rows, cols = np.indices(GRID)
    return np.asarray(np.hypot(rows - 24, cols - 24) <= radius, dtype=bool)


def _graded(
    head: npt.NDArray[np.bool_],
    necrosis: npt.NDArray[np.bool_] | None = None,
    *,
    ambiguous: bool = False,
    candidate: npt.NDArray[np.bool_] | None = None,
) -> GradedHead:
    """One right hip's head and necrosis on the whole (48, 48) grid."""
    box = Box(0, 0, *GRID)
    mask = np.zeros(GRID, dtype=bool) if necrosis is None else necrosis
    result = NecrosisResult(
        mask=mask,
        threshold=0.0,
        relative_threshold=0.7,
        reference=1.0,
        otsu_relative=0.6,
        contrast=0.5 if mask.any() else 0.0,
        otsu_separation=0.8,
        bimodal=mask.any() and not ambiguous,
        ambiguous=ambiguous,
        reason="test",
        candidate=candidate,
    )
    femoral_head = FemoralHead(
        side="right",
        window=box,
        box=box,
        mask=head,
        probability=head.astype(np.float32),
        centre_rc=(24.0, 24.0),
    )
    return GradedHead(femoral_head, result)


def test_an_isolated_cap_at_the_pole_is_not_counted() -> None:
    """Slices 0-2 show a normal head; on slice 3, above its top, the network found a
    small "head" (113 mm²) that is dark all over. The section next to it has no
    necrosis, so the cap's necrosis is partial volume, not a lesion: not counted, and the
    slice keeps a flag with the reason."""
    big, cap = _disk_mask(18.0), _disk_mask(6.0)
    graded = [[_graded(big)], [_graded(big)], [_graded(big)], [_graded(cap, cap, ambiguous=True)]]
    out = drop_isolated_caps(_stack(4), graded)
    assert not out[3][0].necrosis.mask.any()
    assert "isolated cap at the pole" in out[3][0].necrosis.not_counted
    assert all(out[k][0] is graded[k][0] for k in range(3))
    # the same at the inferior pole
    out = drop_isolated_caps(_stack(4), list(reversed(graded)))
    assert not out[0][0].necrosis.mask.any()


def test_a_cap_next_to_a_lesion_small_sections_inside_and_large_ones_are_kept() -> None:
    big, cap = _disk_mask(18.0), _disk_mask(6.0)
    lesion = big & (np.indices(GRID)[0] < 20)
    # a true lesion reaching the pole: the section next to the cap has necrosis
    graded = [[_graded(big)], [_graded(big, lesion)], [_graded(cap, cap)]]
    assert drop_isolated_caps(_stack(3), graded)[2][0] is graded[2][0]
    # a small section with a head beyond it is not at the pole
    graded = [[_graded(big)], [_graded(cap, cap)], [_graded(big)]]
    assert drop_isolated_caps(_stack(3), graded)[1][0] is graded[1][0]
    # a large last section is measured as it is
    graded = [[_graded(big)], [_graded(big)], [_graded(big, lesion)]]
    assert drop_isolated_caps(_stack(3), graded)[2][0] is graded[2][0]
    # one slice alone: nothing to compare with
    single = [[_graded(cap, cap)]]
    assert drop_isolated_caps(_stack(1), single)[0][0] is single[0][0]


def _radii_stack(radii: list[float]) -> list[list[GradedHead]]:
    return [[_graded(_disk_mask(r))] for r in radii]


def test_a_lone_section_below_the_widest_one_is_not_counted() -> None:
    """A normal hip whose head mask took in the dark joint line on one low section
    (towards the neck): necrosis there with none on the section below and the two above.
    ONFH is one volume from the anterosuperior head, so it is not counted, with a flag."""
    radii = [10.0, 14.0, 16.0, 18.0, 20.0, 19.0, 15.0]  # widest: slice 4
    edge = _disk_mask(16.0) & (np.indices(GRID)[0] < 12)
    graded = _radii_stack(radii)
    graded[2] = [_graded(_disk_mask(16.0), edge)]
    out = drop_lone_inferior(_stack(7), graded)
    assert not out[2][0].necrosis.mask.any()
    assert "below the widest section" in out[2][0].necrosis.not_counted
    assert all(out[k][0] is graded[k][0] for k in (0, 1, 3, 4, 5, 6))
    # a normal pointing down (slices sorted along it run superior to inferior): the same
    # section is found
    flipped = [
        MRSlice(
            pixels=m.pixels,
            pixel_spacing_mm=m.pixel_spacing_mm,
            image_position=(0.0, 0.0, -4.0 * k),
            image_orientation=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
        )
        for k, m in enumerate(_stack(7))
    ]
    out = drop_lone_inferior(flipped, list(reversed(graded)))
    assert not out[4][0].necrosis.mask.any()


def test_a_normal_hip_with_a_dark_edge_low_down_grades_none() -> None:
    """Phantom series 6 of ``grade_balanced_series(810001)``: on its third slice the left
    (normal) head's front edge is dark enough to read as a subchondral patch (2.5 % of
    the section, which made the hip mild). The series rule leaves it out, with a flag."""
    series = phantom(810001 * 100_003 + 6, "moderate", "none")
    result = grade_series(phantom_slices(series), TruthSegmenter())
    left = next(h for h in result.hips if h.side == "left")
    assert series.truth["left"].proportion == 0.0
    assert str(left.grade) == "none", left
    section = next(h for h in result.slices[3].hips if h.side == "left")
    assert section.necrosis_area_mm2 == 0.0
    assert any(
        flag_code(f) == "not_counted" and "below the widest section" in f for f in section.flags
    )


def test_lesions_and_sections_above_the_widest_one_are_kept() -> None:
    radii = [10.0, 14.0, 16.0, 18.0, 20.0, 19.0, 15.0]
    lesion = _disk_mask(20.0) & (np.indices(GRID)[0] < 12)
    # a lesion whose lower sections the threshold missed: necrosis two sections up
    graded = _radii_stack(radii)
    graded[2] = [_graded(_disk_mask(16.0), _disk_mask(16.0) & lesion)]
    graded[4] = [_graded(_disk_mask(20.0), lesion)]
    assert drop_lone_inferior(_stack(7), graded)[2][0] is graded[2][0]
    # a small lesion seen on one section above the widest one (the anterosuperior head)
    graded = _radii_stack(radii)
    graded[5] = [_graded(_disk_mask(19.0), _disk_mask(19.0) & lesion)]
    assert drop_lone_inferior(_stack(7), graded)[5][0] is graded[5][0]
    # a lone low section whose necrosis reaches deep into the head (a lesion whose
    # neighbours the threshold missed), not a rim at the edge
    graded = _radii_stack(radii)
    half = _disk_mask(16.0) & (np.indices(GRID)[0] < 24)
    graded[2] = [_graded(_disk_mask(16.0), half)]
    assert drop_lone_inferior(_stack(7), graded)[2][0] is graded[2][0]
    # no orientation to tell up from down, or too few slices: nothing changes
    graded = _radii_stack(radii)
    graded[2] = [_graded(_disk_mask(16.0), _disk_mask(16.0) & lesion)]
    unknown = [MRSlice(pixels=m.pixels, pixel_spacing_mm=m.pixel_spacing_mm) for m in _stack(7)]
    assert drop_lone_inferior(unknown, graded)[2][0] is graded[2][0]
    two = graded[1:3]
    assert drop_lone_inferior(_stack(2), two)[1][0] is two[1][0]


def test_a_dark_structure_inside_the_neighbouring_lesion_is_counted() -> None:
    """Slice 1 has a clear lesion in front (rows < 20). On slice 0 its lower tip shows only
    as a band-dark line, inside that lesion's footprint: counted, flagged. A line beside
    the lesion (rows > 30) is not."""
    head = _disk_mask(18.0)
    rows, cols = np.indices(GRID)
    lesion = head & (rows < 20)
    tip = head & (rows >= 12) & (rows <= 13) & (np.abs(cols - 24) <= 8)
    beside = head & (rows >= 32) & (rows <= 33) & (np.abs(cols - 24) <= 8)
    graded = [[_graded(head, candidate=tip | beside)], [_graded(head, lesion)]]
    out = support_lesions(_stack(2), graded)
    added = out[0][0].necrosis
    assert np.array_equal(added.mask, tip)
    assert "inside the necrosis of the neighbouring slice" in added.supported
    assert added.candidate is not None and np.array_equal(added.candidate, beside)
    hip = pipeline.slice_result(_stack(2)[0], out[0], bilateral=False).hips[0]
    assert "neighbour_lesion" in {flag_code(f) for f in hip.flags}
    # an ambiguous neighbour supports nothing; nor does a neighbour on another grid
    graded = [[_graded(head, candidate=tip)], [_graded(head, lesion, ambiguous=True)]]
    assert support_lesions(_stack(2), graded)[0][0] is graded[0][0]
    moved = _stack(2)
    moved[1] = replace(moved[1], image_position=(5.0, 0.0, 4.0))
    graded = [[_graded(head, candidate=tip)], [_graded(head, lesion)]]
    assert support_lesions(moved, graded)[0][0] is graded[0][0]


def test_support_follows_a_lesion_over_several_slices() -> None:
    """A lesion seen on slice 2 only, shown on slices 1 and 0 by candidates inside it."""
    head = _disk_mask(18.0)
    rows = np.indices(GRID)[0]
    lesion = head & (rows < 20)
    graded = [
        [_graded(head, candidate=head & (rows < 12))],
        [_graded(head, candidate=head & (rows < 16))],
        [_graded(head, lesion)],
    ]
    out = support_lesions(_stack(3), graded)
    assert out[1][0].necrosis.mask.sum() == (head & (rows < 16)).sum()
    assert out[0][0].necrosis.mask.sum() == (head & (rows < 12)).sum()


def test_a_patch_inside_the_lesion_below_is_carried_up_but_not_its_edge() -> None:
    """A mixed interior keeps marrow-bright patches: on a section mostly inside the
    lesion below, such a patch cut off by nothing dark reads as viable. Where the section
    has necrosis of its own, the part of the lower lesion deeper than 1.5 mm inside its
    edge is carried up (the patch), its edge is not (the edge of the lower lesion is not
    sharper than that, and a generous edge would grow from slice to slice)."""
    head = _disk_mask(18.0)
    rows, cols = np.indices(GRID)
    below = head & (rows < 36)
    patch = (rows >= 14) & (rows < 22) & (cols >= 14) & (cols < 24)
    own = head & (rows < 34) & ~patch
    graded = [[_graded(head, below)], [_graded(head, own)]]
    out = continue_lesions(_stack(2), graded)
    necrosis = out[1][0].necrosis
    assert (necrosis.mask & patch).sum() == (head & patch).sum()
    assert not (necrosis.mask & (rows >= 34)).any()
    assert "inside the necrosis of the slice below" in necrosis.continued
