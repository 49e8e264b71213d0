"""Value types shared by the engine, the DICOM layer and the portal.

Conventions: images are ``(H, W)`` arrays indexed ``[row, column]``; lengths
are millimetres, areas mm², volumes mm³; proportions are fractions 0..1.
Label maps are ``uint8`` with 0 background, 1 viable femoral head, 2 necrosis
(necrosis is part of the femoral head: head area = count(1) + count(2)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt

BACKGROUND = 0
VIABLE_HEAD = 1
NECROSIS = 2

Side = Literal["left", "right", "unknown"]


class Grade(StrEnum):
    """Steinberg extent grade of the necrotic proportion of the femoral head."""

    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


@dataclass(frozen=True)
class MRSlice:
    """One axial MR slice in stored-value units (after RescaleSlope/Intercept).

    ``pixels``: ``(H, W)`` float32. ``pixel_spacing_mm``: (row spacing, column
    spacing) in mm, i.e. DICOM PixelSpacing order. ``image_orientation``: the
    six direction cosines of ImageOrientationPatient (row direction, then
    column direction), or None when unknown. ``laterality``: "L", "R" or None
    (ImageLaterality / Laterality). ``source``: file path or name, for messages.
    """

    pixels: npt.NDArray[np.float32]
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0)
    slice_thickness_mm: float | None = None
    spacing_between_slices_mm: float | None = None
    image_position: tuple[float, float, float] | None = None
    image_orientation: tuple[float, float, float, float, float, float] | None = None
    laterality: str | None = None
    study_instance_uid: str = ""
    series_instance_uid: str = ""
    sop_instance_uid: str = ""
    instance_number: int | None = None
    source: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.pixels.shape[0]), int(self.pixels.shape[1]))

    @property
    def pixel_area_mm2(self) -> float:
        return float(self.pixel_spacing_mm[0] * self.pixel_spacing_mm[1])


@dataclass(frozen=True)
class Uncertainty:
    """How sure a proportion is (``grading.engine.uncertainty``).

    ``interval``: ``(low, high)`` fractions, the central interval of the proportion
    (85 %, ``UncertaintyConfig.coverage``).
    ``grade_probabilities``: probability of each grade (keys ``none``, ``mild``,
    ``moderate``, ``severe``; they sum to 1). ``samples``: the proportions of the
    test-time augmentations (and of the other necrosis method) it was built from.
    """

    interval: tuple[float, float]
    grade_probabilities: dict[str, float]
    samples: tuple[float, ...] = ()


@dataclass(frozen=True)
class HipSliceResult:
    """One femoral head on one slice.

    ``bbox``: (row0, col0, row1, col1), half-open, in the slice's own grid.
    ``flags``: "code: human-readable reason" strings; empty when nothing needs a look.
    """

    side: Side
    head_area_mm2: float
    necrosis_area_mm2: float
    proportion: float
    grade: Grade
    flags: tuple[str, ...] = ()
    bbox: tuple[int, int, int, int] | None = None
    confidence: float | None = None
    uncertainty: Uncertainty | None = None


@dataclass(frozen=True)
class SliceResult:
    """The engine's answer for one slice: the ``(H, W)`` uint8 label map and its hips."""

    labelmap: npt.NDArray[np.uint8]
    hips: tuple[HipSliceResult, ...]
    sop_instance_uid: str = ""
    source: str = ""


@dataclass(frozen=True)
class HipClassification:
    """The classifications measured on one series' mid slice of a hip
    (:mod:`grading.engine.hip_classification`; docs/grading.md section 5).

    ``plane``: "coronal" or "sagittal"; ``mid_sop_instance_uid`` and ``mid_index`` (in
    the series' input order): the slice with the hip's largest head section.
    ``jic_type`` ("A", "B", "C1", "C2" or None: no lesion, or no roof found, see
    ``reason``), ``jic_fraction`` (the lesion's lateral end over the weight-bearing
    portion) and ``roof_edge_deg`` (the roof's lateral edge, degrees from superior at the
    head's centre) on a coronal slice only; ``arc_deg``: the lesion's arc of the head's
    surface on this plane's mid slice (half of the modified Kerboul angle)."""

    plane: str
    mid_index: int
    mid_sop_instance_uid: str
    arc_deg: float
    jic_type: str | None = None
    jic_fraction: float | None = None
    roof_edge_deg: float | None = None
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "plane": self.plane,
            "mid_sop_instance_uid": self.mid_sop_instance_uid,
            "arc_deg": round(float(self.arc_deg), 2),
            "jic_type": self.jic_type,
            "jic_fraction": None if self.jic_fraction is None else round(self.jic_fraction, 4),
            "roof_edge_deg": None if self.roof_edge_deg is None else round(self.roof_edge_deg, 1),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SeriesHipResult:
    """One hip over a series: volumes (areas x slice spacing) and the volumetric proportion."""

    series_instance_uid: str
    side: Side
    head_volume_mm3: float
    necrosis_volume_mm3: float
    proportion: float
    grade: Grade
    flags: tuple[str, ...] = ()
    slice_count: int = 0
    uncertainty: Uncertainty | None = None
    method_proportions: dict[str, float] = field(default_factory=dict)
    """The proportion by each necrosis method that ran (``threshold``, ``learned``);
    ``proportion`` is the reported method's."""
    classification: HipClassification | None = None
    """JIC type and necrotic arc from this series' mid slice (coronal and sagittal
    series; None on axial ones)."""


@dataclass(frozen=True)
class SeriesResult:
    slices: tuple[SliceResult, ...]
    hips: tuple[SeriesHipResult, ...]
    model_version: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)
