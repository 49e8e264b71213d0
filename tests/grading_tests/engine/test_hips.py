"""Hip finder: layout, sides from orientation, and exact mapping of masks back to the grid.

The test double ``ThresholdSegmenter`` answers 1.0 where a pixel is at least 900 (the
synthetic heads are exactly 1000, everything else is lower), so on any window it returns
the known disc, and any off-by-one in windowing or pasting shows up as a pixel mismatch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from grading.engine.hips import (
    Box,
    HipFinderConfig,
    extract,
    find_heads,
    lr_axis_and_sides,
    plan_layout,
)
from grading.engine.types import MRSlice

HEAD_VALUE = 1000.0


class ThresholdSegmenter:
    """Deterministic fake: probability 1 where the pixel is >= 900, else 0."""

    model_version = "threshold-fake"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(
        self, images: Sequence[npt.NDArray[np.float32]], *, batch_size: int = 16
    ) -> list[npt.NDArray[np.float32]]:
        self.calls.append(len(images))
        return [(np.asarray(im) >= 900.0).astype(np.float32) for im in images]


def disc(
    shape: tuple[int, int], spacing: tuple[float, float], centre_mm: tuple[float, float], r: float
) -> npt.NDArray[np.bool_]:
    """Pixels whose centre lies within ``r`` mm of ``centre_mm`` (row mm, col mm)."""
    rows = (np.arange(shape[0]) + 0.5) * spacing[0]
    cols = (np.arange(shape[1]) + 0.5) * spacing[1]
    return ((rows[:, None] - centre_mm[0]) ** 2 + (cols[None, :] - centre_mm[1]) ** 2) <= r * r


def bilateral_slice(
    shape: tuple[int, int],
    spacing: tuple[float, float],
    *,
    orientation: tuple[float, float, float, float, float, float] = (1, 0, 0, 0, 1, 0),
    heads: tuple[bool, bool] = (True, True),
    radius_mm: float = 24.0,
    offset_mm: float = 0.0,
) -> tuple[MRSlice, list[npt.NDArray[np.bool_]]]:
    """A body (ellipse, 300) in air (0) with up to two heads (discs, 1000) 90 mm either
    side of the body's centre along the patient's left-right image axis.

    Returns the slice and the true head masks in order (low index half, high index half).
    """
    axis, _, _ = lr_axis_and_sides(orientation)
    h, w = shape
    centre = (
        h * spacing[0] / 2.0 + (offset_mm if axis == 0 else 0.0),
        w * spacing[1] / 2.0 + (offset_mm if axis == 1 else 0.0),
    )
    rows = (np.arange(h) + 0.5) * spacing[0] - centre[0]
    cols = (np.arange(w) + 0.5) * spacing[1] - centre[1]
    semi = (170.0, 120.0) if axis == 1 else (120.0, 170.0)  # lr semi-axis 170 mm
    body = (cols[None, :] / semi[0]) ** 2 + (rows[:, None] / semi[1]) ** 2 <= 1.0
    pixels = np.where(body, 300.0, 0.0).astype(np.float32)
    truths = []
    for present, sign in zip(heads, (-1.0, 1.0), strict=True):
        c = (
            centre[0] + (sign * 90.0 if axis == 0 else 10.0),
            centre[1] + (sign * 90.0 if axis == 1 else 10.0),
        )
        d = disc(shape, spacing, c, radius_mm)
        if present:
            pixels[d] = HEAD_VALUE
            truths.append(d)
    mr = MRSlice(
        pixels=pixels,
        pixel_spacing_mm=spacing,
        image_orientation=orientation,
        sop_instance_uid="1.2.3",
    )
    return mr, truths


@pytest.mark.parametrize(
    ("shape", "spacing"),
    [
        ((512, 512), (0.78125, 0.78125)),
        ((320, 448), (1.0, 0.9)),
        ((257, 383), (1.37, 1.09)),
        ((641, 479), (0.6, 0.85)),
    ],
)
def test_bilateral_masks_map_back_exactly(
    shape: tuple[int, int], spacing: tuple[float, float]
) -> None:
    mr, truths = bilateral_slice(shape, spacing)
    layout, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert layout.kind == "bilateral"
    assert [h.side for h in heads] == ["right", "left"]  # image left is the patient's right
    for head, truth in zip(heads, truths, strict=True):
        assert np.array_equal(head.full_mask(mr.shape), truth)
        assert head.box == head.window.clipped(mr.shape)
        assert head.mask.shape == head.probability.shape == head.box.shape


@pytest.mark.parametrize(
    ("shape", "spacing", "centre_mm"),
    [
        ((256, 256), (0.4, 0.4), (51.2, 51.2)),
        ((255, 257), (0.42, 0.39), (48.0, 55.0)),
        ((199, 301), (0.5, 0.33), (40.0, 60.0)),
        ((256, 256), (0.4, 0.4), (30.0, 80.0)),  # off-centre: the fine window runs off the image
    ],
)
def test_crop_masks_map_back_exactly(
    shape: tuple[int, int], spacing: tuple[float, float], centre_mm: tuple[float, float]
) -> None:
    truth = disc(shape, spacing, centre_mm, 22.0)
    pixels = np.where(truth, HEAD_VALUE, 500.0).astype(np.float32)
    mr = MRSlice(pixels=pixels, pixel_spacing_mm=spacing)
    layout, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert layout.kind == "crop"
    assert len(heads) == 1
    assert heads[0].side == "unknown"
    assert np.array_equal(heads[0].full_mask(mr.shape), truth)


@pytest.mark.parametrize(("laterality", "side"), [("L", "left"), ("R", "right"), ("", "unknown")])
def test_crop_side_from_laterality(laterality: str, side: str) -> None:
    shape, spacing = (256, 256), (0.4, 0.4)
    pixels = np.where(disc(shape, spacing, (51.2, 51.2), 22.0), HEAD_VALUE, 500.0)
    mr = MRSlice(pixels=pixels.astype(np.float32), pixel_spacing_mm=spacing, laterality=laterality)
    _, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert [h.side for h in heads] == [side]


@pytest.mark.parametrize(
    ("orientation", "sides"),
    [
        ((1, 0, 0, 0, 1, 0), ["right", "left"]),  # standard axial
        ((-1, 0, 0, 0, 1, 0), ["left", "right"]),  # flipped left-right
        ((1, 0, 0, 0, -1, 0), ["right", "left"]),  # flipped up-down: sides unchanged
        ((0, 1, 0, 1, 0, 0), ["right", "left"]),  # transposed: rows run left-right
        ((0, 1, 0, -1, 0, 0), ["left", "right"]),
        ((0.9848, 0.1736, 0, -0.1736, 0.9848, 0), ["right", "left"]),  # 10 degree in-plane tilt
    ],
)
def test_sides_follow_orientation(
    orientation: tuple[float, float, float, float, float, float], sides: list[str]
) -> None:
    mr, truths = bilateral_slice((400, 400), (0.9, 0.9), orientation=orientation)
    _, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert [h.side for h in heads] == sides
    for head, truth in zip(heads, truths, strict=True):
        assert np.array_equal(head.full_mask(mr.shape), truth)


def test_one_side_missing_gives_one_hip() -> None:
    mr, truths = bilateral_slice((400, 400), (0.9, 0.9), heads=(False, True))
    _, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert [h.side for h in heads] == ["left"]
    assert np.array_equal(heads[0].full_mask(mr.shape), truths[0])


def test_no_head_no_hip() -> None:
    mr, _ = bilateral_slice((400, 400), (0.9, 0.9), heads=(False, False))
    layout, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert layout.kind == "bilateral"
    assert heads == ()


def test_body_off_centre_splits_at_the_body_midline() -> None:
    mr, truths = bilateral_slice((420, 560), (0.8, 0.8), offset_mm=-40.0)
    layout, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert layout.midline is not None
    assert abs(layout.midline * 0.8 - (560 * 0.8 / 2 - 40.0)) < 4.0
    assert [h.side for h in heads] == ["right", "left"]
    for head, truth in zip(heads, truths, strict=True):
        assert np.array_equal(head.full_mask(mr.shape), truth)


def test_tiled_coarse_pass_finds_the_same_heads() -> None:
    mr, truths = bilateral_slice((512, 512), (0.8, 0.8))
    config = HipFinderConfig(coarse_window_mm=140.0)
    segmenter = ThresholdSegmenter()
    _, heads = find_heads([mr], segmenter, config)[0]
    assert segmenter.calls[0] > 2  # several tiles per half
    for head, truth in zip(heads, truths, strict=True):
        assert np.array_equal(head.full_mask(mr.shape), truth)


def test_series_uses_two_predict_calls() -> None:
    slices = [bilateral_slice((300, 300), (1.2, 1.2))[0] for _ in range(5)]
    segmenter = ThresholdSegmenter()
    results = find_heads(slices, segmenter)
    assert len(segmenter.calls) == 2
    assert all(len(heads) == 2 for _, heads in results)


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (255, 257), (512, 511)])
def test_extract_round_trip_on_odd_sizes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    image = rng.random(shape).astype(np.float32) + 1.0
    for box in [
        Box(-3, -5, shape[0] + 4, shape[1] + 2),
        Box(0, 0, shape[0], shape[1]),
        Box(shape[0] // 3, shape[1] // 4, shape[0] // 3 + 5, shape[1] // 4 + 9),
    ]:
        window = extract(image, box)
        assert window.shape == box.shape
        inside = box.clipped(shape)
        back = np.zeros(shape, dtype=np.float32)
        back[inside.slices] = window[inside.relative_to(box).slices]
        expected = np.zeros(shape, dtype=np.float32)
        expected[inside.slices] = image[inside.slices]
        assert np.array_equal(back, expected)
        # outside the image the window holds the fill value
        assert float(window.sum()) == pytest.approx(float(image[inside.slices].sum()), rel=1e-5)


def test_small_field_of_view_is_a_crop_and_wide_is_bilateral() -> None:
    crop = MRSlice(pixels=np.zeros((256, 256), np.float32), pixel_spacing_mm=(0.8, 0.8))
    wide = replace(crop, pixel_spacing_mm=(1.0, 1.0))
    assert plan_layout(crop).kind == "crop"  # 205 mm: the widest paper-style crop
    assert plan_layout(wide).kind == "bilateral"  # 256 mm
    assert plan_layout(replace(wide, laterality="R")).kind == "crop"


def _add_blob(mr: MRSlice, centre_mm: tuple[float, float], r: float) -> MRSlice:
    """``mr`` with a head-bright disc of radius ``r`` mm at ``centre_mm`` (row, col mm)."""
    pixels = mr.pixels.copy()
    pixels[disc(mr.shape, mr.pixel_spacing_mm, centre_mm, r)] = HEAD_VALUE
    return replace(mr, pixels=pixels)


def test_midline_blob_is_never_a_head() -> None:
    # A bright blob larger than the heads 30 mm beside the midline (perivesical fat
    # the network took for a head) loses to the real head 90 mm out.
    shape, spacing = (400, 500), (0.9, 0.9)
    mr, truths = bilateral_slice(shape, spacing)
    centre = (shape[0] * spacing[0] / 2.0, shape[1] * spacing[1] / 2.0)
    mr = _add_blob(mr, (centre[0] - 20.0, centre[1] - 30.0), 30.0)
    _, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert [h.side for h in heads] == ["right", "left"]
    for head, truth in zip(heads, truths, strict=True):
        assert np.array_equal(head.full_mask(mr.shape), truth)
    # without the head, the midline blob alone is no hip
    alone, _ = bilateral_slice(shape, spacing, heads=(False, True))
    alone = _add_blob(alone, (centre[0] - 20.0, centre[1] - 30.0), 30.0)
    _, heads = find_heads([alone], ThresholdSegmenter())[0]
    assert [h.side for h in heads] == ["left"]
    # the prior off, the blob wins on the right side (it is the larger component)
    config = HipFinderConfig(min_midline_distance_mm=0.0)
    _, heads = find_heads([mr], ThresholdSegmenter(), config)[0]
    assert not np.array_equal(heads[0].full_mask(mr.shape), truths[0])


def test_blob_at_the_lateral_skin_is_never_a_head() -> None:
    shape, spacing = (400, 500), (0.9, 0.9)
    mr, truths = bilateral_slice(shape, spacing, heads=(False, True))
    centre = (shape[0] * spacing[0] / 2.0, shape[1] * spacing[1] / 2.0)
    mr = _add_blob(mr, (centre[0], centre[1] - 160.0), 9.0)  # 10 mm inside the right skin
    _, heads = find_heads([mr], ThresholdSegmenter())[0]
    assert [h.side for h in heads] == ["left"]


class ShyCoarseSegmenter(ThresholdSegmenter):
    """Finds heads of 900 or more in head-sized windows, but in the coarse pass's large
    windows only those of 960 or more (a network that misses a faint head when it sees
    the whole half of the body, and finds it framed)."""

    def predict(
        self, images: Sequence[npt.NDArray[np.float32]], *, batch_size: int = 16
    ) -> list[npt.NDArray[np.float32]]:
        self.calls.append(len(images))
        return [
            (np.asarray(im) >= (960.0 if im.size > 15000 else 900.0)).astype(np.float32)
            for im in images
        ]


def _faint_head_series(faint: Sequence[int]) -> list[MRSlice]:
    slices = []
    for k in range(7):
        mr, truths = bilateral_slice((300, 300), (1.2, 1.2))
        pixels = mr.pixels.copy()
        if k in faint:
            pixels[truths[0]] = 950.0
        slices.append(
            replace(
                mr, pixels=pixels, image_position=(0.0, 0.0, 4.0 * k), sop_instance_uid=f"1.{k}"
            )
        )
    return slices


@pytest.mark.parametrize(
    ("faint", "bridge_mm", "found"),
    [
        ((3,), 24.0, True),  # one section missed between two found: looked for again
        ((2, 3, 4), 24.0, True),  # three in a row, 16 mm between the found ones
        ((3,), 0.0, False),  # without the bridge the coarse pass's miss stands
        ((1, 2, 3, 4, 5), 16.0, False),  # 24 mm between the found ones: too far
        ((0, 1), 24.0, False),  # at the end of the run nothing brackets it
    ],
)
def test_a_head_missed_between_two_of_its_sections_is_looked_for_again(
    faint: tuple[int, ...], bridge_mm: float, found: bool
) -> None:
    from grading.engine.pipeline import PipelineConfig, grade_series

    config = PipelineConfig(hips=HipFinderConfig(max_bridge_mm=bridge_mm))
    result = grade_series(_faint_head_series(faint), ShyCoarseSegmenter(), config=config)
    for k, slice_result in enumerate(result.slices):
        sides = {h.side for h in slice_result.hips}
        assert len(sides) == (1 if k in faint and not found else 2), (k, sides)
