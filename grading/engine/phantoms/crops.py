"""Fast batches of training windows around a hip, resampled to a square network input."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from grading.engine.phantoms.acquisition import acquire, bias_field, sample_acquisition
from grading.engine.phantoms.anatomy import SIDES, HipSide
from grading.engine.phantoms.render import render_plane
from grading.engine.phantoms.series import (
    _new_pelvis,
    fit_threshold,
    fit_threshold_volume,
    window_grid,
)
from grading.engine.phantoms.shapes import resize_linear, resize_nearest

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]


def make_training_crops(
    n: int, seed: int, size: int = 256, *, no_head_share: float = 0.18
) -> tuple[F32, U8]:
    """``n`` windows around a hip, each resampled to ``size`` x ``size``.

    Returns ``(images (n, size, size) float32 stored values, labels (n, size, size)
    uint8)``. Windows range from a tight paper-style crop (the head about half the
    window) to a whole half of a bilateral slice (split near the midline, taller
    than wide, so squashed to square as a half-slice would be), at random offsets,
    native pixel spacing 0.6-1.6 mm, all scanner effects; ``no_head_share`` of
    them come from slices above or below the femoral head (no head label).
    Lesion size follows the 3-D model (per-slice proportions vary) for half of
    the hips and is set on the slice itself for the other half.
    """
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size), np.float32)
    labels = np.empty((n, size, size), np.uint8)
    for i in range(n):
        images[i], labels[i] = _one_window(rng, size, no_head_share)
    return images, labels


def _one_window(rng: np.random.Generator, size: int, no_head_share: float) -> tuple[F32, U8]:
    side: HipSide = SIDES[int(rng.integers(2))]
    pelvis = _new_pelvis(rng, None, None, None)
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

    native = float(rng.uniform(0.6, 1.6))
    sp = (max(native, h_mm / size), max(native, w_mm / size))
    shape = (max(int(round(h_mm / sp[0])), 8), max(int(round(w_mm / sp[1])), 8))
    grid = window_grid(
        (float(centre[0]), float(centre[1])), shape, sp, theta, float(hip.center[2] + level)
    )
    for s in SIDES:
        if rng.uniform() < 0.5:
            fit_threshold_volume(pelvis.hips[s])
        else:
            fit_threshold(pelvis.hips[s], [grid])
    acq = sample_acquisition(rng)
    signal, lab, _, _ = render_plane(pelvis, grid, rng)
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
    return image[:size, :size], lab[:size, :size]
