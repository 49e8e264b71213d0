"""Find the femoral heads on an axial MR slice and map the network's masks back exactly.

The input is an :class:`~grading.engine.types.MRSlice`: either a single-hip crop (the
paper's 256x256 style) or a full bilateral axial slice of any matrix size and pixel
spacing.

Method (pure numpy/scipy except for the ``segmenter.predict`` calls):

1. **Layout** (:func:`plan_layout`). The image axis that runs along the patient's
   left-right direction comes from ImageOrientationPatient (the row or column direction
   cosine with the larger x component, LPS: +x is the patient's left). A slice whose
   physical width along that axis is below ``crop_max_fov_mm`` (or that carries a
   laterality "L"/"R") is a single-hip crop: one region, the whole image, side from the
   laterality or "unknown". Otherwise the body is found (half of Otsu's level on a
   down-sampled copy, largest component) and split at the midpoint of its left-right
   extent into two halves, one hip each; the side of each half follows the sign of the
   direction cosine.
2. **Coarse pass** (:func:`coarse_windows`, :func:`locate_head`). Each region (a half
   of the body, or the whole crop) goes to the network as it is; the predictor resizes
   it to its square input (the network is trained on windows from tight crops to whole
   halves). Optionally regions are tiled by windows square in millimetres instead. The
   probability maps are merged (max) and the component with the largest probability
   mass whose area is plausible for a femoral head section gives the head's centre and
   diameter.
3. **Fine pass** (:func:`fine_window`, :func:`head_from_probability`). A window of fixed
   physical size (``fine_window_factor`` x the head diameter, clamped, in the paper's crop
   style; in a series one diameter per side) is centred on the head and segmented
   again; the component at the head's centre, holes filled, completed to its convex
   hull when that adds little (a network tends to leave out a dark subchondral lesion),
   is the head. Windows are taken from the slice's own pixel grid (zero outside the
   image) and the predictor answers on the same grid, so pasting the mask back is plain
   slicing: no resampling here, no off-by-one.

No head found on a side => no hip for that side.

All pixel coordinates are ``[row, column]`` in the slice's own grid; boxes are half-open.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.types import MRSlice, Side

FloatImage = npt.NDArray[np.float32]
BoolImage = npt.NDArray[np.bool_]

STANDARD_AXIAL: tuple[float, float, float, float, float, float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class Segmenter(Protocol):
    """What the engine needs from :class:`grading.engine.predictor.HeadSegmenter`."""

    def predict(self, images: Sequence[FloatImage], *, batch_size: int = 16) -> list[FloatImage]:
        """Each ``(h, w)`` float32 image -> ``(h, w)`` float32 femoral-head probability."""
        ...


@dataclass(frozen=True)
class HipFinderConfig:
    """Physical parameters of the hip finder (lengths in mm, areas in mm²)."""

    crop_max_fov_mm: float = 250.0
    """Narrower than this along the patient's left-right axis => a single-hip crop."""
    coarse_window_mm: float | None = None
    """Side of square coarse windows tiling each region; None => the region itself is the
    one coarse window (a half of a bilateral slice, or the whole crop), which the
    predictor resizes to its square input as the network was trained to see it."""
    coarse_min_overlap_mm: float = 70.0
    """Tiles of the coarse pass overlap by at least this (more than a head diameter)."""
    fine_window_factor: float = 2.1
    """Fine window side = factor x head diameter (the paper's crop framing: the head
    about half the window)."""
    fine_window_min_mm: float = 80.0
    fine_window_max_mm: float = 160.0
    min_head_area_mm2: float = 20.0
    """Smaller probability blobs are not taken for a femoral head section."""
    max_head_area_mm2: float = 5000.0
    """Larger blobs (about 80 mm across) are not a femoral head."""
    body_margin_mm: float = 15.0
    probability_threshold: float = 0.5
    max_hull_growth: float = 0.15
    """A head mask is completed to its convex hull when that adds at most this share of
    its area (see :func:`convex_head`); 0 turns it off."""
    min_midline_distance_mm: float = 55.0
    """Anatomical prior, bilateral slices: a femoral head's centre lies at least this far
    from the body's midline. In adults the two head centres are 150-200 mm apart (75-100
    mm each from the midline) and a head is 40-54 mm across; the midline pelvic cavity
    between the acetabula holds the bladder, the perivesical fat, the rectum and the
    vessels, never a femoral head. 55 mm leaves 20 mm for a body midline found off the
    skeletal one (a patient lying obliquely, asymmetric fat)."""
    min_lateral_margin_mm: float = 30.0
    """Anatomical prior, bilateral slices: a femoral head's centre lies at least this far
    inside the body's lateral edge. Lateral to the head lie the femoral neck and greater
    trochanter (the femoral offset, 35-50 mm) under the abductors and the skin, so the
    head centre is 60 mm or more from the lateral skin even in a thin adult."""
    max_series_centre_shift: float = 0.5
    """Series prior: the femoral head is a sphere, so its sections on parallel slices
    share one centre in the slice plane (the neck's obliquity moves it a few mm). A
    head candidate whose centre lies farther than this x the side's series head diameter
    from the side's median centre is another structure; the next candidate near the
    median is taken instead, or none."""
    min_series_centre_shift_mm: float = 15.0
    """The series prior's tolerance is never below this (small or ill-found heads)."""


DEFAULT_CONFIG = HipFinderConfig()


@dataclass(frozen=True)
class Box:
    """Half-open pixel rectangle ``[row0, row1) x [col0, col1)``; may extend past the image."""

    row0: int
    col0: int
    row1: int
    col1: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.row1 - self.row0, self.col1 - self.col0)

    @property
    def is_empty(self) -> bool:
        return self.row1 <= self.row0 or self.col1 <= self.col0

    @property
    def slices(self) -> tuple[slice, slice]:
        """Index for an array that holds this box (valid only once clipped)."""
        return (slice(self.row0, self.row1), slice(self.col0, self.col1))

    def clipped(self, shape: tuple[int, int]) -> Box:
        """The part inside an image of ``shape`` (may be empty)."""
        r0, c0 = max(self.row0, 0), max(self.col0, 0)
        r1, c1 = min(self.row1, shape[0]), min(self.col1, shape[1])
        return Box(r0, c0, max(r0, r1), max(c0, c1))

    def intersection(self, other: Box) -> Box:
        """The overlap of two boxes (may be empty)."""
        r0, c0 = max(self.row0, other.row0), max(self.col0, other.col0)
        r1, c1 = min(self.row1, other.row1), min(self.col1, other.col1)
        return Box(r0, c0, max(r0, r1), max(c0, c1))

    def relative_to(self, outer: Box) -> Box:
        """This box in the coordinates of ``outer`` (``outer``'s origin becomes 0, 0)."""
        return Box(
            self.row0 - outer.row0,
            self.col0 - outer.col0,
            self.row1 - outer.row0,
            self.col1 - outer.col0,
        )

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.row0, self.col0, self.row1, self.col1)


def extract(image: npt.NDArray[np.floating], box: Box, fill: float = 0.0) -> FloatImage:
    """The ``box.shape`` float32 window of ``image``; pixels outside the image are ``fill``."""
    out = np.full(box.shape, fill, dtype=np.float32)
    inside = box.clipped((image.shape[0], image.shape[1]))
    if not inside.is_empty:
        out[inside.relative_to(box).slices] = image[inside.slices]
    return out


@dataclass(frozen=True)
class HipRegion:
    """The part of a slice searched for one hip (clipped to the image)."""

    side: Side
    box: Box


@dataclass(frozen=True)
class Layout:
    """How a slice is split into hips.

    ``lr_axis``: the image axis (0 rows, 1 columns) along the patient's left-right.
    ``midline``: for a bilateral slice the pixel coordinate along ``lr_axis`` where the
    body is split (pixels ``< midline`` belong to the first region).
    """

    kind: Literal["crop", "bilateral"]
    lr_axis: int
    regions: tuple[HipRegion, ...]
    midline: float | None = None
    body: Box | None = None


@dataclass(frozen=True)
class HeadCandidate:
    """A femoral head located by the coarse pass: centre in pixels, diameter in mm."""

    side: Side
    centre_rc: tuple[float, float]
    diameter_mm: float
    area_mm2: float
    mean_probability: float


@dataclass(frozen=True)
class FemoralHead:
    """One segmented femoral head on one slice.

    ``window``: the fine-pass window (may extend past the image). ``box``: that window
    clipped to the image; ``mask`` (bool) and ``probability`` (float32 0..1) are both
    ``box.shape`` and sit at ``box`` in the slice grid. ``flipped_mask``: the head found
    on the left-right flipped window, flipped back (``box.shape``; empty when none was
    found there); None when the fine pass did not flip (test-time augmentation, step 14).
    """

    side: Side
    window: Box
    box: Box
    mask: BoolImage
    probability: FloatImage
    centre_rc: tuple[float, float]
    flipped_mask: BoolImage | None = None

    def full_mask(self, shape: tuple[int, int]) -> BoolImage:
        """The ``shape`` (H, W) mask on the slice's grid."""
        out = np.zeros(shape, dtype=bool)
        out[self.box.slices] = self.mask
        return out


def convex_head(mask: BoolImage, max_growth: float) -> BoolImage:
    """``mask`` grown to its convex hull when that adds at most ``max_growth`` of its area.

    A femoral head section (a sphere cut by the slice and the head-neck junction) is
    convex. A network tends to leave out a dark subchondral lesion at the head's edge,
    which leaves a bite in the mask; the hull puts it back. A larger growth means the
    mask is not a bitten head (e.g. two blobs), and it is kept as it is.
    """
    from skimage.morphology import convex_hull_image

    # pixel centres: the hull of a digitised convex shape adds no pixel to it
    hull = np.logical_or(
        np.asarray(
            convex_hull_image(mask, offset_coordinates=False),  # type: ignore[no-untyped-call]
            dtype=np.bool_,
        ),
        mask,
    )
    grown = int(hull.sum()) - int(mask.sum())
    return hull if grown <= max_growth * int(mask.sum()) else mask


def fill_holes(mask: BoolImage) -> BoolImage:
    """``mask`` with every hole (background not connected to the border) filled.

    Same result as :func:`scipy.ndimage.binary_fill_holes` with its default
    structure, by labelling the background once instead of iterating a dilation.
    """
    background, count = ndimage.label(~mask)
    if count == 0:
        return mask.copy()
    outside = np.zeros(count + 1, dtype=bool)
    for edge in (background[0, :], background[-1, :], background[:, 0], background[:, -1]):
        outside[edge] = True
    outside[0] = True
    return np.asarray(mask | ~outside[background], dtype=bool)


# ---------------------------------------------------------------------------- layout


def lr_axis_and_sides(
    orientation: Sequence[float] | None,
) -> tuple[int, Side, Side]:
    """Which image axis runs left-right, and the sides of its low and high halves.

    ``orientation``: ImageOrientationPatient (row cosines, then column cosines), LPS.
    Returns ``(axis, side_of_low_indices, side_of_high_indices)``. Along the row
    direction the column index grows; when that direction points to the patient's left
    (+x), the image's left (low columns) is the patient's right. ``None`` is taken as the
    standard axial orientation ``(1, 0, 0, 0, 1, 0)``. An orientation with no
    left-right component in-plane (e.g. sagittal) gives "unknown" sides.
    """
    cosines = STANDARD_AXIAL if orientation is None else tuple(float(v) for v in orientation)
    row_x, col_x = cosines[0], cosines[3]
    axis, cosine = (1, row_x) if abs(row_x) >= abs(col_x) else (0, col_x)
    if abs(cosine) < 0.5:
        return axis, "unknown", "unknown"
    if cosine > 0:
        return axis, "right", "left"
    return axis, "left", "right"


def _side_from_laterality(laterality: str | None) -> Side | None:
    value = (laterality or "").strip().upper()
    if value == "L":
        return "left"
    if value == "R":
        return "right"
    return None


def find_body(pixels: npt.NDArray[np.floating], *, max_size: int = 128) -> Box | None:
    """Bounding box of the body (the largest bright component), or None.

    ``pixels``: ``(H, W)``. Works on a copy down-sampled by an integer stride so that
    neither side exceeds about ``max_size`` pixels; the box is in full-grid pixels.
    """
    from skimage.filters import threshold_otsu

    h, w = pixels.shape
    stride = max(1, math.ceil(max(h, w) / max_size))
    small = np.asarray(pixels[::stride, ::stride], dtype=np.float32)
    if small.size < 16 or float(small.max()) <= float(small.min()):
        return None
    # Half of Otsu's level keeps muscle (grey) inside the body with the fat (bright).
    level = 0.5 * float(threshold_otsu(small))  # type: ignore[no-untyped-call]
    labels, count = ndimage.label(small > level)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())[1:]
    body = labels == (int(np.argmax(sizes)) + 1)
    rows = np.flatnonzero(body.any(axis=1))
    cols = np.flatnonzero(body.any(axis=0))
    return Box(
        int(rows[0]) * stride,
        int(cols[0]) * stride,
        min(h, (int(rows[-1]) + 1) * stride),
        min(w, (int(cols[-1]) + 1) * stride),
    )


def is_bilateral(mr_slice: MRSlice, config: HipFinderConfig = DEFAULT_CONFIG) -> bool:
    """A slice at least ``crop_max_fov_mm`` wide along the patient's left-right axis and
    without a laterality "L"/"R" shows both hips; anything else is a single-hip crop."""
    axis, _, _ = lr_axis_and_sides(mr_slice.image_orientation)
    width_mm = mr_slice.shape[axis] * mr_slice.pixel_spacing_mm[axis]
    lateral = _side_from_laterality(mr_slice.laterality)
    return width_mm >= config.crop_max_fov_mm and lateral is None


def plan_layout(mr_slice: MRSlice, config: HipFinderConfig = DEFAULT_CONFIG) -> Layout:
    """Crop or bilateral, and the region searched for each hip (see the module docstring)."""
    h, w = mr_slice.shape
    axis, low_side, high_side = lr_axis_and_sides(mr_slice.image_orientation)
    whole = Box(0, 0, h, w)
    if not is_bilateral(mr_slice, config):
        lateral = _side_from_laterality(mr_slice.laterality)
        return Layout("crop", axis, (HipRegion(lateral or "unknown", whole),))

    body = find_body(mr_slice.pixels)
    if body is None:
        body = whole
    row_margin = round(config.body_margin_mm / mr_slice.pixel_spacing_mm[0])
    col_margin = round(config.body_margin_mm / mr_slice.pixel_spacing_mm[1])
    search = Box(
        body.row0 - row_margin,
        body.col0 - col_margin,
        body.row1 + row_margin,
        body.col1 + col_margin,
    ).clipped((h, w))
    if axis == 1:
        midline = 0.5 * (body.col0 + body.col1)
        split = int(round(midline))
        low = Box(search.row0, search.col0, search.row1, split)
        high = Box(search.row0, split, search.row1, search.col1)
    else:
        midline = 0.5 * (body.row0 + body.row1)
        split = int(round(midline))
        low = Box(search.row0, search.col0, split, search.col1)
        high = Box(split, search.col0, search.row1, search.col1)
    return Layout(
        "bilateral",
        axis,
        (HipRegion(low_side, low), HipRegion(high_side, high)),
        midline=float(split),
        body=body,
    )


def side_of_point(layout: Layout, centre_rc: tuple[float, float]) -> Side:
    """The side of the region a point (pixel row, column) falls in."""
    if layout.kind == "crop" or layout.midline is None:
        return layout.regions[0].side
    coordinate = centre_rc[layout.lr_axis]
    return layout.regions[0].side if coordinate < layout.midline else layout.regions[1].side


# ---------------------------------------------------------------------------- windows


def _pixels_for(length_mm: float, spacing_mm: float) -> int:
    return max(1, int(round(length_mm / spacing_mm)))


def _tile_starts(lo: int, hi: int, size: int, overlap: int) -> list[int]:
    """Starts of windows of ``size`` covering ``[lo, hi)`` with at least ``overlap``."""
    length = hi - lo
    if length <= size:
        return [lo + (length - size) // 2]
    step = max(1, size - overlap)
    count = math.ceil((length - size) / step) + 1
    return [lo + round(i * (length - size) / (count - 1)) for i in range(count)]


def centred_box(centre_rc: tuple[float, float], shape: tuple[int, int]) -> Box:
    """A ``shape`` box whose centre is nearest ``centre_rc`` (pixel-centre coordinates)."""
    row0 = int(math.floor(centre_rc[0] + 0.5 - shape[0] / 2.0))
    col0 = int(math.floor(centre_rc[1] + 0.5 - shape[1] / 2.0))
    return Box(row0, col0, row0 + shape[0], col0 + shape[1])


def coarse_windows(
    mr_slice: MRSlice, region: HipRegion, config: HipFinderConfig = DEFAULT_CONFIG
) -> tuple[Box, ...]:
    """The coarse windows of ``region``: the region itself, or windows square in mm whose
    union covers it (they may extend past it)."""
    sr, sc = mr_slice.pixel_spacing_mm
    box = region.box
    if config.coarse_window_mm is None:
        return (box,)
    rows = _pixels_for(config.coarse_window_mm, sr)
    cols = _pixels_for(config.coarse_window_mm, sc)
    overlap_r = _pixels_for(config.coarse_min_overlap_mm, sr)
    overlap_c = _pixels_for(config.coarse_min_overlap_mm, sc)
    return tuple(
        Box(r0, c0, r0 + rows, c0 + cols)
        for r0 in _tile_starts(box.row0, box.row1, rows, overlap_r)
        for c0 in _tile_starts(box.col0, box.col1, cols, overlap_c)
    )


def fine_window(
    mr_slice: MRSlice,
    centre_rc: tuple[float, float],
    diameter_mm: float,
    config: HipFinderConfig = DEFAULT_CONFIG,
) -> Box:
    """The fine-pass window: square in mm, ``factor x diameter`` (clamped), centred on the head."""
    side_mm = min(
        config.fine_window_max_mm,
        max(config.fine_window_min_mm, config.fine_window_factor * diameter_mm),
    )
    sr, sc = mr_slice.pixel_spacing_mm
    return centred_box(centre_rc, (_pixels_for(side_mm, sr), _pixels_for(side_mm, sc)))


# ---------------------------------------------------------------------------- masks


def _components(mask: BoolImage) -> tuple[npt.NDArray[np.int32], int]:
    labels, count = ndimage.label(mask)
    return np.asarray(labels, dtype=np.int32), int(count)


def where_a_head_can_be(
    mr_slice: MRSlice,
    layout: Layout | None,
    centre_rc: tuple[float, float],
    config: HipFinderConfig = DEFAULT_CONFIG,
) -> bool:
    """The anatomical prior on a bilateral slice: is ``centre_rc`` (pixels) at least
    ``min_midline_distance_mm`` from the midline and ``min_lateral_margin_mm`` inside the
    body's lateral edge (along the patient's left-right axis)? Always True on a crop or
    without a body outline (nothing is known about the frame)."""
    if layout is None or layout.kind != "bilateral" or layout.midline is None:
        return True
    axis = layout.lr_axis
    spacing = mr_slice.pixel_spacing_mm[axis]
    coordinate = centre_rc[axis] + 0.5  # pixel centre, in the edges' coordinates
    if abs(coordinate - layout.midline) * spacing < config.min_midline_distance_mm:
        return False
    if layout.body is not None:
        lo, hi = (
            (layout.body.col0, layout.body.col1)
            if axis == 1
            else (layout.body.row0, layout.body.row1)
        )
        edge = coordinate - lo if coordinate < layout.midline else hi - coordinate
        if edge * spacing < config.min_lateral_margin_mm:
            return False
    return True


def locate_head(
    mr_slice: MRSlice,
    region: HipRegion,
    windows: Sequence[Box],
    probabilities: Sequence[FloatImage],
    config: HipFinderConfig = DEFAULT_CONFIG,
    layout: Layout | None = None,
) -> HeadCandidate | None:
    """The femoral head in ``region`` from the coarse pass, or None: the first of
    :func:`head_candidates`."""
    found = head_candidates(mr_slice, region, windows, probabilities, config, layout)
    return found[0] if found else None


def head_candidates(
    mr_slice: MRSlice,
    region: HipRegion,
    windows: Sequence[Box],
    probabilities: Sequence[FloatImage],
    config: HipFinderConfig = DEFAULT_CONFIG,
    layout: Layout | None = None,
) -> list[HeadCandidate]:
    """Femoral head candidates in ``region`` from the coarse pass, most probable first.

    ``probabilities[i]`` is the network's answer on ``windows[i]`` (same shape). They are
    merged by maximum over the region; components of ``p > threshold`` with an area in
    ``[min_head_area_mm2, max_head_area_mm2]`` whose centre lies where a head can be
    (:func:`where_a_head_can_be`, with ``layout``) compete on probability mass.
    """
    box = region.box
    merged = np.zeros(box.shape, dtype=np.float32)
    for window, probability in zip(windows, probabilities, strict=True):
        inside = window.intersection(box)
        if inside.is_empty:
            continue
        target = merged[inside.relative_to(box).slices]
        np.maximum(target, probability[inside.relative_to(window).slices], out=target)
    labels, count = _components(merged > config.probability_threshold)
    if count == 0:
        return []
    index = np.arange(1, count + 1)
    pixel_area = mr_slice.pixel_area_mm2
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:] * pixel_area
    masses = np.asarray(ndimage.sum_labels(merged, labels, index), dtype=np.float64)
    centres = ndimage.center_of_mass(np.ones_like(merged), labels, index)
    found: list[tuple[float, HeadCandidate]] = []
    for k in range(count):
        area = float(areas[k])
        if not config.min_head_area_mm2 <= area <= config.max_head_area_mm2:
            continue
        centre = (float(centres[k][0]) + box.row0, float(centres[k][1]) + box.col0)
        if not where_a_head_can_be(mr_slice, layout, centre, config):
            continue
        found.append(
            (
                float(masses[k]),
                HeadCandidate(
                    side=region.side,
                    centre_rc=centre,
                    diameter_mm=2.0 * math.sqrt(area / math.pi),
                    area_mm2=area,
                    mean_probability=float(masses[k] / (area / pixel_area)),
                ),
            )
        )
    found.sort(key=lambda item: -item[0])
    return [c for _, c in found]


def head_from_probability(
    mr_slice: MRSlice,
    side: Side,
    window: Box,
    probability: FloatImage,
    centre_rc: tuple[float, float],
    config: HipFinderConfig = DEFAULT_CONFIG,
) -> FemoralHead | None:
    """The femoral head from the fine pass on ``window``, pasted onto the slice's grid.

    Keeps the component of ``p > threshold`` that holds the coarse centre (else the one
    with the largest probability mass), holes filled; None if nothing plausible is left.
    """
    if probability.shape != window.shape:
        raise ValueError(f"probability {probability.shape} does not match window {window}")
    box = window.clipped(mr_slice.shape)
    if box.is_empty:
        return None
    local = np.ascontiguousarray(probability[box.relative_to(window).slices], dtype=np.float32)
    labels, count = _components(local > config.probability_threshold)
    if count == 0:
        return None
    r = int(round(centre_rc[0])) - box.row0
    c = int(round(centre_rc[1])) - box.col0
    chosen = 0
    if 0 <= r < box.shape[0] and 0 <= c < box.shape[1]:
        chosen = int(labels[r, c])
    if chosen == 0:
        masses = ndimage.sum_labels(local, labels, np.arange(1, count + 1))
        chosen = int(np.argmax(masses)) + 1
    mask = fill_holes(labels == chosen)
    if float(mask.sum()) * mr_slice.pixel_area_mm2 < config.min_head_area_mm2:
        return None
    if config.max_hull_growth > 0:
        mask = convex_head(mask, config.max_hull_growth)
    return FemoralHead(
        side=side,
        window=window,
        box=box,
        mask=mask,
        probability=local,
        centre_rc=centre_rc,
    )


# ---------------------------------------------------------------------------- driver


@dataclass(frozen=True)
class CoarseResult:
    """The coarse pass over one slice: its layout and the head found in each region."""

    layout: Layout
    candidates: tuple[HeadCandidate | None, ...]
    alternatives: tuple[tuple[HeadCandidate, ...], ...] = ()
    """Per region, every plausible candidate, most probable first (the chosen one
    included), for :func:`consistent_centres`."""


def coarse_pass(
    slices: Sequence[MRSlice],
    segmenter: Segmenter,
    config: HipFinderConfig = DEFAULT_CONFIG,
    *,
    batch_size: int = 16,
) -> list[CoarseResult]:
    """Layout and head candidates of every slice, with ONE ``predict`` call for all."""
    layouts = [plan_layout(s, config) for s in slices]
    requests: list[tuple[int, int, Box]] = []
    for i, (mr_slice, layout) in enumerate(zip(slices, layouts, strict=True)):
        for j, region in enumerate(layout.regions):
            requests.extend((i, j, b) for b in coarse_windows(mr_slice, region, config))
    images = [extract(slices[i].pixels, box) for i, _, box in requests]
    answers = segmenter.predict(images, batch_size=batch_size) if images else []
    grouped: dict[tuple[int, int], tuple[list[Box], list[FloatImage]]] = {}
    for (i, j, box), answer in zip(requests, answers, strict=True):
        entry = grouped.setdefault((i, j), ([], []))
        entry[0].append(box)
        entry[1].append(np.asarray(answer, dtype=np.float32))
    results: list[CoarseResult] = []
    for i, (mr_slice, layout) in enumerate(zip(slices, layouts, strict=True)):
        alternatives = tuple(
            tuple(head_candidates(mr_slice, region, *grouped.get((i, j), ([], [])), config, layout))
            for j, region in enumerate(layout.regions)
        )
        candidates = tuple(a[0] if a else None for a in alternatives)
        results.append(CoarseResult(layout, candidates, alternatives))
    return results


def _same_grid(slices: Sequence[MRSlice]) -> bool:
    first = slices[0]
    return all(
        s.shape == first.shape
        and tuple(s.pixel_spacing_mm) == tuple(first.pixel_spacing_mm)
        and s.image_orientation == first.image_orientation
        for s in slices
    )


def consistent_centres(
    slices: Sequence[MRSlice],
    coarse: Sequence[CoarseResult],
    config: HipFinderConfig = DEFAULT_CONFIG,
) -> list[CoarseResult]:
    """The series prior: on each slice, each side's head is the candidate nearest the
    side's median centre over the series, within ``max(max_series_centre_shift x
    diameter, min_series_centre_shift_mm)`` of it (or none).

    A femoral head is a sphere: its sections on parallel slices share one centre in the
    slice plane, so a candidate far from where that side's head is on the other slices
    (pelvic fat beside the bladder, a vessel, the greater trochanter) is not this head.
    Needs at least three slices on one pixel grid, with a head found on at least three
    of them for that side; otherwise ``coarse`` is returned as it is.
    """
    if len(slices) < 3 or not _same_grid(slices):
        return list(coarse)
    by_side: dict[Side, list[HeadCandidate]] = {}
    for result in coarse:
        for candidate in result.candidates:
            if candidate is not None:
                by_side.setdefault(candidate.side, []).append(candidate)
    sr, sc = slices[0].pixel_spacing_mm
    anchors: dict[Side, tuple[float, float, float]] = {}
    for side, found in by_side.items():
        if len(found) < 3 or side == "unknown":
            continue
        rows = np.median([c.centre_rc[0] for c in found])
        cols = np.median([c.centre_rc[1] for c in found])
        diameter = float(np.percentile([c.diameter_mm for c in found], 90))
        tolerance = max(
            config.max_series_centre_shift * diameter, config.min_series_centre_shift_mm
        )
        anchors[side] = (float(rows), float(cols), tolerance)
    if not anchors:
        return list(coarse)

    def distance(c: HeadCandidate, anchor: tuple[float, float, float]) -> float:
        return math.hypot((c.centre_rc[0] - anchor[0]) * sr, (c.centre_rc[1] - anchor[1]) * sc)

    out: list[CoarseResult] = []
    for result in coarse:
        chosen: list[HeadCandidate | None] = []
        for j, candidate in enumerate(result.candidates):
            options = result.alternatives[j] if j < len(result.alternatives) else ()
            side = result.layout.regions[j].side
            anchor = anchors.get(side)
            if anchor is None:
                chosen.append(candidate)
                continue
            near = [c for c in options if distance(c, anchor) <= anchor[2]]
            chosen.append(near[0] if near else None)
        out.append(replace(result, candidates=tuple(chosen)))
    return out


def series_head_diameters(coarse: Sequence[CoarseResult]) -> dict[Side, float]:
    """Per side, the head's diameter over a series in mm (the 90th percentile of the
    per-slice section diameters: the equator, robust to one odd slice)."""
    by_side: dict[Side, list[float]] = {}
    for result in coarse:
        for candidate in result.candidates:
            if candidate is not None:
                by_side.setdefault(candidate.side, []).append(candidate.diameter_mm)
    return {side: float(np.percentile(d, 90)) for side, d in by_side.items()}


def fine_requests(
    slices: Sequence[MRSlice],
    coarse: Sequence[CoarseResult],
    diameters: dict[Side, float] | None = None,
    config: HipFinderConfig = DEFAULT_CONFIG,
) -> list[tuple[int, HeadCandidate, Box]]:
    """``(slice index, candidate, fine window)`` for every head found by the coarse pass.

    ``diameters``: per side, the series diameter that sizes the window (so every slice of
    a series is seen at the same scale); default each candidate's own diameter.
    """
    out: list[tuple[int, HeadCandidate, Box]] = []
    for i, (mr_slice, result) in enumerate(zip(slices, coarse, strict=True)):
        for candidate in result.candidates:
            if candidate is None:
                continue
            diameter = (diameters or {}).get(candidate.side, candidate.diameter_mm)
            out.append((i, candidate, fine_window(mr_slice, candidate.centre_rc, diameter, config)))
    return out


def fine_pass(
    slices: Sequence[MRSlice],
    requests: Sequence[tuple[int, HeadCandidate, Box]],
    segmenter: Segmenter,
    config: HipFinderConfig = DEFAULT_CONFIG,
    *,
    batch_size: int = 16,
    flip: bool = False,
) -> list[list[FemoralHead]]:
    """Segment every requested window with ONE ``predict`` call; heads per slice index.

    ``flip``: the same call also segments each window flipped left-right, and each head
    keeps the head found there as ``flipped_mask`` (test-time augmentation).
    """
    images = [extract(slices[i].pixels, box) for i, _, box in requests]
    if flip:
        images += [np.ascontiguousarray(im[:, ::-1]) for im in images]
    answers = segmenter.predict(images, batch_size=batch_size) if images else []
    heads: list[list[FemoralHead]] = [[] for _ in slices]
    for k, ((i, candidate, box), answer) in enumerate(
        zip(requests, answers[: len(requests)], strict=True)
    ):
        head = head_from_probability(
            slices[i],
            candidate.side,
            box,
            np.asarray(answer, dtype=np.float32),
            candidate.centre_rc,
            config,
        )
        if head is None:
            continue
        if flip:
            back = np.ascontiguousarray(
                np.asarray(answers[len(requests) + k], dtype=np.float32)[:, ::-1]
            )
            other = head_from_probability(
                slices[i], candidate.side, box, back, candidate.centre_rc, config
            )
            flipped = other.mask if other is not None else np.zeros_like(head.mask)
            head = replace(head, flipped_mask=flipped)
        heads[i].append(head)
    return heads


def find_heads(
    slices: Sequence[MRSlice],
    segmenter: Segmenter,
    config: HipFinderConfig = DEFAULT_CONFIG,
    *,
    batch_size: int = 16,
) -> list[tuple[Layout, tuple[FemoralHead, ...]]]:
    """Both passes over ``slices`` (two ``predict`` calls in all); per slice its layout and
    heads (at most one per side). Slices are treated as one series for window sizing."""
    coarse = consistent_centres(
        slices, coarse_pass(slices, segmenter, config, batch_size=batch_size), config
    )
    diameters = series_head_diameters(coarse) if len(slices) > 1 else None
    requests = fine_requests(slices, coarse, diameters, config)
    heads = fine_pass(slices, requests, segmenter, config, batch_size=batch_size)
    return [(c.layout, tuple(h)) for c, h in zip(coarse, heads, strict=True)]
