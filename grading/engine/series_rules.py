"""Steps 9-11 of ``docs/grading.md``: rules that use the third dimension, as named stages.

A necrotic segment is one contiguous volume that reaches the subchondral surface of the
anterosuperior head. Each rule below reads and returns the graded heads of a series
(slices sorted along their normal), has one config dataclass, and adds its
:class:`~grading.engine.flags.Flag` to the heads it changes. :func:`series_stages`
lists them in the order they run (MONAI Label's ``post_transforms()`` shape):

9b. ``oedema_below_lesions``: pale dark signal without a band on the sections below a
    hip's lesion is marrow oedema, not necrosis (runs first, so 10 and 9 do not build
    on it);
10. ``support_lesions``: dark structures inside a neighbouring slice's lesion count
    (runs before 9, so a lesion it completes is carried upwards too);
 9. ``continue_lesions``: a lesion continues upwards into sections lying inside it;
11. ``coherent_lesions``: only necrosis that forms a 3-D segment of the anterosuperior
    head counts (runs last: it judges a segment by the sections that showed it on
    their own, and where it reaches with what 10 and 9 carried).

Step 12 is retired: ``drop_lone_inferior`` and ``drop_isolated_caps`` (the old step 11)
were special cases of step 11 and changed no grade once it ran (``docs/benchmarks.md``,
2026-12-07 late); the number is kept so steps 13 and 14 keep theirs.

Adding a rule: write its function and config here, append it to :func:`series_stages`,
and test it in ``tests/grading_tests/engine/test_series_rules.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.flags import Flag
from grading.engine.hips import FemoralHead
from grading.engine.measure import slice_normal
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
class OedemaBelowConfig:
    """Step 9b (:func:`oedema_below_lesions`). No settings: which sections are below the
    lesion and which necrosis is clear come from the series and from step 8
    (``clear_relative``); leave the stage out with ``SeriesRulesConfig.skip``."""


@dataclass(frozen=True)
class CoherenceConfig:
    """Step 11 (:func:`coherent_lesions`)."""

    min_sections: int = 2
    """A necrotic segment shows on at least this many adjacent sections."""
    link_mm: float = 2.0
    """Necrosis on adjacent sections belongs to one segment when the two overlap once
    one of them is grown by this much in the plane (a lesion's edge moves between
    sections 3-5 mm apart)."""
    clear_single_section: bool = True
    """A segment seen on one section only still counts when that section's necrosis is
    clear (darkest pixels below ``clear_relative``; not ``ambiguous``), it lies in the
    superior half and the head continues above it: a small lesion, or one whose other
    sections the threshold misses (a fat-like interior behind a thin band)."""
    superior: bool = True
    """On axial series, a segment must reach the head's superior half (its widest
    section or above): ONFH starts in the anterosuperior, weight-bearing head."""


def _side_sections(
    graded: Sequence[Sequence[GradedHead]], side: str
) -> list[tuple[int, int, GradedHead]]:
    """``(slice index, position on the slice, graded head)`` of every section of one side."""
    return [
        (index, position, item)
        for index, items in enumerate(graded)
        for position, item in enumerate(items)
        if item.head.side == side
    ]


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
                found=item.necrosis.own_mask,
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
                    found=item.necrosis.own_mask,
                    candidate=candidate & ~added,
                    flags=(*item.necrosis.flags, Flag.NEIGHBOUR_LESION.note(reason)),
                )
                items[position] = GradedHead(item.head, necrosis)
                changed = True
    return out


def oedema_below_lesions(
    ordered: Sequence[MRSlice],
    graded: Sequence[Sequence[GradedHead]],
    config: OedemaBelowConfig = OedemaBelowConfig(),
) -> list[list[GradedHead]]:
    """Set aside pale dark signal on the sections below a hip's lesion: marrow oedema.

    A necrotic segment is a cap under the subchondral surface of the superior head,
    demarcated by its reactive band; marrow oedema lies on the viable side of the band
    and runs down into the neck. On an axial series, the sections below the lowest one
    whose necrosis is clear (not ``ambiguous``: a band or a necrotic interior darker than
    ``clear_relative``) lie below the lesion's band; dark signal there that has no
    clearly dark pixel of its own (``ambiguous``) is oedema, not necrosis, and is not
    counted (flagged ``not_counted``). A section wholly inside a lesion, which is as
    pale and has no band either, lies *above* the band, at the top of the head, and is
    kept. Needs the superior direction (axial slices with an orientation); a hip with no
    clear necrosis on any section is left as it is (nothing to tell by).
    """
    out = [list(items) for items in graded]
    step = _superior_step(ordered)
    if step == 0:
        return out
    for side in ("right", "left"):
        sections = _side_sections(out, side)
        clear = [
            index
            for index, _, item in sections
            if (item.necrosis.mask & item.head.mask).any() and not item.necrosis.ambiguous
        ]
        if not clear:
            continue
        lowest = min(clear, key=lambda index: index * step)
        for index, position, item in sections:
            below = (index - lowest) * step < 0
            if not below or not item.necrosis.mask.any() or not item.necrosis.ambiguous:
                continue
            area = (
                float((item.necrosis.mask & item.head.mask).sum()) * ordered[index].pixel_area_mm2
            )
            reason = (
                f"dark signal of {area:.0f} mm² without a band or clearly necrotic interior, "
                "below the lowest section with a clear lesion on this hip: marrow oedema on "
                "the viable side of the band, not counted; on its own: "
                f"{item.necrosis.reason}"
            )
            out[index][position] = GradedHead(
                item.head,
                replace(
                    item.necrosis,
                    mask=np.zeros_like(item.necrosis.mask),
                    bimodal=False,
                    ambiguous=False,
                    flags=(*item.necrosis.flags, Flag.NOT_COUNTED.note(reason)),
                ),
            )
    return out


def _head_on(graded: Sequence[Sequence[GradedHead]], index: int, side: Side) -> GradedHead | None:
    """The graded head of ``side`` on slice ``index`` (None off the ends or without one)."""
    if not 0 <= index < len(graded):
        return None
    return next((g for g in graded[index] if g.head.side == side), None)


def coherent_lesions(
    ordered: Sequence[MRSlice],
    graded: Sequence[Sequence[GradedHead]],
    config: CoherenceConfig = CoherenceConfig(),
) -> list[list[GradedHead]]:
    """Count only necrosis that forms a 3-D segment of the anterosuperior head.

    A necrotic segment is one contiguous volume under the subchondral surface of the
    anterosuperior, weight-bearing head, several millimetres to centimetres across, so
    on contiguous sections 3-5 mm apart it shows on at least ``config.min_sections``
    adjacent sections and (on an axial series) reaches the head's superior half: its
    widest section or above. The 2-D pieces of necrosis (8-connected) of one hip are
    linked across adjacent sections on the same pixel grid where they overlap within
    ``config.link_mm``; a group of linked pieces that fails either test is what a single
    section cannot tell from a lesion -- a red marrow island, the fovea, the compressive
    trabeculae, the cartilage and subchondral plate at a pole in partial volume, a
    chemical-shift rim low in the head -- and is not counted, flagged ``not_counted``.
    A segment of one section that is clear (not ``ambiguous``), in the superior half
    and below the head's last section counts too (``config.clear_single_section``).
    Runs after steps 10 and 9: the sections a segment was *seen* on are those whose own
    necrosis (``NecrosisResult.own_mask``, before 10 and 9 added to it) or band-dark
    candidates belong to it, while whether it *reaches* the superior half counts what
    10 and 9 carried too (a severe lesion whose band shows only below the widest
    section, its top sections lying inside it, reaches up). Needs adjacent slices on one
    pixel grid; a section with no such neighbour is left as it is.
    """
    out = [list(items) for items in graded]
    linked = [_same_grid(a, b) for a, b in zip(ordered[:-1], ordered[1:], strict=True)]
    if not any(linked):
        return out  # no third dimension to judge by
    step = _superior_step(ordered) if config.superior else 0
    for side in ("right", "left"):
        sections = _side_sections(out, side)
        if sections:
            _coherent_side(ordered, out, sections, linked, step, config)
    return out


_Pieces = dict[int, tuple[int, npt.NDArray[np.int32], int]]
"""Per slice index: the head's position in the slice, its pieces on the side's window
(necrosis 1..count, then candidates), and ``count``."""


def _window(sections: Sequence[tuple[int, int, GradedHead]]) -> tuple[slice, slice]:
    """The union of the head boxes of one side (pixels; the same grid for the sections
    that link, so the same window), so the work is on the hip, not the whole slice."""
    boxes = [item.head.box.slices for _, _, item in sections]
    return (
        slice(min(b[0].start for b in boxes), max(b[0].stop for b in boxes)),
        slice(min(b[1].start for b in boxes), max(b[1].stop for b in boxes)),
    )


def _in_window(item: GradedHead, window: tuple[slice, slice]) -> tuple[slice, slice]:
    """The head's box relative to ``window``."""
    rows, cols = item.head.box.slices
    return (
        slice(rows.start - window[0].start, rows.stop - window[0].start),
        slice(cols.start - window[1].start, cols.stop - window[1].start),
    )


def _pieces(
    sections: Sequence[tuple[int, int, GradedHead]], window: tuple[slice, slice]
) -> _Pieces:
    """The necrosis pieces of each section (8-connected), then the pieces of its
    candidate structures (band-dark lines and regions step 6 did not count alone), which
    link necrosis across sections but are never kept by themselves."""
    structure = np.ones((3, 3), dtype=bool)
    shape = (window[0].stop - window[0].start, window[1].stop - window[1].start)
    pieces: _Pieces = {}
    for index, position, item in sections:
        mask = item.necrosis.mask & item.head.mask
        candidate = item.necrosis.candidate
        labels, count = ndimage.label(mask, structure=structure)
        if candidate is not None and candidate.any():
            extra, _ = ndimage.label(candidate & item.head.mask & ~mask, structure=structure)
            labels = np.where(extra > 0, extra + count, labels)
        if not labels.any():
            continue
        placed = np.zeros(shape, dtype=np.int32)
        placed[_in_window(item, window)] = labels
        pieces[index] = (position, placed, int(count))
    return pieces


def _segments(
    ordered: Sequence[MRSlice], pieces: _Pieces, link_mm: float
) -> list[list[tuple[int, int]]]:
    """Groups of ``(slice index, piece)`` linked across adjacent sections: a piece grown
    by ``link_mm`` in the plane meets a piece of the next section, and one of the two is
    necrosis (two candidates alone do not make a lesion)."""
    parent: dict[tuple[int, int], tuple[int, int]] = {
        (index, int(label)): (index, int(label))
        for index, (_, labels, _) in pieces.items()
        for label in np.unique(labels[labels > 0])
    }

    def find(node: tuple[int, int]) -> tuple[int, int]:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for index, (_, labels, count) in pieces.items():
        upper = index + 1
        if upper not in pieces or not _same_grid(ordered[index], ordered[upper]):
            continue
        other, other_count = pieces[upper][1], pieces[upper][2]
        distance, (near_r, near_c) = ndimage.distance_transform_edt(
            labels == 0, sampling=ordered[index].pixel_spacing_mm, return_indices=True
        )
        grown = np.where(distance <= link_mm, labels[near_r, near_c], 0)
        meet = (grown > 0) & (other > 0)
        for a, b in set(zip(grown[meet].tolist(), other[meet].tolist(), strict=True)):
            if a > count and b > other_count:
                continue
            ra, rb = find((index, a)), find((upper, b))
            if ra != rb:
                parent[ra] = rb
    groups: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for node in parent:
        groups.setdefault(find(node), []).append(node)
    return list(groups.values())


def _coherent_side(
    ordered: Sequence[MRSlice],
    out: list[list[GradedHead]],
    sections: Sequence[tuple[int, int, GradedHead]],
    linked: Sequence[bool],
    step: int,
    config: CoherenceConfig,
) -> None:
    """Step 11 for the heads of one side (``sections``: slice index, position, head);
    changes ``out`` in place."""
    side = sections[0][2].head.side
    widest = max(
        sections, key=lambda s: float(s[2].head.mask.sum()) * ordered[s[0]].pixel_area_mm2
    )[0]
    window = _window(sections)
    pieces = _pieces(sections, window)
    # the pieces holding necrosis the section found on its own (not only what steps 10
    # and 9 carried in from a neighbour)
    own: set[tuple[int, int]] = set()
    for index, (position, labels, count) in pieces.items():
        item = out[index][position]
        found = np.zeros(labels.shape, dtype=bool)
        found[_in_window(item, window)] = item.necrosis.own_mask & item.head.mask
        own |= {(index, int(label)) for label in np.unique(labels[found]) if 0 < label <= count}
    drop: dict[int, list[int]] = {}
    for members in _segments(ordered, pieces, config.link_mm):
        necrotic = [(index, label) for index, label in members if label <= pieces[index][2]]
        indices = {index for index, _ in members}
        first = min(indices)
        if len(indices) == 1 and not (
            (first > 0 and linked[first - 1]) or (first < len(linked) and linked[first])
        ):
            continue  # a section with no neighbour on its grid cannot be judged
        # where the segment reaches: with what steps 10 and 9 added (a lesion seen by its
        # lower band and carried up into the sections lying inside it)
        superior = step == 0 or any((index - widest) * step >= 0 for index, _ in necrotic)
        # on how many sections it was seen: what each section showed on its own, and the
        # band-dark candidates linked to it
        seen = sorted({i for i, label in members if (i, label) in own or label > pieces[i][2]})
        if superior and len(seen) >= config.min_sections:
            continue
        if superior and step != 0 and config.clear_single_section and len(seen) == 1:
            # one section only: kept when its necrosis is clear and the head goes on
            # above it (not the pole, where partial volume makes a dark cap)
            item = out[seen[0]][pieces[seen[0]][0]]
            above = _head_on(out, seen[0] + step, side) is not None
            if above and not item.necrosis.ambiguous:
                continue
        for index, label in necrotic:
            drop.setdefault(index, []).append(label)
    for index, labels_dropped in drop.items():
        position, labels, _count = pieces[index]
        item = out[index][position]
        removed = np.isin(labels[_in_window(item, window)], labels_dropped)
        kept = item.necrosis.mask & ~removed
        area = float(removed.sum()) * ordered[index].pixel_area_mm2
        reason = (
            f"necrosis of {area:.0f} mm² on this section is not counted: it is not part "
            f"of a segment seen on {config.min_sections} or more adjacent sections that "
            "reaches the superior half of the head (ONFH is one contiguous volume under "
            "the anterosuperior surface); a normal variant or partial volume; on its "
            f"own: {item.necrosis.reason}"
        )
        necrosis = replace(
            item.necrosis,
            mask=kept,
            flags=(*item.necrosis.flags, Flag.NOT_COUNTED.note(reason)),
        )
        if not kept.any():
            necrosis = replace(necrosis, bimodal=False, ambiguous=False)
        out[index][position] = GradedHead(item.head, necrosis)


@dataclass(frozen=True)
class SeriesStage:
    """One named step over the graded heads of a series, with its config."""

    step: str
    """Its number in ``docs/grading.md`` (9b: a step added between the numbered ones)."""
    name: str
    run: Callable[[Sequence[MRSlice], Graded, Any], Graded]
    config: Any

    def __call__(self, ordered: Sequence[MRSlice], graded: Graded) -> Graded:
        return self.run(ordered, graded, self.config)


@dataclass(frozen=True)
class SeriesRulesConfig:
    """The configs of steps 9-11, and which of them run (all, by default)."""

    coherence: CoherenceConfig = CoherenceConfig()
    oedema_below: OedemaBelowConfig = OedemaBelowConfig()
    support: SupportConfig = SupportConfig()
    continued: ContinueConfig = ContinueConfig()
    skip: frozenset[str] = field(default_factory=frozenset)
    """Names of stages left out (for before/after measurements)."""


ANATOMICAL_STAGES: frozenset[str] = frozenset({"coherent_lesions"})
"""The stages that rest on anatomy alone (partial volume at a pole; ONFH is one
contiguous volume from the anterosuperior head), not on how the threshold sees a lesion:
they also run on the learned method's masks (step 13)."""


def series_stages(config: SeriesRulesConfig = SeriesRulesConfig()) -> list[SeriesStage]:
    """Steps 9-11 in the order they run (9b, 10, 9, 11: see the module docstring)."""
    stages = [
        SeriesStage("9b", "oedema_below_lesions", oedema_below_lesions, config.oedema_below),
        SeriesStage("10", "support_lesions", support_lesions, config.support),
        SeriesStage("9", "continue_lesions", continue_lesions, config.continued),
        SeriesStage("11", "coherent_lesions", coherent_lesions, config.coherence),
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
