"""The classifications clinicians report per hip, as pure functions of masks and numbers.

- :func:`jic_type`: JIC type A, B, C1, C2 on the mid-coronal T1 slice (Sugano et al.,
  J Orthop Sci 2002; collapse risk per type: Kuroda et al., Bone Joint Res 2019).
- :func:`necrotic_arc_deg` and :func:`kerboul_combined`: the modified Kerboul combined
  necrotic angle, mid-coronal arc plus mid-sagittal arc (Ha et al., JBJS Am 2006).
- :func:`extent_from_proportion`: extent A, B, C of Steinberg (University of
  Pennsylvania, 1995) and ARCO (1993), which share the 15 % and 30 % edges.
- :func:`stage_from_findings`: the stage, which only radiograph/CT findings entered by a
  clinician can give; from the MRI alone it is "MRI-positive, radiograph needed to stage".

Conventions: masks are ``(H, W)`` bool on one slice, ``pixel_spacing_mm`` is (row,
column) in mm; ``lateral_col_sign`` is +1 when the patient's lateral side (away from the
midline, for this hip) lies towards larger column indices, -1 otherwise;
``superior_row_sign`` is -1 when row 0 is the superior edge (the usual coronal and
sagittal display), +1 when it is the inferior one. Rules and edges: ``docs/grading.md``
section 5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.grading_rules import grade_from_proportion
from grading.engine.hips import circle_fit, outline_points_mm
from grading.engine.types import Grade

BoolImage = npt.NDArray[np.bool_]

__all__ = [
    "ClinicianFindings",
    "Extent",
    "JicResult",
    "JicType",
    "KerboulCategory",
    "KerboulResult",
    "STAGE_MRI_ONLY",
    "StageResult",
    "extent_from_proportion",
    "jic_type",
    "kerboul_combined",
    "necrotic_arc_deg",
    "stage_from_findings",
]


class JicType(StrEnum):
    """Japanese Investigation Committee type: where the lesion lies under the roof."""

    A = "A"  # lesion within the medial third of the weight-bearing portion
    B = "B"  # within the medial two thirds
    C1 = "C1"  # beyond two thirds, not past the acetabular edge
    C2 = "C2"  # past the lateral edge of the acetabulum


class Extent(StrEnum):
    """Steinberg (UPenn) and ARCO 1993 extent of the head's necrotic volume."""

    A = "A"  # < 15 %
    B = "B"  # 15 % to 30 %
    C = "C"  # > 30 %


class KerboulCategory(StrEnum):
    """Ha et al. 2006 groups of the combined necrotic angle."""

    SMALL = "small"  # < 200 degrees
    MEDIUM = "medium"  # 200-249
    LARGE = "large"  # 250-299
    EXTENSIVE = "extensive"  # >= 300


@dataclass(frozen=True)
class JicResult:
    """``type`` None when there is no lesion (or no roof to measure against, see
    ``reason``). ``lateral_fraction``: the lesion's lateral end as a fraction of the
    weight-bearing portion from its medial end (> 1: past the acetabular edge).
    ``weight_bearing_mm``: the portion's medial and lateral ends, in mm from the
    head's medial edge."""

    type: JicType | None
    lateral_fraction: float | None
    weight_bearing_mm: tuple[float, float] | None
    reason: str = ""


@dataclass(frozen=True)
class KerboulResult:
    """``angle_deg``: coronal + sagittal arcs, or the one plane's arc when ``partial``."""

    angle_deg: float
    partial: bool
    category: KerboulCategory | None
    coronal_deg: float | None
    sagittal_deg: float | None


def _medio_lateral_mm(
    shape: tuple[int, int], spacing_col: float, sign: int
) -> npt.NDArray[np.float64]:
    columns = np.arange(shape[1], dtype=np.float64) * spacing_col
    return columns if sign > 0 else columns[::-1].copy()


def jic_type(
    head: BoolImage,
    lesion: BoolImage,
    roof: BoolImage,
    *,
    pixel_spacing_mm: tuple[float, float],
    lateral_col_sign: int,
    superior_row_sign: int = -1,
    edge_tolerance_mm: float | None = None,
) -> JicResult:
    """JIC type on one (mid-coronal) slice.

    ``head``: the femoral head; ``lesion``: the necrotic lesion (inside the head);
    ``roof``: the acetabular bone. The weight-bearing portion is the part of the head
    under the acetabular roof: the roof is the acetabular bone above the head's centre
    row; its lateral end is the acetabular edge; the portion runs from the roof's medial
    end (or the head's medial edge, if the roof reaches further) to that edge. The type
    follows from the lesion's lateral end ``L``, counted from the portion's medial end
    as a fraction ``f`` of its width: A ``f <= 1/3``, B ``f <= 2/3``, C1 ``f > 2/3`` with
    ``L`` not past the edge, C2 ``L`` past the edge (by more than ``edge_tolerance_mm``,
    default half a pixel).
    """
    head = np.asarray(head, dtype=bool)
    lesion = np.asarray(lesion, dtype=bool) & head
    roof = np.asarray(roof, dtype=bool)
    if not head.any():
        return JicResult(None, None, None, "no femoral head on the slice")
    if not lesion.any():
        return JicResult(None, None, None, "no lesion on the mid-coronal slice")
    spacing_row, spacing_col = pixel_spacing_mm
    tolerance = 0.5 * spacing_col if edge_tolerance_mm is None else edge_tolerance_mm
    s = _medio_lateral_mm(head.shape, spacing_col, lateral_col_sign)  # per column, mm
    rows = np.nonzero(head.any(axis=1))[0]
    centre_row = float(np.mean(np.nonzero(head)[0]))
    above = np.arange(head.shape[0]) * superior_row_sign > centre_row * superior_row_sign
    roof_above = roof & above[:, None]
    if not roof_above.any():
        return JicResult(None, None, None, "no acetabular roof above the femoral head")
    head_cols = np.nonzero(head.any(axis=0))[0]
    roof_cols = np.nonzero(roof_above.any(axis=0))[0]
    head_s = s[head_cols]
    roof_s = s[roof_cols]
    medial = max(float(roof_s.min()), float(head_s.min()))
    edge = float(roof_s.max())
    if edge - medial < 2 * spacing_col or len(rows) == 0:
        return JicResult(None, None, None, "the acetabular roof does not cover the head")
    lesion_end = float(s[np.nonzero(lesion.any(axis=0))[0]].max())
    fraction = (lesion_end - medial) / (edge - medial)
    portion = (medial - float(head_s.min()), edge - float(head_s.min()))
    if lesion_end > edge + tolerance:
        kind = JicType.C2
    elif fraction <= 1.0 / 3.0:
        kind = JicType.A
    elif fraction <= 2.0 / 3.0:
        kind = JicType.B
    else:
        kind = JicType.C1
    return JicResult(kind, float(fraction), portion)


def necrotic_arc_deg(
    head: BoolImage,
    lesion: BoolImage,
    *,
    pixel_spacing_mm: tuple[float, float],
) -> float:
    """The arc of the head's surface that the lesion reaches, in degrees, on one slice.

    The head's outline (its mask less its erosion) is fitted with a circle; the outline
    pixels that touch the lesion (8-neighbours) are placed by angle around the circle's
    centre, and the arc is 360 degrees less the largest empty gap between them. 0 when
    the lesion does not reach the surface.
    """
    head = np.asarray(head, dtype=bool)
    lesion = np.asarray(lesion, dtype=bool) & head
    if not head.any() or not lesion.any():
        return 0.0
    outline = head & ~ndimage.binary_erosion(head, border_value=0)
    scale = np.asarray(pixel_spacing_mm, dtype=np.float64)
    points = outline_points_mm(head, pixel_spacing_mm)
    if len(points) < 5:
        return 0.0
    cy, cx, _ = circle_fit(points)
    touching = outline & ndimage.binary_dilation(lesion, structure=np.ones((3, 3), bool))
    if not touching.any():
        return 0.0
    where = np.argwhere(touching).astype(np.float64) * scale
    angles = np.sort(np.degrees(np.arctan2(where[:, 0] - cy, where[:, 1] - cx)) % 360.0)
    if len(angles) == 1:
        return 0.0
    gaps = np.diff(np.concatenate([angles, [angles[0] + 360.0]]))
    return float(360.0 - gaps.max())


def _kerboul_category(angle: float) -> KerboulCategory:
    if angle < 200.0:
        return KerboulCategory.SMALL
    if angle < 250.0:
        return KerboulCategory.MEDIUM
    if angle < 300.0:
        return KerboulCategory.LARGE
    return KerboulCategory.EXTENSIVE


def kerboul_combined(coronal_deg: float | None, sagittal_deg: float | None) -> KerboulResult | None:
    """Combined necrotic angle. With both arcs: their sum and Ha's category. With one:
    that arc alone, ``partial`` and no category. None with neither."""
    if coronal_deg is None and sagittal_deg is None:
        return None
    for value in (coronal_deg, sagittal_deg):
        if value is not None and not 0.0 <= value <= 360.0:
            raise ValueError(f"an arc is 0..360 degrees, got {value!r}")
    if coronal_deg is not None and sagittal_deg is not None:
        total = coronal_deg + sagittal_deg
        return KerboulResult(total, False, _kerboul_category(total), coronal_deg, sagittal_deg)
    single = coronal_deg if coronal_deg is not None else sagittal_deg
    assert single is not None
    return KerboulResult(single, True, None, coronal_deg, sagittal_deg)


def extent_from_proportion(proportion: float) -> Extent | None:
    """Extent A (< 15 %), B (15-30 % inclusive), C (> 30 %) of the head's volume; None
    below 0.1 % (no necrosis). Same edges as the grade (``grading_rules``)."""
    grade = grade_from_proportion(proportion)
    return {
        Grade.NONE: None,
        Grade.MILD: Extent.A,
        Grade.MODERATE: Extent.B,
        Grade.SEVERE: Extent.C,
    }[grade]


STAGE_MRI_ONLY = "MRI-positive, radiograph needed to stage"
STAGE_NO_NECROSIS = "no necrosis on MRI"


@dataclass(frozen=True)
class ClinicianFindings:
    """What a clinician reads on radiographs or CT (the MRI cannot show all of it).

    ``radiograph_abnormal``: sclerosis, cysts or focal porosis; ``crescent_sign``:
    subchondral fracture; ``collapse_mm``: depth of the head's collapse (0: none);
    ``joint_space_narrowed`` and ``acetabular_changes``: osteoarthritis.
    """

    radiograph_abnormal: bool = False
    crescent_sign: bool = False
    collapse_mm: float = 0.0
    joint_space_narrowed: bool = False
    acetabular_changes: bool = False


@dataclass(frozen=True)
class StageResult:
    """``steinberg`` and ``arco`` are the stage names (``"I"``, ``"IIIA"``...) or None;
    ``text`` what the report shows; ``source`` "mri" or "clinician"."""

    steinberg: str | None
    arco: str | None
    text: str
    source: str


def stage_from_findings(
    *, necrosis_on_mri: bool, findings: ClinicianFindings | None, extent: Extent | None = None
) -> StageResult:
    """Steinberg (UPenn 1995) and ARCO (2019) stage.

    Without clinician findings the MRI alone says only :data:`STAGE_MRI_ONLY` (or that it
    shows no necrosis). With findings: Steinberg I normal radiograph, II sclerosis or
    cysts, III crescent sign without collapse, IV flattening (collapse), V joint space
    narrowing or acetabular changes (VI, advanced degeneration, is not told apart from
    V here); stages I-V carry the extent letter. ARCO I normal radiograph, II abnormal
    without collapse (a crescent sign is a fracture: III), IIIA collapse <= 2 mm, IIIB
    > 2 mm, IV osteoarthritis.
    """
    if findings is None:
        return StageResult(
            None, None, STAGE_MRI_ONLY if necrosis_on_mri else STAGE_NO_NECROSIS, "mri"
        )
    if findings.collapse_mm < 0 or not math.isfinite(findings.collapse_mm):
        raise ValueError(f"collapse depth must be >= 0 mm, got {findings.collapse_mm!r}")
    arthritis = findings.joint_space_narrowed or findings.acetabular_changes
    if arthritis:
        steinberg, arco = "V", "IV"
    elif findings.collapse_mm > 0:
        steinberg = "IV"
        arco = "IIIA" if findings.collapse_mm <= 2.0 else "IIIB"
    elif findings.crescent_sign:
        steinberg, arco = "III", "IIIA"
    elif findings.radiograph_abnormal:
        steinberg, arco = "II", "II"
    elif necrosis_on_mri:
        steinberg, arco = "I", "I"
    else:
        steinberg, arco = "0", "0"
    letter = extent.value if extent is not None and steinberg not in ("0",) else ""
    text = f"Steinberg {steinberg}{letter}, ARCO {arco}"
    return StageResult(f"{steinberg}{letter}", arco, text, "clinician")
