"""JIC type and Kerboul arcs from the pipeline's own masks, and the study-level rules that
combine series (docs/grading.md section 5, "From the engine's masks").

- :func:`classify_series`: per hip of a coronal or sagittal series, the mid slice (the
  one with the hip's largest head section: the section through the head's centre), its
  head and necrosis masks from the label map, and on it the necrotic arc
  (:func:`~grading.engine.classifications.necrotic_arc_deg`) and, on a coronal slice,
  the acetabular roof found in the image (:func:`grading.engine.roof.find_roof`) and the
  JIC type (:func:`~grading.engine.classifications.jic_type`).
- :func:`combined_kerboul`: the mid-coronal arc plus the mid-sagittal arc when both
  series were graded; one plane's arc, partial, otherwise.
- :func:`series_disagreements`: one ``series_disagreement`` flag per hip graded
  differently by two series.

Pure numpy; no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from grading.engine.classifications import (
    KerboulResult,
    jic_type,
    kerboul_combined,
    necrotic_arc_deg,
)
from grading.engine.flags import Flag, FlagNote
from grading.engine.hips import lr_axis_and_sides, slice_plane
from grading.engine.roof import find_roof
from grading.engine.types import (
    NECROSIS,
    HipClassification,
    MRSlice,
    SeriesHipResult,
    SliceResult,
)

__all__ = [
    "classify_series",
    "combined_kerboul",
    "series_disagreements",
    "with_classifications",
]


def _superior_row_sign(column_cosines: Sequence[float]) -> int:
    """-1 when the row index grows towards the feet (row 0 superior), else +1."""
    return -1 if float(column_cosines[2]) <= 0 else 1


def _mid_slice(results: Sequence[SliceResult], side: str) -> int | None:
    best, index = 0.0, None
    for k, result in enumerate(results):
        for hip in result.hips:
            if hip.side == side and hip.head_area_mm2 > best:
                best, index = hip.head_area_mm2, k
    return index


def classify_series(
    slices: Sequence[MRSlice], results: Sequence[SliceResult]
) -> dict[str, HipClassification]:
    """Per side, the classifications of a coronal or sagittal series (same order in both
    sequences); empty for an axial or oblique one."""
    if not slices:
        return {}
    plane = slice_plane(slices[0].image_orientation)
    if plane not in ("coronal", "sagittal"):
        return {}
    out: dict[str, HipClassification] = {}
    sides = {h.side for r in results for h in r.hips}
    for side in sorted(sides):
        k = _mid_slice(results, side)
        if k is None:
            continue
        mr_slice, result = slices[k], results[k]
        hip = next(h for h in result.hips if h.side == side)
        region = np.zeros(mr_slice.shape, dtype=bool)
        if hip.bbox is not None:
            r0, c0, r1, c1 = hip.bbox
            region[max(r0, 0) : r1, max(c0, 0) : c1] = True
        else:
            region[:] = True
        labels = np.asarray(result.labelmap)
        head = (labels > 0) & region
        lesion = (labels == NECROSIS) & region
        arc = necrotic_arc_deg(head, lesion, pixel_spacing_mm=mr_slice.pixel_spacing_mm)
        base = HipClassification(
            plane=plane,
            mid_index=k,
            mid_sop_instance_uid=mr_slice.sop_instance_uid,
            arc_deg=arc,
        )
        if plane == "coronal":
            base = _with_jic(base, mr_slice, head, lesion, side)
        out[side] = base
    return out


def _with_jic(
    base: HipClassification,
    mr_slice: MRSlice,
    head: np.ndarray,
    lesion: np.ndarray,
    side: str,
) -> HipClassification:
    orientation = mr_slice.image_orientation or (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
    axis, low_side, _ = lr_axis_and_sides(orientation)
    if side not in ("left", "right") or low_side == "unknown":
        return replace(base, reason="the side of the hip is unknown: no JIC type")
    pixels = np.asarray(mr_slice.pixels, dtype=np.float32)
    spacing = mr_slice.pixel_spacing_mm
    superior = orientation[3:6]
    if axis == 0:  # left-right runs down the rows: work on the transposed slice
        pixels, head, lesion = pixels.T, head.T, lesion.T
        spacing = (spacing[1], spacing[0])
        superior = orientation[0:3]
    lateral_sign = -1 if side == low_side else 1
    superior_sign = _superior_row_sign(superior)
    roof = find_roof(
        pixels,
        head,
        pixel_spacing_mm=spacing,
        lateral_col_sign=lateral_sign,
        superior_row_sign=superior_sign,
    )
    if roof is None:
        return replace(base, reason="no acetabular roof found above the femoral head")
    jic = jic_type(
        head,
        lesion,
        roof.mask,
        pixel_spacing_mm=spacing,
        lateral_col_sign=lateral_sign,
        superior_row_sign=superior_sign,
    )
    return replace(
        base,
        jic_type=None if jic.type is None else str(jic.type),
        jic_fraction=jic.lateral_fraction,
        roof_edge_deg=roof.edge_deg,
        reason=jic.reason,
    )


def with_classifications(
    slices: Sequence[MRSlice],
    results: Sequence[SliceResult],
    hips: Sequence[SeriesHipResult],
) -> tuple[SeriesHipResult, ...]:
    """``hips`` with their :class:`HipClassification` from :func:`classify_series`."""
    found = classify_series(slices, results)
    return tuple(replace(h, classification=found.get(h.side)) for h in hips)


def combined_kerboul(
    coronal: HipClassification | None, sagittal: HipClassification | None
) -> KerboulResult | None:
    """Mid-coronal arc plus mid-sagittal arc (Ha et al. 2006); with one plane, its arc
    alone and ``partial``; None with neither."""
    return kerboul_combined(
        None if coronal is None else coronal.arc_deg,
        None if sagittal is None else sagittal.arc_deg,
    )


def series_disagreements(
    graded: Sequence[tuple[str, str, str]],
) -> dict[str, FlagNote]:
    """``graded``: ``(side, grade, series label)`` of each graded series' hip, in the order
    to name them. Per side graded differently by two series, a ``series_disagreement``
    note naming each series' grade."""
    by_side: dict[str, list[tuple[str, str]]] = {}
    for side, grade, label in graded:
        if side in ("left", "right") and grade:
            by_side.setdefault(side, []).append((grade, label))
    out: dict[str, FlagNote] = {}
    for side, group in sorted(by_side.items()):
        if len({grade for grade, _ in group}) < 2:
            continue
        listed = ", ".join(f"{grade} on {label}" for grade, label in group)
        out[side] = Flag.SERIES_DISAGREEMENT.note(f"the {side} hip is graded {listed}")
    return out
