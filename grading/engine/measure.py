"""Areas, proportions, grades and quality flags per hip; volumes per hip over a series.

Units: areas in mm² from PixelSpacing (row spacing x column spacing), volumes in mm³
(area x slice spacing, the Cavalieri estimate), proportions as fractions 0..1 graded
by :func:`grading.engine.grading_rules.grade_from_proportion`.

Slice spacing of a series: the median gap between slice positions along the slice
normal (ImagePositionPatient projected on row x column cosines); else
SpacingBetweenSlices; else SliceThickness; else 1 mm (only volumes depend on it, not
proportions or grades).

Quality flags are :class:`grading.engine.flags.FlagNote` (``"code: reason"`` strings);
the codes and what they mean are :class:`grading.engine.flags.Flag`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.flags import Flag, FlagNote, flag_code
from grading.engine.grading_rules import grade_from_proportion, proportion_of
from grading.engine.hips import (
    DEFAULT_CONFIG,
    Box,
    HipFinderConfig,
    is_bilateral,
    plan_layout,
    side_of_point,
)
from grading.engine.necrosis import NecrosisResult
from grading.engine.types import (
    BACKGROUND,
    NECROSIS,
    VIABLE_HEAD,
    HipSliceResult,
    MRSlice,
    SeriesHipResult,
    Side,
)

SMALL_HEAD_MM2 = 250.0
"""A head section smaller than this (about 18 mm across) is near a pole or cut off."""
SERIES_SMALL_HEAD_MM2 = 700.0
"""An adult femoral head's equator is 1200-2500 mm²; a largest section below this means
the series misses the equator or the head is not a femoral head."""
LOW_CONFIDENCE_MEAN = 0.8
UNCERTAIN_FRACTION = 0.25
SERIES_FLAG_VOLUME_FRACTION = 0.1
"""A slice flag becomes a series flag when its slices hold at least this share of the
head volume (partial_head, low_confidence)."""
ONE_SIDE_ONLY_SECTION = 0.5
"""A bilateral slice lacking one head is suspicious when the other head is at least this
fraction of its largest section (near the poles the two heads legitimately differ)."""

SIDE_ORDER: tuple[Side, ...] = ("right", "left", "unknown")

BoolImage = npt.NDArray[np.bool_]
FloatImage = npt.NDArray[np.float32]


def touches_border(box: Box, mask: BoolImage, shape: tuple[int, int]) -> bool:
    """Whether ``mask`` (``box.shape``, placed at ``box``) has a pixel on the image's edge."""
    if not mask.any():
        return False
    return bool(
        (box.row0 == 0 and mask[0, :].any())
        or (box.col0 == 0 and mask[:, 0].any())
        or (box.row1 == shape[0] and mask[-1, :].any())
        or (box.col1 == shape[1] and mask[:, -1].any())
    )


def confidence_of(mask: BoolImage, probability: FloatImage) -> tuple[float, float]:
    """``(mean probability inside the mask, uncertain pixels / mask pixels)``.

    Uncertain pixels (0.2 < p < 0.8) are counted in the mask dilated by 2 pixels, so a
    fuzzy edge or a half-believed second blob next to the head both count.
    """
    count = int(mask.sum())
    if count == 0:
        return 0.0, 0.0
    mean = float(probability[mask].mean())
    near = ndimage.binary_dilation(mask, iterations=2)
    uncertain = int(((probability > 0.2) & (probability < 0.8) & near).sum())
    return mean, uncertain / count


def measure_hip(
    mr_slice: MRSlice,
    side: Side,
    box: Box,
    head_mask: BoolImage,
    necrosis_mask: BoolImage,
    *,
    probability: FloatImage | None = None,
    necrosis: NecrosisResult | None = None,
) -> HipSliceResult:
    """One hip on one slice.

    ``head_mask``, ``necrosis_mask`` and ``probability`` are ``box.shape`` arrays placed at
    ``box`` (clipped to the slice). Necrosis is counted only inside the head.
    """
    if head_mask.shape != box.shape or necrosis_mask.shape != box.shape:
        raise ValueError(f"masks {head_mask.shape}/{necrosis_mask.shape} do not match {box}")
    pixel_area = mr_slice.pixel_area_mm2
    head_pixels = int(head_mask.sum())
    necrosis_pixels = int((necrosis_mask & head_mask).sum())
    head_area = head_pixels * pixel_area
    necrosis_area = necrosis_pixels * pixel_area
    proportion = proportion_of(float(necrosis_pixels), float(head_pixels))
    flags: list[FlagNote] = []
    if head_area < SMALL_HEAD_MM2:
        flags.append(
            Flag.SMALL_HEAD.note(
                f"head section {head_area:.0f} mm² < {SMALL_HEAD_MM2:.0f} mm² "
                "(near a pole or cut off; the proportion is unreliable)",
            )
        )
    if touches_border(box, head_mask, mr_slice.shape):
        flags.append(Flag.PARTIAL_HEAD.note("the head touches the image border"))
    confidence: float | None = None
    if probability is not None:
        confidence, uncertain = confidence_of(head_mask, probability)
        if confidence < LOW_CONFIDENCE_MEAN or uncertain > UNCERTAIN_FRACTION:
            flags.append(
                Flag.LOW_CONFIDENCE.note(
                    f"mean head probability {confidence:.2f}, "
                    f"uncertain pixels {100 * uncertain:.0f} % of the head",
                )
            )
    if necrosis is not None and necrosis.ambiguous:
        flags.append(Flag.NOT_BIMODAL.note(necrosis.reason))
    if necrosis is not None:
        flags.extend(necrosis.flags)
    rows, cols = np.nonzero(head_mask)
    bbox = (
        (
            int(rows.min()) + box.row0,
            int(cols.min()) + box.col0,
            int(rows.max()) + 1 + box.row0,
            int(cols.max()) + 1 + box.col0,
        )
        if rows.size
        else None
    )
    return HipSliceResult(
        side=side,
        head_area_mm2=float(head_area),
        necrosis_area_mm2=float(necrosis_area),
        proportion=proportion,
        grade=grade_from_proportion(proportion),
        flags=tuple(flags),
        bbox=bbox,
        confidence=confidence,
    )


def with_one_side_only(
    hips: Sequence[HipSliceResult], *, bilateral: bool
) -> tuple[HipSliceResult, ...]:
    """Sorted hips (right, left, unknown); on a bilateral slice with one head, that head
    gets ``one_side_only``."""
    ordered = sorted(hips, key=lambda h: SIDE_ORDER.index(h.side))
    if not bilateral or len(ordered) != 1 or ordered[0].side == "unknown":
        return tuple(ordered)
    hip = ordered[0]
    missing = "left" if hip.side == "right" else "right"
    flag = Flag.ONE_SIDE_ONLY.note(f"no {missing} femoral head found on this bilateral slice")
    return (
        HipSliceResult(
            side=hip.side,
            head_area_mm2=hip.head_area_mm2,
            necrosis_area_mm2=hip.necrosis_area_mm2,
            proportion=hip.proportion,
            grade=hip.grade,
            flags=(*hip.flags, flag),
            bbox=hip.bbox,
            confidence=hip.confidence,
        ),
    )


# ---------------------------------------------------------------------------- label maps


def check_labelmap(labelmap: npt.NDArray[np.generic], shape: tuple[int, int]) -> None:
    """Raise ValueError unless ``labelmap`` is ``shape`` with values in {0, 1, 2}."""
    if labelmap.shape != shape:
        raise ValueError(f"label map is {labelmap.shape}, the slice is {shape}")
    values = np.unique(labelmap)
    if not np.isin(values, (BACKGROUND, VIABLE_HEAD, NECROSIS)).all():
        raise ValueError(f"label map values must be 0, 1 or 2, found {values.tolist()}")


def measure_labelmap(
    labelmap: npt.NDArray[np.generic],
    mr_slice: MRSlice,
    config: HipFinderConfig = DEFAULT_CONFIG,
) -> tuple[HipSliceResult, ...]:
    """The hips of a slice from its ``(H, W)`` label map alone (after a person edited it).

    Head = labels 1 and 2, necrosis = label 2 (so necrosis is always inside the head).
    On a bilateral slice each connected head component goes to the side of its centroid,
    split at the body's midline as in :func:`grading.engine.hips.plan_layout`; on a crop all
    head pixels are one hip. Flags: ``small_head``, ``partial_head``, ``one_side_only``
    (no network confidence or threshold diagnostics exist for an edited map).
    """
    check_labelmap(labelmap, mr_slice.shape)
    head = labelmap != BACKGROUND
    if not head.any():
        return ()
    necrosis = labelmap == NECROSIS
    layout = plan_layout(mr_slice, config)
    if layout.kind == "crop":
        groups: dict[Side, BoolImage] = {layout.regions[0].side: head}
    else:
        labels, count = ndimage.label(head)
        centres = ndimage.center_of_mass(head, labels, np.arange(1, count + 1))
        groups = {}
        for index, centre in enumerate(centres, start=1):
            side = side_of_point(layout, (float(centre[0]), float(centre[1])))
            component = labels == index
            groups[side] = groups[side] | component if side in groups else component
    hips = []
    for side, mask in groups.items():
        rows, cols = np.nonzero(mask)
        box = Box(int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1)
        hips.append(measure_hip(mr_slice, side, box, mask[box.slices], necrosis[box.slices]))
    return with_one_side_only(hips, bilateral=layout.kind == "bilateral")


# ---------------------------------------------------------------------------- series


def slice_normal(mr_slice: MRSlice) -> npt.NDArray[np.float64] | None:
    """Unit normal (row cosine x column cosine) of a slice, or None without orientation."""
    if mr_slice.image_orientation is None:
        return None
    cosines = np.asarray(mr_slice.image_orientation, dtype=np.float64)
    normal = np.cross(cosines[:3], cosines[3:])
    length = float(np.linalg.norm(normal))
    return normal / length if length > 1e-6 else None


SAME_POSITION_MM = 0.01
"""Two slices closer than this along the normal lie at one position (a repeat, an echo,
or separate images that share a position)."""


def positions_along_normal(slices: Sequence[MRSlice]) -> list[float] | None:
    """Each slice's position along the series normal (mm), or None if any is unknown."""
    if not slices:
        return None
    normal = slice_normal(slices[0])
    if normal is None or any(s.image_position is None for s in slices):
        return None
    return [float(np.dot(np.asarray(s.image_position, dtype=np.float64), normal)) for s in slices]


def slice_order(slices: Sequence[MRSlice]) -> list[int]:
    """Indices of ``slices`` sorted by position along the normal (else instance number,
    else input order); stable."""
    positions = positions_along_normal(slices)
    if positions is not None:
        return sorted(range(len(slices)), key=lambda i: positions[i])
    return sorted(
        range(len(slices)),
        key=lambda i: (slices[i].instance_number is None, slices[i].instance_number or 0),
    )


def series_slice_spacing_mm(slices: Sequence[MRSlice]) -> float:
    """Slice spacing of a series in mm (see the module docstring for the order of sources)."""
    positions = positions_along_normal(slices)
    if positions is not None and len(positions) > 1:
        gaps = np.diff(np.sort(np.asarray(positions)))
        gaps = gaps[gaps > 1e-3]
        if gaps.size:
            return float(np.median(gaps))
    for mr_slice in slices:
        if mr_slice.spacing_between_slices_mm and mr_slice.spacing_between_slices_mm > 0:
            return float(mr_slice.spacing_between_slices_mm)
    for mr_slice in slices:
        if mr_slice.slice_thickness_mm and mr_slice.slice_thickness_mm > 0:
            return float(mr_slice.slice_thickness_mm)
    return 1.0


@dataclass
class _SideTotals:
    head_mm3: float = 0.0
    necrosis_mm3: float = 0.0
    slices: int = 0
    largest_mm2: float = 0.0
    flagged_mm3: dict[str, float] | None = None
    flagged_slices: dict[str, int] | None = None
    ambiguous_necrosis_mm3: float = 0.0


def summarise_series(
    series_instance_uid: str,
    per_slice: Sequence[tuple[MRSlice, Sequence[HipSliceResult]]],
) -> tuple[SeriesHipResult, ...]:
    """Per hip over a series: volumes, volumetric proportion, grade and series flags.

    Volumes are sums of areas x the series slice spacing. Series flags:
    ``small_head`` when the largest section is below ``SERIES_SMALL_HEAD_MM2``;
    ``partial_head`` / ``low_confidence`` when flagged slices hold at least
    ``SERIES_FLAG_VOLUME_FRACTION`` of the head volume; ``not_bimodal`` when the grade
    would change without the necrosis of the slices with an ambiguous threshold;
    ``one_side_only`` when, on a bilateral series, the other side is missing on a slice
    where this head is at least ``ONE_SIDE_ONLY_SECTION`` of its largest section (or
    missing from the whole series). Ordered right, left, unknown.
    """
    slices = [s for s, _ in per_slice]
    spacing = series_slice_spacing_mm(slices)
    totals: dict[Side, _SideTotals] = {}
    for _, hips in per_slice:
        for hip in hips:
            t = totals.setdefault(hip.side, _SideTotals(flagged_mm3={}, flagged_slices={}))
            assert t.flagged_mm3 is not None and t.flagged_slices is not None
            t.head_mm3 += hip.head_area_mm2 * spacing
            t.necrosis_mm3 += hip.necrosis_area_mm2 * spacing
            t.slices += 1
            t.largest_mm2 = max(t.largest_mm2, hip.head_area_mm2)
            for code in {flag_code(f) for f in hip.flags}:
                t.flagged_mm3[code] = t.flagged_mm3.get(code, 0.0) + hip.head_area_mm2 * spacing
                t.flagged_slices[code] = t.flagged_slices.get(code, 0) + 1
                if code == "not_bimodal":
                    t.ambiguous_necrosis_mm3 += hip.necrosis_area_mm2 * spacing
    bilateral = any(is_bilateral(s) for s in slices)
    results = []
    for side in sorted(totals, key=SIDE_ORDER.index):
        t = totals[side]
        assert t.flagged_mm3 is not None and t.flagged_slices is not None
        flags: list[FlagNote] = []
        if t.largest_mm2 < SERIES_SMALL_HEAD_MM2:
            flags.append(
                Flag.SMALL_HEAD.note(
                    f"largest head section {t.largest_mm2:.0f} mm² < "
                    f"{SERIES_SMALL_HEAD_MM2:.0f} mm² (the series may miss the head's equator)",
                )
            )
        for code, what in (
            (Flag.PARTIAL_HEAD, "the head touches the image border"),
            (Flag.LOW_CONFIDENCE, "low network confidence"),
        ):
            share = t.flagged_mm3.get(code, 0.0) / t.head_mm3 if t.head_mm3 > 0 else 0.0
            if share >= SERIES_FLAG_VOLUME_FRACTION:
                flags.append(
                    code.note(
                        f"{what} on {t.flagged_slices[code]} of {t.slices} slices "
                        f"({100 * share:.0f} % of the head volume)"
                    )
                )
        proportion = proportion_of(t.necrosis_mm3, t.head_mm3)
        grade = grade_from_proportion(proportion)
        if t.flagged_slices.get("not_bimodal"):
            without = grade_from_proportion(
                proportion_of(t.necrosis_mm3 - t.ambiguous_necrosis_mm3, t.head_mm3)
            )
            if without != grade:
                flags.append(
                    Flag.NOT_BIMODAL.note(
                        f"the grade rests on {t.flagged_slices['not_bimodal']} slice(s) with an "
                        f"ambiguous necrosis threshold ({t.ambiguous_necrosis_mm3:.0f} mm³ of "
                        f"necrosis there; {without.value} without them)",
                    )
                )
        if bilateral and side != "unknown":
            reason = _one_side_only_reason(side, per_slice, t.largest_mm2)
            if reason:
                flags.append(Flag.ONE_SIDE_ONLY.note(reason))
        results.append(
            SeriesHipResult(
                series_instance_uid=series_instance_uid,
                side=side,
                head_volume_mm3=float(t.head_mm3),
                necrosis_volume_mm3=float(t.necrosis_mm3),
                proportion=proportion,
                grade=grade,
                flags=tuple(flags),
                slice_count=t.slices,
            )
        )
    return tuple(results)


def _one_side_only_reason(
    side: Side,
    per_slice: Sequence[tuple[MRSlice, Sequence[HipSliceResult]]],
    largest_mm2: float,
) -> str:
    other: Side = "left" if side == "right" else "right"
    seen_other = False
    lonely = 0
    for _, hips in per_slice:
        sides = {h.side for h in hips}
        seen_other = seen_other or other in sides
        this = [h for h in hips if h.side == side]
        if (
            this
            and other not in sides
            and this[0].head_area_mm2 >= ONE_SIDE_ONLY_SECTION * largest_mm2
        ):
            lonely += 1
    if not seen_other:
        return f"no {other} femoral head found on any slice of this bilateral series"
    if lonely:
        return (
            f"no {other} femoral head on {lonely} slice(s) where the {side} head is at least "
            f"{100 * ONE_SIDE_ONLY_SECTION:.0f} % of its largest section"
        )
    return ""
