"""Single-hip windows: paper-style crops with truth, and fast batches for training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import grade_from_proportion, proportion_of
from grading.engine.phantoms.acquisition import (
    Acquisition,
    acquire,
    bias_field,
    sample_acquisition,
)
from grading.engine.phantoms.anatomy import (
    SIDES,
    HipSide,
    Mimic,
    Necrosis,
    NecrosisPattern,
    Pelvis,
    sample_necrosis,
)
from grading.engine.phantoms.geometry import (
    NecrosisRequest,
    fit_threshold,
    fit_threshold_volume,
    new_pelvis,
    window_grid,
)
from grading.engine.phantoms.render import head_window, render_plane, render_plane_tissue
from grading.engine.phantoms.shapes import PlaneGrid, resize_linear, resize_nearest
from grading.engine.types import Grade

F32 = npt.NDArray[np.float32]
WINDOWS_PER_SUBJECT = 4
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class PhantomCrop:
    """A single-hip window, as in the paper's 256 x 256 crops.

    ``image``: ``(size, size)`` float32 stored values; ``labels``: ``(size, size)`` uint8.
    ``proportion``/``grade``: of this crop's own label map (area ratio).
    ``level_mm``: slice height relative to the head centre (+ superior).
    """

    image: F32
    labels: U8
    pixel_spacing_mm: tuple[float, float]
    side: HipSide
    proportion: float
    grade: Grade
    has_head: bool
    level_mm: float
    pattern: NecrosisPattern
    mimic: Mimic | None
    seed: int
    acquisition: Acquisition


def make_hip_crop(
    seed: int,
    *,
    size: int = 256,
    side: HipSide | None = None,
    level_mm: float | None = None,
    necrosis: NecrosisRequest = None,
    pattern: NecrosisPattern | None = None,
    mimic: Mimic | Literal["random"] | None = "random",
    pixel_spacing_mm: float | None = None,
    snr: float | None = None,
    intensity_max: int | None = None,
) -> PhantomCrop:
    """A ``size`` x ``size`` window around one hip of an axial slice, as in the paper.

    ``level_mm``: slice height relative to the head centre (+ superior); random
    within the head when None (pass e.g. ``radius + 10`` for a slice above it).
    ``necrosis``: target proportion *of this crop's head area*, a grade name, or
    None for a random grade. ``pattern``: "homogeneous", "fat_like" or "mixed"
    (random when None). ``mimic``: "physeal_scar", "oedema", None (none) or
    "random" (sometimes one); mimics are labelled viable head.
    ``pixel_spacing_mm``: 0.45-0.8 mm when None (a 256-pixel window of
    115-205 mm, the head about a third to half of it). ``snr`` and
    ``intensity_max`` as in :func:`~.series.make_bilateral_series`.
    """
    rng = np.random.default_rng(seed)
    chosen_side: HipSide = side if side is not None else SIDES[int(rng.integers(2))]
    mimics: dict[str, Mimic | None] | None = None if mimic == "random" else {chosen_side: mimic}
    pelvis = new_pelvis(
        rng, {chosen_side: necrosis}, {chosen_side: pattern} if pattern else None, mimics
    )
    hip = pelvis.hips[chosen_side]
    if level_mm is None:
        level_mm = float(rng.uniform(-0.85, 0.9) * hip.radius)
    sp = float(pixel_spacing_mm if pixel_spacing_mm is not None else rng.uniform(0.45, 0.8))
    theta = np.deg2rad(rng.uniform(-6, 6))
    offset = rng.uniform(-0.12, 0.12, 2) * size * sp
    centre = (float(hip.center[0] + hip.sign * 8.0 + offset[0]), float(hip.center[1] + offset[1]))
    grid = window_grid(centre, (size, size), (sp, sp), theta, float(hip.center[2] + level_mm))
    fit_threshold(hip, [grid])
    acq = sample_acquisition(rng, snr=snr, intensity_max=intensity_max)
    signal, lab, heads, necs = render_plane(pelvis, grid, rng)
    image = acquire(
        signal, acq, bias_field(acq, pelvis, grid), rng, marrow=pelvis.tissue.marrow_femur
    )
    prop = proportion_of(float(necs[chosen_side]), float(heads[chosen_side]))
    return PhantomCrop(
        image=image,
        labels=lab,
        pixel_spacing_mm=(sp, sp),
        side=chosen_side,
        proportion=prop,
        grade=grade_from_proportion(prop),
        has_head=heads[chosen_side] > 0,
        level_mm=level_mm,
        pattern=hip.necrosis.pattern,
        mimic=hip.mimic,
        seed=seed,
        acquisition=acq,
    )


def make_training_crops(
    n: int, seed: int, size: int = 256, *, no_head_share: float = 0.15
) -> tuple[F32, U8]:
    """``n`` windows around a hip, each resampled to ``size`` x ``size``.

    Returns ``(images (n, size, size) float32 stored values, labels (n, size, size)
    uint8)``. Windows range from a tight paper-style crop (the head about half the
    window) to a whole half of a bilateral slice (split near the midline, taller
    than wide, so squashed to square as a half-slice would be), at random offsets,
    native pixel spacing 0.6-1.6 mm, all scanner effects; ``no_head_share`` of
    them come from slices above or below the femoral head (no head label; with
    the tiny caps at the head's poles about a fifth of all windows show no head).
    Every ``WINDOWS_PER_SUBJECT`` windows share a random subject; each window has
    its own side, level, field of view, lesion fit and acquisition.
    Lesion size follows the 3-D model (per-slice proportions vary) for half of
    the hips and is set on the slice itself for the other half.
    """
    images, labels, _ = make_training_crops_with_tissue(n, seed, size, no_head_share=no_head_share)
    return images, labels


def make_training_crops_with_tissue(
    n: int,
    seed: int,
    size: int = 256,
    *,
    no_head_share: float = 0.15,
    extreme_lesion_share: float = 0.0,
    midline_share: float = 0.0,
) -> tuple[F32, U8, U8]:
    """:func:`make_training_crops` with each window's tissue map.

    Returns ``(images (n, size, size) float32, labels (n, size, size) uint8, tissue
    (n, size, size) uint8 :class:`~.tissues.TissueClass` codes)``; with
    ``extreme_lesion_share`` 0 the images and labels are exactly those of
    :func:`make_training_crops`. ``extreme_lesion_share``: that share of the windows
    showing a head get, on that one window, a fresh lesion of a random pattern sized
    at the extremes a reader meets: a tiny subchondral one (0.3-3 % of the section's
    head) or one filling most of the section (60-92 %), drawn from a second random
    stream so the other windows stay as they are.
    """
    rng = np.random.default_rng(seed)
    extremes = np.random.default_rng([seed, 0xE7])
    images = np.empty((n, size, size), np.float32)
    labels = np.empty((n, size, size), np.uint8)
    tissue = np.empty((n, size, size), np.uint8)
    for start in range(0, n, WINDOWS_PER_SUBJECT):
        pelvis = new_pelvis(rng, None, None, None)
        for i in range(start, min(start + WINDOWS_PER_SUBJECT, n)):
            images[i], labels[i], tissue[i] = _one_window(
                rng, pelvis, size, no_head_share, extremes, extreme_lesion_share, midline_share
            )
    return images, labels, tissue


def _extreme_lesions(
    xrng: np.random.Generator, pelvis: Pelvis, grid: PlaneGrid, share: float
) -> dict[HipSide, Necrosis]:
    """Swap in tiny or near-total lesions fitted to ``grid``; returns the originals."""
    saved: dict[HipSide, Necrosis] = {}
    if share <= 0.0:
        return saved
    for s in SIDES:
        hip = pelvis.hips[s]
        if head_window(grid, hip) is None or xrng.uniform() >= share:
            continue
        target = (
            float(xrng.uniform(0.003, 0.03))
            if xrng.uniform() < 0.5
            else float(xrng.uniform(0.6, 0.92))
        )
        saved[s] = hip.necrosis
        hip.necrosis = sample_necrosis(xrng, hip.radius, target, None)
        fit_threshold(hip, [grid])
    return saved


def _one_window(
    rng: np.random.Generator,
    pelvis: Pelvis,
    size: int,
    no_head_share: float,
    xrng: np.random.Generator,
    extreme_share: float,
    midline_share: float = 0.0,
) -> tuple[F32, U8, U8]:
    side: HipSide = SIDES[int(rng.integers(2))]
    hip = pelvis.hips[side]
    r = hip.radius
    if rng.uniform() < no_head_share:
        level = float(
            rng.uniform(r + 0.5, r + 40.0)
            if rng.uniform() < 0.5
            else rng.uniform(-r - 55.0, -r - 0.5)
        )
    else:
        level = float(rng.uniform(-0.97, 0.97) * r)
    theta = float(np.deg2rad(rng.uniform(-7, 7)))

    t = float(rng.uniform() ** 1.5)  # 0 = tight crop, 1 = half of the slice
    tight_w = 4.0 * r * rng.uniform(0.85, 1.25)
    tight_h = tight_w * rng.uniform(0.85, 1.15)
    split = float(rng.uniform(-20, 20))
    half_w = pelvis.half_width + 15.0 - split
    half_h = pelvis.post - pelvis.ant + rng.uniform(10, 50)
    w_mm = tight_w + t * (half_w - tight_w)
    h_mm = tight_h + t * (half_h - tight_h)
    jitter = rng.uniform(-0.2, 0.2, 2) * np.array([w_mm, h_mm]) * (1.0 - t)
    tight_c = np.array([hip.center[0] + hip.sign * rng.uniform(0, 10), hip.center[1]]) + jitter
    half_c = np.array([hip.sign * (split + half_w / 2), 0.5 * (pelvis.ant + pelvis.post)])
    centre = tight_c + t * (half_c - tight_c)
    if midline_share > 0.0 and xrng.uniform() < midline_share:
        centre[0] = xrng.uniform(-0.6, 0.6) * pelvis.half_width

    native = float(rng.uniform(0.6, 1.6))
    sp = (max(native, h_mm / size), max(native, w_mm / size))
    shape = (max(int(round(h_mm / sp[0])), 8), max(int(round(w_mm / sp[1])), 8))
    grid = window_grid(
        (float(centre[0]), float(centre[1])), shape, sp, theta, float(hip.center[2] + level)
    )
    for s in SIDES:
        by_volume = rng.uniform() < 0.5
        if head_window(grid, pelvis.hips[s]) is None:
            continue  # that head is not on this window: its lesion is never drawn
        if by_volume:
            fit_threshold_volume(pelvis.hips[s])
        else:
            fit_threshold(pelvis.hips[s], [grid])
    saved = _extreme_lesions(xrng, pelvis, grid, extreme_share)
    acq = sample_acquisition(rng)
    cv = render_plane_tissue(pelvis, grid, rng)
    for s, original in saved.items():
        pelvis.hips[s].necrosis = original
    signal, lab, tis = cv.img, cv.lab, cv.tissue
    noise_scale = native / float(np.sqrt(sp[0] * sp[1]))
    image = acquire(
        signal,
        acq,
        bias_field(acq, pelvis, grid),
        rng,
        marrow=pelvis.tissue.marrow_femur,
        noise_scale=noise_scale,
    )
    if shape != (size, size):
        image = np.rint(resize_linear(image, (size, size)))
        lab = resize_nearest(lab, (size, size))
        tis = resize_nearest(tis, (size, size))
    return image[:size, :size], lab[:size, :size], tis[:size, :size]
