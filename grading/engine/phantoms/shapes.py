"""Pixel grids, smooth noise, signed-distance helpers and the canvas the painters draw on."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from grading.engine.phantoms.anatomy import SIDES, Hip, HipSide, Pelvis

# float fields in mm or signal units (float32 in practice; numpy promotes freely)
Field = npt.NDArray[np.floating[Any]]
Window = tuple[slice, slice]
ScalarT = TypeVar("ScalarT", bound=np.generic)


@dataclass(frozen=True)
class PlaneGrid:
    """Pixel centres of an ``(H, W)`` plane in model coordinates (mm).

    Pixel ``(r, c)`` lies at ``origin + r * row_step + c * col_step`` in the
    ``(u, v)`` plane, at height ``w``.
    """

    shape: tuple[int, int]
    origin: tuple[float, float]
    row_step: tuple[float, float]
    col_step: tuple[float, float]
    w: float

    def at(self, w: float) -> PlaneGrid:
        return PlaneGrid(self.shape, self.origin, self.row_step, self.col_step, w)

    def window(self, u0: float, u1: float, v0: float, v1: float) -> Window | None:
        """Pixel window covering the model box ``[u0, u1] x [v0, v1]``; None when outside."""
        # plain floats: this runs for every structure on every plane
        (a, c), (b, d) = self.row_step, self.col_step  # [u, v] = [[a, b], [c, d]] @ [r, col]
        det = a * d - b * c
        rows, cols = [], []
        for u in (u0 - self.origin[0], u1 - self.origin[0]):
            for v in (v0 - self.origin[1], v1 - self.origin[1]):
                rows.append((d * u - b * v) / det)
                cols.append((-c * u + a * v) / det)
        r0 = max(math.floor(min(rows)), 0)
        r1 = min(math.ceil(max(rows)) + 1, self.shape[0])
        c0 = max(math.floor(min(cols)), 0)
        c1 = min(math.ceil(max(cols)) + 1, self.shape[1])
        if r0 >= r1 or c0 >= c1:
            return None
        return (slice(r0, r1), slice(c0, c1))

    def coords(self, win: Window) -> tuple[Field, Field]:
        """``(u, v)`` of the window's pixel centres, each ``(h, w)`` float32, mm."""
        r = np.arange(win[0].start, win[0].stop, dtype=np.float32)[:, None]
        c = np.arange(win[1].start, win[1].stop, dtype=np.float32)[None, :]
        u = self.origin[0] + r * self.row_step[0] + c * self.col_step[0]
        v = self.origin[1] + r * self.row_step[1] + c * self.col_step[1]
        return u.astype(np.float32), v.astype(np.float32)

    @property
    def pixel_mm(self) -> float:
        return float(np.hypot(*self.col_step))


@functools.lru_cache(maxsize=256)
def _linear_taps(n_out: int, n_in: int) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], Field]:
    """Source indices and weights of a 1-D linear resize, pixel edges aligned. Cached."""
    pos = (np.arange(n_out, dtype=np.float32) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1.0)
    lo = np.minimum(np.floor(pos).astype(np.intp), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (pos - lo).astype(np.float32)
    for a in (lo, hi, frac):
        a.flags.writeable = False
    return lo, hi, frac


def resize_linear(image: Field, shape: tuple[int, int]) -> Field:
    """Bilinear resize of ``(h, w)`` to ``shape`` (separable gathers; no BLAS threads)."""
    lo, hi, f = _linear_taps(shape[0], image.shape[0])
    img = np.asarray(image, np.float32)
    rows = img[lo] * (1.0 - f)[:, None] + img[hi] * f[:, None]
    lo, hi, f = _linear_taps(shape[1], image.shape[1])
    return np.asarray(rows[:, lo] * (1.0 - f) + rows[:, hi] * f, dtype=np.float32)


def resize_nearest(labels: npt.NDArray[ScalarT], shape: tuple[int, int]) -> npt.NDArray[ScalarT]:
    """Nearest-neighbour resize of a label map to ``shape`` (pixel edges aligned)."""
    r = np.minimum(
        ((np.arange(shape[0]) + 0.5) * labels.shape[0] / shape[0]).astype(int), labels.shape[0] - 1
    )
    c = np.minimum(
        ((np.arange(shape[1]) + 0.5) * labels.shape[1] / shape[1]).astype(int), labels.shape[1] - 1
    )
    return labels[np.ix_(r, c)]


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> Field:
    """Zero-mean, unit-ish smooth noise of ``shape`` with about ``cells`` pixels per feature."""
    low = (max(int(shape[0] / cells) + 3, 3), max(int(shape[1] / cells) + 3, 3))
    coarse = rng.standard_normal(low, dtype=np.float32)
    return resize_linear(coarse, shape)


def smin(a: Field, b: Field, k: float) -> Field:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def capsule(
    x: Field,
    y: Field,
    z: float,
    a: tuple[float, float, float],
    b: tuple[float, float, float],
    ra: float,
    rb: float,
) -> Field:
    ab = np.subtract(b, a)
    t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / float(ab @ ab)
    t = np.clip(t, 0.0, 1.0)
    dx = x - (a[0] + t * ab[0])
    dy = y - (a[1] + t * ab[1])
    dz = z - (a[2] + t * ab[2])
    out: Field = np.sqrt(dx * dx + dy * dy + dz * dz) - (ra + (rb - ra) * t)
    return out


def ellipsoid(
    x: Field, y: Field, z: float, c: tuple[float, float, float], r: tuple[float, float, float]
) -> Field:
    px, py, pz = (x - c[0]) / r[0], (y - c[1]) / r[1], (z - c[2]) / r[2]
    k0 = np.sqrt(px * px + py * py + pz * pz)
    k1 = np.sqrt((px / r[0]) ** 2 + (py / r[1]) ** 2 + (pz / r[2]) ** 2) + 1e-6
    return k0 * (k0 - 1.0) / k1


def ellipse2(
    x: Field, y: Field, c: tuple[float, float], a: float, b: float, angle: float = 0.0
) -> Field:
    """Approximate signed distance to a rotated ellipse (semi-axes a along ``angle``, b)."""
    ca, sa = np.cos(angle), np.sin(angle)
    dx, dy = x - c[0], y - c[1]
    s = (dx * ca + dy * sa) / a
    t = (-dx * sa + dy * ca) / b
    k0 = np.sqrt(s * s + t * t)
    k1 = np.sqrt((s / a) ** 2 + (t / b) ** 2) + 1e-6
    out: Field = k0 * (k0 - 1.0) / k1
    return out


class Canvas:
    """The plane being drawn: signal, labels and smooth textures, shared by the painters."""

    def __init__(self, pelvis: Pelvis, grid: PlaneGrid, rng: np.random.Generator) -> None:
        self.p = pelvis
        self.grid = grid
        self.img = np.zeros(grid.shape, np.float32)
        self.lab = np.zeros(grid.shape, np.uint8)
        self.tissue = np.zeros(grid.shape, np.uint8)
        """``(H, W)`` :class:`~.tissues.TissueClass` codes, written beside every signal."""
        px = max(grid.pixel_mm, 1e-3)
        self.tex_lo = smooth_noise(rng, grid.shape, 14.0 / px)
        self.tex_lo2 = smooth_noise(rng, grid.shape, 14.0 / px)
        self.tex_hi = smooth_noise(rng, grid.shape, max(2.5 / px, 1.5))
        self.head_px: dict[HipSide, int] = {s: 0 for s in SIDES}
        self.necrosis_px: dict[HipSide, int] = {s: 0 for s in SIDES}

    def local_window(
        self, hip: Hip, x0: float, x1: float, y0: float, y1: float
    ) -> tuple[Window, Field, Field, float] | None:
        """Window and hip-local ``(x, y)`` of the hip-local box ``[x0, x1] x [y0, y1]``."""
        cu, cv, cw = hip.center
        us = (cu + hip.sign * x0, cu + hip.sign * x1)
        win = self.grid.window(min(us), max(us), cv + y0, cv + y1)
        if win is None:
            return None
        u, v = self.grid.coords(win)
        return win, hip.sign * (u - cu), v - cv, float(self.grid.w - cw)
