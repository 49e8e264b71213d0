"""Draw one axial plane of a :class:`~.anatomy.Pelvis`: T1 signal and the label map.

Shapes are implicit (signed distances in mm, negative inside) evaluated at pixel
centres, so any matrix, spacing, rotation or window renders the same anatomy.
Each structure is evaluated only on the pixel window its bounding box covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.phantoms.anatomy import SIDES, Hip, HipSide, Pelvis
from grading.engine.types import NECROSIS, VIABLE_HEAD

F32 = npt.NDArray[np.float32]
Window = tuple[slice, slice]


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
        m = np.array([[self.row_step[0], self.col_step[0]], [self.row_step[1], self.col_step[1]]])
        inv = np.linalg.inv(m)
        corners = np.array([[u0, v0], [u0, v1], [u1, v0], [u1, v1]]) - np.array(self.origin)
        rc = corners @ inv.T
        r0 = max(int(np.floor(rc[:, 0].min())), 0)
        r1 = min(int(np.ceil(rc[:, 0].max())) + 1, self.shape[0])
        c0 = max(int(np.floor(rc[:, 1].min())), 0)
        c1 = min(int(np.ceil(rc[:, 1].max())) + 1, self.shape[1])
        if r0 >= r1 or c0 >= c1:
            return None
        return (slice(r0, r1), slice(c0, c1))

    def coords(self, win: Window) -> tuple[F32, F32]:
        """``(u, v)`` of the window's pixel centres, each ``(h, w)`` float32, mm."""
        r = np.arange(win[0].start, win[0].stop, dtype=np.float32)[:, None]
        c = np.arange(win[1].start, win[1].stop, dtype=np.float32)[None, :]
        u = self.origin[0] + r * self.row_step[0] + c * self.col_step[0]
        v = self.origin[1] + r * self.row_step[1] + c * self.col_step[1]
        return u.astype(np.float32), v.astype(np.float32)

    @property
    def pixel_mm(self) -> float:
        return float(np.hypot(*self.col_step))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: float) -> F32:
    """Zero-mean, unit-ish smooth noise of ``shape`` with about ``cells`` pixels per feature."""
    low = (max(int(shape[0] / cells) + 3, 3), max(int(shape[1] / cells) + 3, 3))
    coarse = rng.standard_normal(low).astype(np.float32)
    out = ndimage.zoom(coarse, (shape[0] / low[0], shape[1] / low[1]), order=1, grid_mode=True,
                       mode="nearest")
    return out[: shape[0], : shape[1]]


def _smin(a: F32, b: F32, k: float) -> F32:
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _capsule(x: F32, y: F32, z: float, a: tuple[float, float, float],
             b: tuple[float, float, float], ra: float, rb: float) -> F32:
    ab = np.subtract(b, a)
    t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / float(ab @ ab)
    t = np.clip(t, 0.0, 1.0)
    dx = x - (a[0] + t * ab[0])
    dy = y - (a[1] + t * ab[1])
    dz = z - (a[2] + t * ab[2])
    return np.sqrt(dx * dx + dy * dy + dz * dz) - (ra + (rb - ra) * t)


def _ellipsoid(x: F32, y: F32, z: float, c: tuple[float, float, float],
               r: tuple[float, float, float]) -> F32:
    px, py, pz = (x - c[0]) / r[0], (y - c[1]) / r[1], (z - c[2]) / r[2]
    k0 = np.sqrt(px * px + py * py + pz * pz)
    k1 = np.sqrt((px / r[0]) ** 2 + (py / r[1]) ** 2 + (pz / r[2]) ** 2) + 1e-6
    return k0 * (k0 - 1.0) / k1


def _ellipse2(x: F32, y: F32, c: tuple[float, float], a: float, b: float,
              angle: float = 0.0) -> F32:
    """Approximate signed distance to a rotated ellipse (semi-axes a along ``angle``, b)."""
    ca, sa = np.cos(angle), np.sin(angle)
    dx, dy = x - c[0], y - c[1]
    s = (dx * ca + dy * sa) / a
    t = (-dx * sa + dy * ca) / b
    k0 = np.sqrt(s * s + t * t)
    k1 = np.sqrt((s / a) ** 2 + (t / b) ** 2) + 1e-6
    return k0 * (k0 - 1.0) / k1


class _Canvas:
    """The plane being drawn: signal, labels and smooth textures, shared by the painters."""

    def __init__(self, pelvis: Pelvis, grid: PlaneGrid, rng: np.random.Generator) -> None:
        self.p = pelvis
        self.grid = grid
        self.img = np.zeros(grid.shape, np.float32)
        self.lab = np.zeros(grid.shape, np.uint8)
        px = max(grid.pixel_mm, 1e-3)
        self.tex_lo = smooth_noise(rng, grid.shape, 14.0 / px)
        self.tex_hi = smooth_noise(rng, grid.shape, max(2.5 / px, 1.5))
        self.head_px: dict[HipSide, int] = {s: 0 for s in SIDES}
        self.necrosis_px: dict[HipSide, int] = {s: 0 for s in SIDES}

    def local_window(self, hip: Hip, x0: float, x1: float, y0: float, y1: float
                     ) -> tuple[Window, F32, F32, float] | None:
        """Window and hip-local ``(x, y)`` of the hip-local box ``[x0, x1] x [y0, y1]``."""
        cu, cv, cw = hip.center
        us = (cu + hip.sign * x0, cu + hip.sign * x1)
        win = self.grid.window(min(us), max(us), cv + y0, cv + y1)
        if win is None:
            return None
        u, v = self.grid.coords(win)
        return win, hip.sign * (u - cu), v - cv, float(self.grid.w - cw)


def render_plane(pelvis: Pelvis, grid: PlaneGrid, rng: np.random.Generator
                 ) -> tuple[F32, npt.NDArray[np.uint8], dict[HipSide, int], dict[HipSide, int]]:
    """T1 signal (relative to fat, before acquisition effects) and labels of one plane.

    Returns ``(signal (H, W) float32, labels (H, W) uint8, head pixels per side,
    necrosis pixels per side)``.
    """
    cv = _Canvas(pelvis, grid, rng)
    _paint_body(cv)
    _paint_pelvic_cavity(cv)
    _paint_sacrum(cv)
    for side in SIDES:
        hip = pelvis.hips[side]
        _paint_soft_tissue_of_hip(cv, hip)
        _paint_pelvic_bone(cv, hip)
        _paint_joint(cv, hip)
        _paint_femur(cv, hip)
    return cv.img, cv.lab, cv.head_px, cv.necrosis_px


# --- soft tissue -------------------------------------------------------------------------


def _outline_rho(p: Pelvis, u: F32, v: F32, w: float, inset: tuple[float, float, float]
                 ) -> F32:
    """Normalised superellipse radius of the body outline shrunk by (lateral, ant, post) mm."""
    taper = 1.0 - 0.0015 * max(w - 25.0, 0.0)
    hw = p.half_width * taper - inset[0]
    ant = p.ant + inset[1]
    post = p.post - inset[2]
    vc = 0.5 * (ant + post)
    hd = 0.5 * (post - ant)
    n = p.superellipse
    rho = (np.abs(u / hw) ** n + np.abs((v - vc) / hd) ** n) ** (1.0 / n)
    theta = np.arctan2(v - vc, u)
    wobble = np.zeros_like(rho)
    for harmonic, amp, phase in p.outline_waves:
        wobble += amp * np.cos(harmonic * theta + phase)
    return rho - wobble


def _paint_body(cv: _Canvas) -> None:
    p, t = cv.p, cv.p.tissue
    win = cv.grid.window(-p.half_width - 10, p.half_width + 10, p.ant - 10, p.post + 10)
    if win is None:
        return
    u, v = cv.grid.coords(win)
    w = cv.grid.w
    rho = _outline_rho(p, u, v, w, (0.0, 0.0, 0.0))
    inner = _outline_rho(p, u, v, w, (p.fat_lateral, p.fat_anterior, p.fat_posterior))
    img = cv.img[win]
    lo, hi = cv.tex_lo[win], cv.tex_hi[win]
    body = rho < 1.0
    img[body] = (t.fat * (1.0 + 0.03 * lo + 0.02 * hi))[body]
    skin = body & (rho > 1.0 - 1.5 / max(p.half_width, 1.0))
    img[skin] = t.skin
    muscle = inner < 1.0
    # intermuscular fat planes: spokes from each hip and arcs behind it
    planes = np.zeros_like(muscle)
    width = p.fat_plane_width * (1.0 + 0.5 * hi)
    for side in SIDES:
        hip = p.hips[side]
        x = hip.sign * (u - hip.center[0])
        y = v - hip.center[1]
        r = np.sqrt(x * x + y * y)
        for k, ang in enumerate(p.fat_plane_angles):
            wiggle = 3.0 * np.sin(r / 17.0 + k + hip.sign)
            along = x * np.cos(ang) + y * np.sin(ang)
            across = np.abs(-x * np.sin(ang) + y * np.cos(ang) + wiggle)
            planes |= (across < width) & (along > hip.radius + 14)
        arc = np.abs(np.sqrt((x / 1.25) ** 2 + y * y) - (hip.radius + 30)) < width
        planes |= arc & (y > 8)
    vc_front = p.cavity_center_v - p.cavity_half_depth
    planes |= (np.abs(u + 2.0 * lo) < width) & (v < vc_front)
    streaks = (cv.tex_hi[win] + 0.5 * lo) > 2.2 - 8.0 * p.muscle_fat_fraction
    muscle_signal = t.muscle * (1.0 + 0.06 * lo + 0.05 * hi)
    img[muscle] = muscle_signal[muscle]
    fatty = muscle & (planes | streaks)
    img[fatty] = (t.fat * (0.9 + 0.05 * hi))[fatty]


def _paint_pelvic_cavity(cv: _Canvas) -> None:
    p, t = cv.p, cv.p.tissue
    w = cv.grid.w
    hw = p.cavity_half_width + 0.35 * max(w, 0.0)
    hd = p.cavity_half_depth
    c = (0.0, p.cavity_center_v)
    win = cv.grid.window(-hw - 2, hw + 2, c[1] - hd - 2, c[1] + hd + 2)
    if win is None:
        return
    u, v = cv.grid.coords(win)
    img = cv.img[win]
    lo, hi = cv.tex_lo[win], cv.tex_hi[win]
    d = _ellipse2(u, v, c, hw, hd)
    cavity = d < 0
    img[cavity] = (t.fat * (0.95 + 0.03 * lo))[cavity]
    # obturator internus lines the side walls; levator ani below the acetabulum
    wall = cavity & (d > -9.0 - 2.0 * lo) & (np.abs(u) > 0.45 * hw)
    img[wall] = (t.muscle * (1.0 + 0.05 * lo))[wall]
    # bladder: dark urine in a thin wall, anterior midline
    bc, br = p.bladder_center, p.bladder_radii
    zz = (w - bc[2]) / br[2]
    if abs(zz) < 1.0:
        s = np.sqrt(1.0 - zz * zz)
        db = _ellipse2(u, v, (bc[0], bc[1]), br[0] * s, br[1] * s)
        bw = cavity & (db < 0)
        img[bw] = t.muscle * 0.95
        urine = cavity & (db < -2.0)
        img[urine] = (t.urine * (1.0 + 0.05 * lo))[urine]
    # rectum (wall, mixed content, a little gas) behind, midline organ between
    if -45.0 < w < 45.0:
        rc = (float(p.rectum_center[0]), float(p.rectum_center[1]))
        dr = _ellipse2(u, v, rc, p.rectum_radius * 1.1, p.rectum_radius)
        rwall = cavity & (dr < 0)
        img[rwall] = t.muscle
        lumen = cavity & (dr < -3.0)
        content = t.bowel * (1.0 + 0.25 * hi)
        content = np.where(hi > 1.4, 0.03, content)
        img[lumen] = content[lumen]
    if w < -12.0:
        mid_v = 0.5 * (p.bladder_center[1] + p.rectum_center[1])
        dm = _ellipse2(u, v, (0.0, mid_v), 17.0, 13.0)
        organ = cavity & (dm < 0)
        img[organ] = (0.4 * (1.0 + 0.06 * hi))[organ]


def _paint_sacrum(cv: _Canvas) -> None:
    p, t = cv.p, cv.p.tissue
    w = cv.grid.w
    if w < -28.0:
        return
    a = min(7.0 + 0.9 * (w + 28.0), 60.0)
    b = 8.0 + 0.1 * (w + 28.0)
    vc = p.sacrum_v + 0.3 * w
    win = cv.grid.window(-a - 3, a + 3, vc - b - 3, vc + b + 3)
    if win is None:
        return
    u, v = cv.grid.coords(win)
    d = _ellipse2(u, v, (0.0, vc), a, b)
    _paint_bone(cv, win, d, 1.6, t.marrow_pelvis)


def _paint_soft_tissue_of_hip(cv: _Canvas, hip: Hip) -> None:
    """Femoral neurovascular bundle in its fat triangle; sciatic nerve in its fat."""
    t = cv.p.tissue
    w = cv.grid.w - hip.center[2]
    r = hip.radius
    fx = -20.0 - 0.3 * max(w, 0.0)
    fy = -(r + 22.0)
    got = cv.local_window(hip, fx - 20, fx + 20, fy - 14, fy + 14)
    if got is not None:
        win, x, y, _ = got
        img = cv.img[win]
        tri = _ellipse2(x, y, (fx, fy), 15.0, 10.0) < 0
        img[tri] = t.fat * 0.95
        artery = _ellipse2(x, y, (fx + 5.0, fy), 3.6, 3.6) < 0
        vein = _ellipse2(x, y, (fx - 5.0, fy + 1.0), 5.0, 4.2) < 0
        img[artery] = t.vessel
        img[vein] = t.vessel * 2.0
    if -70.0 < w < 25.0:
        sx, sy = -6.0, r + 20.0
        got = cv.local_window(hip, sx - 12, sx + 12, sy - 10, sy + 10)
        if got is not None:
            win, x, y, _ = got
            img = cv.img[win]
            pad = _ellipse2(x, y, (sx, sy), 10.0, 7.0) < 0
            img[pad] = t.fat * 0.95
            nerve = _ellipse2(x, y, (sx, sy), 5.5, 3.5) < 0
            img[nerve] = t.nerve


# --- bones ---------------------------------------------------------------------------------


def _paint_bone(cv: _Canvas, win: Window, d: F32, cortex_mm: float | F32, marrow: float
                ) -> npt.NDArray[np.bool_]:
    """Cortex (``-cortex_mm < d < 0``) and textured marrow inside; returns the marrow mask."""
    img = cv.img[win]
    bone = d < 0
    inner = d < -cortex_mm
    img[bone] = cv.p.tissue.cortex
    tex = marrow * (1.0 + 0.06 * cv.tex_hi[win] + 0.04 * cv.tex_lo[win])
    img[inner] = tex[inner]
    return inner


def _pelvic_bone_sdf(hip: Hip, p: Pelvis, x: F32, y: F32, z: float) -> F32:
    r = hip.radius
    rr = np.sqrt(x * x + y * y + z * z) + 1e-6
    a = hip.cup_axis
    cosa = (x * a[0] + y * a[1] + z * a[2]) / rr
    fossa = np.clip((-cosa - 0.75) / 0.15, 0.0, 1.0)
    r1 = r + 4.0 + 3.0 * fossa
    r2 = r + 4.0 + hip.cup_thickness
    d = np.maximum(np.maximum(r1 - rr, rr - r2), (cosa - 0.08) * rr)
    half_gap = abs(hip.center[0])
    if z > -6.0:  # iliac body and wing above the acetabulum
        ilium = _ellipse2(x, y, (-6.0 + 0.12 * z, 6.0 + 0.5 * z),
                          min(20.0 + 0.55 * z, 60.0), 9.0 + 0.06 * z, np.deg2rad(115))
        d = _smin(d, np.maximum(ilium, 2.0 - z), 5.0)
    d = _smin(d, _capsule(x, y, z, (-12.0, r + 2.0, 8.0), (-4.0, r + 14.0, -70.0), 10.0, 14.0),
              5.0)
    d = _smin(d, _capsule(x, y, z, (-14.0, -r, -4.0), (-(half_gap - 3.0), -(r + 24.0), -24.0),
                          10.0, 8.0), 5.0)
    d = np.minimum(d, _capsule(x, y, z, (-(half_gap - 5.0), -(r + 20.0), -30.0),
                               (-18.0, r + 8.0, -62.0), 7.0, 7.0))
    return d


def _paint_pelvic_bone(cv: _Canvas, hip: Hip) -> None:
    r = hip.radius
    half_gap = abs(hip.center[0])
    got = cv.local_window(hip, -half_gap + 1.0, r + 18.0, -(r + 36.0), r + 46.0)
    if got is None:
        return
    win, x, y, z = got
    if z < -80.0 or z > r + 70.0:
        return
    d = _pelvic_bone_sdf(hip, cv.p, x, y, z)
    _paint_bone(cv, win, d, 1.6, cv.p.tissue.marrow_pelvis)


def _paint_joint(cv: _Canvas, hip: Hip) -> None:
    """Articular cartilage with the dark joint line, the fossa fat, labrum and capsule."""
    t = cv.p.tissue
    r = hip.radius
    got = cv.local_window(hip, -(r + 9), r + 9, -(r + 9), r + 9)
    if got is None:
        return
    win, x, y, z = got
    if abs(z) > r + 8:
        return
    img = cv.img[win]
    rr = np.sqrt(x * x + y * y + z * z) + 1e-6
    a = hip.cup_axis
    cosa = (x * a[0] + y * a[1] + z * a[2]) / rr
    shell = (rr > r) & (rr < r + 4.0)
    covered = cosa < 0.12
    fossa = -cosa > 0.8
    capsule = (rr > r) & (rr < r + 3.0) & ~covered
    img[capsule] = t.cartilage * 0.8
    cart = shell & covered & ~fossa
    img[cart] = (t.cartilage * (1.0 + 0.05 * cv.tex_hi[win]))[cart]
    line = cart & (np.abs(rr - (r + 2.0)) < 0.45)
    img[line] = t.joint_line
    pulvinar = (rr > r) & (rr < r + 7.0) & fossa
    img[pulvinar] = t.fat * 0.85
    labrum = (rr > r + 0.5) & (rr < r + 7.0) & (cosa > 0.02) & (cosa < 0.22)
    img[labrum] = t.labrum


def _femur_sdf(hip: Hip, x: F32, y: F32, z: float) -> tuple[F32, F32]:
    """Signed distance to the femur and the distance from the head centre (both mm)."""
    r = hip.radius
    n = hip.neck_dir
    base = n * hip.neck_length
    rr = np.sqrt(x * x + y * y + z * z)
    d = rr - r
    neck = _capsule(x, y, z, (0.0, 0.0, 0.0), (float(base[0]), float(base[1]), float(base[2])),
                    hip.neck_radius, 0.95 * r)
    d = _smin(d, neck, 3.0)
    gt = (float(base[0] + 14.0), float(base[1] + 4.0), float(base[2] + 9.0))
    d = _smin(d, _ellipsoid(x, y, z, gt, (13.0, 19.0, 22.0)), 6.0)
    shaft_top = float(base[2] - 6.0)
    if z < shaft_top + 8:
        sx, sy = float(base[0] + 8.0), float(base[1] + 2.0)
        shaft = np.maximum(np.sqrt((x - sx) ** 2 + (y - sy) ** 2) - 0.6 * r, z - shaft_top)
        d = _smin(d, shaft, 6.0)
        lt = (float(base[0] - 6.0), float(base[1] + 16.0), float(base[2] - 22.0))
        d = _smin(d, _ellipsoid(x, y, z, lt, (8.0, 10.0, 12.0)), 4.0)
    return d, rr


def necrosis_field(hip: Hip, x: F32, y: F32, z: float) -> F32:
    """``g(p)`` of :class:`~.anatomy.Necrosis` at hip-local points (mm)."""
    nec = hip.necrosis
    ax = nec.axis
    along = x * ax[0] + y * ax[1] + z * ax[2]
    perp2 = x * x + y * y + z * z - along * along
    g = along - nec.curvature * perp2 / hip.radius
    for kv, ph, amp in zip(nec.wave_vectors, nec.wave_phases, nec.wave_amplitudes, strict=True):
        g = g + amp * np.sin(x * kv[0] + y * kv[1] + z * kv[2] + ph)
    return g.astype(np.float32)


def head_mask(hip: Hip, x: F32, y: F32, z: float) -> npt.NDArray[np.bool_]:
    """Femoral head: the bony sphere up to the head-neck junction."""
    r = hip.radius
    rr2 = x * x + y * y + z * z
    n = hip.neck_dir
    along = x * n[0] + y * n[1] + z * n[2]
    junction = np.sqrt(r * r - hip.neck_radius**2)
    return (rr2 <= r * r) & (along <= junction)


def head_window(cv_grid: PlaneGrid, hip: Hip) -> tuple[Window, F32, F32, float] | None:
    """Pixel window around the head on this plane and its hip-local coordinates."""
    r = hip.radius
    z = float(cv_grid.w - hip.center[2])
    if abs(z) >= r:
        return None
    cu, cv_, _ = hip.center
    win = cv_grid.window(cu - r - 1, cu + r + 1, cv_ - r - 1, cv_ + r + 1)
    if win is None:
        return None
    u, v = cv_grid.coords(win)
    return win, hip.sign * (u - cu), v - cv_, z


def _paint_femur(cv: _Canvas, hip: Hip) -> None:
    t = cv.p.tissue
    r = hip.radius
    got = cv.local_window(hip, -(r + 2), hip.neck_length + 40.0, -(r + 8), r + 40.0)
    if got is None:
        return
    win, x, y, z = got
    if z > r + 2:
        return
    d, rr = _femur_sdf(hip, x, y, z)
    cortex = 1.0 + 1.0 * (rr > r + 1.0) + 3.5 * np.clip((hip.neck_dir[2] * hip.neck_length
                                                          - 12.0 - z) / 25.0, 0.0, 1.0)
    marrow = t.marrow_femur * hip.marrow_scale
    inner = _paint_bone(cv, win, d, cortex.astype(np.float32), marrow)
    img = cv.img[win]
    if hip.mimic == "oedema":
        along = (x * hip.neck_dir[0] + y * hip.neck_dir[1] + z * hip.neck_dir[2]) / r
        fade = np.clip(1.3 - 0.5 * along, 0.0, 1.0) * (1.0 + 0.3 * cv.tex_lo[win])
        img[inner] = (img * (1.0 - hip.oedema_depth * fade))[inner]
    if hip.mimic == "physeal_scar":
        m = hip.scar_normal
        s = x * m[0] + y * m[1] + z * m[2] - hip.scar_offset + 0.8 * np.sin(0.35 * (y - z))
        scar = inner & (np.abs(s) < hip.scar_width / 2) & (rr < r + 4)
        img[scar] = marrow * 0.38
    head = head_mask(hip, x, y, z) & (d < 0)
    lab = cv.lab[win]
    lab[head] = VIABLE_HEAD
    nec = hip.necrosis
    if nec.pattern != "none" and np.isfinite(nec.threshold) and head.any():
        g = necrosis_field(hip, x, y, z)
        lesion = head & (g > nec.threshold)
        if lesion.any():
            lab[lesion] = NECROSIS
            interior = lesion & (g > nec.threshold + nec.band_mm) & inner
            if nec.pattern == "mixed":
                level = marrow * (0.62 + 0.25 * cv.tex_lo[win] + 0.08 * cv.tex_hi[win])
                img[interior] = np.clip(level, 0.25, 0.95)[interior]
            else:
                img[interior] = (nec.interior_signal * (1.0 + 0.05 * cv.tex_hi[win]))[interior]
            band = lesion & (g <= nec.threshold + nec.band_mm)
            img[band] = (nec.band_signal * (1.0 + 0.15 * cv.tex_hi[win]))[band]
    cv.head_px[hip.side] += int(np.count_nonzero(head))
    cv.necrosis_px[hip.side] += int(np.count_nonzero(lab[head] == NECROSIS))


