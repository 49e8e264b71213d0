"""``round_head``: on a coronal or sagittal slice a head mask cut at a lesion's band on the
lesion's side is completed to the head's circle; any other cut is left as it is."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from grading.engine.hips import round_head

SPACING = (0.5, 0.5)
SUPERIOR = (-1.0, 0.0)
SIZE = 140
RADIUS_MM = 22.0


def _cut_head(
    axis_deg: float, *, cut_mm: float = 12.0, band: bool = True
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """A disc (marrow 900) with a cap beyond a chord ``cut_mm`` from the surface around
    ``axis_deg`` (from superior, + towards the image's right); the mask leaves the cap
    out; a 1 mm cortex at 6 %; the chord is a 1.5 mm band at 9 % (or, with ``band``
    False, marrow-bright: only the cortex at its ends is dark).
    Returns (mask, pixels, full disc)."""
    mm = (np.arange(SIZE) + 0.5) * SPACING[0] - SIZE * SPACING[0] / 2
    y, x = np.meshgrid(mm, mm, indexing="ij")
    disc = np.hypot(y, x) <= RADIUS_MM
    theta = math.radians(axis_deg)
    along = -y * math.cos(theta) + x * math.sin(theta)
    beyond = along - (RADIUS_MM - cut_mm)
    pixels = np.where(disc, 900.0, 300.0).astype(np.float32)
    pixels[disc & (np.hypot(y, x) > RADIUS_MM - 1.0)] = 50.0  # the cortex
    if band:
        pixels[disc & (np.abs(beyond) < 1.5)] = 80.0
    mask = disc & (beyond < -0.5)
    return mask, pixels, disc


@pytest.mark.parametrize("axis_deg", [0.0, 60.0, -100.0])
def test_cap_cut_at_a_band_on_the_lesion_side_is_put_back(axis_deg: float) -> None:
    mask, pixels, disc = _cut_head(axis_deg)
    out = round_head(mask, pixels, SPACING, SUPERIOR, max_growth=0.6)
    assert float((out ^ disc).sum()) < 0.03 * float(disc.sum())
    assert out[mask].all()  # nothing the network found is taken away


def test_cut_without_a_band_is_left() -> None:
    mask, pixels, _ = _cut_head(0.0, band=False)
    assert np.array_equal(round_head(mask, pixels, SPACING, SUPERIOR, max_growth=0.6), mask)


def test_cut_on_the_neck_side_is_left() -> None:
    # 150 degrees from superior: the head-neck side, not where a lesion lies
    mask, pixels, _ = _cut_head(150.0)
    assert np.array_equal(round_head(mask, pixels, SPACING, SUPERIOR, max_growth=0.6), mask)


def test_growth_limit_and_unknown_direction() -> None:
    mask, pixels, _ = _cut_head(0.0, cut_mm=16.0)  # the cap: ~49 % of the rest
    grown = int(round_head(mask, pixels, SPACING, SUPERIOR, max_growth=0.6).sum())
    assert grown > int(mask.sum())
    assert np.array_equal(round_head(mask, pixels, SPACING, SUPERIOR, max_growth=0.3), mask)
    assert np.array_equal(round_head(mask, pixels, SPACING, None, max_growth=0.6), mask)
