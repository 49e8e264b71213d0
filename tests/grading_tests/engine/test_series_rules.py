"""Steps 9-12 (``grading.engine.series_rules``) on small hand-made series.

Each test builds the graded heads a stage sees and checks what the stage does to them;
the end-to-end effect on phantom series is in ``test_pipeline.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from grading.engine import pipeline
from grading.engine.flags import flag_code
from grading.engine.hips import Box, FemoralHead
from grading.engine.necrosis import NecrosisResult
from grading.engine.series_rules import (
    ContinueConfig,
    GradedHead,
    SeriesRulesConfig,
    continue_lesions,
    drop_isolated_caps,
    drop_lone_inferior,
    series_stages,
    support_lesions,
)
from grading.engine.types import MRSlice


def test_the_stages_run_in_the_documented_order_and_can_be_left_out() -> None:
    names = [(s.step, s.name) for s in series_stages()]
    assert names == [
        (10, "support_lesions"),
        (9, "continue_lesions"),
        (11, "drop_isolated_caps"),
        (12, "drop_lone_inferior"),
    ]
    skipped = series_stages(SeriesRulesConfig(skip=frozenset({"drop_isolated_caps"})))
    assert [s.name for s in skipped] == [
        "support_lesions",
        "continue_lesions",
        "drop_lone_inferior",
    ]


GRID = (48, 48)  # pixels of 1 x 1 mm
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def _stack(n: int) -> list[MRSlice]:
    """``n`` axial slices 4 mm apart on one grid, inferior to superior."""
    return [
        MRSlice(
            pixels=np.zeros(GRID, dtype=np.float32),
            pixel_spacing_mm=(1.0, 1.0),
            image_position=(0.0, 0.0, 4.0 * k),
            image_orientation=AXIAL,
        )
        for k in range(n)
    ]


def _disk_mask(radius: float) -> npt.NDArray[np.bool_]:
    rows, cols = np.indices(GRID)
    return np.asarray(np.hypot(rows - 24, cols - 24) <= radius, dtype=bool)


def _graded(
    head: npt.NDArray[np.bool_],
    necrosis: npt.NDArray[np.bool_] | None = None,
    *,
    ambiguous: bool = False,
    candidate: npt.NDArray[np.bool_] | None = None,
) -> GradedHead:
    """One right hip's head and necrosis on the whole (48, 48) grid."""
    box = Box(0, 0, *GRID)
    mask = np.zeros(GRID, dtype=bool) if necrosis is None else necrosis
    result = NecrosisResult(
        mask=mask,
        threshold=0.0,
        relative_threshold=0.7,
        reference=1.0,
        otsu_relative=0.6,
        contrast=0.5 if mask.any() else 0.0,
        otsu_separation=0.8,
        bimodal=mask.any() and not ambiguous,
        ambiguous=ambiguous,
        reason="test",
        candidate=candidate,
    )
    femoral_head = FemoralHead(
        side="right",
        window=box,
        box=box,
        mask=head,
        probability=head.astype(np.float32),
        centre_rc=(24.0, 24.0),
    )
    return GradedHead(femoral_head, result)


def test_an_isolated_cap_at_the_pole_is_not_counted() -> None:
    """Slices 0-2 show a normal head; on slice 3, above its top, the network found a
    small "head" (113 mm²) that is dark all over. The section next to it has no
    necrosis, so the cap's necrosis is partial volume, not a lesion: not counted, and the
    slice keeps a flag with the reason."""
    big, cap = _disk_mask(18.0), _disk_mask(6.0)
    graded = [[_graded(big)], [_graded(big)], [_graded(big)], [_graded(cap, cap, ambiguous=True)]]
    out = drop_isolated_caps(_stack(4), graded)
    assert not out[3][0].necrosis.mask.any()
    assert "isolated cap at the pole" in " ".join(out[3][0].necrosis.flags)
    assert all(out[k][0] is graded[k][0] for k in range(3))
    # the same at the inferior pole
    out = drop_isolated_caps(_stack(4), list(reversed(graded)))
    assert not out[0][0].necrosis.mask.any()


def test_a_cap_next_to_a_lesion_small_sections_inside_and_large_ones_are_kept() -> None:
    big, cap = _disk_mask(18.0), _disk_mask(6.0)
    lesion = big & (np.indices(GRID)[0] < 20)
    # a true lesion reaching the pole: the section next to the cap has necrosis
    graded = [[_graded(big)], [_graded(big, lesion)], [_graded(cap, cap)]]
    assert drop_isolated_caps(_stack(3), graded)[2][0] is graded[2][0]
    # a small section with a head beyond it is not at the pole
    graded = [[_graded(big)], [_graded(cap, cap)], [_graded(big)]]
    assert drop_isolated_caps(_stack(3), graded)[1][0] is graded[1][0]
    # a large last section is measured as it is
    graded = [[_graded(big)], [_graded(big)], [_graded(big, lesion)]]
    assert drop_isolated_caps(_stack(3), graded)[2][0] is graded[2][0]
    # one slice alone: nothing to compare with
    single = [[_graded(cap, cap)]]
    assert drop_isolated_caps(_stack(1), single)[0][0] is single[0][0]


def _radii_stack(radii: list[float]) -> list[list[GradedHead]]:
    return [[_graded(_disk_mask(r))] for r in radii]


def test_a_lone_section_below_the_widest_one_is_not_counted() -> None:
    """A normal hip whose head mask took in the dark joint line on one low section
    (towards the neck): necrosis there with none on the section below and the two above.
    ONFH is one volume from the anterosuperior head, so it is not counted, with a flag."""
    radii = [10.0, 14.0, 16.0, 18.0, 20.0, 19.0, 15.0]  # widest: slice 4
    edge = _disk_mask(16.0) & (np.indices(GRID)[0] < 12)
    graded = _radii_stack(radii)
    graded[2] = [_graded(_disk_mask(16.0), edge)]
    out = drop_lone_inferior(_stack(7), graded)
    assert not out[2][0].necrosis.mask.any()
    assert "below the widest section" in " ".join(out[2][0].necrosis.flags)
    assert all(out[k][0] is graded[k][0] for k in (0, 1, 3, 4, 5, 6))
    # a normal pointing down (slices sorted along it run superior to inferior): the same
    # section is found
    flipped = [
        MRSlice(
            pixels=m.pixels,
            pixel_spacing_mm=m.pixel_spacing_mm,
            image_position=(0.0, 0.0, -4.0 * k),
            image_orientation=(1.0, 0.0, 0.0, 0.0, -1.0, 0.0),
        )
        for k, m in enumerate(_stack(7))
    ]
    out = drop_lone_inferior(flipped, list(reversed(graded)))
    assert not out[4][0].necrosis.mask.any()


def test_lesions_and_sections_above_the_widest_one_are_kept() -> None:
    radii = [10.0, 14.0, 16.0, 18.0, 20.0, 19.0, 15.0]
    lesion = _disk_mask(20.0) & (np.indices(GRID)[0] < 12)
    # a lesion whose lower sections the threshold missed: necrosis two sections up
    graded = _radii_stack(radii)
    graded[2] = [_graded(_disk_mask(16.0), _disk_mask(16.0) & lesion)]
    graded[4] = [_graded(_disk_mask(20.0), lesion)]
    assert drop_lone_inferior(_stack(7), graded)[2][0] is graded[2][0]
    # a small lesion seen on one section above the widest one (the anterosuperior head)
    graded = _radii_stack(radii)
    graded[5] = [_graded(_disk_mask(19.0), _disk_mask(19.0) & lesion)]
    assert drop_lone_inferior(_stack(7), graded)[5][0] is graded[5][0]
    # a lone low section whose necrosis reaches deep into the head (a lesion whose
    # neighbours the threshold missed), not a rim at the edge
    graded = _radii_stack(radii)
    half = _disk_mask(16.0) & (np.indices(GRID)[0] < 24)
    graded[2] = [_graded(_disk_mask(16.0), half)]
    assert drop_lone_inferior(_stack(7), graded)[2][0] is graded[2][0]
    # no orientation to tell up from down, or too few slices: nothing changes
    graded = _radii_stack(radii)
    graded[2] = [_graded(_disk_mask(16.0), _disk_mask(16.0) & lesion)]
    unknown = [MRSlice(pixels=m.pixels, pixel_spacing_mm=m.pixel_spacing_mm) for m in _stack(7)]
    assert drop_lone_inferior(unknown, graded)[2][0] is graded[2][0]
    two = graded[1:3]
    assert drop_lone_inferior(_stack(2), two)[1][0] is two[1][0]


def test_a_dark_structure_inside_the_neighbouring_lesion_is_counted() -> None:
    """Slice 1 has a clear lesion in front (rows < 20). On slice 0 its lower tip shows only
    as a band-dark line, inside that lesion's footprint: counted, flagged. A line beside
    the lesion (rows > 30) is not."""
    head = _disk_mask(18.0)
    rows, cols = np.indices(GRID)
    lesion = head & (rows < 20)
    tip = head & (rows >= 12) & (rows <= 13) & (np.abs(cols - 24) <= 8)
    beside = head & (rows >= 32) & (rows <= 33) & (np.abs(cols - 24) <= 8)
    graded = [[_graded(head, candidate=tip | beside)], [_graded(head, lesion)]]
    out = support_lesions(_stack(2), graded)
    added = out[0][0].necrosis
    assert np.array_equal(added.mask, tip)
    assert "inside the necrosis of the neighbouring slice" in " ".join(added.flags)
    assert added.candidate is not None and np.array_equal(added.candidate, beside)
    hip = pipeline.slice_result(_stack(2)[0], out[0], bilateral=False).hips[0]
    assert "neighbour_lesion" in {flag_code(f) for f in hip.flags}
    # an ambiguous neighbour supports nothing; nor does a neighbour on another grid
    graded = [[_graded(head, candidate=tip)], [_graded(head, lesion, ambiguous=True)]]
    assert support_lesions(_stack(2), graded)[0][0] is graded[0][0]
    moved = _stack(2)
    moved[1] = replace(moved[1], image_position=(5.0, 0.0, 4.0))
    graded = [[_graded(head, candidate=tip)], [_graded(head, lesion)]]
    assert support_lesions(moved, graded)[0][0] is graded[0][0]


def test_support_follows_a_lesion_over_several_slices() -> None:
    """A lesion seen on slice 2 only, shown on slices 1 and 0 by candidates inside it."""
    head = _disk_mask(18.0)
    rows = np.indices(GRID)[0]
    lesion = head & (rows < 20)
    graded = [
        [_graded(head, candidate=head & (rows < 12))],
        [_graded(head, candidate=head & (rows < 16))],
        [_graded(head, lesion)],
    ]
    out = support_lesions(_stack(3), graded)
    assert out[1][0].necrosis.mask.sum() == (head & (rows < 16)).sum()
    assert out[0][0].necrosis.mask.sum() == (head & (rows < 12)).sum()


def test_a_patch_inside_the_lesion_below_is_carried_up_but_not_its_edge() -> None:
    """A mixed interior keeps marrow-bright patches: on a section mostly inside the
    lesion below, such a patch cut off by nothing dark reads as viable. Where the section
    has necrosis of its own, the part of the lower lesion deeper than 1.5 mm inside its
    edge is carried up (the patch), its edge is not (the edge of the lower lesion is not
    sharper than that, and a generous edge would grow from slice to slice)."""
    head = _disk_mask(18.0)
    rows, cols = np.indices(GRID)
    below = head & (rows < 36)
    patch = (rows >= 14) & (rows < 22) & (cols >= 14) & (cols < 24)
    own = head & (rows < 34) & ~patch
    graded = [[_graded(head, below)], [_graded(head, own)]]
    out = continue_lesions(_stack(2), graded)
    necrosis = out[1][0].necrosis
    assert (necrosis.mask & patch).sum() == (head & patch).sum()
    assert not (necrosis.mask & (rows >= 34)).any()
    assert "inside the necrosis of the slice below" in " ".join(necrosis.flags)


def test_the_anatomical_stages_are_stages() -> None:
    from grading.engine.series_rules import ANATOMICAL_STAGES, series_stages

    names = {stage.name for stage in series_stages()}
    assert ANATOMICAL_STAGES <= names
    assert {"continue_lesions", "support_lesions"}.isdisjoint(ANATOMICAL_STAGES)


def test_a_large_ambiguous_lesion_carries_up_a_small_one_does_not() -> None:
    """At the top of a large lesion a section may lie wholly inside it. On an unfamiliar
    grey scale the lesion below is often 'ambiguous' (its darkest pixels not clearly
    dark); when it covers at least 30 % of its section it still carries up, so the top
    section is not graded none. A small ambiguous patch (texture, partial volume) does
    not."""
    rows, _ = np.indices(GRID)
    below, top = _disk_mask(18.0), _disk_mask(9.0)
    large = below & (rows < 30)  # about 60 % of the section below, most of the top one
    graded = [[_graded(below, large, ambiguous=True)], [_graded(top)]]
    out = continue_lesions(_stack(2), graded)
    assert np.array_equal(out[1][0].necrosis.mask & top, top & large)
    assert "continue upwards" in " ".join(out[1][0].necrosis.flags)
    small = large & _disk_mask(6.0)  # about 11 % of its section
    out = continue_lesions(_stack(2), [[_graded(below, small, ambiguous=True)], [_graded(top)]])
    assert not out[1][0].necrosis.mask.any()
    strict = ContinueConfig(ambiguous_min_share=None)
    out = continue_lesions(_stack(2), graded, strict)
    assert not out[1][0].necrosis.mask.any()
