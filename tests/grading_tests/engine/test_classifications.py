"""JIC type, Kerboul angle, extent and stage: the rules of docs/grading.md section 5."""

from __future__ import annotations

import math

import numpy as np
import pytest

from grading.engine.classifications import (
    STAGE_MRI_ONLY,
    ClinicianFindings,
    Extent,
    JicType,
    KerboulCategory,
    extent_from_proportion,
    jic_type,
    kerboul_combined,
    necrotic_arc_deg,
    stage_from_findings,
)

SIZE = 160
CENTRE = (80.0, 80.0)
RADIUS = 25.0


def _grid() -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:SIZE, 0:SIZE].astype(float)


def _coronal(
    lesion_lateral_mm: float | None, *, lateral_sign: int = 1, ce_deg: float = 30.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A right-angled toy coronal slice at 1 mm: head disk, roof above it from the medial
    equator to ``ce_deg`` lateral of vertical, lesion under the roof from the head's
    medial edge out to ``lesion_lateral_mm`` lateral of the head centre (row 0 superior)."""
    rows, cols = _grid()
    dy, dx = rows - CENTRE[0], cols - CENTRE[1]
    lateral = dx * lateral_sign
    radius = np.hypot(dy, dx)
    head = radius <= RADIUS
    angle_from_vertical = np.degrees(np.arctan2(lateral, -dy))  # + towards lateral
    roof = (
        (radius > RADIUS + 2) & (radius < RADIUS + 12) & (dy < 0) & (angle_from_vertical <= ce_deg)
    )
    lesion = np.zeros_like(head)
    if lesion_lateral_mm is not None:
        lesion = head & (dy < -RADIUS * 0.45) & (lateral <= lesion_lateral_mm)
    return head, lesion, roof


def _edge_lateral_mm(ce_deg: float = 30.0) -> float:
    return (RADIUS + 12) * math.sin(math.radians(ce_deg))


@pytest.mark.parametrize("lateral_sign", [1, -1])
def test_jic_types_follow_the_lesions_lateral_end(lateral_sign: int) -> None:
    edge = _edge_lateral_mm()
    medial = -(RADIUS)  # the roof covers the head from its medial edge
    width = edge - medial
    expected = {
        medial + 0.25 * width: JicType.A,
        medial + 0.55 * width: JicType.B,
        medial + 0.8 * width: JicType.C1,
    }
    for lesion_end, kind in expected.items():
        head, lesion, roof = _coronal(lesion_end, lateral_sign=lateral_sign)
        result = jic_type(
            head, lesion, roof, pixel_spacing_mm=(1.0, 1.0), lateral_col_sign=lateral_sign
        )
        assert result.type == kind, (lesion_end, result)
    # Past the acetabular edge: C2 (the lesion reaches the head's lateral surface).
    head, lesion, roof = _coronal(RADIUS, lateral_sign=lateral_sign)
    result = jic_type(
        head, lesion, roof, pixel_spacing_mm=(1.0, 1.0), lateral_col_sign=lateral_sign
    )
    assert result.type == JicType.C2
    assert result.lateral_fraction is not None and result.lateral_fraction > 1.0


def test_jic_edges_are_inclusive_thirds() -> None:
    head, _, roof = _coronal(None)
    # The measured portion: from the head's medial edge column to the roof's last column.
    result = jic_type(head, head, roof, pixel_spacing_mm=(1.0, 1.0), lateral_col_sign=1)
    assert result.weight_bearing_mm is not None
    start, end = result.weight_bearing_mm
    cols = np.arange(SIZE)
    first_head_col = int(np.nonzero(head.any(axis=0))[0].min())
    for fraction, kind in ((1 / 3, JicType.A), (2 / 3, JicType.B)):
        end_col = first_head_col + start + fraction * (end - start)
        on_edge = head & (cols[None, :] <= end_col) & (np.arange(SIZE)[:, None] < 70)
        assert (
            jic_type(head, on_edge, roof, pixel_spacing_mm=(1.0, 1.0), lateral_col_sign=1).type
            == kind
        )
        past = head & (cols[None, :] <= end_col + 1) & (np.arange(SIZE)[:, None] < 70)
        assert (
            jic_type(head, past, roof, pixel_spacing_mm=(1.0, 1.0), lateral_col_sign=1).type != kind
        )


def test_jic_without_lesion_or_roof_says_why() -> None:
    head, lesion, roof = _coronal(None)
    none = jic_type(head, lesion, roof, pixel_spacing_mm=(1.0, 1.0), lateral_col_sign=1)
    assert none.type is None and "no lesion" in none.reason
    head, lesion, _ = _coronal(0.0)
    no_roof = jic_type(
        head, lesion, np.zeros_like(head), pixel_spacing_mm=(1.0, 1.0), lateral_col_sign=1
    )
    assert no_roof.type is None and "roof" in no_roof.reason


def test_jic_uses_millimetres_not_pixels() -> None:
    # The same anatomy sampled with 2 mm columns gives the same type.
    head, lesion, roof = _coronal(-RADIUS + 0.55 * (_edge_lateral_mm() + RADIUS))
    coarse = (slice(None), slice(None, None, 2))
    result = jic_type(
        head[coarse], lesion[coarse], roof[coarse], pixel_spacing_mm=(1.0, 2.0), lateral_col_sign=1
    )
    assert result.type == JicType.B


def test_necrotic_arc_of_a_cap() -> None:
    rows, cols = _grid()
    dy, dx = rows - CENTRE[0], cols - CENTRE[1]
    head = np.hypot(dy, dx) <= RADIUS
    for half_angle in (30.0, 60.0, 90.0):
        # The cap within half_angle of the superior pole.
        cap = (
            head
            & (
                np.degrees(np.arccos(np.clip(-dy / np.maximum(np.hypot(dy, dx), 1e-9), -1, 1)))
                <= half_angle
            )
            & (np.hypot(dy, dx) > RADIUS * 0.4)
        )
        arc = necrotic_arc_deg(head, cap, pixel_spacing_mm=(1.0, 1.0))
        assert arc == pytest.approx(2 * half_angle, abs=6.0)
    assert necrotic_arc_deg(head, np.zeros_like(head), pixel_spacing_mm=(1.0, 1.0)) == 0.0
    # A lesion deep inside, away from the surface, has no arc.
    core = np.hypot(dy, dx) <= RADIUS * 0.4
    assert necrotic_arc_deg(head, core, pixel_spacing_mm=(1.0, 1.0)) == 0.0


def test_kerboul_combined_categories_and_partial() -> None:
    assert kerboul_combined(None, None) is None
    edges = {
        199.9: KerboulCategory.SMALL,
        200.0: KerboulCategory.MEDIUM,
        249.9: KerboulCategory.MEDIUM,
        250.0: KerboulCategory.LARGE,
        299.9: KerboulCategory.LARGE,
        300.0: KerboulCategory.EXTENSIVE,
    }
    for total, category in edges.items():
        result = kerboul_combined(total / 2, total / 2)
        assert result is not None and result.category == category and not result.partial
        assert result.angle_deg == pytest.approx(total)
    one = kerboul_combined(120.0, None)
    assert one is not None and one.partial and one.angle_deg == 120.0 and one.category is None
    with pytest.raises(ValueError):
        kerboul_combined(400.0, 10.0)


def test_extent_edges() -> None:
    assert extent_from_proportion(0.0) is None
    assert extent_from_proportion(0.0009) is None
    assert extent_from_proportion(0.001) == Extent.A
    assert extent_from_proportion(0.1499) == Extent.A
    assert extent_from_proportion(0.15) == Extent.B
    assert extent_from_proportion(0.30) == Extent.B
    assert extent_from_proportion(0.3001) == Extent.C


def test_stage_needs_the_clinician() -> None:
    mri = stage_from_findings(necrosis_on_mri=True, findings=None, extent=Extent.B)
    assert (mri.text, mri.source, mri.steinberg, mri.arco) == (STAGE_MRI_ONLY, "mri", None, None)
    assert "no necrosis" in stage_from_findings(necrosis_on_mri=False, findings=None).text
    cases = [
        (ClinicianFindings(), "IB", "I"),
        (ClinicianFindings(radiograph_abnormal=True), "IIB", "II"),
        (ClinicianFindings(crescent_sign=True), "IIIB", "IIIA"),
        (ClinicianFindings(collapse_mm=2.0), "IVB", "IIIA"),
        (ClinicianFindings(collapse_mm=2.1), "IVB", "IIIB"),
        (ClinicianFindings(collapse_mm=3.0, joint_space_narrowed=True), "VB", "IV"),
    ]
    for findings, steinberg, arco in cases:
        result = stage_from_findings(necrosis_on_mri=True, findings=findings, extent=Extent.B)
        assert (result.steinberg, result.arco, result.source) == (steinberg, arco, "clinician")
    with pytest.raises(ValueError):
        stage_from_findings(necrosis_on_mri=True, findings=ClinicianFindings(collapse_mm=-1))
