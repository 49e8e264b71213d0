"""Necrosis inside a segmented femoral head: an adaptive threshold with a contrast floor.

The paper thresholds the head with an automatically chosen (Otsu) level. Otsu always
splits *something* -- noise, marrow texture, a physeal scar, mild oedema -- so on its own
it reports necrosis on every normal head. The method here keeps Otsu's adaptive level
but adds a contrast criterion and a little anatomy (lengths in mm, so any pixel spacing
behaves the same; levels relative to the viable-marrow signal):

The steps carry the numbers of ``docs/grading.md`` section 2; :data:`SECTION_STEPS` runs
them in order as named functions that share a :class:`SectionWork`, each of which may
settle the section:

1. Smooth the T1 signal inside the head only (normalised convolution, ``smoothing_mm``).
2. ``reference`` = the viable-marrow level: the 75th percentile of the head deeper than
   ``rim_mm`` (viable marrow is bright on T1), or -- in a series -- the hip's level over
   the whole series, and never below ``viable_floor`` x the bright tissue around the head
   (:func:`viable_tissue_level`), so a section that is nearly all lesion is not compared
   with itself.
3. The dark cortical rim is measured from the head's own radial profile (it looks
   thicker on oblique cuts near a pole) and left out of the thresholding ("core").
4. Threshold = Otsu on the core, raised to at least midway between the dark class and
   the reference (a section with no bright class of its own), and **capped at
   ``max_relative_threshold`` (70 %) of the marrow**: only a clearly darker signal can
   be necrosis, whatever Otsu says. Oedema (a 10-20 % drop) never reaches it.
5. Thick dark regions (holding a ``thick_mm`` disk, and most of their dark component)
   whose darkest 5 % lie below ``seed_relative`` (45 %) are necrotic interiors; dark
   pixels within ``margin_mm`` of them are their band.
5b. Unless they are marrow oedema: pale in bulk (at or above ``clear_relative``) and in
   the viable marrow's part of a section that a band divides (``oedema_check``).
6. Thin dark lines (the reactive band of a lesion with a fat-like interior, or a physeal
   scar) are never necrosis by themselves. Lines and lesions split the core into
   regions; the viable marrow is the most posterior large region, and a region cut off
   from it **towards the front** (within ``max_angle_deg`` of anterior -- ONFH is
   anterosuperior) is necrosis with the lines that border it. A region cut off sideways
   (a scar at the old physis runs anteroposteriorly and cuts off a lateral segment) is
   not. Without a known anterior direction the largest region is viable and every
   cut-off region counts.
6b. The one exception: a dark group at the core's outer edge in front (a compact patch,
   or a very dark line along the articular surface) is the deep part of a shallow
   subchondral lesion whose rest lies in the rim.
6c. On a coronal or sagittal section steps 5-6b are replaced by the band partition
   (:data:`OUT_OF_AXIAL_STEPS`): the band (core below ``clear_relative``) cuts the core
   into regions, and those on the lesion's side (superior, or anterosuperior; within
   ``band_max_angle_deg``) other than the viable marrow are necrosis with their band;
   marrow oedema on the viable side of the band is not.
7. Ring check: "necrosis" all around the core's edge around marrow-bright tissue is the
   joint inside the head mask, not counted (flag ``not_counted``).
8. Clean-up: holes filled, at least ``min_area_mm2``, and the rim over a lesion joins it
   by radial projection. Necrosis is always inside the head.

No necrosis on a normal head therefore means: nothing in the core is below 70 % of the
marrow signal with a darkest 5 % below 45 % as a thick region, no dark line cuts off
a region towards the front, and nothing very dark sits at the front of the core's edge.
Steps 9-11 run over a series (``series_rules``): step 11 keeps only necrosis that forms
a 3-D segment reaching the superior half of the head, step 9 carries a lesion upwards
into sections that lie inside it without a band of their own (flagged ``continued``),
step 10 counts the band-dark lines and sideways regions not counted here
(``NecrosisResult.candidate``) where they lie inside a neighbouring slice's lesion, and
step 9b sets aside pale (``ambiguous``) necrosis below a hip's lowest clear lesion
section on an axial series (oedema below the band).
Necrosis claimed while its darkest pixels stay above ``clear_relative`` (35 %) is returned
``ambiguous`` (measurement flags it ``not_bimodal``). See ``docs/grading.md`` for the
numbers on phantoms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.flags import Flag, FlagNote
from grading.engine.hips import fill_holes

BoolImage = npt.NDArray[np.bool_]
FloatImage = npt.NDArray[np.float32]


@dataclass(frozen=True)
class NecrosisConfig:
    """Parameters of :func:`find_necrosis` (lengths mm, areas mm², levels relative to marrow)."""

    smoothing_mm: float = 0.5
    rim_mm: float = 1.5
    max_rim_mm: float = 4.0
    reference_percentile: float = 75.0
    max_relative_threshold: float = 0.70
    min_relative_threshold: float = 0.40
    seed_relative: float = 0.45
    """A dark region or line counts when its darkest pixels (``dark_percentile``) are
    below this fraction of the marrow signal."""
    clear_relative: float = 0.35
    """Necrosis whose darkest pixels stay above this (the reactive band and necrotic
    interiors are darker) is reported but flagged ``not_bimodal``."""
    dark_percentile: float = 5.0
    min_area_mm2: float = 4.0
    closing_mm: float = 1.0
    thick_mm: float = 3.0
    """Dark regions that hold a disk this wide are thick (necrotic interiors); the rest
    of the dark pixels are thin lines (the reactive band, a physeal scar)."""
    thick_share: float = 0.4
    line_max_minor_sd_mm: float = 1.6
    line_min_elongation: float = 4.0
    """A dark component no wider than this (spread across its main axis, mm) and at least
    this elongated is a line, never a necrotic interior."""
    margin_mm: float = 4.0
    """Dark pixels this close to a thick necrotic region are its margin (the band)."""
    main_region_fraction: float = 0.1
    """Regions at least this fraction of the largest compete to be the viable marrow."""
    ring_min_viable: float = 0.1
    ring_bright: float = 0.85
    ring_edge_share: float = 0.97
    """Necrosis covering this share of the head's edge around at least ``ring_min_viable``
    of viable marrow is a ring (the joint inside the mask), not a lesion."""
    surface_line_relative: float = 0.2
    """A line along the surface (step 6b) must be this dark (darkest pixels, relative to
    marrow): the reactive band is at 7-17 %, the oblique cortex at a pole ~30 %. A compact
    patch there needs ``clear_relative``."""
    surface_line_min_mm2: float = 10.0
    """... and this large: a band under a lesion runs for a centimetre or more; a few dark
    pixels at the edge of a section near a pole are the oblique cortex."""
    surface_mm: float = 2.0
    surface_share: float = 0.6
    """A dark line at the core's edge in front with at least this share of its pixels
    within ``surface_mm`` of that edge runs along the articular surface: the deep border
    of a shallow subchondral lesion (step 6b), not a line through the head."""
    max_angle_deg: float = 40.0
    """A region cut off from the viable marrow is necrosis when it lies within this angle
    of the anterior direction from it."""
    band_max_angle_deg: float = 120.0
    """Step 6c (coronal and sagittal): a region cut off by the band, or a band group,
    counts when it lies within this angle of the lesion's direction from the head's
    centre: anywhere but the inferior third of the section (the neck side), since a
    lesion under the roof may reach the equator medially or laterally."""
    band_main_fraction: float = 0.5
    """Step 6c: the viable marrow is the region furthest against the lesion's direction
    among those at least this fraction of the largest."""
    oedema_check: bool = True
    """Step 5b (axial): where a band divides the section, a thick dark region whose
    median lies at or above ``clear_relative`` (not clearly necrotic in bulk) in the
    viable marrow's part is oedema, not a necrotic interior; False leaves the step out
    (before/after measurements)."""
    viable_ring_mm: tuple[float, float] = (3.0, 20.0)
    viable_ring_percentile: float = 90.0
    viable_floor: float = 0.85
    """Step 2, the marrow reference never taken from the lesion: it is at least this
    fraction of the ``viable_ring_percentile`` of the smoothed signal ``viable_ring_mm``
    outside the head (the marrow of the femoral neck, trochanter and acetabulum and the
    fat around them: tissue that is not the head section judged, bright on T1). 0 turns
    it off. On the project's normal crops the head's own marrow level is 0.86-1.25 of that
    level, so 0.85 never raises a viable head's reference (``docs/grading.md``)."""


DEFAULT_NECROSIS_CONFIG = NecrosisConfig()


@dataclass(frozen=True)
class NecrosisResult:
    """Necrosis inside one head on one slice, and how clear the threshold was.

    ``mask``: same shape as the head mask, always inside it. ``threshold``: the level
    used, stored-value units (NaN when the head was too small to threshold).
    ``relative_threshold``: the same relative to ``reference`` (the viable marrow level).
    ``otsu_relative``: Otsu's own threshold relative to the reference, before the cap.
    ``contrast``: ``1 - mean(dark pixels) / reference`` (0 when nothing is dark).
    ``otsu_separation``: Otsu's between-class over total variance of the core (0..1).
    ``bimodal``: necrosis was found with a clear contrast. ``ambiguous``: the result needs
    a look (necrosis claimed with a weak contrast). ``reason``: one line for a flag.
    """

    mask: BoolImage
    threshold: float
    relative_threshold: float
    reference: float
    otsu_relative: float
    contrast: float
    otsu_separation: float
    bimodal: bool
    ambiguous: bool
    reason: str
    candidate: BoolImage | None = None
    """Dark structures not counted on this slice alone (lines, regions cut off sideways;
    same shape as ``mask``, outside it): a series counts those lying inside the lesion
    of a neighbouring slice (step 10, ``series_rules.support_lesions``). None when there
    are none."""
    flags: tuple[FlagNote, ...] = ()
    """Why a stage changed or set aside this necrosis (``continued``, ``neighbour_lesion``,
    ``not_counted``); measurement copies them onto the hip."""
    found: BoolImage | None = None
    """The necrosis this section showed on its own, before steps 10 and 9 added to it
    from its neighbours (same shape as ``mask``); None while nothing was added."""

    @property
    def own_mask(self) -> BoolImage:
        """The necrosis found on this section alone (``found``, else ``mask``)."""
        return self.mask if self.found is None else self.found

    @property
    def area_pixels(self) -> int:
        return int(self.mask.sum())


def _disk(radius_px: tuple[float, float]) -> BoolImage:
    """An elliptical structuring element, radii in pixels per axis (at least 1 pixel)."""
    ry, rx = max(radius_px[0], 1.0), max(radius_px[1], 1.0)
    ny, nx = int(math.floor(ry)), int(math.floor(rx))
    y, x = np.ogrid[-ny : ny + 1, -nx : nx + 1]
    return np.asarray((y / ry) ** 2 + (x / rx) ** 2 <= 1.0, dtype=bool)


def _radius_px(mm: float, spacing: tuple[float, float]) -> tuple[float, float]:
    return (mm / spacing[0], mm / spacing[1])


def otsu(values: npt.NDArray[np.floating], bins: int = 256) -> tuple[float, float]:
    """Otsu's threshold of ``values`` and its separation (between-class / total variance).

    Same histogram method as :func:`skimage.filters.threshold_otsu`, vectorised here so
    the separation comes with it.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        return lo, 0.0
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(counts).astype(np.float64)
    w1 = w0[-1] - w0
    m0 = np.cumsum(counts * centres)
    mean0 = m0 / np.maximum(w0, 1)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mean0 - mean1) ** 2 / (w0[-1] ** 2)
    k = int(np.argmax(between[:-1]))
    total = float(v.var())
    return float(centres[k]), float(between[k] / total) if total > 0 else 0.0


def smooth_inside(pixels: FloatImage, mask: BoolImage, sigma_px: tuple[float, float]) -> FloatImage:
    """Gaussian smoothing of ``pixels`` using only pixels inside ``mask`` (normalised
    convolution); outside the mask the result is 0. Shapes ``(h, w)``."""
    weight = mask.astype(np.float32)
    num = ndimage.gaussian_filter(pixels.astype(np.float32) * weight, sigma_px, mode="constant")
    den = ndimage.gaussian_filter(weight, sigma_px, mode="constant")
    out = np.zeros(mask.shape, dtype=np.float32)
    np.divide(num, den, out=out, where=mask & (den > 1e-6))
    return out


def _empty(shape: tuple[int, ...], reason: str, reference: float = math.nan) -> NecrosisResult:
    return NecrosisResult(
        mask=np.zeros(shape, dtype=bool),
        threshold=math.nan,
        relative_threshold=math.nan,
        reference=reference,
        otsu_relative=math.nan,
        contrast=0.0,
        otsu_separation=0.0,
        bimodal=False,
        ambiguous=False,
        reason=reason,
    )


def opening_mm(mask: BoolImage, radius_mm: float, spacing: tuple[float, float]) -> BoolImage:
    """Morphological opening of ``mask`` by a disk of ``radius_mm`` in physical units.

    The union of the disks that fit inside ``mask``; a disk fits where the distance to
    the outside, less half a pixel (pixels are areas, not points), reaches the radius.
    Unlike a pixel structuring element this does not round a 2 mm radius up to a whole
    pixel at coarse spacings, so a line 3 pixels wide stays thin. ``(h, w)`` bool.
    """
    depth = _depth_mm(mask, spacing) - 0.5 * max(spacing)
    centres = depth >= radius_mm
    if not centres.any():
        return np.zeros_like(mask)
    reach = ndimage.distance_transform_edt(~centres, sampling=spacing)
    return np.asarray(mask & (reach <= radius_mm), dtype=bool)


def _depth_mm(head_mask: BoolImage, spacing: tuple[float, float]) -> npt.NDArray[np.float64]:
    """Distance (mm) of each head pixel from outside the head; 0 outside. ``(h, w)``."""
    padded = np.pad(head_mask, 1)
    depth = ndimage.distance_transform_edt(padded, sampling=spacing)[1:-1, 1:-1]
    return np.asarray(depth, dtype=np.float64)


def cortex_depth_mm(
    relative: FloatImage, depth: npt.NDArray[np.float64], config: NecrosisConfig
) -> float:
    """How deep the dark cortical rim reaches (mm), from the head's own radial profile.

    The median relative signal of the pixels at each depth (0.25 mm rings) is low in the
    cortex and high in the marrow; the rim ends where it first reaches 80 % of the marrow
    level (the median ignores a lesion that occupies part of a ring). Oblique cuts near
    a pole show the cortex thicker than ``rim_mm``; this follows them. Clamped to
    ``[rim_mm, max_rim_mm]``.
    """
    inside = depth > 0
    step = 0.25
    rings = np.floor(depth[inside] / step).astype(np.int64)
    values = relative[inside]
    order = np.argsort(rings, kind="stable")
    rings, values = rings[order], values[order]
    starts = np.flatnonzero(np.r_[True, rings[1:] != rings[:-1]])
    for start, stop in zip(starts, np.r_[starts[1:], rings.size], strict=True):
        ring_depth = (rings[start] + 1) * step
        if ring_depth > config.max_rim_mm:
            break
        if stop - start >= 4 and float(np.median(values[start:stop])) >= 0.8:
            return float(min(max(ring_depth, config.rim_mm), config.max_rim_mm))
    return config.max_rim_mm


def marrow_reference(
    pixels: FloatImage,
    head_mask: BoolImage,
    pixel_spacing_mm: tuple[float, float],
    config: NecrosisConfig = DEFAULT_NECROSIS_CONFIG,
) -> float | None:
    """The viable-marrow level of a head (stored-value units), or None if too small.

    ``pixels``, ``head_mask``: ``(h, w)``; the ``reference_percentile`` of the smoothed
    signal deeper than ``rim_mm`` in the head.
    """
    spacing = (float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1]))
    head = np.asarray(head_mask, dtype=bool)
    rows = np.flatnonzero(head.any(axis=1))
    cols = np.flatnonzero(head.any(axis=0))
    if rows.size == 0:
        return None
    window = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
    head = head[window]
    core = _depth_mm(head, spacing) > config.rim_mm
    if int(core.sum()) < 8:
        return None
    smooth = smooth_inside(
        np.asarray(pixels[window], dtype=np.float32),
        head,
        _radius_px(config.smoothing_mm, spacing),
    )
    return float(np.percentile(smooth[core], config.reference_percentile))


@dataclass(frozen=True)
class DarkGroups:
    """Features of the dark groups of one head (index 0 unused: background).

    ``darkest``: the ``dark_percentile`` of each group's relative signal (a robust
    minimum); ``minor_sd_mm`` / ``major_sd_mm``: spread of its pixels across and along
    its main axis (mm); ``area_mm2``.
    """

    darkest: npt.NDArray[np.float64]
    minor_sd_mm: npt.NDArray[np.float64]
    major_sd_mm: npt.NDArray[np.float64]
    area_mm2: npt.NDArray[np.float64]


def group_features(
    labels: npt.NDArray[np.integer],
    relative: FloatImage,
    count: int,
    spacing: tuple[float, float],
    percentile: float = 5.0,
) -> DarkGroups:
    """Per-group darkness and shape of a label image ``(h, w)`` with groups 1..count."""
    rows, cols = np.nonzero(labels)
    idx = labels[rows, cols].astype(np.int64)
    values = relative[rows, cols].astype(np.float64)
    n = np.bincount(idx, minlength=count + 1).astype(np.float64)
    safe = np.maximum(n, 1.0)
    order = np.lexsort((values, idx))
    starts = np.concatenate(([0.0], np.cumsum(n)[:-1]))
    pick = (starts + np.floor(percentile / 100.0 * np.maximum(n - 1, 0))).astype(np.int64)
    darkest = np.full(count + 1, np.inf)
    has = n > 0
    darkest[has] = values[order][pick[has]]
    y = rows * spacing[0]
    x = cols * spacing[1]
    my, mx = np.bincount(idx, y, count + 1) / safe, np.bincount(idx, x, count + 1) / safe
    syy = np.bincount(idx, y * y, count + 1) / safe - my * my
    sxx = np.bincount(idx, x * x, count + 1) / safe - mx * mx
    sxy = np.bincount(idx, x * y, count + 1) / safe - mx * my
    half_trace = 0.5 * (sxx + syy)
    root = np.sqrt(np.maximum(0.25 * (sxx - syy) ** 2 + sxy * sxy, 0.0))
    minor = np.sqrt(np.maximum(half_trace - root, 0.0))
    major = np.sqrt(np.maximum(half_trace + root, 0.0))
    return DarkGroups(darkest, minor, major, n * spacing[0] * spacing[1])


def line_shaped(features: DarkGroups, config: NecrosisConfig) -> npt.NDArray[np.bool_]:
    """Per group: no wider than ``line_max_minor_sd_mm`` across its main axis and at least
    ``line_min_elongation`` times longer than wide."""
    f = features
    out: npt.NDArray[np.bool_] = (f.minor_sd_mm <= config.line_max_minor_sd_mm) & (
        f.major_sd_mm >= config.line_min_elongation * f.minor_sd_mm
    )
    return out


def subchondral_patches(
    labels: npt.NDArray[np.integer],
    count: int,
    features: DarkGroups,
    line_ok: npt.NDArray[np.bool_],
    core: BoolImage,
    head: BoolImage,
    spacing: tuple[float, float],
    anterior: tuple[float, float],
    config: NecrosisConfig,
) -> npt.NDArray[np.bool_]:
    """Which dark groups (``labels`` 1..count, step 6) are subchondral lesions (step 6b).

    ``line_ok``: per group, dark and large enough to count as a line (step 6).

    ONFH starts under the articular surface, so a shallow lesion lies mostly in the rim
    that the core leaves out; only its deep part shows in the core, as a dark group at
    the core's outer edge. Such a group counts when it is in front of the head's centre
    (within ``max_angle_deg`` of anterior), dark and large enough as a line of step 6,
    and either compact with its darkest pixels below ``clear_relative``, or a line
    running along the surface (``surface_share`` of it within ``surface_mm`` of the
    core's edge) below ``surface_line_relative`` and at least ``surface_line_min_mm2``.
    A line running into the head (a scar) and anything sideways or behind are left to
    step 6. Returns ``(count + 1,)`` bool.
    """
    f = features
    shape = labels.shape
    closing = _disk(_radius_px(config.closing_mm, spacing))
    edge = core & ~ndimage.binary_erosion(core, structure=closing, border_value=0)
    grouped = labels > 0
    at_edge = np.zeros(count + 1, dtype=bool)
    at_edge[labels[edge & grouped]] = True
    flat = labels.ravel()
    n_px = np.maximum(np.bincount(flat, minlength=count + 1), 1)
    rows, cols = np.indices(shape)
    gy = np.bincount(flat, (rows * spacing[0]).ravel(), count + 1) / n_px
    gx = np.bincount(flat, (cols * spacing[1]).ravel(), count + 1) / n_px
    head_rows, head_cols = np.nonzero(head)
    dy, dx = gy - head_rows.mean() * spacing[0], gx - head_cols.mean() * spacing[1]
    cosine = (dy * anterior[0] + dx * anterior[1]) / np.maximum(np.hypot(dy, dx), 1e-9)
    in_front = cosine >= math.cos(math.radians(config.max_angle_deg))
    along_line = line_shaped(f, config)
    edge_mm = ndimage.distance_transform_edt(core, sampling=spacing)
    superficial = (
        np.bincount(labels[grouped & (edge_mm <= config.surface_mm)], minlength=count + 1) / n_px
    )
    compact = ~along_line & (f.darkest < config.clear_relative)
    surface_line = (
        along_line
        & (superficial >= config.surface_share)
        & (f.darkest < config.surface_line_relative)
        & (f.area_mm2 >= config.surface_line_min_mm2)
    )
    patch = line_ok & at_edge & in_front & (compact | surface_line)
    patch[0] = False
    return np.asarray(patch, dtype=bool)


def viable_tissue_level(
    pixels: FloatImage,
    head_mask: BoolImage,
    pixel_spacing_mm: tuple[float, float],
    config: NecrosisConfig = DEFAULT_NECROSIS_CONFIG,
) -> float | None:
    """The bright tissue around the head (stored-value units), or None without enough of it.

    ``pixels``, ``head_mask``: ``(h, w)``, the window around the head. The
    ``viable_ring_percentile`` of the signal (smoothed by 1 mm) between
    ``viable_ring_mm[0]`` and ``[1]`` mm outside the head mask: on T1 the marrow of the
    femoral neck, the trochanter and the acetabulum and the fat around them, none of which
    is the head section being judged.
    """
    inner, outer = config.viable_ring_mm
    distance = ndimage.distance_transform_edt(~head_mask, sampling=pixel_spacing_mm)
    ring = (distance > inner) & (distance <= outer)
    if int(ring.sum()) < 50:
        return None
    sigma = _radius_px(1.0, pixel_spacing_mm)
    smooth = ndimage.gaussian_filter(np.asarray(pixels, dtype=np.float32), sigma)
    level = float(np.percentile(smooth[ring], config.viable_ring_percentile))
    return level if level > 0 else None


def find_necrosis(
    pixels: FloatImage,
    head_mask: BoolImage,
    pixel_spacing_mm: tuple[float, float],
    *,
    reference: float | None = None,
    anterior: tuple[float, float] | None = None,
    config: NecrosisConfig = DEFAULT_NECROSIS_CONFIG,
    plane: str = "axial",
) -> NecrosisResult:
    """Necrosis inside ``head_mask`` (see the module docstring for the method).

    ``pixels``: ``(h, w)`` T1 signal in stored-value units; ``head_mask``: ``(h, w)`` bool;
    ``pixel_spacing_mm``: (row, column) mm. ``reference``: the viable-marrow level to use
    (e.g. from the series, see :func:`marrow_reference`); default this head's own level.
    Either is raised to ``viable_floor`` x the level of the tissue around the head
    (:func:`viable_tissue_level`), so a section that is mostly lesion is not its own
    reference; the head's own level can raise it, never lower it.
    ``anterior``: the patient's anterior direction in the image as (row, column)
    components (see :func:`anterior_in_image`); None when unknown. On a coronal or
    sagittal ``plane`` it is the direction the lesion lies in
    (:func:`lesion_direction_in_image`), and steps 5-6b are replaced by step 6c
    (:data:`OUT_OF_AXIAL_STEPS`).
    """
    if pixels.shape != head_mask.shape:
        raise ValueError(f"pixels {pixels.shape} and head mask {head_mask.shape} differ")
    head = np.asarray(head_mask, dtype=bool)
    rows = np.flatnonzero(head.any(axis=1))
    cols = np.flatnonzero(head.any(axis=0))
    if rows.size == 0:
        return _empty(head.shape, "empty head mask")
    spacing = (float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1]))
    around = viable_tissue_level(np.asarray(pixels, dtype=np.float32), head, spacing, config)
    if around is not None and config.viable_floor > 0:
        floor = config.viable_floor * around
        reference = floor if reference is None else max(float(reference), floor)
    # work on the head's bounding box (plus a margin for the filters), paste back
    r0, r1 = max(int(rows[0]) - 2, 0), min(int(rows[-1]) + 3, head.shape[0])
    c0, c1 = max(int(cols[0]) - 2, 0), min(int(cols[-1]) + 3, head.shape[1])
    inner = _find_necrosis(
        np.asarray(pixels[r0:r1, c0:c1], dtype=np.float32),
        head[r0:r1, c0:c1],
        spacing,
        reference,
        anterior,
        config,
        plane,
    )
    mask = np.zeros(head.shape, dtype=bool)
    mask[r0:r1, c0:c1] = inner.mask
    candidate = None
    if inner.candidate is not None and inner.candidate.any():
        candidate = np.zeros(head.shape, dtype=bool)
        candidate[r0:r1, c0:c1] = inner.candidate
    return replace(inner, mask=mask, candidate=candidate)


@dataclass
class SectionWork:
    """What the steps of one head section share: ``(h, w)`` arrays on the head's box.

    The inputs come first; each step fills the fields it names in its docstring, and a
    step that settles the section (too small, no necrosis, a ring) sets ``result``.
    """

    pixels: FloatImage
    head: BoolImage
    spacing: tuple[float, float]
    reference: float | None
    anterior: tuple[float, float] | None
    config: NecrosisConfig
    result: NecrosisResult | None = None
    depth: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 0)))
    core: BoolImage = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    relative: FloatImage = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    ref: float = math.nan
    otsu_rel: float = math.nan
    separation: float = 0.0
    rel_t: float = math.nan
    dark: BoolImage = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    closing: BoolImage = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    lesion: BoolImage = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    interiors: BoolImage = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    levels: list[float] = field(default_factory=list)
    labels: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros((0, 0), np.int32))
    count: int = 0
    features: DarkGroups | None = None
    line_ok: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(1, dtype=bool))
    lines: BoolImage = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    necrosis: BoolImage = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))
    candidate: BoolImage = field(default_factory=lambda: np.zeros((0, 0), dtype=bool))

    def settled(self, reason: str, **changes: object) -> NecrosisResult:
        """No necrosis counted on this section, with the threshold's diagnostics."""
        return replace(
            NecrosisResult(
                mask=np.zeros(self.head.shape, dtype=bool),
                threshold=self.rel_t * self.ref,
                relative_threshold=self.rel_t,
                reference=self.ref,
                otsu_relative=self.otsu_rel,
                contrast=0.0,
                otsu_separation=self.separation,
                bimodal=False,
                ambiguous=False,
                reason=reason,
            ),
            **changes,  # type: ignore[arg-type]
        )


def _reference_and_threshold(w: SectionWork) -> None:
    """Steps 1-4: ``depth``, ``core``, ``ref``, ``relative``, ``rel_t``, ``dark``."""
    config, spacing, head = w.config, w.spacing, w.head
    shape = head.shape
    pixel_area = spacing[0] * spacing[1]
    w.depth = depth = _depth_mm(head, spacing)
    core = depth > config.rim_mm
    if int(core.sum()) * pixel_area < 2 * config.min_area_mm2 or int(core.sum()) < 8:
        w.result = _empty(shape, "head too small to threshold")
        return
    # Steps 1 and 2. Smoothing, the marrow reference.
    smooth = smooth_inside(w.pixels, head, _radius_px(config.smoothing_mm, spacing))
    own = float(np.percentile(smooth[core], config.reference_percentile))
    w.ref = ref = own if w.reference is None else max(float(w.reference), own)
    if not ref > 0:
        w.result = _empty(shape, "no signal in the head", ref)
        return
    w.relative = relative = smooth / ref
    # Step 3. The cortical rim.
    rim_mm = cortex_depth_mm(relative, depth, config)
    w.core = core = depth > rim_mm
    if int(core.sum()) < 8:
        w.result = _empty(shape, "head too small to threshold", ref)
        return
    # Step 4. The threshold. A section that is nearly all lesion has no bright class of
    # its own: Otsu then splits the lesion. The threshold is at least midway between the
    # dark class and the marrow reference (1.0), and never above the contrast cap.
    values = relative[core]
    w.otsu_rel, w.separation = otsu(values)
    below = values[values < w.otsu_rel]
    midway = 0.5 * (float(below.mean()) + 1.0) if below.size else w.otsu_rel
    w.rel_t = min(
        max(w.otsu_rel, midway, config.min_relative_threshold), config.max_relative_threshold
    )
    w.dark = core & (relative < w.rel_t)
    w.closing = _disk(_radius_px(config.closing_mm, spacing))


def _thick_regions(w: SectionWork) -> None:
    """Step 5. Thick dark regions: necrotic interiors (homogeneous or mixed), with the
    dark band around them. Sets ``lesion`` and ``levels``."""
    config, spacing, dark, relative = w.config, w.spacing, w.dark, w.relative
    thick = opening_mm(dark, config.thick_mm / 2, spacing)
    blobs, blob_count = ndimage.label(thick)
    fb = group_features(blobs, relative, blob_count, spacing, config.dark_percentile)
    keep_blob = (fb.darkest < config.seed_relative) & (fb.area_mm2 >= config.min_area_mm2)
    # A scar line that widens here and there leaves small thick bits: a thick region
    # must make up a good part of the dark component it belongs to.
    components, component_count = ndimage.label(dark)
    component_area = np.bincount(components.ravel(), minlength=component_count + 1)
    thick_area = np.bincount(components[thick], minlength=component_count + 1)
    share = thick_area / np.maximum(component_area, 1)
    blob_component = np.zeros(blob_count + 1, dtype=np.int64)
    blob_component[blobs[thick]] = components[thick]
    keep_blob &= share[blob_component] >= config.thick_share
    # ... and a dark component shaped like a line (a scar blurred to a few pixels'
    # width on a coarse grid) is not a necrotic interior, however thick it looks
    fc = group_features(components, relative, component_count, spacing)
    line_like = line_shaped(fc, config)
    keep_blob &= ~line_like[blob_component]
    keep_blob[0] = False
    lesion = keep_blob[blobs]
    if lesion.any():
        near = ndimage.binary_dilation(
            lesion, structure=_disk(_radius_px(config.margin_mm, spacing))
        )
        lesion |= dark & near
    w.lesion = lesion
    w.interiors = keep_blob[blobs]
    w.levels = [float(v) for v in fb.darkest[1:][keep_blob[1:]]]


def _oedema_not_interior(w: SectionWork) -> None:
    """Step 5b (axial sections). Marrow oedema beside a lesion's band is not a necrotic
    interior.

    The necrotic segment is the part of the head its reactive band cuts off; oedema
    lies on the viable side of the band, continuous with the marrow. The band (core
    pixels below ``clear_relative``, groups of at least ``min_area_mm2``) partitions the
    core as in step 6c; the viable marrow is step 6's region (the most posterior large
    one; the largest without a known anterior direction). Where the band cuts another
    region off, a thick region of step 5 that is pale in bulk (median at or above
    ``clear_relative``: an interior and the band are darker) with at least half of its
    non-band pixels in the viable marrow's region is oedema: it leaves ``lesion`` with
    its margin (the band itself stays for step 6). Where the band cuts nothing off, the
    section is left as step 5 found it (a section lying wholly inside a pale lesion
    looks the same as one below the band; series step 9b tells them apart). Updates
    ``lesion``, ``interiors`` and ``levels``."""
    if not w.interiors.any() or not w.config.oedema_check:
        return
    config, spacing, core, relative = w.config, w.spacing, w.core, w.relative
    pixel_area = spacing[0] * spacing[1]
    band_pixels = core & (relative < config.clear_relative)
    groups, group_count = ndimage.label(band_pixels)
    areas = np.bincount(groups.ravel(), minlength=group_count + 1) * pixel_area
    band_ok = areas >= config.min_area_mm2
    band_ok[0] = False
    band = band_ok[groups]
    barrier = ndimage.binary_dilation(band, structure=w.closing)
    regions, region_count = ndimage.label(core & ~barrier)
    if region_count == 0:
        return
    index = np.arange(region_count + 1)
    sizes = np.bincount(regions.ravel(), minlength=region_count + 1).astype(np.float64)
    sizes[0] = 0.0
    if w.anterior is None:
        main = int(np.argmax(sizes))
    else:
        rows, cols = np.indices(core.shape)
        cy = ndimage.sum_labels(rows * spacing[0], regions, index) / np.maximum(sizes, 1)
        cx = ndimage.sum_labels(cols * spacing[1], regions, index) / np.maximum(sizes, 1)
        large = sizes >= config.main_region_fraction * sizes.max()
        forward = cy * w.anterior[0] + cx * w.anterior[1]
        main = int(np.argmin(np.where(large, forward, np.inf)))
    others = (index != main) & (index > 0) & (sizes * pixel_area >= config.min_area_mm2)
    if not others.any():
        return  # the band cuts nothing off: no side of it to tell oedema by
    blobs, blob_count = ndimage.label(w.interiors)
    fb = group_features(blobs, relative, blob_count, spacing, config.dark_percentile)
    dropped = np.zeros(blob_count + 1, dtype=bool)
    for blob in range(1, blob_count + 1):
        pixels = blobs == blob
        own = pixels & ~band
        if not own.any():
            continue  # all of it clearly dark
        in_main = float((regions[own] == main).mean())
        pale = float(np.median(relative[pixels])) >= config.clear_relative
        if pale and in_main >= 0.5:
            dropped[blob] = True
    if not dropped.any():
        return
    kept = (blobs > 0) & ~dropped[blobs]
    lesion = kept.copy()
    if lesion.any():
        near = ndimage.binary_dilation(
            lesion, structure=_disk(_radius_px(config.margin_mm, spacing))
        )
        lesion |= w.dark & near
    w.lesion, w.interiors = lesion, kept
    kept_ids = np.flatnonzero(~dropped[1:]) + 1
    w.levels = [float(fb.darkest[b]) for b in kept_ids]


def _thin_lines(w: SectionWork) -> None:
    """Step 6. Thin dark lines: the reactive band around a fat-like interior, or a
    physeal scar. Pieces closer than ``closing_mm`` form one line. A line is never
    necrosis by itself, only as the border of a region it cuts off
    (:func:`_cut_off_regions`). Sets ``labels``, ``count``, ``features``, ``line_ok``,
    ``lines``."""
    config = w.config
    thin = w.dark & ~w.lesion
    groups, w.count = ndimage.label(ndimage.binary_dilation(thin, structure=w.closing))
    w.labels = np.where(thin, groups, 0).astype(np.int32)
    w.features = f = group_features(
        w.labels, w.relative, w.count, w.spacing, config.dark_percentile
    )
    line_ok = (f.darkest < config.seed_relative) & (f.area_mm2 >= config.min_area_mm2)
    line_ok[0] = False
    w.line_ok = line_ok
    w.lines = line_ok[w.labels]


def _subchondral_step(w: SectionWork) -> None:
    """Step 6b. Subchondral patches: the deep part of a shallow lesion under the surface
    joins ``lesion`` (and leaves ``lines``)."""
    if w.anterior is None or not w.count or w.features is None:
        return
    patch = subchondral_patches(
        w.labels,
        w.count,
        w.features,
        w.line_ok,
        w.core,
        w.head,
        w.spacing,
        w.anterior,
        w.config,
    )
    if patch.any():
        w.lesion = w.lesion | patch[w.labels]
        w.lines = w.lines & ~patch[w.labels]
        w.levels += [float(v) for v in w.features.darkest[patch]]


def _cut_off_regions(w: SectionWork) -> None:
    """Step 6, regions. Regions of the core cut off by lesions and lines. The viable
    marrow is the most posterior large region (the largest when the anterior direction
    is unknown); a region cut off from it towards the front (ONFH is anterosuperior) is
    necrosis, a region cut off sideways (a scar at the old physis) is not. The barrier
    is thickened by ``closing_mm`` so a gap at a line's end does not join two regions.
    Faint stretches of a band (dark, but not dark enough on their own) that connect to
    an accepted lesion or line complete the barrier (hysteresis). Sets ``necrosis`` and
    ``candidate`` (structures a series may count, step 10); settles a section without
    necrosis."""
    config, spacing, core, dark, anterior = w.config, w.spacing, w.core, w.dark, w.anterior
    assert w.features is not None
    f, labels, lines, closing = w.features, w.labels, w.lines, w.closing
    shape = w.head.shape
    pixel_area = spacing[0] * spacing[1]
    reach, reach_count = ndimage.label(ndimage.binary_dilation(dark, structure=closing))
    connected = np.zeros(reach_count + 1, dtype=bool)
    connected[reach[w.lesion | lines]] = True
    connected[0] = False
    support = dark & connected[reach]
    barrier = ndimage.binary_dilation(support, structure=closing)
    regions, region_count = ndimage.label(core & ~barrier)
    necrotic_region = np.zeros(region_count + 1, dtype=bool)
    sideways_region = np.zeros(region_count + 1, dtype=bool)
    if region_count > 1:
        index = np.arange(region_count + 1)
        sizes = np.bincount(regions.ravel(), minlength=region_count + 1).astype(np.float64)
        sizes[0] = 0.0
        rows, cols = np.indices(shape)
        cy = ndimage.sum_labels(rows * spacing[0], regions, index) / np.maximum(sizes, 1)
        cx = ndimage.sum_labels(cols * spacing[1], regions, index) / np.maximum(sizes, 1)
        large = sizes >= config.main_region_fraction * sizes.max()
        if anterior is None:
            main = int(np.argmax(sizes))
        else:
            forward = cy * anterior[0] + cx * anterior[1]
            main = int(np.argmin(np.where(large, forward, np.inf)))
        if anterior is None:
            towards_front = np.ones(region_count + 1, dtype=bool)
        else:
            # seen from the viable marrow, or from the centre of the head (a scar that
            # also splits the viable marrow moves the latter's centroid sideways)
            limit = math.cos(math.radians(config.max_angle_deg))
            head_rows, head_cols = np.nonzero(core)
            towards_front = np.zeros(region_count + 1, dtype=bool)
            for oy, ox in (
                (cy[main], cx[main]),
                (head_rows.mean() * spacing[0], head_cols.mean() * spacing[1]),
            ):
                dy, dx = cy - oy, cx - ox
                cosine = (dy * anterior[0] + dx * anterior[1]) / np.maximum(np.hypot(dy, dx), 1e-9)
                towards_front |= cosine >= limit
        cut_off = (sizes * pixel_area >= config.min_area_mm2) & (index != main)
        necrotic_region = towards_front & cut_off
        necrotic_region[0] = False
        sideways_region = cut_off & ~towards_front
        sideways_region[0] = False

    enclosed = necrotic_region[regions]
    necrosis = w.lesion.copy()
    if enclosed.any() or sideways_region.any():
        # the zone the thickening took goes to the nearest region; the lines that border
        # a necrotic region are part of the lesion (its reactive band)
        _, (near_r, near_c) = ndimage.distance_transform_edt(regions == 0, return_indices=True)
        zone = core & barrier & ~support
        nearest = regions[near_r, near_c]
        margin = _disk(_radius_px(config.margin_mm, spacing))
    if enclosed.any():
        necrosis |= enclosed | (zone & necrotic_region[nearest])
        border = support & ndimage.binary_dilation(enclosed, structure=margin)
        necrosis |= border
        border_ids = np.unique(labels[border & lines])
        w.levels += [float(v) for v in f.darkest[border_ids[border_ids > 0]]]
    # Not necrosis on this slice alone, but a series may count it where it lies inside
    # the lesion of the neighbouring slice (step 10, ``series_rules.support_lesions``):
    # regions cut off sideways with the lines that border them, and the lines themselves.
    # Only structures as dark as a reactive band (below ``surface_line_relative``; a
    # physeal scar is at ~30 %) are candidates.
    band_dark = w.line_ok & (f.darkest < config.surface_line_relative)
    band_dark[0] = False
    candidate = lines & band_dark[labels]
    for region in np.flatnonzero(sideways_region):
        aside = regions == region
        border = support & ndimage.binary_dilation(aside, structure=margin)
        if band_dark[labels[border & lines]].any():
            candidate |= aside | (zone & (nearest == region)) | border
    w.necrosis, w.candidate = necrosis, candidate
    if not necrosis.any():
        reason = f"no necrotic region (nothing below {100 * config.seed_relative:.0f} % of "
        reason += "the marrow signal that is thick or cuts off a region towards the front)"
        w.result = w.settled(reason, candidate=candidate & core)


def _ring_check(w: SectionWork) -> None:
    """Step 7. "Necrosis" around marrow-bright tissue is the joint: settled, flagged
    ``not_counted``."""
    if _is_ring(w.necrosis, w.core, w.relative, w.config):
        w.result = w.settled(
            "a dark ring around the marrow, not counted",
            flags=(
                Flag.NOT_COUNTED.note(
                    "a dark ring surrounds the head's marrow: the head mask probably takes "
                    "in the joint (cartilage, acetabulum); not counted as necrosis"
                ),
            ),
        )


def _clean_up(w: SectionWork) -> None:
    """Step 8. Holes filled, the rim over a lesion joins it; settles the section."""
    config, core, head = w.config, w.core, w.head
    necrosis = fill_holes(w.necrosis) & core
    # The rim (cortex) over a lesion is part of it: each rim pixel takes the label of
    # its nearest core pixel (a radial projection, so necrosis does not creep sideways).
    rim = head & ~core
    if rim.any():
        _, (near_r, near_c) = ndimage.distance_transform_edt(
            ~core, sampling=w.spacing, return_indices=True
        )
        necrosis = necrosis | (rim & necrosis[near_r, near_c])
    dark_part = necrosis & w.dark
    contrast = float(1.0 - w.relative[dark_part].mean()) if dark_part.any() else 0.0
    darkest = min(w.levels) if w.levels else 1.0
    ambiguous = darkest >= config.clear_relative
    reason = (
        f"darkest necrotic signal {100 * darkest:.0f} % of the marrow "
        f"(clearly necrotic below {100 * config.clear_relative:.0f} %), "
        f"contrast {contrast:.2f}, Otsu separation {w.separation:.2f}"
    )
    w.result = NecrosisResult(
        mask=necrosis,
        threshold=w.rel_t * w.ref,
        relative_threshold=w.rel_t,
        reference=w.ref,
        otsu_relative=w.otsu_rel,
        contrast=contrast,
        otsu_separation=w.separation,
        bimodal=not ambiguous,
        ambiguous=ambiguous,
        reason=reason,
        candidate=w.candidate & core & ~necrosis,
    )


@dataclass(frozen=True)
class SectionStep:
    """One named step of the threshold on a head section (``docs/grading.md`` numbers)."""

    step: str
    name: str
    run: Callable[[SectionWork], None]


SECTION_STEPS: tuple[SectionStep, ...] = (
    SectionStep("1-4", "reference_and_threshold", _reference_and_threshold),
    SectionStep("5", "thick_regions", _thick_regions),
    SectionStep("5b", "oedema_not_interior", _oedema_not_interior),
    SectionStep("6", "thin_lines", _thin_lines),
    SectionStep("6b", "subchondral_patches", _subchondral_step),
    SectionStep("6", "cut_off_regions", _cut_off_regions),
    SectionStep("7", "ring_check", _ring_check),
    SectionStep("8", "clean_up", _clean_up),
)
"""Steps 1-8 in the order they run; each may settle the section (``SectionWork.result``)."""


def _band_partition(w: SectionWork) -> None:
    """Step 6c, coronal and sagittal sections: the necrotic segment is what the reactive
    band cuts off towards the lesion's side (``w.anterior``: superior on a coronal slice,
    anterosuperior on a sagittal one); marrow oedema, a milder drop on the viable side
    of the band, is not necrosis.

    The band: core pixels below ``clear_relative`` (the level the reactive band and a
    necrotic interior reach, oedema does not), in groups of at least ``min_area_mm2``.
    It splits the core into regions; the viable marrow is the large region furthest
    against the lesion's direction (towards the neck). Necrosis is every other region of
    at least ``min_area_mm2`` lying within 90 degrees of the lesion's direction from the
    viable marrow (a lesion may sit medially or laterally under the roof), whatever its
    signal (fat-like or low), with the band groups that border it, and band groups in the
    lesion's half of the head (the band of a lesion whose segment the head mask leaves
    out). Without a known direction the largest region is viable. Sets ``necrosis``,
    ``levels`` and ``candidate`` (none); settles a section without necrosis."""
    config, spacing, core, relative = w.config, w.spacing, w.core, w.relative
    shape = w.head.shape
    pixel_area = spacing[0] * spacing[1]
    band_pixels = core & (relative < config.clear_relative)
    groups, group_count = ndimage.label(band_pixels)
    areas = np.bincount(groups.ravel(), minlength=group_count + 1) * pixel_area
    darkest = group_features(groups, relative, group_count, spacing, config.dark_percentile)
    band_ok = areas >= config.min_area_mm2
    band_ok[0] = False
    band = band_ok[groups]
    w.candidate = np.zeros(shape, dtype=bool)
    if not band.any():
        reason = f"no band or necrotic interior below {100 * config.clear_relative:.0f} % "
        reason += "of the marrow signal"
        w.result = w.settled(reason)
        return
    barrier = ndimage.binary_dilation(band, structure=w.closing)
    regions, region_count = ndimage.label(core & ~barrier)
    index = np.arange(region_count + 1)
    sizes = np.bincount(regions.ravel(), minlength=region_count + 1).astype(np.float64)
    sizes[0] = 0.0
    rows, cols = np.indices(shape)
    cy = ndimage.sum_labels(rows * spacing[0], regions, index) / np.maximum(sizes, 1)
    cx = ndimage.sum_labels(cols * spacing[1], regions, index) / np.maximum(sizes, 1)
    direction = w.anterior
    head_rows, head_cols = np.nonzero(core)
    centre = (head_rows.mean() * spacing[0], head_cols.mean() * spacing[1])
    limit = math.cos(math.radians(config.band_max_angle_deg))

    def on_lesion_side(
        y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.bool_]:
        if direction is None:
            return np.ones(y.shape, dtype=bool)
        dy, dx = y - centre[0], x - centre[1]
        cosine = (dy * direction[0] + dx * direction[1]) / np.maximum(np.hypot(dy, dx), 1e-9)
        return np.asarray(cosine >= limit, dtype=bool)

    necrotic_region = np.zeros(region_count + 1, dtype=bool)
    if region_count >= 1:
        large = sizes >= config.band_main_fraction * sizes.max()
        if direction is None:
            main = int(np.argmax(sizes))
        else:
            forward = cy * direction[0] + cx * direction[1]
            main = int(np.argmin(np.where(large, forward, np.inf)))
        necrotic_region = on_lesion_side(cy, cx) & (sizes * pixel_area >= config.min_area_mm2)
        necrotic_region[main] = False
        necrotic_region[0] = False
    enclosed = necrotic_region[regions]
    # band groups: those bordering a necrotic region, or on the lesion's side of the head
    group_index = np.arange(group_count + 1)
    n = np.maximum(np.bincount(groups.ravel(), minlength=group_count + 1), 1)
    gy = ndimage.sum_labels(rows * spacing[0], groups, group_index) / n
    gx = ndimage.sum_labels(cols * spacing[1], groups, group_index) / n
    counted = on_lesion_side(gy, gx)
    if enclosed.any():
        margin = _disk(_radius_px(config.margin_mm, spacing))
        near = band & ndimage.binary_dilation(enclosed, structure=margin)
        counted[np.unique(groups[near])] = True
    counted &= band_ok
    necrosis = counted[groups] | enclosed
    if enclosed.any():
        # the zone the barrier's thickening took goes to the nearest region
        _, (near_r, near_c) = ndimage.distance_transform_edt(regions == 0, return_indices=True)
        zone = core & barrier & ~band
        necrosis |= zone & necrotic_region[regions[near_r, near_c]]
    w.necrosis = necrosis
    w.levels = [float(v) for v in darkest.darkest[np.flatnonzero(counted)]]
    if not necrosis.any():
        reason = "no region cut off by a band towards the lesion's side, no band there"
        w.result = w.settled(reason)


OUT_OF_AXIAL_STEPS: tuple[SectionStep, ...] = (
    SECTION_STEPS[0],
    SectionStep("6c", "band_partition", _band_partition),
    *(step for step in SECTION_STEPS if step.step in ("7", "8")),
)
"""The steps on a coronal or sagittal section: step 6c in place of steps 5-6b."""


def _find_necrosis(
    pixels: FloatImage,
    head: BoolImage,
    spacing: tuple[float, float],
    reference: float | None,
    anterior: tuple[float, float] | None,
    config: NecrosisConfig,
    plane: str = "axial",
) -> NecrosisResult:
    work = SectionWork(pixels, head, spacing, reference, anterior, config)
    steps = OUT_OF_AXIAL_STEPS if plane in ("coronal", "sagittal") else SECTION_STEPS
    for step in steps:
        step.run(work)
        if work.result is not None:
            return work.result
    raise AssertionError("the last step settles every section")  # pragma: no cover


def _is_ring(
    necrosis: BoolImage, core: BoolImage, relative: FloatImage, config: NecrosisConfig
) -> bool:
    """Whether ``necrosis`` (before its holes are filled) encircles bright viable marrow.

    ONFH grows from the subchondral surface: the viable marrow of a section reaches the
    head's edge somewhere. "Necrosis" all around the core's edge that encloses a region
    as bright as marrow (at least ``ring_min_viable`` of the core, median at least
    ``ring_bright``) is the dark joint (cartilage, joint line, acetabulum) or a thick
    cortex inside a head mask that is too big, typically at a pole. A section that lies
    wholly in a lesion has no such bright centre (a mixed interior's patches are darker).
    """
    holes = (fill_holes(necrosis) & core) & ~necrosis
    if int(holes.sum()) < config.ring_min_viable * int(core.sum()):
        return False
    if float(np.median(relative[holes])) < config.ring_bright:
        return False
    edge = core & ~ndimage.binary_erosion(np.pad(core, 1))[1:-1, 1:-1]
    covered = float((necrosis & edge).sum()) / max(int(edge.sum()), 1)
    return covered >= config.ring_edge_share


def anterior_in_image(
    orientation: tuple[float, float, float, float, float, float] | None,
) -> tuple[float, float] | None:
    """The patient's anterior direction (LPS -y) as a unit (row, column) vector in the
    image, from ImageOrientationPatient; None for None or an image with no anterior
    component in-plane (e.g. coronal)."""
    if orientation is None:
        return None
    row_y, col_y = float(orientation[1]), float(orientation[4])
    # moving one column goes row_y along +y (posterior); one row goes col_y
    vector = (-col_y, -row_y)
    length = math.hypot(*vector)
    if length < 0.5:
        return None
    return (vector[0] / length, vector[1] / length)


def lesion_direction_in_image(
    orientation: tuple[float, float, float, float, float, float] | None,
) -> tuple[float, float] | None:
    """Where ONFH lies in the image: the patient's anterosuperior direction (LPS
    ``(0, -1, 1) / sqrt(2)``) projected into the slice plane, as a unit (row, column)
    vector, from ImageOrientationPatient; None for None or a plane with too little of it
    in-plane.

    On an axial slice this is the anterior direction (:func:`anterior_in_image`: the
    superior part is out of plane), on a coronal slice superior (under the acetabular
    roof; the anterior part is out of plane), on a sagittal slice anterosuperior. Steps 6
    and 6b use it as the direction a cut-off region or a subchondral patch must lie in.
    """
    if orientation is None:
        return None
    row_cosines, column_cosines = orientation[:3], orientation[3:]
    # anterosuperior: -y + z (unnormalised; the projection is normalised below)
    along_column = -float(row_cosines[1]) + float(row_cosines[2])
    along_row = -float(column_cosines[1]) + float(column_cosines[2])
    length = math.hypot(along_row, along_column)
    if length < 0.5 * math.sqrt(2.0):
        return None
    return (along_row / length, along_column / length)
