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

4. **Plane** (:func:`slice_plane`). The layout knows the slice's plane from its
   normal. On a coronal slice the femoral head sits below the acetabular roof, with the
   ilium's marrow above it and the neck running infero-laterally into the trochanter
   and shaft: a whole half of the body shows several bright, roundish bones, and a
   network trained on axial windows does not pick the head out of it. So a coronal
   region is tiled with square windows of ``coronal_coarse_window_mm`` (about two head
   diameters: the framing of an axial crop); a candidate must be round
   (``max_elongation``: a sphere's section is a disc, the ilium's wing is tall and the
   neck long); and over a series (:func:`consistent_candidates`) the sections of one
   head share one centre in the image (every coronal section of a sphere is centred on
   the sphere's projection), so a candidate far from the series' median centre is
   another bone.

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
FloatPoints = npt.NDArray[np.float64]

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
    max_round_growth: float = 0.6
    """On a coronal or sagittal slice, a head mask that stops at a dark band on the
    lesion's side is completed to the head's circle when that adds at most this share
    of its area (see :func:`round_head`); 0 turns it off."""
    coronal_coarse_window_mm: float | None = 110.0
    """Coarse tiles of a coronal region (when ``coarse_window_mm`` is None); None: the
    region itself, as on axial slices."""
    coronal_sample_every: int = 3
    """On a coronal series, the tiles run on ``coronal_sample_slices`` slices this many
    apart around the middle one; the others get one tile per side at the centre found
    there (:func:`coarse_pass`); 0: tiles on every slice."""
    coronal_sample_slices: int = 3
    """How many slices the coronal tiles run on (a coronal hip series is planned through
    the femoral heads, so its middle slices hold them; a side not found there is tiled
    on every slice)."""
    coronal_min_overlap_mm: float = 55.0
    """Overlap of the coronal tiles (more than a head's diameter, so that one tile holds
    the whole head)."""
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
    max_elongation: float = 1.4
    """On a coronal slice, a candidate whose long axis exceeds its short axis by more
    than this factor (second moments) is not a head section."""
    centre_tolerance: float = 0.35
    """On a coronal series, a candidate whose centre lies further than this x the
    series' head diameter from the side's median centre is dropped."""
    max_bridge_mm: float = 24.0
    """A side's head missed by the coarse pass on sections lying between two sections where
    it was found, at most this far apart end to end, is looked for again there
    (:func:`bridged_candidates`): a femoral head is one convex body, so it cannot be
    absent between two of its own sections."""


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


Plane = Literal["axial", "coronal", "sagittal", "oblique"]
#: Planes in which the head sits under the acetabular roof with the femur below it (the
#: coronal rules of the hip finder apply; a sagittal slice shows the same picture from
#: the side).
UPRIGHT_PLANES: tuple[str, ...] = ("coronal", "sagittal")


def slice_plane(orientation: Sequence[float] | None, *, tolerance_deg: float = 30.0) -> Plane:
    """The plane of a slice from ImageOrientationPatient (LPS): axial when its normal is
    within ``tolerance_deg`` of the z axis, coronal of y, sagittal of x, else oblique.
    ``None`` is taken as axial (the engine's default)."""
    cosines = STANDARD_AXIAL if orientation is None else tuple(float(v) for v in orientation)
    normal = np.cross(np.asarray(cosines[:3]), np.asarray(cosines[3:]))
    length = float(np.linalg.norm(normal))
    if length == 0.0:
        return "oblique"
    normal = np.abs(normal / length)
    axis = int(np.argmax(normal))
    if normal[axis] < math.cos(math.radians(tolerance_deg)):
        return "oblique"
    planes: tuple[Plane, Plane, Plane] = ("sagittal", "coronal", "axial")
    return planes[axis]


@dataclass(frozen=True)
class Layout:
    """How a slice is split into hips.

    ``lr_axis``: the image axis (0 rows, 1 columns) along the patient's left-right.
    ``midline``: for a bilateral slice the pixel coordinate along ``lr_axis`` where the
    body is split (pixels ``< midline`` belong to the first region). ``plane``: the
    slice's plane (:func:`slice_plane`).
    """

    kind: Literal["crop", "bilateral"]
    lr_axis: int
    regions: tuple[HipRegion, ...]
    midline: float | None = None
    body: Box | None = None
    plane: Plane = "axial"


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


def outline_points_mm(mask: BoolImage, pixel_spacing_mm: tuple[float, float]) -> FloatPoints:
    """The pixels of ``mask``'s outline (the mask less its erosion), ``(N, 2)`` row/column
    positions in mm."""
    outline = mask & ~ndimage.binary_erosion(mask, border_value=0)
    spacing = np.asarray(pixel_spacing_mm, dtype=np.float64)
    points: FloatPoints = np.argwhere(outline).astype(np.float64) * spacing
    return points


def circle_fit(points: FloatPoints) -> tuple[float, float, float]:
    """Least-squares (Kasa) circle through ``points`` (N, 2) mm: (centre y, centre x, r)."""
    y, x = points[:, 0], points[:, 1]
    a = np.column_stack([2 * y, 2 * x, np.ones_like(x)])
    b = y**2 + x**2
    (cy, cx, c), *_ = np.linalg.lstsq(a, b, rcond=None)
    return float(cy), float(cx), float(math.sqrt(max(c + cy**2 + cx**2, 0.0)))


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


def round_head(
    mask: BoolImage,
    pixels: FloatImage,
    pixel_spacing_mm: tuple[float, float],
    direction: tuple[float, float] | None,
    *,
    max_growth: float,
    band_relative: float = 0.35,
    max_angle_deg: float = 120.0,
) -> BoolImage:
    """``mask`` completed to the head's circle where it stops at a lesion's band.

    On a coronal or sagittal slice the femoral head's section is a disc. A network tends
    to leave out a subchondral lesion beyond its reactive band: the mask then ends at a
    chord along the band, a cut the convex hull cannot put back. The circle is fitted to
    the mask's outline without the points well inside it (the chord), twice. Each piece
    of the disc the mask leaves out is added when it lies on the lesion's side
    (``direction``, a unit (row, column) vector; within ``max_angle_deg`` of it from the
    circle's centre), when the mask's edge along it is as dark as a band (the darkest
    10 % of the mask within 2 mm of the piece, leaving out the 2 mm under the circle where
    the head's own cortex is, below ``band_relative`` x the mask's marrow, the 75th
    percentile inside), and when
    all the pieces together add at most ``max_growth`` of the mask's area. ``mask``,
    ``pixels``: ``(h, w)``; returns a new ``(h, w)`` mask.
    """
    if direction is None or max_growth <= 0 or int(mask.sum()) < 50:
        return mask
    spacing = np.asarray(pixel_spacing_mm, dtype=np.float64)
    points = outline_points_mm(mask, pixel_spacing_mm)
    if len(points) < 12:
        return mask
    cy, cx, radius = circle_fit(points)
    for _ in range(2):
        keep = np.hypot(points[:, 0] - cy, points[:, 1] - cx) >= radius - 1.0
        if int(keep.sum()) < 12:
            return mask
        cy, cx, radius = circle_fit(points[keep])
    rows, cols = np.indices(mask.shape)
    y, x = rows * spacing[0], cols * spacing[1]
    from_centre = np.hypot(y - cy, x - cx)
    missing = (from_centre <= radius) & ~mask
    deep = mask & (from_centre < radius - 2.0)  # the head's own cortex left out
    pieces, count = ndimage.label(missing)
    if count == 0:
        return mask
    marrow = float(np.percentile(pixels[mask], 75.0))
    if not marrow > 0:
        return mask
    limit = math.cos(math.radians(max_angle_deg))
    near_px = max(1, int(round(2.0 / float(spacing.min()))))
    added = np.zeros_like(mask)
    for piece in range(1, count + 1):
        region = pieces == piece
        area = float(region.sum()) * float(spacing[0] * spacing[1])
        if area < 4.0:
            continue
        dy, dx = float(y[region].mean()) - cy, float(x[region].mean()) - cx
        cosine = (dy * direction[0] + dx * direction[1]) / max(math.hypot(dy, dx), 1e-9)
        if cosine < limit:
            continue
        strip = ndimage.binary_dilation(region, iterations=near_px) & deep
        if not strip.any():
            continue
        if float(np.percentile(pixels[strip], 10.0)) >= band_relative * marrow:
            continue
        added |= region
    if not added.any() or int(added.sum()) > max_growth * int(mask.sum()):
        return mask
    return np.asarray(mask | added, dtype=bool)


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
    plane = slice_plane(mr_slice.image_orientation)
    whole = Box(0, 0, h, w)
    if not is_bilateral(mr_slice, config):
        lateral = _side_from_laterality(mr_slice.laterality)
        return Layout("crop", axis, (HipRegion(lateral or "unknown", whole),), plane=plane)

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
        plane=plane,
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
    side_mm, overlap_mm = config.coarse_window_mm, config.coarse_min_overlap_mm
    if side_mm is None and slice_plane(mr_slice.image_orientation) in UPRIGHT_PLANES:
        side_mm, overlap_mm = config.coronal_coarse_window_mm, config.coronal_min_overlap_mm
    if side_mm is None:
        return (box,)
    rows = _pixels_for(side_mm, sr)
    cols = _pixels_for(side_mm, sc)
    overlap_r = _pixels_for(overlap_mm, sr)
    overlap_c = _pixels_for(overlap_mm, sc)
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
    without a midline (nothing is known about the frame)."""
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
    """The femoral head in ``region`` from the coarse pass, or None.

    ``probabilities[i]`` is the network's answer on ``windows[i]`` (same shape). They are
    merged by maximum over the region; components of ``p > threshold`` with an area in
    ``[min_head_area_mm2, max_head_area_mm2]`` compete on probability mass.
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
        return None
    index = np.arange(1, count + 1)
    pixel_area = mr_slice.pixel_area_mm2
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1:] * pixel_area
    masses = np.asarray(ndimage.sum_labels(merged, labels, index), dtype=np.float64)
    plausible = (areas >= config.min_head_area_mm2) & (areas <= config.max_head_area_mm2)
    if slice_plane(mr_slice.image_orientation) in UPRIGHT_PLANES:
        for k in np.flatnonzero(plausible):
            plausible[k] = (
                elongation(labels == k + 1, mr_slice.pixel_spacing_mm) <= config.max_elongation
            )
    if layout is not None and plausible.any():
        centres = ndimage.center_of_mass(np.ones_like(merged), labels, index)
        for k in np.flatnonzero(plausible):
            centre = (float(centres[k][0]) + box.row0, float(centres[k][1]) + box.col0)
            plausible[k] = where_a_head_can_be(mr_slice, layout, centre, config)
    if not plausible.any():
        return None
    best = int(np.argmax(np.where(plausible, masses, -1.0)))
    rows, cols = np.nonzero(labels == best + 1)
    area = float(areas[best])
    return HeadCandidate(
        side=region.side,
        centre_rc=(float(rows.mean()) + box.row0, float(cols.mean()) + box.col0),
        diameter_mm=2.0 * math.sqrt(area / math.pi),
        area_mm2=area,
        mean_probability=float(masses[best] / rows.size),
    )


def elongation(mask: BoolImage, pixel_spacing_mm: tuple[float, float]) -> float:
    """Long over short axis of ``mask`` (H, W) from its second moments in mm (1 for a
    disc; inf for a line)."""
    rows, cols = np.nonzero(mask)
    if rows.size < 3:
        return 1.0
    points = np.column_stack([rows * pixel_spacing_mm[0], cols * pixel_spacing_mm[1]])
    eigen = np.linalg.eigvalsh(np.cov(points, rowvar=False))
    # a pixel's own extent (1/12 of its side squared) keeps tiny masks finite
    low = float(eigen[0]) + min(pixel_spacing_mm) ** 2 / 12.0
    return math.sqrt(max(float(eigen[1]), 0.0) / low) if low > 0 else math.inf


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
    orientation = mr_slice.image_orientation
    if config.max_round_growth > 0 and slice_plane(orientation) in UPRIGHT_PLANES:
        from grading.engine.necrosis import lesion_direction_in_image

        mask = round_head(
            mask,
            np.asarray(mr_slice.pixels[box.slices], dtype=np.float32),
            mr_slice.pixel_spacing_mm,
            lesion_direction_in_image(orientation),
            max_growth=config.max_round_growth,
        )
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


def coarse_pass(
    slices: Sequence[MRSlice],
    segmenter: Segmenter,
    config: HipFinderConfig = DEFAULT_CONFIG,
    *,
    batch_size: int = 16,
) -> list[CoarseResult]:
    """Layout and head candidates of every slice.

    One ``predict`` call for all, except on a coronal (or sagittal) series of at least
    ``2 * coronal_sample_every`` slices: the tiles are first run on
    ``coronal_sample_slices`` slices ``coronal_sample_every`` apart around the middle
    one, the sections found there give each side's centre (a sphere's coronal sections
    share it), and every other slice is then looked at through one tile per side
    centred there (two calls instead of one). A side not found in the sample is tiled on
    every other slice."""
    layouts = [plan_layout(s, config) for s in slices]
    step = config.coronal_sample_every
    coronal = bool(slices) and all(layout.plane in UPRIGHT_PLANES for layout in layouts)
    if not coronal or step < 1 or len(slices) < 2 * step:
        every = _coarse_on(slices, layouts, range(len(slices)), segmenter, config, {}, batch_size)
        return [every[i] for i in range(len(slices))]
    middle = len(slices) // 2
    count = max(1, config.coronal_sample_slices)
    sample = sorted(
        {min(max(middle + step * (i - count // 2), 0), len(slices) - 1) for i in range(count)}
    )
    first = _coarse_on(slices, layouts, sample, segmenter, config, {}, batch_size)
    anchors = _side_centres([slices[i] for i in sample], [first[i] for i in sample])
    rest = [i for i in range(len(slices)) if i not in set(sample)]
    second = _coarse_on(slices, layouts, rest, segmenter, config, anchors, batch_size)
    return [first[i] if i in set(sample) else second[i] for i in range(len(slices))]


def _coarse_on(
    slices: Sequence[MRSlice],
    layouts: Sequence[Layout],
    indices: Sequence[int] | range,
    segmenter: Segmenter,
    config: HipFinderConfig,
    anchors: dict[Side, tuple[float, float]],
    batch_size: int,
) -> dict[int, CoarseResult]:
    """The coarse pass over ``slices[indices]`` in one ``predict`` call; a region whose
    side has an anchor (mm on the image grid) gets one coronal tile centred there."""
    requests: list[tuple[int, int, Box]] = []
    for i in indices:
        mr_slice, layout = slices[i], layouts[i]
        for j, region in enumerate(layout.regions):
            anchor = anchors.get(region.side)
            if anchor is not None and config.coronal_coarse_window_mm is not None:
                sr, sc = mr_slice.pixel_spacing_mm
                size = (
                    _pixels_for(config.coronal_coarse_window_mm, sr),
                    _pixels_for(config.coronal_coarse_window_mm, sc),
                )
                requests.append((i, j, centred_box((anchor[0] / sr, anchor[1] / sc), size)))
            else:
                requests.extend((i, j, b) for b in coarse_windows(mr_slice, region, config))
    images = [extract(slices[i].pixels, box) for i, _, box in requests]
    answers = segmenter.predict(images, batch_size=batch_size) if images else []
    grouped: dict[tuple[int, int], tuple[list[Box], list[FloatImage]]] = {}
    for (i, j, box), answer in zip(requests, answers, strict=True):
        entry = grouped.setdefault((i, j), ([], []))
        entry[0].append(box)
        entry[1].append(np.asarray(answer, dtype=np.float32))
    results: dict[int, CoarseResult] = {}
    for i in indices:
        mr_slice, layout = slices[i], layouts[i]
        candidates = tuple(
            locate_head(mr_slice, region, *grouped.get((i, j), ([], [])), config, layout)
            for j, region in enumerate(layout.regions)
        )
        results[i] = CoarseResult(layout, candidates)
    return results


def _side_centres(
    slices: Sequence[MRSlice], coarse: Sequence[CoarseResult], minimum: int = 1
) -> dict[Side, tuple[float, float]]:
    """Per side, the area-weighted median centre (mm on the image grid: row, column)
    of the candidates, for sides with at least ``minimum`` of them."""
    centres: dict[Side, list[tuple[float, float, float]]] = {}
    for mr_slice, result in zip(slices, coarse, strict=True):
        sr, sc = mr_slice.pixel_spacing_mm
        for candidate in result.candidates:
            if candidate is not None:
                r, c = candidate.centre_rc
                centres.setdefault(candidate.side, []).append((r * sr, c * sc, candidate.area_mm2))
    anchors: dict[Side, tuple[float, float]] = {}
    for side, values in centres.items():
        if len(values) >= minimum:
            array = np.asarray(values)
            anchors[side] = (
                _weighted_median(array[:, 0], array[:, 2]),
                _weighted_median(array[:, 1], array[:, 2]),
            )
    return anchors


def consistent_candidates(
    slices: Sequence[MRSlice],
    coarse: Sequence[CoarseResult],
    config: HipFinderConfig = DEFAULT_CONFIG,
) -> list[CoarseResult]:
    """On coronal and sagittal slices, drop each side's candidates whose centre lies further than
    ``centre_tolerance`` x the series' head diameter from the side's median centre
    (weighted by area; in mm on the image grid). A sphere's coronal sections share their
    centre, so a candidate elsewhere is another bone (the ilium above, the trochanter
    below). Other planes, and series of fewer than three candidates per side, are left
    as they are."""
    pairs = [
        (m, r) for m, r in zip(slices, coarse, strict=True) if r.layout.plane in UPRIGHT_PLANES
    ]
    anchors = _side_centres([m for m, _ in pairs], [r for _, r in pairs], minimum=3)
    if not anchors:
        return list(coarse)
    diameters = series_head_diameters(coarse)
    out: list[CoarseResult] = []
    for mr_slice, result in zip(slices, coarse, strict=True):
        if result.layout.plane not in UPRIGHT_PLANES:
            out.append(result)
            continue
        sr, sc = mr_slice.pixel_spacing_mm
        kept: list[HeadCandidate | None] = []
        for candidate in result.candidates:
            anchor = anchors.get(candidate.side) if candidate is not None else None
            if candidate is not None and anchor is not None:
                distance = math.hypot(
                    candidate.centre_rc[0] * sr - anchor[0], candidate.centre_rc[1] * sc - anchor[1]
                )
                limit = config.centre_tolerance * diameters.get(candidate.side, 0.0)
                if distance > max(limit, 2.0 * max(sr, sc)):
                    candidate = None
            kept.append(candidate)
        out.append(CoarseResult(result.layout, tuple(kept)))
    return out


def bridged_candidates(
    coarse: Sequence[CoarseResult],
    spacing_mm: float,
    config: HipFinderConfig = DEFAULT_CONFIG,
) -> list[CoarseResult]:
    """Fill each side's gaps in ``coarse`` (slices sorted along the series normal): where
    a region has no candidate but the same region of the nearest slices above and below,
    at most ``max_bridge_mm`` apart, has one, a candidate at the interpolated centre and
    diameter (``mean_probability`` 0: not found by the coarse pass) goes to the fine pass,
    which decides whether a head is there."""
    if spacing_mm <= 0 or len(coarse) < 3:
        return list(coarse)
    max_span = int(config.max_bridge_mm / spacing_mm + 1e-6)
    out = list(coarse)
    for k, result in enumerate(coarse):
        for j, candidate in enumerate(result.candidates):
            if candidate is not None:
                continue
            below = _nearest_candidate(coarse, k, j, result.layout, step=-1)
            above = _nearest_candidate(coarse, k, j, result.layout, step=+1)
            if below is None or above is None:
                continue
            (kb, cb), (ka, ca) = below, above
            if cb.side != ca.side or ka - kb > max_span:
                continue
            t = (k - kb) / (ka - kb)
            bridged = HeadCandidate(
                side=cb.side,
                centre_rc=(
                    cb.centre_rc[0] + t * (ca.centre_rc[0] - cb.centre_rc[0]),
                    cb.centre_rc[1] + t * (ca.centre_rc[1] - cb.centre_rc[1]),
                ),
                diameter_mm=cb.diameter_mm + t * (ca.diameter_mm - cb.diameter_mm),
                area_mm2=cb.area_mm2 + t * (ca.area_mm2 - cb.area_mm2),
                mean_probability=0.0,
            )
            candidates = list(out[k].candidates)
            candidates[j] = bridged
            out[k] = CoarseResult(out[k].layout, tuple(candidates))
    return out


def _nearest_candidate(
    coarse: Sequence[CoarseResult], k: int, region: int, layout: Layout, *, step: int
) -> tuple[int, HeadCandidate] | None:
    """The nearest slice from ``k`` in direction ``step`` with a candidate in ``region``
    of the same kind of layout (the coarse pass's own finds only)."""
    i = k + step
    while 0 <= i < len(coarse):
        other = coarse[i]
        if other.layout.kind != layout.kind or len(other.candidates) != len(layout.regions):
            return None
        found = other.candidates[region]
        if found is not None:
            return i, found
        i += step
    return None


def _weighted_median(values: npt.NDArray[np.floating], weights: npt.NDArray[np.floating]) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    index = int(np.searchsorted(cumulative, 0.5 * cumulative[-1]))
    return float(values[order][min(index, len(order) - 1)])


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
    coarse = coarse_pass(slices, segmenter, config, batch_size=batch_size)
    coarse = consistent_candidates(slices, coarse, config)
    diameters = series_head_diameters(coarse) if len(slices) > 1 else None
    requests = fine_requests(slices, coarse, diameters, config)
    heads = fine_pass(slices, requests, segmenter, config, batch_size=batch_size)
    return [(c.layout, tuple(h)) for c, h in zip(coarse, heads, strict=True)]
