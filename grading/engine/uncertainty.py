"""Step 14 of ``docs/grading.md``: how sure each proportion is, and the probability of each grade.

The necrosis step is run again on test-time augmentations of every head (batched with the
main run: the fine pass sees each window flipped in the same ``predict`` call, see
:func:`grading.engine.hips.fine_pass`), each augmentation through the same series stages:

- ``flip``: the head mask from the left-right flipped window (the network's own
  disagreement with itself);
- ``darker`` / ``brighter``: a gamma change of the T1 signal inside the window (contrast
  of lesion against marrow) with the head mask one pixel smaller / larger (a small
  change of scale at the head's edge).

Each hip and each slice then has the reported proportion ``p`` and the augmentations'
proportions (plus the other necrosis method's, when the network has a necrosis output).
The proportion is taken as normal around ``p`` with a standard deviation of

    sqrt(rms(augmented - p)² + (|threshold - learned| / 2)² + (floor_abs + floor_rel x p)²)

censored to [0, 1] (a head without necrosis has a proportion of exactly 0): the interval
is its central ``coverage`` (85 %), the grade probabilities its mass on each grade's range
(``grading_rules``; the mass below 0 counts as none, above 1 as severe). ``floor_abs``
and ``floor_rel`` are the error the augmentations do not see, set on the tuning seeds
(``docs/grading.md``).

A hip whose head the engine missed on sections inside its run of slices (the other hip
shows a head there) has its interval widened to allow any share of necrosis in the missed
head volume (:func:`missing_sections`). A hip (or slice) is flagged ``uncertain_grade``
when its interval crosses a grade boundary, or when it is graded mild (or none with
necrosis in an augmentation) on less than ``min_volume_mm3`` of necrosis
(``min_area_mm2`` on a slice).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from scipy import ndimage

from grading.engine.flags import Flag, FlagNote
from grading.engine.grading_rules import (
    GRADE_ORDER,
    MILD_BELOW,
    MODERATE_UP_TO,
    NONE_BELOW,
    grade_from_proportion,
    proportion_of,
)
from grading.engine.hips import FemoralHead
from grading.engine.measure import series_slice_spacing_mm
from grading.engine.series_rules import GradedHead
from grading.engine.types import (
    Grade,
    MRSlice,
    SeriesHipResult,
    Side,
    SliceResult,
    Uncertainty,
)


@dataclass(frozen=True)
class Augmentation:
    """One test-time augmentation of a head: ``gamma`` on the window's signal (relative
    to its maximum), ``mask_change_px`` (+1 dilate, -1 erode the head mask by one pixel),
    ``flipped_head`` (the head mask from the flipped window)."""

    name: str
    gamma: float = 1.0
    mask_change_px: int = 0
    flipped_head: bool = False


DEFAULT_AUGMENTATIONS: tuple[Augmentation, ...] = (
    Augmentation("flip", flipped_head=True),
    Augmentation("darker", gamma=1.2, mask_change_px=-1),
    Augmentation("brighter", gamma=0.83, mask_change_px=1),
)


DEFAULT_COVERAGE = 0.85


@dataclass(frozen=True)
class UncertaintyConfig:
    """Parameters of step 14."""

    augmentations: tuple[Augmentation, ...] = DEFAULT_AUGMENTATIONS
    floor_abs: float = 0.0002
    floor_rel: float = 0.10
    """The spread the augmentations do not see: ``floor_abs + floor_rel x p``."""
    coverage: float = DEFAULT_COVERAGE
    """The interval holds this share of the probability. Calibrated on the own-family
    validation hips (``own_validation``, 2026-12-07 late): the largest coverage that
    flags at most 20 % of right hip grades once ``min_volume_mm3`` is set."""
    min_volume_mm3: float = 1350.0
    """A mild hip with less necrosis than this rests on little: the engine's detection
    limit, the 95th percentile of the false necrosis it finds in normal heads of the
    own-family validation hips under three looks, normal head variants drawn
    (``own_validation.detection_limit_mm3``; 2026-12-07 late, from 150)."""
    min_area_mm2: float = 15.0
    """A mild slice with less necrosis than this rests on little."""


DEFAULT_UNCERTAINTY = UncertaintyConfig()

_EDGES: tuple[float, ...] = (0.0, NONE_BELOW, MILD_BELOW, MODERATE_UP_TO, 1.0)


def augment_head(head: FemoralHead, augmentation: Augmentation) -> FemoralHead:
    """The head as ``augmentation`` sees it (mask changed; the signal is changed by
    :func:`augment_pixels`)."""
    mask = head.mask
    if augmentation.flipped_head and head.flipped_mask is not None:
        mask = head.flipped_mask
    if augmentation.mask_change_px > 0:
        grown = ndimage.binary_dilation(mask, iterations=augmentation.mask_change_px)
        mask = grown & (head.probability > 0.05) if head.probability.shape == mask.shape else grown
    elif augmentation.mask_change_px < 0:
        shrunk = ndimage.binary_erosion(mask, iterations=-augmentation.mask_change_px)
        mask = shrunk if shrunk.any() else mask
    return FemoralHead(
        side=head.side,
        window=head.window,
        box=head.box,
        mask=np.asarray(mask, dtype=bool),
        probability=head.probability,
        centre_rc=head.centre_rc,
        flipped_mask=head.flipped_mask,
    )


def augment_pixels(pixels: np.ndarray, augmentation: Augmentation) -> np.ndarray:
    """``pixels`` (stored values, any shape) after the gamma change, same range."""
    if augmentation.gamma == 1.0:
        return pixels
    top = float(np.max(pixels)) if pixels.size else 0.0
    if not top > 0:
        return pixels
    scaled = np.clip(np.asarray(pixels, dtype=np.float32) / top, 0.0, None)
    return np.asarray(top * scaled**augmentation.gamma, dtype=np.float32)


def uncertainty_as_dict(uncertainty: Uncertainty | None) -> dict[str, Any]:
    """``proportion_interval`` ``[low, high]`` and ``grade_probabilities`` (both None when
    the engine gave none): the form results.json, the portal's rows and the API carry."""
    if uncertainty is None:
        return {"proportion_interval": None, "grade_probabilities": None}
    return {
        "proportion_interval": [float(uncertainty.interval[0]), float(uncertainty.interval[1])],
        "grade_probabilities": {k: float(v) for k, v in uncertainty.grade_probabilities.items()},
    }


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _inverse_phi(q: float) -> float:
    """The standard normal quantile (bisection; ``q`` in (0, 1))."""
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _phi(mid) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def proportion_uncertainty(
    proportion: float,
    samples: Sequence[float],
    *,
    method_difference: float = 0.0,
    config: UncertaintyConfig = DEFAULT_UNCERTAINTY,
) -> Uncertainty:
    """The interval and grade probabilities of ``proportion`` (see the module docstring).

    ``samples``: the augmentations' proportions; ``method_difference``: the other
    necrosis method's proportion minus this one (0 when it did not run).
    """
    p = min(max(float(proportion), 0.0), 1.0)
    deviations = np.asarray(samples, dtype=np.float64) - p
    spread = float(np.sqrt(np.mean(deviations**2))) if deviations.size else 0.0
    floor = config.floor_abs + config.floor_rel * p
    sd = math.sqrt(spread**2 + (0.5 * method_difference) ** 2 + floor**2)

    def quantile(q: float) -> float:
        return min(max(p + sd * _inverse_phi(q), 0.0), 1.0)

    tail = 0.5 * (1.0 - config.coverage)
    interval = (quantile(tail), quantile(1.0 - tail))
    # censored at 0 and 1 (no necrosis is a proportion of exactly 0): the mass outside
    # [0, 1] belongs to none and severe
    inner = [_phi((edge - p) / sd) for edge in _EDGES[1:-1]]
    masses = [0.0, *inner, 1.0]
    probabilities = {
        grade.value: round(max(masses[i + 1] - masses[i], 0.0), 4)
        for i, grade in enumerate(GRADE_ORDER)
    }
    return Uncertainty(
        interval=(round(interval[0], 5), round(interval[1], 5)),
        grade_probabilities=probabilities,
        samples=tuple(round(float(s), 5) for s in samples),
    )


def uncertain_grade_note(
    grade: Grade,
    uncertainty: Uncertainty,
    necrosis_amount: float,
    largest_augmented_amount: float,
    *,
    limit: float,
    unit: str,
    coverage: float = DEFAULT_COVERAGE,
) -> FlagNote | None:
    """``uncertain_grade`` with its reason, or None when the grade is sure.

    ``necrosis_amount``: the necrosis the grade rests on (mm³ for a hip, mm² for a slice);
    ``largest_augmented_amount``: the most any augmentation found; ``limit``: the amount
    under which none against mild is not decided.
    """
    low, high = uncertainty.interval
    grades = {grade_from_proportion(low), grade_from_proportion(high), grade}
    sure = uncertainty.grade_probabilities.get(grade.value, 0.0)
    if len(grades) > 1:
        others = sorted((g for g in grades if g != grade), key=lambda g: GRADE_ORDER.index(g))
        return Flag.UNCERTAIN_GRADE.note(
            f"the proportion is {100 * low:.1f} to {100 * high:.1f} % "
            f"({100 * coverage:.0f} % interval), "
            f"which crosses into {', '.join(g.value for g in others)}; "
            f"probability of {grade.value} {100 * sure:.0f} %"
        )
    if grade == Grade.MILD and necrosis_amount < limit:
        return Flag.UNCERTAIN_GRADE.note(
            f"mild rests on {necrosis_amount:.0f} {unit} of necrosis (less than "
            f"{limit:.0f} {unit}): none against mild is not decided"
        )
    if grade == Grade.NONE and 0 < largest_augmented_amount < limit:
        return Flag.UNCERTAIN_GRADE.note(
            f"none, but a test-time augmentation found {largest_augmented_amount:.0f} {unit} "
            f"of necrosis (less than {limit:.0f} {unit}): none against mild is not decided"
        )
    return None


# ---------------------------------------------------------------------------- series


Amounts = list[dict[Side, tuple[float, float]]]
"""Per slice (sorted along the normal), per side: (head area, necrosis area) in mm²."""


def amounts_of(ordered: Sequence[MRSlice], graded: Sequence[Sequence[GradedHead]]) -> Amounts:
    """Head and necrosis areas (mm²) of each graded head, per slice and side."""
    out: Amounts = []
    for mr_slice, items in zip(ordered, graded, strict=True):
        area = mr_slice.pixel_area_mm2
        out.append(
            {
                g.head.side: (
                    float(g.head.mask.sum()) * area,
                    float((g.necrosis.mask & g.head.mask).sum()) * area,
                )
                for g in items
            }
        )
    return out


def _hip_totals(amounts: Amounts, side: Side, spacing: float) -> tuple[float, float]:
    head = sum(a[side][0] for a in amounts if side in a) * spacing
    necrosis = sum(a[side][1] for a in amounts if side in a) * spacing
    return head, necrosis


def with_methods(
    hips: Sequence[SeriesHipResult],
    reported: str,
    methods: Mapping[str, Sequence[Sequence[GradedHead]]],
    ordered: Sequence[MRSlice],
) -> tuple[SeriesHipResult, ...]:
    """Each hip with the proportion by every method that ran (``method_proportions``),
    flagged ``methods_disagree`` when they give different grades (step 13)."""
    spacing = series_slice_spacing_mm(ordered)
    per_method = {name: amounts_of(ordered, graded) for name, graded in methods.items()}
    out = []
    for hip in hips:
        proportions = {
            name: proportion_of(*reversed(_hip_totals(amounts, hip.side, spacing)))
            for name, amounts in per_method.items()
        }
        flags = list(hip.flags)
        grades = {name: grade_from_proportion(p) for name, p in proportions.items()}
        if len(set(grades.values())) > 1:
            both = ", ".join(
                f"{name} {100 * proportions[name]:.1f} % ({grades[name].value})"
                for name in proportions
            )
            flags.append(
                Flag.METHODS_DISAGREE.note(
                    f"the necrosis methods give different grades: {both}; reported: {reported}"
                )
            )
        out.append(replace(hip, method_proportions=proportions, flags=tuple(flags)))
    return tuple(out)


def missing_sections(results: Sequence[SliceResult], side: Side) -> tuple[int, float]:
    """Sections of ``side`` the engine did not find inside the hip's run of slices.

    A head section cannot vanish between two sections that show it: a slice between the
    first and the last one with a ``side`` head, without one while the other hip has a
    head there, is a missed section. Returns ``(count, area)``, the area (mm²) taken from
    the other hip's section on those slices (the two heads are about the same size).
    ``results`` sorted along the normal.
    """
    present = [k for k, r in enumerate(results) if any(h.side == side for h in r.hips)]
    if len(present) < 2 or side == "unknown":
        return 0, 0.0
    count, area = 0, 0.0
    for k in range(present[0] + 1, present[-1]):
        hips = results[k].hips
        if any(h.side == side for h in hips):
            continue
        other = [h.head_area_mm2 for h in hips if h.side not in (side, "unknown")]
        if other:
            count += 1
            area += other[0]
    return count, area


def widened_for_missing(
    uncertainty: Uncertainty,
    proportion: float,
    head_mm3: float,
    necrosis_mm3: float,
    missing_mm3: float,
    config: UncertaintyConfig = DEFAULT_UNCERTAINTY,
) -> Uncertainty:
    """``uncertainty`` when ``missing_mm3`` of head was not found: the missed sections may
    hold any share of necrosis, so the proportion lies anywhere between
    ``necrosis / (head + missing)`` and ``(necrosis + missing) / (head + missing)``
    (five points, each with the same spread; probabilities averaged)."""
    if missing_mm3 <= 0:
        return uncertainty
    total = head_mm3 + missing_mm3
    parts = []
    for q in (0.0, 0.25, 0.5, 0.75, 1.0):
        centre = (necrosis_mm3 + q * missing_mm3) / total
        shifted = [centre + (s - proportion) for s in uncertainty.samples]
        parts.append(proportion_uncertainty(centre, shifted, config=config))
    low = min(uncertainty.interval[0], *(p.interval[0] for p in parts))
    high = max(uncertainty.interval[1], *(p.interval[1] for p in parts))
    probabilities = {
        g: round(sum(p.grade_probabilities[g] for p in parts) / len(parts), 4)
        for g in uncertainty.grade_probabilities
    }
    return replace(uncertainty, interval=(low, high), grade_probabilities=probabilities)


def with_uncertainty(
    ordered: Sequence[MRSlice],
    results: Sequence[SliceResult],
    hips: Sequence[SeriesHipResult],
    samples: Sequence[Sequence[Sequence[GradedHead]]],
    methods: Mapping[str, Sequence[Sequence[GradedHead]]],
    reported: str,
    config: UncertaintyConfig = DEFAULT_UNCERTAINTY,
) -> tuple[list[SliceResult], tuple[SeriesHipResult, ...]]:
    """``results`` (sorted like ``ordered``) and ``hips`` with their :class:`Uncertainty`
    and ``uncertain_grade`` flags, from the augmented runs ``samples`` and the spread
    between the necrosis ``methods`` (step 14)."""
    spacing = series_slice_spacing_mm(ordered)
    sampled = [amounts_of(ordered, graded) for graded in samples]
    others = [amounts_of(ordered, g) for name, g in methods.items() if name != reported]
    new_results: list[SliceResult] = []
    for k, result in enumerate(results):
        slice_hips = []
        for hip in result.hips:
            areas = [s[k][hip.side] for s in sampled if hip.side in s[k]]
            props = [proportion_of(n, h) for h, n in areas]
            difference = max(
                (
                    abs(proportion_of(o[k][hip.side][1], o[k][hip.side][0]) - hip.proportion)
                    for o in others
                    if hip.side in o[k]
                ),
                default=0.0,
            )
            u = proportion_uncertainty(
                hip.proportion, props, method_difference=difference, config=config
            )
            note = uncertain_grade_note(
                hip.grade,
                u,
                hip.necrosis_area_mm2,
                max((n for _, n in areas), default=0.0),
                limit=config.min_area_mm2,
                unit="mm²",
                coverage=config.coverage,
            )
            flags = hip.flags if note is None else (*hip.flags, note)
            slice_hips.append(replace(hip, uncertainty=u, flags=flags))
        new_results.append(replace(result, hips=tuple(slice_hips)))
    new_hips = []
    for series_hip in hips:
        totals = [_hip_totals(s, series_hip.side, spacing) for s in sampled]
        props = [proportion_of(n, h) for h, n in totals]
        methods_spread = [
            abs(p - series_hip.proportion) for p in series_hip.method_proportions.values()
        ]
        difference = max(methods_spread, default=0.0)
        u = proportion_uncertainty(
            series_hip.proportion, props, method_difference=difference, config=config
        )
        missed, missed_mm2 = missing_sections(results, series_hip.side)
        u = widened_for_missing(
            u,
            series_hip.proportion,
            series_hip.head_volume_mm3,
            series_hip.necrosis_volume_mm3,
            missed_mm2 * spacing,
            config,
        )
        note = uncertain_grade_note(
            series_hip.grade,
            u,
            series_hip.necrosis_volume_mm3,
            max((n for _, n in totals), default=0.0),
            limit=config.min_volume_mm3,
            unit="mm³",
            coverage=config.coverage,
        )
        if note is not None and missed:
            note = Flag.UNCERTAIN_GRADE.note(
                f"{note.detail}; no head found on {missed} section(s) inside the hip's run "
                f"of slices (about {missed_mm2 * spacing:.0f} mm³ of head, any share of it "
                "may be necrotic)"
            )
        flags = series_hip.flags if note is None else (*series_hip.flags, note)
        new_hips.append(replace(series_hip, uncertainty=u, flags=flags))
    return new_results, tuple(new_hips)
