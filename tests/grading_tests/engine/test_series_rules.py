"""Steps 9-11 (``grading.engine.series_rules``) on small hand-made series.

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
    coherent_lesions,
    continue_lesions,
    oedema_below_lesions,
    series_stages,
    support_lesions,
)
from grading.engine.types import MRSlice


def test_the_stages_run_in_the_documented_order_and_can_be_left_out() -> None:
    names = [(s.step, s.name) for s in series_stages()]
    assert names == [
        ("9b", "oedema_below_lesions"),
        ("10", "support_lesions"),
        ("9", "continue_lesions"),
        ("11", "coherent_lesions"),
    ]
    skipped = series_stages(SeriesRulesConfig(skip=frozenset({"coherent_lesions"})))
    assert [s.name for s in skipped] == [
        "oedema_below_lesions",
        "support_lesions",
        "continue_lesions",
    ]


GRID = (48, 48)  # pixels of 1 x 1 mm
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)


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


def _radii_stack(radii: list[float]) -> list[list[GradedHead]]:
    return [[_graded(_disk_mask(r))] for r in radii]


RADII = [10.0, 14.0, 16.0, 18.0, 20.0, 19.0, 15.0, 9.0]
"""A head over 8 sections 4 mm apart, inferior to superior; widest: slice 4."""


def _with(
    graded: list[list[GradedHead]], index: int, necrosis: npt.NDArray[np.bool_], **kw: object
) -> None:
    head = graded[index][0].head.mask
    graded[index] = [_graded(head, head & necrosis, **kw)]  # type: ignore[arg-type]


def test_a_segment_over_adjacent_sections_in_the_superior_half_is_kept() -> None:
    front = np.indices(GRID)[0] < 14
    graded = _radii_stack(RADII)
    _with(graded, 4, front)
    _with(graded, 5, front)
    out = coherent_lesions(_stack(8), graded)
    assert all(out[k][0] is graded[k][0] for k in range(8))
    # a segment reaching the superior half from below is kept whole
    graded = _radii_stack(RADII)
    for k in (2, 3, 4):
        _with(graded, k, front)
    out = coherent_lesions(_stack(8), graded)
    assert all(out[k][0] is graded[k][0] for k in range(8))


def test_necrosis_on_one_ambiguous_section_or_low_in_the_head_is_not_counted() -> None:
    """A red marrow island read as necrosis on one section (ambiguous: not very dark),
    and a pair of sections low in the head (the cortex and capsule at the neck taken in
    by the head mask): neither is a segment of the anterosuperior head. Not counted,
    flagged with the reason."""
    rows, cols = np.indices(GRID)
    island = (np.hypot(rows - 24, cols - 20) < 4) & np.ones(GRID, dtype=bool)
    graded = _radii_stack(RADII)
    _with(graded, 5, island, ambiguous=True)
    out = coherent_lesions(_stack(8), graded)
    assert not out[5][0].necrosis.mask.any()
    assert flag_code(out[5][0].necrosis.flags[-1]) == "not_counted"
    assert "adjacent sections" in out[5][0].necrosis.flags[-1]
    low = rows > 34
    graded = _radii_stack(RADII)
    _with(graded, 1, low)
    _with(graded, 2, low)
    out = coherent_lesions(_stack(8), graded)
    assert not out[1][0].necrosis.mask.any() and not out[2][0].necrosis.mask.any()
    # without an up and down (a coronal series) the position is not judged, the extent is
    coronal = [
        replace(m, image_position=(0.0, 4.0 * k, 0.0), image_orientation=CORONAL)
        for k, m in enumerate(_stack(8))
    ]
    out = coherent_lesions(coronal, graded)
    assert out[1][0] is graded[1][0] and out[2][0] is graded[2][0]
    lone = _radii_stack(RADII)
    _with(lone, 5, rows < 14)
    assert not coherent_lesions(coronal, lone)[5][0].necrosis.mask.any()
    # without positions there is no third dimension: nothing changes
    unknown = [MRSlice(pixels=m.pixels, pixel_spacing_mm=m.pixel_spacing_mm) for m in _stack(8)]
    assert coherent_lesions(unknown, lone)[5][0] is lone[5][0]


def test_one_clear_section_counts_below_the_pole_but_not_at_it() -> None:
    """A small lesion (or one whose other sections the threshold misses) on one section
    of the superior half counts when its necrosis is clear and the head goes on above;
    a dark cap on the last section (partial volume at the dome) does not."""
    front = np.indices(GRID)[0] < 14
    graded = _radii_stack(RADII)
    _with(graded, 5, front)
    assert coherent_lesions(_stack(8), graded)[5][0] is graded[5][0]
    graded = _radii_stack(RADII)
    _with(graded, 7, np.ones(GRID, dtype=bool))
    assert not coherent_lesions(_stack(8), graded)[7][0].necrosis.mask.any()


def test_a_band_dark_candidate_on_the_next_section_links_a_lesion() -> None:
    """A fat-like lesion: the threshold counts it on slice 5 only and is ambiguous there;
    on slice 6 its band shows as a candidate line inside it. One segment over two
    sections: kept. Two candidates alone never make a lesion."""
    rows = np.indices(GRID)[0]
    front = rows < 14
    graded = _radii_stack(RADII)
    _with(graded, 5, front, ambiguous=True)
    band = graded[6][0].head.mask & (rows >= 11) & (rows <= 12)
    graded[6] = [_graded(graded[6][0].head.mask, candidate=band)]
    out = coherent_lesions(_stack(8), graded)
    assert out[5][0] is graded[5][0]
    graded = _radii_stack(RADII)
    for k in (5, 6):
        graded[k] = [_graded(graded[k][0].head.mask, candidate=graded[k][0].head.mask & front)]
    out = coherent_lesions(_stack(8), graded)
    assert all(out[k][0] is graded[k][0] for k in range(8))
    assert all(not out[k][0].necrosis.mask.any() for k in range(8))


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
    assert "coherent_lesions" in ANATOMICAL_STAGES


def test_a_lesion_seen_low_and_carried_up_reaches_the_superior_half() -> None:
    """A severe lesion whose band shows on two sections below the widest one; steps 10
    and 9 carried it into the sections above, which lie inside it (their own necrosis:
    none). Seen on two sections, reaching the superior half: kept whole. Without what
    was carried up it would be a pair of low sections and dropped."""
    front = np.indices(GRID)[0] < 30
    graded = _radii_stack(RADII)
    for k in (2, 3):
        _with(graded, k, front)
    for k in (4, 5):
        head = graded[k][0].head.mask
        carried = _graded(head, head & front)
        found = np.zeros(GRID, dtype=bool)
        graded[k] = [GradedHead(carried.head, replace(carried.necrosis, found=found))]
    out = coherent_lesions(_stack(8), graded)
    assert all(out[k][0] is graded[k][0] for k in range(8))
    # a cap at the dome found on one section and carried into the next is one section
    graded = _radii_stack(RADII)
    _with(graded, 7, np.ones(GRID, dtype=bool), ambiguous=True)
    head = graded[6][0].head.mask
    carried = _graded(head, head & front)
    graded[6] = [GradedHead(carried.head, replace(carried.necrosis, found=np.zeros(GRID, bool)))]
    out = coherent_lesions(_stack(8), graded)
    assert not out[7][0].necrosis.mask.any() and not out[6][0].necrosis.mask.any()


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


def test_pale_dark_signal_below_the_lesion_is_oedema_not_necrosis() -> None:
    """Step 9b. A clear lesion on sections 4-5 (its band), and pale dark signal
    (ambiguous: no clearly dark pixel) over most of sections 1-3 below it: marrow oedema
    running down to the neck, not counted, flagged with the reason. The lesion stays."""
    front = np.indices(GRID)[0] < 20
    graded = _radii_stack(RADII)
    for k in (4, 5):
        _with(graded, k, front)
    for k in (1, 2, 3):
        _with(graded, k, np.ones(GRID, dtype=bool), ambiguous=True)
    out = oedema_below_lesions(_stack(8), graded)
    for k in (1, 2, 3):
        assert not out[k][0].necrosis.mask.any()
        assert flag_code(out[k][0].necrosis.flags[-1]) == "not_counted"
        assert "oedema" in out[k][0].necrosis.flags[-1]
    for k in (0, 4, 5, 6, 7):
        assert out[k][0] is graded[k][0]


def test_pale_signal_above_the_lesion_or_with_a_band_below_it_is_kept() -> None:
    """Step 9b's edges: a pale section *above* the lowest clear one (a section lying
    wholly inside the lesion, at the top of the head) is kept; a section below it whose
    necrosis is clear (its own band) is kept; a hip without any clear section is left
    alone (nothing to tell oedema by)."""
    front = np.indices(GRID)[0] < 20
    everything = np.ones(GRID, dtype=bool)
    graded = _radii_stack(RADII)
    _with(graded, 3, front)
    _with(graded, 2, front)  # clear, below: the lowest clear section is 2
    _with(graded, 6, everything, ambiguous=True)  # above: inside the lesion
    out = oedema_below_lesions(_stack(8), graded)
    assert all(out[k][0] is graded[k][0] for k in range(8))
    graded = _radii_stack(RADII)
    for k in (1, 2, 5):
        _with(graded, k, everything, ambiguous=True)
    out = oedema_below_lesions(_stack(8), graded)
    assert all(out[k][0] is graded[k][0] for k in range(8))


def test_oedema_below_needs_to_know_which_way_is_up() -> None:
    """Coronal slices (no superior step along the normal): step 9b changes nothing."""
    front = np.indices(GRID)[0] < 20
    graded = _radii_stack(RADII)
    _with(graded, 5, front)
    _with(graded, 2, np.ones(GRID, dtype=bool), ambiguous=True)
    coronal = [
        replace(s, image_orientation=CORONAL, image_position=(0.0, 4.0 * k, 0.0))
        for k, s in enumerate(_stack(8))
    ]
    out = oedema_below_lesions(coronal, graded)
    assert all(out[k][0] is graded[k][0] for k in range(8))
