"""Grade a slice or a series: find the heads, threshold necrosis, measure, summarise.

``grade_series`` sorts the slices along the slice normal, runs the network in as few
``predict`` calls as it can (one coarse pass over the whole series, then the fine pass
in chunks of about ``fine_batch`` windows so progress can be reported), measures every
head and summarises each hip over the series. Results come back in the input order.

The marrow reference of each hip is taken over the whole series (the 80th percentile of
the per-slice marrow levels of that hip's larger sections), so a section that is mostly
necrotic is not compared with itself.

Four rules use the third dimension (a necrotic segment is one contiguous volume that
reaches the subchondral surface of the anterosuperior head): dark structures inside a
neighbouring slice's lesion count (:func:`support_lesions`), a lesion continues upwards
into sections lying inside it (:func:`continue_lesions`), and neither a small cap at a
pole whose neighbour shows no necrosis (:func:`drop_isolated_caps`) nor a lone necrotic
section below the head's widest one (:func:`drop_lone_inferior`) is counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from grading.engine.hips import (
    DEFAULT_CONFIG,
    STANDARD_AXIAL,
    FemoralHead,
    HipFinderConfig,
    Segmenter,
    coarse_pass,
    fine_pass,
    fine_requests,
    series_head_diameters,
)
from grading.engine.measure import (
    SMALL_HEAD_MM2,
    measure_hip,
    slice_normal,
    slice_order,
    summarise_series,
    with_one_side_only,
)
from grading.engine.necrosis import (
    DEFAULT_NECROSIS_CONFIG,
    NecrosisConfig,
    NecrosisResult,
    anterior_in_image,
    find_necrosis,
    marrow_reference,
)
from grading.engine.types import (
    NECROSIS,
    VIABLE_HEAD,
    HipSliceResult,
    MRSlice,
    SeriesResult,
    Side,
    SliceResult,
)

Progress = Callable[[int, int], None]

REFERENCE_PERCENTILE = 80.0
CONTINUE_MIN_OVERLAP = 0.5
"""A section lying at least this much inside the necrosis of the slice below it is
inside the lesion (see :func:`continue_lesions`)."""
CONTINUE_EDGE_MM = 1.5
"""Where the section shows necrosis of its own, only the part of the lower lesion at least
this far inside its edge is carried up (its edge is not sharper than that)."""
LONE_MAX_DEPTH_MM = 8.0
"""A lone necrotic section low in the head is left out only when its necrosis lies within
this depth of the head's edge: the cortex, cartilage and joint line that a head mask can
take in (2-7 mm on phantoms), not a lesion whose neighbours the threshold missed (14 mm)."""
SUPPORT_MIN_INSIDE = 0.5
"""A dark structure not counted on its own slice is part of a lesion when at least this
share of it lies inside the clear necrosis of a neighbouring slice (see
:func:`support_lesions`)."""


@dataclass(frozen=True)
class PipelineConfig:
    """Knobs of the pipeline; the defaults are the product's settings."""

    hips: HipFinderConfig = DEFAULT_CONFIG
    necrosis: NecrosisConfig = DEFAULT_NECROSIS_CONFIG
    batch_size: int = 16
    fine_batch: int = 16
    """Fine-pass windows per ``predict`` call (progress is reported between calls)."""


DEFAULT_PIPELINE = PipelineConfig()


@dataclass(frozen=True)
class GradedHead:
    """A head with its necrosis, before measurement."""

    head: FemoralHead
    necrosis: NecrosisResult


def series_references(
    slices: Sequence[MRSlice],
    heads: Sequence[Sequence[FemoralHead]],
    config: NecrosisConfig = DEFAULT_NECROSIS_CONFIG,
) -> dict[Side, float]:
    """Per side, the viable-marrow level over a series (stored-value units).

    The ``REFERENCE_PERCENTILE`` of the per-slice levels of sections of at least
    ``SMALL_HEAD_MM2`` (all sections when none is that large).
    """
    levels: dict[Side, list[tuple[float, float]]] = {}
    for mr_slice, slice_heads in zip(slices, heads, strict=True):
        for head in slice_heads:
            level = marrow_reference(
                mr_slice.pixels[head.box.slices], head.mask, mr_slice.pixel_spacing_mm, config
            )
            if level is not None:
                area = float(head.mask.sum()) * mr_slice.pixel_area_mm2
                levels.setdefault(head.side, []).append((level, area))
    out: dict[Side, float] = {}
    for side, values in levels.items():
        large = [v for v, a in values if a >= SMALL_HEAD_MM2] or [v for v, _ in values]
        out[side] = float(np.percentile(large, REFERENCE_PERCENTILE))
    return out


def grade_heads(
    mr_slice: MRSlice,
    heads: Sequence[FemoralHead],
    references: dict[Side, float] | None = None,
    config: NecrosisConfig = DEFAULT_NECROSIS_CONFIG,
) -> list[GradedHead]:
    """Necrosis inside each head of one slice."""
    anterior = anterior_in_image(mr_slice.image_orientation or STANDARD_AXIAL)
    out = []
    for head in heads:
        necrosis = find_necrosis(
            mr_slice.pixels[head.box.slices],
            head.mask,
            mr_slice.pixel_spacing_mm,
            reference=(references or {}).get(head.side),
            anterior=anterior,
            config=config,
        )
        out.append(GradedHead(head, necrosis))
    return out


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


def _clear_footprint(item: GradedHead, shape: tuple[int, int]) -> np.ndarray | None:
    """The clear (not ambiguous) necrosis of a graded head on the full slice grid."""
    if item.necrosis.ambiguous or not item.necrosis.mask.any():
        return None
    return _full(item.necrosis.mask & item.head.mask, item.head, shape)


def continue_lesions(
    ordered: Sequence[MRSlice], graded: Sequence[Sequence[GradedHead]]
) -> list[list[GradedHead]]:
    """Carry necrosis upwards into sections that lie inside the lesion below them.

    ONFH is anterosuperior: towards the top of the head a section can lie wholly inside
    a lesion whose interior keeps a fat-like signal, with the reactive band that shows
    the lesion on lower slices now below it, so the slice alone shows nothing. Going
    from the inferior to the superior slices (``ordered`` along the normal), a head
    section that lies at least :data:`CONTINUE_MIN_OVERLAP` inside the (clear) necrosis
    of the same hip on the slice below, while its own necrosis covers less than half of
    that, takes the overlap as necrosis (added to its own), flagged ``continued``. A
    section with more necrosis of its own takes only the part of the overlap deeper than
    :data:`CONTINUE_EDGE_MM` inside the lower lesion's edge: a mixed interior keeps
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
            footprint = None if under is None else _clear_footprint(under, shape)
            if footprint is None:
                continue
            head = item.head.mask
            inside = footprint[item.head.box.slices] & head
            head_pixels = max(int(head.sum()), 1)
            overlap = int(inside.sum()) / head_pixels
            own = int((item.necrosis.mask & head).sum()) / head_pixels
            if overlap < CONTINUE_MIN_OVERLAP:
                continue
            has_own_necrosis = own >= 0.5 * overlap
            if has_own_necrosis:
                # pixels are areas: a pixel's centre lies half a pixel inside the edge
                spacing = ordered[index].pixel_spacing_mm
                depth = ndimage.distance_transform_edt(footprint, sampling=spacing)
                deep = depth - 0.5 * max(spacing) > CONTINUE_EDGE_MM
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
                    f"deeper than {CONTINUE_EDGE_MM:g} mm inside that lesion, is taken as "
                    "necrosis too (3-D continuity; a mixed interior keeps marrow-bright patches)"
                )
            necrosis = replace(item.necrosis, mask=item.necrosis.mask | added, continued=reason)
            out[index][position] = GradedHead(item.head, necrosis)
    return out


def support_lesions(
    ordered: Sequence[MRSlice], graded: Sequence[Sequence[GradedHead]]
) -> list[list[GradedHead]]:
    """Count the dark structures of a section that lie inside a neighbour's lesion.

    A necrotic segment is one contiguous volume. On a single slice a line (the band at
    a lesion's lower tip, a wedge running in from the surface) or a region cut off
    sideways (an anterolateral lesion, which the direction rule cannot tell from a
    physeal scar's lateral segment) is not counted (``NecrosisResult.candidate``). When
    at least :data:`SUPPORT_MIN_INSIDE` of such a structure (one 8-connected piece) lies
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
                take = inside >= SUPPORT_MIN_INSIDE * np.maximum(size, 1)
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
                    supported=reason,
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
        not_counted=reason,
        continued="",
        supported="",
    )
    return GradedHead(item.head, necrosis)


def drop_isolated_caps(
    ordered: Sequence[MRSlice], graded: Sequence[Sequence[GradedHead]]
) -> list[list[GradedHead]]:
    """Do not count necrosis in a small cap at a pole when the section next to it has none.

    Necrosis is one contiguous volume that reaches the subchondral surface, so a lesion
    in the last section of a head continues into the section next to it. A section under
    ``SMALL_HEAD_MM2`` at the end of the hip's run of slices (no head of that side on the
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
            if area >= SMALL_HEAD_MM2 or not _has_necrosis(item):
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
    ordered: Sequence[MRSlice], graded: Sequence[Sequence[GradedHead]]
) -> list[list[GradedHead]]:
    """Do not count necrosis in a rim of a lone section below the head's widest section.

    ONFH begins in the anterosuperior, weight-bearing part of the head and is one
    contiguous volume, so its lowest sections always have necrosis on the section above
    them. A section inferior to the hip's widest section (towards the neck) whose
    necrosis lies within :data:`LONE_MAX_DEPTH_MM` of the head's edge, while the section
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
            if deepest > LONE_MAX_DEPTH_MM:
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


def slice_result(
    mr_slice: MRSlice, graded: Sequence[GradedHead], *, bilateral: bool
) -> SliceResult:
    """The ``(H, W)`` uint8 label map and the measured hips of one slice."""
    labelmap = np.zeros(mr_slice.shape, dtype=np.uint8)
    hips: list[HipSliceResult] = []
    for item in graded:
        head = item.head
        window = labelmap[head.box.slices]
        window[head.mask] = VIABLE_HEAD
        necrosis = item.necrosis.mask & head.mask
        window[necrosis] = NECROSIS
        hips.append(
            measure_hip(
                mr_slice,
                head.side,
                head.box,
                head.mask,
                necrosis,
                probability=head.probability,
                necrosis=item.necrosis,
            )
        )
    return SliceResult(
        labelmap=labelmap,
        hips=with_one_side_only(hips, bilateral=bilateral),
        sop_instance_uid=mr_slice.sop_instance_uid,
        source=mr_slice.source,
    )


def grade_series(
    slices: Sequence[MRSlice],
    segmenter: Segmenter,
    progress: Progress | None = None,
    *,
    config: PipelineConfig = DEFAULT_PIPELINE,
) -> SeriesResult:
    """Grade the slices of one series (any order; results in the input order).

    ``progress(done, total)`` is called with ``(0, total)`` first, then as slices are
    segmented, and ``(total, total)`` once everything is measured. ``timings_s`` holds
    ``coarse``, ``fine``, ``necrosis`` and ``total`` seconds.
    """
    started = time.perf_counter()
    total = len(slices)
    if progress is not None:
        progress(0, total)
    model_version = str(getattr(segmenter, "model_version", ""))
    if total == 0:
        return SeriesResult(slices=(), hips=(), model_version=model_version)
    order = slice_order(slices)
    ordered = [slices[i] for i in order]

    coarse = coarse_pass(ordered, segmenter, config.hips, batch_size=config.batch_size)
    after_coarse = time.perf_counter()
    diameters = series_head_diameters(coarse) if total > 1 else None
    requests = fine_requests(ordered, coarse, diameters, config.hips)
    heads: list[list[FemoralHead]] = [[] for _ in ordered]
    start = 0
    while start < len(requests):
        # whole slices per chunk, about ``fine_batch`` windows
        stop = min(start + max(config.fine_batch, 1), len(requests))
        while stop < len(requests) and requests[stop][0] == requests[stop - 1][0]:
            stop += 1
        chunk = requests[start:stop]
        found = fine_pass(ordered, chunk, segmenter, config.hips, batch_size=config.batch_size)
        for index, slice_heads in enumerate(found):
            heads[index].extend(slice_heads)
        start = stop
        if progress is not None:
            done = requests[stop - 1][0] + 1 if stop < len(requests) else total
            progress(min(done, total - 1), total)
    after_fine = time.perf_counter()

    references = series_references(ordered, heads, config.necrosis)
    graded = [
        grade_heads(mr_slice, slice_heads, references, config.necrosis)
        for mr_slice, slice_heads in zip(ordered, heads, strict=True)
    ]
    graded = drop_lone_inferior(
        ordered,
        drop_isolated_caps(ordered, continue_lesions(ordered, support_lesions(ordered, graded))),
    )
    results: list[SliceResult] = []
    per_slice: list[tuple[MRSlice, tuple[HipSliceResult, ...]]] = []
    for mr_slice, slice_graded, coarse_result in zip(ordered, graded, coarse, strict=True):
        result = slice_result(
            mr_slice, slice_graded, bilateral=coarse_result.layout.kind == "bilateral"
        )
        results.append(result)
        per_slice.append((mr_slice, result.hips))
    hips = summarise_series(ordered[0].series_instance_uid, per_slice)
    finished = time.perf_counter()
    if progress is not None:
        progress(total, total)

    in_input_order: list[SliceResult | None] = [None] * total
    for position, index in enumerate(order):
        in_input_order[index] = results[position]
    return SeriesResult(
        slices=tuple(r for r in in_input_order if r is not None),
        hips=hips,
        model_version=model_version,
        timings_s={
            "coarse": after_coarse - started,
            "fine": after_fine - after_coarse,
            "necrosis": finished - after_fine,
            "total": finished - started,
        },
    )


def grade_slice(
    mr_slice: MRSlice, segmenter: Segmenter, *, config: PipelineConfig = DEFAULT_PIPELINE
) -> SliceResult:
    """Grade one slice on its own (its own marrow reference and window sizes)."""
    return grade_series([mr_slice], segmenter, config=config).slices[0]
