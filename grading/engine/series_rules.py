"""Steps 9-12 of ``docs/grading.md``: rules that use the third dimension, as named stages.

A necrotic segment is one contiguous volume that reaches the subchondral surface of the
anterosuperior head. Each rule below reads and returns the graded heads of a series
(slices sorted along their normal), has one config dataclass, and adds its
:class:`~grading.engine.flags.Flag` to the heads it changes. :func:`series_stages`
lists them in the order they run (MONAI Label's ``post_transforms()`` shape):

 9. ``continue_lesions``: a lesion continues upwards into sections lying inside it;
10. ``support_lesions``: dark structures inside a neighbouring slice's lesion count
    (runs first, so a lesion it completes is carried upwards too);
11. ``drop_isolated_caps``: a small cap at a pole whose neighbour shows no necrosis
    is not counted;
12. ``drop_lone_inferior``: a lone necrotic rim below the head's widest section is not
    counted.

Adding a rule: write its function and config here, append it to :func:`series_stages`,
and test it in ``tests/grading_tests/engine/test_series_rules.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import ndimage

from grading.engine.flags import Flag
from grading.engine.hips import FemoralHead
from grading.engine.measure import SMALL_HEAD_MM2, slice_normal
from grading.engine.necrosis import NecrosisResult
from grading.engine.types import MRSlice, Side


@dataclass(frozen=True)
class GradedHead:
    """A head with its necrosis, before measurement."""

    head: FemoralHead
    necrosis: NecrosisResult


Graded = list[list[GradedHead]]
"""Per slice (sorted along the normal), the graded heads of that slice."""


@dataclass(frozen=True)
class ContinueConfig:
    """Step 9 (:func:`continue_lesions`)."""

    min_overlap: float = 0.5
    """A section lying at least this much inside the necrosis of the slice below it is
    inside the lesion."""
    edge_mm: float = 1.5
    """Where the section shows necrosis of its own, only the part of the lower lesion at
    least this far inside its edge is carried up (its edge is not sharper than that)."""
    ambiguous_min_share: float | None = 0.3
    """A lower lesion flagged ambiguous (its darkest pixels not clearly dark) still
    carries up when it covers at least this share of its own section. Contrast alone is
    low on an unfamiliar grey scale (a compressed curve, a lower SNR), but a third of a
    section read as one dark region is a lesion, not marrow texture: the top of a large
    lesion, where a section may lie wholly inside it, is otherwise graded none."""


@dataclass(frozen=True)
class SupportConfig:
    """Step 10 (:func:`support_lesions`)."""

    min_inside: float = 0.5
    """A dark structure not counted on its own slice is part of a lesion when at least
    this share of it lies inside the clear necrosis of a neighbouring slice."""


@dataclass(frozen=True)
class CapConfig:
    """Step 11 (:func:`drop_isolated_caps`)."""

    max_area_mm2: float = SMALL_HEAD_MM2
    """Only a last section smaller than this can be a cap at the pole."""


@dataclass(frozen=True)
class LoneInferiorConfig:
    """Step 12 (:func:`drop_lone_inferior`)."""

    max_depth_mm: float = 8.0
    """A lone necrotic section low in the head is left out only when its necrosis lies
    within this depth of the head's edge: the cortex, cartilage and joint line that a head
    mask can take in (2-7 mm on phantoms), not a lesion whose neighbours the threshold
    missed (14 mm)."""


def _superior_step(ordered: Sequence[MRSlice]) -> int:
    """+1 when the slices (sorted along their normal) run inferior to superior, -1 when
    they run the other way, 0 when that is unknown (no orientation, not axial)."""
    normal = slice_normal(ordered[0])
    if normal is None or abs(float(normal[2])) < 0.5:
        return 0
    return 1 if normal[2] > 0 else -1


def _same_grid(a: MRSlice, b: MRSlice) -> bool:
    """Whether two slices of a series share their pixel grid in the plane (same matrix,
    spacing and orientation, origins within half a pixel in the plane)."""
    if a.shape != b.shape or a.image_orientation != b.image_orientation:
        return False
    if not np.allclose(a.pixel_spacing_mm, b.pixel_spacing_mm, rtol=1e-4):
        return False
    if a.image_position is None or b.image_position is None or a.image_orientation is None:
        return False
    offset = np.subtract(b.image_position, a.image_position)
    cosines = np.asarray(a.image_orientation, dtype=np.float64)
    along_row = float(np.dot(offset, cosines[:3])) / a.pixel_spacing_mm[1]
    along_col = float(np.dot(offset, cosines[3:])) / a.pixel_spacing_mm[0]
    return abs(along_row) <= 0.5 and abs(along_col) <= 0.5


def _full(mask: np.ndarray, head: FemoralHead, shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, dtype=bool)
    out[head.box.slices] = mask
    return out


def _clear_footprint(
    item: GradedHead, shape: tuple[int, int], ambiguous_min_share: float | None = None
) -> np.ndarray | None:
    """The clear (not ambiguous) necrosis of a graded head on the full slice grid; an
    ambiguous one too where it covers at least ``ambiguous_min_share`` of the section."""
    necrosis = item.necrosis.mask & item.head.mask
    if not necrosis.any():
        return None
    if item.necrosis.ambiguous:
        share = int(necrosis.sum()) / max(int(item.head.mask.sum()), 1)
        if ambiguous_min_share is None or share < ambiguous_min_share:
            return None
    return _full(necrosis, item.head, shape)


def continue_lesions(
    ordered: Sequence[MRSlice],
    graded: Sequence[Sequence[GradedHead]],
    config: ContinueConfig = ContinueConfig(),
) -> list[list[GradedHead]]:
    """Carry necrosis upwards into sections that lie inside the lesion below them.

    ONFH is anterosuperior: towards the top of the head a section can lie wholly inside
    a lesion whose interior keeps a fat-like signal, with the reactive band that shows
    the lesion on lower slices now below it, so the slice alone shows nothing. Going
    from the inferior to the superior slices (``ordered`` along the normal), a head
    section that lies at least ``config.min_overlap`` inside the (clear, or ambiguous but
    covering ``config.ambiguous_min_share`` of its section) necrosis of the same hip on
    the slice below, while its own necrosis covers less than half of
    that, takes the overlap as necrosis (added to its own), flagged ``continued``. A
    section with more necrosis of its own takes only the part of the overlap deeper than
    ``config.edge_mm`` inside the lower lesion's edge: a mixed interior keeps
    marrow-bright patches that nothing dark cuts off, while the edge of the lower lesion
    is not sharper than that (and would grow from slice to slice). Needs axial slices on
    one pixel grid; otherwise nothing changes.
    """
    out = [list(items) for items in graded]
    step = _superior_step(ordered) if len(ordered) > 1 else 0
    if step == 0:
        return out
    indices = range(len(ordered)) if step > 0 else range(len(ordered) - 1, -1, -1)
    previous: int | None = None
    for index in indices:
        below = previous
        previous = index
        if below is None or not _same_grid(ordered[below], ordered[index]):
            continue
        shape = ordered[index].shape
        lower = {g.head.side: g for g in out[below]}
        for position, item in enumerate(out[index]):
            under = lower.get(item.head.side)
            footprint = (
                None
                if under is None
                else _clear_footprint(under, shape, config.ambiguous_min_share)
            )
            if footprint is None:
                continue
            head = item.head.mask
            inside = footprint[item.head.box.slices] & head
            head_pixels = max(int(head.sum()), 1)
            overlap = int(inside.sum()) / head_pixels
            own = int((item.necrosis.mask & head).sum()) / head_pixels
            if overlap < config.min_overlap:
                continue
            has_own_necrosis = own >= 0.5 * overlap
            if has_own_necrosis:
                # pixels are areas: a pixel's centre lies half a pixel inside the edge
                spacing = ordered[index].pixel_spacing_mm
                depth = ndimage.distance_transform_edt(footprint, sampling=spacing)
                deep = depth - 0.5 * max(spacing) > config.edge_mm
                inside = deep[item.head.box.slices] & head
            added = inside & ~item.necrosis.mask
            if not added.any():
                continue
            reason = (
                f"{100 * overlap:.0f} % of this section lies inside the necrosis of the slice "
                "below and it shows no band of its own: the lesion is taken to continue "
                "upwards (3-D continuity)"
            )
            if has_own_necrosis:
                reason = (
                    f"{100 * overlap:.0f} % of this section lies inside the necrosis of the "
                    f"slice below: {100 * int(added.sum()) / head_pixels:.0f} % of the section, "
                    f"deeper than {config.edge_mm:g} mm inside that lesion, is taken as "
                    "necrosis too (3-D continuity; a mixed interior keeps marrow-bright patches)"
                )
            necrosis = replace(
                item.necrosis,
                mask=item.necrosis.mask | added,
                flags=(*item.necrosis.flags, Flag.CONTINUED.note(reason)),
            )
            out[index][position] = GradedHead(item.head, necrosis)
    return out


def support_lesions(
    ordered: Sequence[MRSlice],
    graded: Sequence[Sequence[GradedHead]],
    config: SupportConfig = SupportConfig(),
) -> list[list[GradedHead]]:
    """Count the dark structures of a section that lie inside a neighbour's lesion.

    A necrotic segment is one contiguous volume. On a single slice a line (the band at
    a lesion's lower tip, a wedge running in from the surface) or a region cut off
    sideways (an anterolateral lesion, which the direction rule cannot tell from a
    physeal scar's lateral segment) is not counted (``NecrosisResult.candidate``). When
    at least ``config.min_inside`` of such a structure (one 8-connected piece) lies
    inside the clear necrosis of the same hip on the slice above or below (``ordered``
    along the normal, on the same pixel grid), it is that lesion's continuation and is
    counted, flagged ``neighbour_lesion``. Repeated until nothing changes, so a lesion
    can be followed over several slices. A scar's segment lies beside a lesion, not
    inside it, and is left alone.
    """
    out = [list(items) for items in graded]
    if len(ordered) < 2:
        return out
    structure = np.ones((3, 3), dtype=bool)
    changed = True
    while changed:
        changed = False
        for index, items in enumerate(out):
            shape = ordered[index].shape
            for position, item in enumerate(items):
                candidate = item.necrosis.candidate
                if candidate is None or not candidate.any():
                    continue
                footprint = np.zeros(item.head.box.shape, dtype=bool)
                for other in (index - 1, index + 1):
                    if not 0 <= other < len(out) or not _same_grid(ordered[other], ordered[index]):
                        continue
                    for neighbour in out[other]:
                        if neighbour.head.side != item.head.side:
                            continue
                        full = _clear_footprint(neighbour, shape)
                        if full is not None:
                            footprint |= full[item.head.box.slices]
                if not footprint.any():
                    continue
                pieces, count = ndimage.label(candidate & item.head.mask, structure=structure)
                if count == 0:
                    continue
                size = np.bincount(pieces.ravel(), minlength=count + 1)
                inside = np.bincount(pieces[footprint].ravel(), minlength=count + 1)
                take = inside >= config.min_inside * np.maximum(size, 1)
                take[0] = False
                if not take.any():
                    continue
                added = take[pieces]
                share = float(added.sum()) / max(int(item.head.mask.sum()), 1)
                reason = (
                    f"dark structures of {100 * share:.1f} % of this section lie inside the "
                    "necrosis of the neighbouring slice: counted as that lesion's continuation "
                    "(3-D continuity)"
                )
                necrosis = replace(
                    item.necrosis,
                    mask=item.necrosis.mask | added,
                    candidate=candidate & ~added,
                    flags=(*item.necrosis.flags, Flag.NEIGHBOUR_LESION.note(reason)),
                )
                items[position] = GradedHead(item.head, necrosis)
                changed = True
    return out


def _head_on(graded: Sequence[Sequence[GradedHead]], index: int, side: Side) -> GradedHead | None:
    """The graded head of ``side`` on slice ``index`` (None off the ends or without one)."""
    if not 0 <= index < len(graded):
        return None
    return next((g for g in graded[index] if g.head.side == side), None)


def _has_necrosis(item: GradedHead | None) -> bool:
    return item is not None and bool((item.necrosis.mask & item.head.mask).any())


def _set_aside(item: GradedHead, reason: str) -> GradedHead:
    """The head with its necrosis not counted, flagged ``not_counted`` with ``reason``."""
    necrosis = replace(
        item.necrosis,
        mask=np.zeros_like(item.necrosis.mask),
        bimodal=False,
        ambiguous=False,
        flags=(Flag.NOT_COUNTED.note(reason),),
    )
    return GradedHead(item.head, necrosis)


def drop_isolated_caps(
    ordered: Sequence[MRSlice],
    graded: Sequence[Sequence[GradedHead]],
    config: CapConfig = CapConfig(),
) -> list[list[GradedHead]]:
    """Do not count necrosis in a small cap at a pole when the section next to it has none.

    Necrosis is one contiguous volume that reaches the subchondral surface, so a lesion
    in the last section of a head continues into the section next to it. A section under
    ``config.max_area_mm2`` at the end of the hip's run of slices (no head of that side on the
    slice further out, or no slice there) with necrosis while the next section inwards
    has none is partial volume at the pole (the cap is dark all over, and the network may
    take in the joint beyond the head), not a lesion. Its necrosis is not counted, and the
    slice is flagged ``not_counted`` with this reason, so a reader looks. Needs the slices
    sorted along the normal (``ordered``) and at least two of them.
    """
    out = [list(items) for items in graded]
    if len(ordered) < 2:
        return out
    for index, items in enumerate(out):
        pixel_area = ordered[index].pixel_area_mm2
        for position, item in enumerate(items):
            area = float(item.head.mask.sum()) * pixel_area
            if area >= config.max_area_mm2 or not _has_necrosis(item):
                continue
            side = item.head.side
            for outward, inward in ((index - 1, index + 1), (index + 1, index - 1)):
                inner = _head_on(out, inward, side)
                if _head_on(out, outward, side) is not None or inner is None:
                    continue
                if _has_necrosis(inner):
                    continue
                reason = (
                    f"an isolated cap at the pole ({area:.0f} mm², the last section of the "
                    "head) with necrosis while the section next to it has none: partial "
                    "volume at the pole, not counted as necrosis (necrosis is one "
                    f"contiguous volume); on its own: {item.necrosis.reason}"
                )
                items[position] = _set_aside(item, reason)
                break
    return out


def drop_lone_inferior(
    ordered: Sequence[MRSlice],
    graded: Sequence[Sequence[GradedHead]],
    config: LoneInferiorConfig = LoneInferiorConfig(),
) -> list[list[GradedHead]]:
    """Do not count necrosis in a rim of a lone section below the head's widest section.

    ONFH begins in the anterosuperior, weight-bearing part of the head and is one
    contiguous volume, so its lowest sections always have necrosis on the section above
    them. A section inferior to the hip's widest section (towards the neck) whose
    necrosis lies within ``config.max_depth_mm`` of the head's edge, while the section
    below it and the two above it have none, is not a lesion: the head mask has taken in
    the dark cortex or joint line there (found on phantom series of normal hips,
    ``docs/grading.md``). Two sections up, not one, because a lesion whose lowest
    sections the threshold misses must keep what it shows. Its necrosis is not counted,
    and the slice is flagged ``not_counted`` with this reason, so a reader looks. Needs
    at least three axial slices sorted along the normal (``ordered``); otherwise nothing
    changes.
    """
    out = [list(items) for items in graded]
    step = _superior_step(ordered) if len(ordered) > 2 else 0
    if step == 0:
        return out

    widest: dict[Side, tuple[float, int]] = {}
    for index, items in enumerate(out):
        for item in items:
            area = float(item.head.mask.sum()) * ordered[index].pixel_area_mm2
            if area > widest.get(item.head.side, (-1.0, 0))[0]:
                widest[item.head.side] = (area, index)
    for index, items in enumerate(out):
        for position, item in enumerate(items):
            side = item.head.side
            if (index - widest[side][1]) * step >= 0 or not _has_necrosis(item):
                continue
            near = (index - step, index + step, index + 2 * step)
            if any(_has_necrosis(_head_on(out, other, side)) for other in near):
                continue
            spacing = ordered[index].pixel_spacing_mm
            depth = ndimage.distance_transform_edt(item.head.mask, sampling=spacing)
            deepest = float(depth[item.necrosis.mask & item.head.mask].max())
            if deepest > config.max_depth_mm:
                continue
            reason = (
                f"necrosis on this section only (a rim at most {deepest:.1f} mm deep), below "
                "the widest section of the head, with none on the section below or the two "
                "above: not counted (ONFH is one contiguous volume from the anterosuperior "
                "head; the head mask probably takes in the cortex or joint here); on its "
                f"own: {item.necrosis.reason}"
            )
            items[position] = _set_aside(item, reason)
    return out


@dataclass(frozen=True)
class SeriesStage:
    """One named step over the graded heads of a series, with its config."""

    step: int
    """Its number in ``docs/grading.md``."""
    name: str
    run: Callable[[Sequence[MRSlice], Graded, Any], Graded]
    config: Any

    def __call__(self, ordered: Sequence[MRSlice], graded: Graded) -> Graded:
        return self.run(ordered, graded, self.config)


@dataclass(frozen=True)
class SeriesRulesConfig:
    """The configs of steps 9-12, and which of them run (all, by default)."""

    support: SupportConfig = SupportConfig()
    continued: ContinueConfig = ContinueConfig()
    caps: CapConfig = CapConfig()
    lone_inferior: LoneInferiorConfig = LoneInferiorConfig()
    skip: frozenset[str] = field(default_factory=frozenset)
    """Names of stages left out (for before/after measurements)."""


ANATOMICAL_STAGES: frozenset[str] = frozenset({"drop_isolated_caps", "drop_lone_inferior"})
"""The stages that rest on anatomy alone (partial volume at a pole; ONFH is one
contiguous volume from the anterosuperior head), not on how the threshold sees a lesion:
they also run on the learned method's masks (step 13)."""


def series_stages(config: SeriesRulesConfig = SeriesRulesConfig()) -> list[SeriesStage]:
    """Steps 9-12 in the order they run (10 before 9: see the module docstring)."""
    stages = [
        SeriesStage(10, "support_lesions", support_lesions, config.support),
        SeriesStage(9, "continue_lesions", continue_lesions, config.continued),
        SeriesStage(11, "drop_isolated_caps", drop_isolated_caps, config.caps),
        SeriesStage(12, "drop_lone_inferior", drop_lone_inferior, config.lone_inferior),
    ]
    return [stage for stage in stages if stage.name not in config.skip]


def run_series_stages(
    ordered: Sequence[MRSlice],
    graded: Sequence[Sequence[GradedHead]],
    stages: Sequence[SeriesStage],
) -> Graded:
    """``graded`` after each stage in turn."""
    out = [list(items) for items in graded]
    for stage in stages:
        out = stage(ordered, out)
    return out
