"""Step 5b: marrow oedema on an axial section is not a necrotic interior.

Analytic head sections (marrow 1000, 1 mm cortex, 0.5 mm pixels, anterior at the top of
the image), graded with step 5b on and off (``NecrosisConfig.oedema_check``), so each
test fails if the step stops doing what it says, or starts doing it where it should not.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pytest

from grading.engine.necrosis import DEFAULT_NECROSIS_CONFIG, NecrosisResult, find_necrosis

SPACING = (0.5, 0.5)
ANTERIOR = (-1.0, 0.0)
SIZE = 120
RADIUS_MM = 22.0
OFF = replace(DEFAULT_NECROSIS_CONFIG, oedema_check=False)


def _grid() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    mm = (np.arange(SIZE) + 0.5) * SPACING[0] - SIZE * SPACING[0] / 2
    return np.meshgrid(mm, mm, indexing="ij")


def _section(
    *, oedema_level: float, lesion: bool, oedema_where: str = "lateral", seed: int = 0
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """A head section with a zone of ``oedema_level`` (of marrow 1000).

    ``lesion``: a fat-like lesion cut off anterolaterally (its axis 20 degrees anterior
    of lateral: sideways for step 6) by a 2 mm band at 10 %, with the oedema as a 12 mm
    shell on the viable side of the band. Without a lesion the zone is the lateral half
    of the section (``oedema_where`` "lateral") or its anterior half ("anterior").
    Returns (pixels, head, oedema zone)."""
    y, x = _grid()
    r = np.hypot(y, x)
    head = r <= RADIUS_MM
    marrow = head & (r <= RADIUS_MM - 1.0)
    img = np.where(head, 1000.0, 300.0)
    img[head & ~marrow] = 50.0
    angle = math.radians(20.0)
    m = x * math.cos(angle) - y * math.sin(angle) - 6.0
    if lesion:
        zone = marrow & (m > -12.0) & (m <= 0.0)
        img[marrow & (m > 0.0) & (m <= 2.0)] = 100.0
        img[marrow & (m > 2.0)] = 950.0
    elif oedema_where == "lateral":
        zone = marrow & (x > -2.0)
    else:
        zone = marrow & (y < 2.0)
    img[zone] = oedema_level
    rng = np.random.default_rng(seed)
    sigma = 1000.0 / 40.0
    noisy = np.hypot(img + rng.normal(0, sigma, img.shape), rng.normal(0, sigma, img.shape))
    return noisy.astype(np.float32), head, zone


def _counted(result: NecrosisResult, zone: npt.NDArray[np.bool_]) -> float:
    """Share of ``zone`` counted as necrosis."""
    return float((result.mask & zone).sum()) / float(zone.sum())


@pytest.mark.parametrize("seed", [0, 1])
def test_oedema_beside_the_band_is_not_necrosis(seed: int) -> None:
    """Oedema at 40 % of marrow on the viable side of a lesion's band: step 5 alone takes
    it for a necrotic interior (thick, darkest pixels below 45 %); step 5b leaves it to
    the viable marrow, because it reaches the marrow without a band between them."""
    pixels, head, zone = _section(oedema_level=400.0, lesion=True, seed=seed)
    without = find_necrosis(pixels, head, SPACING, anterior=ANTERIOR, config=OFF)
    assert _counted(without, zone) > 0.5, without.reason
    result = find_necrosis(pixels, head, SPACING, anterior=ANTERIOR)
    assert _counted(result, zone) < 0.05, result.reason


def test_a_clearly_dark_region_beside_the_band_stays_necrosis() -> None:
    """The same zone at 30 % of marrow (below ``clear_relative``: as dark as a necrotic
    interior) is not oedema for step 5b: it is counted with the step on as off."""
    pixels, head, zone = _section(oedema_level=300.0, lesion=True)
    result = find_necrosis(pixels, head, SPACING, anterior=ANTERIOR)
    assert _counted(result, zone) > 0.5, result.reason


@pytest.mark.parametrize("where", ["lateral", "anterior"])
@pytest.mark.parametrize("anterior", [ANTERIOR, None])
def test_without_a_band_step_5b_leaves_a_pale_zone_to_the_series(
    where: str, anterior: tuple[float, float] | None
) -> None:
    """A pale dark zone (40 %) and no band on the section: nothing is cut off, so no side
    of a band tells oedema (below the band) from a section lying wholly inside a pale
    lesion (above it). Step 5b leaves it as step 5 found it; over a series, step 9b
    decides by where the section lies (``series_rules.oedema_below_lesions``)."""
    pixels, head, zone = _section(oedema_level=400.0, lesion=False, oedema_where=where)
    without = find_necrosis(pixels, head, SPACING, anterior=anterior, config=OFF)
    result = find_necrosis(pixels, head, SPACING, anterior=anterior)
    assert _counted(without, zone) > 0.5, without.reason
    assert np.array_equal(result.mask, without.mask)


def test_coronal_sections_do_not_run_step_5b() -> None:
    """Step 5b is an axial step; coronal and sagittal sections use step 6c instead."""
    from grading.engine.necrosis import OUT_OF_AXIAL_STEPS, SECTION_STEPS

    assert "5b" in [s.step for s in SECTION_STEPS]
    assert "5b" not in [s.step for s in OUT_OF_AXIAL_STEPS]
