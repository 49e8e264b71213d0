"""Necrosis on coronal and sagittal sections (step 6c): the band cuts off the necrotic
segment towards the lesion's side; marrow oedema on the viable side is not necrosis.

Analytic coronal head sections (row 0 superior, so the lesion's direction is up), graded
with their true head mask so only the threshold step is under test.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from grading.engine.necrosis import (
    OUT_OF_AXIAL_STEPS,
    SECTION_STEPS,
    find_necrosis,
    lesion_direction_in_image,
)

SPACING = (0.5, 0.5)
SUPERIOR = (-1.0, 0.0)  # coronal: the top of the image is superior
SIZE = 140
RADIUS_MM = 22.0
MARROW = 900.0


def _section(
    *,
    axis_deg: float | None = None,
    cap_deg: float = 50.0,
    fat_like: bool = True,
    oedema_mm: float = 0.0,
    seed: int = 0,
) -> tuple[
    npt.NDArray[np.float32], npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]
]:
    """A coronal head section (marrow 900, 1 mm cortex, fat 1000 around) with a cap
    lesion around ``axis_deg`` (from superior, + towards the image's right), its margin
    a 1.6 mm band at 9 % inside a 1.6 mm band at 22 % of marrow; the interior fat-like
    (85 %) or low (37 %); ``oedema_mm`` of marrow at 42 % on the deep side of the margin
    (the volume phantom's contrasts). Returns (pixels, head, true necrosis, oedema)."""
    mm = (np.arange(SIZE) + 0.5) * SPACING[0] - SIZE * SPACING[0] / 2
    y, x = np.meshgrid(mm, mm, indexing="ij")
    r = np.hypot(y, x)
    head = r <= RADIUS_MM
    img = np.where(head, MARROW, 1000.0)
    img[(r > RADIUS_MM - 1.0) & head] = 50.0
    necrosis = np.zeros_like(head)
    oedema = np.zeros_like(head)
    if axis_deg is not None:
        theta = math.radians(axis_deg)
        along = -y * math.cos(theta) + x * math.sin(theta)
        margin = along - RADIUS_MM * math.cos(math.radians(cap_deg))
        marrow = head & (r <= RADIUS_MM - 1.0)
        necrosis = head & (margin > 0)
        img[necrosis & marrow] = (0.85 if fat_like else 0.37) * MARROW
        img[necrosis & marrow & (margin < 3.2)] = 0.22 * MARROW
        img[necrosis & marrow & (margin < 1.6)] = 0.09 * MARROW
        oedema = marrow & (margin <= 0) & (margin > -oedema_mm)
        img[oedema] = 0.42 * MARROW
    rng = np.random.default_rng(seed)
    img = img + rng.normal(0.0, 20.0, img.shape)
    return img.astype(np.float32), head, necrosis, oedema


def _coronal(pixels: npt.NDArray[np.float32], head: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    return find_necrosis(pixels, head, SPACING, anterior=SUPERIOR, plane="coronal").mask


def _dice(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> float:
    return 2.0 * float((a & b).sum()) / float(a.sum() + b.sum())


def test_the_coronal_steps_replace_5_to_6b_only() -> None:
    assert [s.step for s in OUT_OF_AXIAL_STEPS] == ["1-4", "6c", "7", "8"]
    assert "6c" not in [s.step for s in SECTION_STEPS]


@pytest.mark.parametrize("seed", [0, 1])
def test_normal_head_has_no_necrosis(seed: int) -> None:
    pixels, head, _, _ = _section(seed=seed)
    assert not _coronal(pixels, head).any()


@pytest.mark.parametrize("fat_like", [True, False])
def test_superior_cap_is_found(fat_like: bool) -> None:
    pixels, head, truth, _ = _section(axis_deg=15.0, fat_like=fat_like)
    found = _coronal(pixels, head)
    assert _dice(found, truth) > 0.8


@pytest.mark.parametrize("fat_like", [True, False])
def test_oedema_under_the_band_is_not_necrosis(fat_like: bool) -> None:
    pixels, head, truth, oedema = _section(axis_deg=15.0, fat_like=fat_like, oedema_mm=12.0)
    found = _coronal(pixels, head)
    assert _dice(found, truth) > 0.8
    assert float((found & oedema).sum()) < 0.1 * float(oedema.sum())
    # the axial steps (no band partition) count the oedema: the rule is what separates it
    axial = find_necrosis(pixels, head, SPACING, anterior=SUPERIOR).mask
    assert float((axial & oedema).sum()) > 0.5 * float(oedema.sum())


def test_medial_cap_at_the_equator_is_found() -> None:
    # a lesion centred 95 degrees from superior: just below the equator, inside the
    # 120-degree limit
    pixels, head, truth, _ = _section(axis_deg=95.0, cap_deg=45.0)
    assert _dice(_coronal(pixels, head), truth) > 0.7


def test_cap_on_the_neck_side_is_not_counted() -> None:
    # the same segment in the inferior third (150 degrees from superior) is not a lesion
    # under the roof: not counted on a coronal section
    pixels, head, _, _ = _section(axis_deg=150.0, cap_deg=45.0)
    assert not _coronal(pixels, head).any()


@pytest.mark.parametrize(
    ("orientation", "direction"),
    [
        ((1, 0, 0, 0, 1, 0), (-1.0, 0.0)),  # axial: anterior is up
        ((1, 0, 0, 0, 0, -1), (-1.0, 0.0)),  # coronal: superior is up
        ((0, 1, 0, 0, 0, -1), (-math.sqrt(0.5), -math.sqrt(0.5))),  # sagittal: up and front
        ((0, 1, 0, 0, 0, 1), (math.sqrt(0.5), -math.sqrt(0.5))),  # sagittal, rows upwards
    ],
)
def test_lesion_direction_per_plane(
    orientation: tuple[float, float, float, float, float, float],
    direction: tuple[float, float],
) -> None:
    assert lesion_direction_in_image(orientation) == pytest.approx(direction)
    assert lesion_direction_in_image(None) is None
