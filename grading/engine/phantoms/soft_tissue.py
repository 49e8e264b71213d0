"""Body outline, subcutaneous fat, the muscles with fat planes between them, pelvic organs.

The muscles tile the space inside the subcutaneous fat as a weighted Voronoi
diagram of anatomically placed seeds (one per muscle, positions depending on
the slice height), on coordinates warped by smooth noise so the borders wander;
a thin band along each border is fat, as the intermuscular fat planes on T1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from grading.engine.phantoms.anatomy import SIDES, Hip, Pelvis
from grading.engine.phantoms.shapes import Canvas, Field, ellipse2, resize_linear, resize_nearest
from grading.engine.phantoms.tissues import TissueClass as T


@dataclass(frozen=True)
class MuscleSeed:
    """A muscle (or a fat compartment) around one hip, hip-local mm for a 24 mm head.

    Centre ``(x + dx_dz * z, y + dy_dz * z)``, size ``r``, present for ``z_lo < z < z_hi``
    (z: height above the head centre).
    """

    name: str
    x: float
    y: float
    r: float
    z_lo: float
    z_hi: float
    dx_dz: float = 0.0
    dy_dz: float = 0.0
    fat: bool = False
    signal: float = 1.0  # relative to the subject's muscle signal


SEEDS: tuple[MuscleSeed, ...] = (
    MuscleSeed("iliopsoas", -6.0, -40.0, 15.0, -50.0, 90.0, -0.25, 0.15, signal=0.97),
    MuscleSeed("rectus_femoris", 20.0, -44.0, 10.0, -90.0, 22.0, -0.05, 0.0),
    MuscleSeed("sartorius", 34.0, -62.0, 9.0, -90.0, 45.0, 0.3, -0.05),
    MuscleSeed("tensor_fasciae_latae", 56.0, -44.0, 12.0, -80.0, 40.0, 0.0, 0.1, signal=1.03),
    MuscleSeed("gluteus_minimus", 38.0, -8.0, 11.0, -10.0, 90.0, -0.2, 0.1),
    MuscleSeed("gluteus_medius", 60.0, 2.0, 18.0, -28.0, 90.0, -0.2, 0.15),
    MuscleSeed("gluteus_maximus", 12.0, 72.0, 36.0, -90.0, 90.0, -0.2, 0.0, signal=1.02),
    MuscleSeed("gluteus_maximus", -42.0, 82.0, 26.0, -90.0, 60.0, 0.0, 0.0, signal=1.02),
    MuscleSeed("gluteus_maximus", 56.0, 46.0, 20.0, -90.0, 30.0, 0.0, 0.0, signal=1.02),
    MuscleSeed("gemelli_obturator_internus", 16.0, 36.0, 9.0, -14.0, 8.0),
    MuscleSeed("quadratus_femoris", 16.0, 40.0, 11.0, -62.0, -14.0),
    MuscleSeed("obturator_externus", -16.0, 4.0, 12.0, -70.0, -16.0),
    MuscleSeed("pectineus", -28.0, -20.0, 11.0, -90.0, -8.0),
    MuscleSeed("adductors", -40.0, -10.0, 16.0, -90.0, -42.0),
    MuscleSeed("vastus_lateralis", 68.0, 8.0, 14.0, -90.0, -45.0),
    MuscleSeed("femoral_triangle", -28.0, -46.0, 9.0, -90.0, 30.0, -0.2, 0.0, fat=True),
    MuscleSeed("sciatic_fat", -6.0, 44.0, 6.0, -90.0, 40.0, fat=True),
)
REACH_MM = 38.0  # beyond this from every muscle: fat (ischioanal fossa, fat pads)


def outline_rho2(
    p: Pelvis, u: Field, v: Field, w: float, inset: tuple[float, float, float]
) -> Field:
    """Squared normalised body-outline radius, inset by (lateral, ant, post) mm; < 1 inside."""
    taper = 1.0 - 0.0015 * max(w - 25.0, 0.0)
    hw = p.half_width * taper - inset[0]
    ant = p.ant + inset[1]
    post = p.post - inset[2]
    vc = 0.5 * (ant + post)
    hd = 0.5 * (post - ant)
    un = u / hw
    vn = (v - vc) / hd
    u2, v2 = un * un, vn * vn
    c = p.outline_poly
    rho2 = (
        u2
        + v2
        - p.boxiness * u2 * v2
        + c[0] * un * vn
        + c[1] * (u2 - v2)
        + c[2] * un * u2
        + c[3] * vn * v2
    )
    # buttocks: the gluteal cleft posteriorly in the midline
    cleft = np.clip(vn - 0.6, 0.0, None) * np.exp(-((u / 22.0) ** 2))
    out: Field = rho2 + 0.5 * cleft
    return out


def paint_body(cv: Canvas) -> None:
    """Skin, subcutaneous fat and the muscles with their fat planes."""
    p, t = cv.p, cv.p.tissue
    win = cv.grid.window(-p.half_width - 10, p.half_width + 10, p.ant - 10, p.post + 10)
    if win is None:
        return
    u, v = cv.grid.coords(win)
    w = cv.grid.w
    # the outline and distance fields are smooth: on big windows compute them on
    # every other pixel and interpolate (edges and fat planes stay sub-pixel exact)
    coarse = min(u.shape) >= 64
    step = 2 if coarse else 1
    uc, vc = u[::step, ::step], v[::step, ::step]

    def full(field: Field) -> Field:
        return resize_linear(field, u.shape) if coarse else field

    rho2 = full(outline_rho2(p, uc, vc, w, (0.0, 0.0, 0.0)))
    img, tis = cv.img[win], cv.tissue[win]
    lo, lo2, hi = cv.tex_lo[win], cv.tex_lo2[win], cv.tex_hi[win]
    body = rho2 < 1.0
    img[body] = (t.fat * (1.0 + 0.03 * lo + 0.025 * hi))[body]
    tis[body] = T.FAT
    skin = body & (rho2 > 1.0 - 3.0 / max(p.half_width, 1.0))
    img[skin] = t.skin
    tis[skin] = T.SKIN
    inner = full(outline_rho2(p, uc, vc, w, (p.fat_lateral, p.fat_anterior, p.fat_posterior))) < 1.0
    if not inner.any():
        return
    seeds: list[tuple[float, float, float, MuscleSeed]] = []
    for side in SIDES:
        seeds.extend(_seed_positions(p, p.hips[side], w))
    # rectus abdominis pair in the front of the belly wall
    if w > -12.0:
        front = p.ant + p.fat_anterior + 9.0
        for sign in (-1.0, 1.0):
            seeds.append((sign * 16.0, front, 11.0, SEEDS[0]))
    if not seeds:
        return
    uw = uc + 2.0 * lo[::step, ::step]
    vw = vc + 2.0 * lo2[::step, ::step]
    d1, d2, idx = _voronoi(uw, vw, seeds)
    if coarse:
        d1, d2 = full(d1), full(d2)
        idx = resize_nearest(idx, u.shape)
    signals = [-1.0 if seed.fat else seed.signal for *_, seed in seeds]
    sig = np.asarray(signals + [0.0], np.float32)[idx]
    width = p.fat_plane_width * (1.0 + 0.25 * lo2)
    muscle = inner & (d1 < REACH_MM + 3.0 * lo) & ((d2 - d1) > width) & (sig > 0)
    level = t.muscle * sig * (1.0 + 0.04 * lo + 0.06 * hi)
    # fascicles of gluteus maximus separated by fat septa
    gm = np.zeros_like(muscle)
    for k, seed in enumerate(s[3] for s in seeds):
        if seed.name == "gluteus_maximus":
            gm |= idx == k
    img[muscle] = level[muscle]
    tis[muscle] = T.MUSCLE
    gm &= muscle
    if gm.any():
        # septa run obliquely, mirrored on the two sides, in short broken runs
        ug = u[gm]
        septa = np.sin((np.abs(ug) * 0.55 - v[gm] * 0.83) / 5.0 + 1.2 * lo2[gm])
        streak = (septa > 0.99 - 0.5 * p.muscle_fat_fraction) & (lo[gm] + 0.6 * hi[gm] > 0.3)
        img[gm] = np.where(streak, t.fat * 0.85 * (1.0 + 0.1 * hi[gm]), img[gm])
        tis[gm] = np.where(streak, T.FAT, tis[gm])
    _paint_neurovascular(cv, win, u, v, seeds, idx)


def _voronoi(
    u: Field, v: Field, seeds: list[tuple[float, float, float, MuscleSeed]]
) -> tuple[Field, Field, npt.NDArray[np.int16]]:
    """Additively weighted Voronoi of ``seeds`` on the points ``(u, v)``.

    Returns the distance to the nearest seed's circle, the distance to the
    nearest seed of another muscle (mm), and the nearest seed's index (-1 none).
    """
    d1 = np.full(u.shape, np.inf, np.float32)
    d2 = np.full(u.shape, np.inf, np.float32)
    idx = np.full(u.shape, -1, np.int16)
    group = np.full(u.shape, -1, np.int16)
    u_lo, u_hi, v_lo, v_hi = float(u.min()), float(u.max()), float(v.min()), float(v.max())
    groups: dict[tuple[float, str], int] = {}
    for k, (su, sv, sr, seed) in enumerate(seeds):
        reach = sr + REACH_MM
        if su + reach < u_lo or su - reach > u_hi or sv + reach < v_lo or sv - reach > v_hi:
            continue
        d = np.sqrt((u - su) ** 2 + (v - sv) ** 2) - sr
        g = groups.setdefault((float(np.sign(su)), seed.name), len(groups))
        nearer = d < d1
        same = group == g
        # second distance: to the nearest seed belonging to a different muscle
        d2 = np.where(nearer, np.where(same, d2, d1), np.where(same, d2, np.minimum(d2, d)))
        d1 = np.where(nearer, d, d1)
        idx[nearer] = k
        group[nearer] = g
    return d1, d2, idx


def _seed_positions(p: Pelvis, hip: Hip, w: float) -> list[tuple[float, float, float, MuscleSeed]]:
    """Model ``(u, v, size, seed)`` of the muscles around ``hip`` present at height ``w``."""
    z = w - float(hip.center[2])
    scale = hip.radius / 24.0
    out = []
    for k, seed in enumerate(SEEDS):
        if not seed.z_lo < z < seed.z_hi:
            continue
        jx, jy, jr = p.muscle_jitter[k + (0 if hip.side == "right" else 20)]
        x = (seed.x + seed.dx_dz * z) * scale + jx
        y = (seed.y + seed.dy_dz * z) * scale + jy
        # tapered ends so a muscle fades in and out over the slices
        ends = min(z - seed.z_lo, seed.z_hi - z, 12.0) / 12.0
        r = seed.r * scale * jr * (0.5 + 0.5 * ends)
        out.append((float(hip.center[0] + hip.sign * x), float(hip.center[1] + y), float(r), seed))
    return out


def _paint_neurovascular(
    cv: Canvas,
    win: tuple[slice, slice],
    u: Field,
    v: Field,
    seeds: list[tuple[float, float, float, MuscleSeed]],
    idx: np.ndarray,
) -> None:
    """Femoral artery and vein (flow voids) and the sciatic nerve in their fat compartments."""
    t = cv.p.tissue
    for k, (su, sv, _, seed) in enumerate(seeds):
        if not seed.fat:
            continue
        local = cv.grid.window(su - 12.0, su + 12.0, sv - 8.0, sv + 8.0)
        if local is None:
            continue
        # only where the fat compartment itself reaches (not under a muscle)
        r0, c0 = local[0].start - win[0].start, local[1].start - win[1].start
        sub = (
            slice(r0, r0 + local[0].stop - local[0].start),
            slice(c0, c0 + local[1].stop - local[1].start),
        )
        if r0 < 0 or c0 < 0 or not (idx[sub] == k).any():
            continue
        lu, lv = u[sub], v[sub]
        img, tis = cv.img[local], cv.tissue[local]
        if seed.name == "femoral_triangle":
            sign = 1.0 if su > 0 else -1.0
            artery = ellipse2(lu, lv, (su + sign * 5.0, sv), 3.6, 3.6) < 0
            vein = ellipse2(lu, lv, (su - sign * 5.0, sv + 1.0), 5.0, 4.2) < 0
            img[artery] = t.vessel
            img[vein] = t.vein
            tis[artery] = T.ARTERY
            tis[vein] = T.VEIN
        else:
            nerve = ellipse2(lu, lv, (su, sv), 5.5, 3.5) < 0
            img[nerve] = t.nerve
            tis[nerve] = T.NERVE


def paint_pelvic_cavity(cv: Canvas) -> None:
    """Pelvic fat with the obturator internus on the side walls, bladder, rectum, midline organ."""
    p, t = cv.p, cv.p.tissue
    w = cv.grid.w
    hw = p.cavity_half_width + 0.35 * max(w, 0.0)
    hd = p.cavity_half_depth
    c = (0.0, p.cavity_center_v)
    win = cv.grid.window(-hw - 2, hw + 2, c[1] - hd - 2, c[1] + hd + 2)
    if win is None:
        return
    u, v = cv.grid.coords(win)
    img, tis = cv.img[win], cv.tissue[win]
    lo, hi = cv.tex_lo[win], cv.tex_hi[win]
    d = ellipse2(u + 3.0 * cv.tex_lo2[win], v, c, hw, hd)
    cavity = d < 0
    img[cavity] = (t.fat * (0.95 + 0.03 * lo))[cavity]
    tis[cavity] = T.FAT
    wall = cavity & (d > -9.0 - 2.0 * lo) & (np.abs(u) > 0.45 * hw)
    img[wall] = (t.muscle * (1.0 + 0.05 * lo))[wall]
    tis[wall] = T.MUSCLE
    if w > -20.0:
        # small-bowel and sigmoid loops fill more of the pelvis towards its top
        loops = cv.tex_lo2[win] + 0.35 * hi
        level = max(1.4 - 0.015 * (w + 20.0), 0.45)
        bowel = cavity & ~wall & (loops > level)
        inner_loop = bowel & (loops > level + 0.2)
        img[bowel] = t.muscle * 0.9
        tis[bowel] = T.BOWEL_WALL
        content = np.where(hi > 1.7, 0.04, t.bowel * (1.0 + 0.2 * hi))
        img[inner_loop] = content[inner_loop]
        tis[inner_loop] = T.BOWEL_CONTENT
    bc, br = p.bladder_center, p.bladder_radii
    zz = (w - bc[2]) / br[2]
    if abs(zz) < 1.0:
        s = np.sqrt(1.0 - zz * zz)
        db = ellipse2(u, v, (bc[0], bc[1]), br[0] * s, br[1] * s)
        # a full bladder is rounded-square: flatten the ellipse a little
        db = db - 1.5 * np.abs(np.sin(2.0 * np.arctan2(v - bc[1], u - bc[0])))
        bw = cavity & (db < 0)
        img[bw] = t.muscle * 0.95
        tis[bw] = T.BLADDER_WALL
        urine = cavity & (db < -2.0)
        img[urine] = (t.urine * (1.0 + 0.05 * lo))[urine]
        tis[urine] = T.URINE
    if -45.0 < w < 45.0:
        rc = (float(p.rectum_center[0]), float(p.rectum_center[1]))
        dr = ellipse2(u + 2.0 * hi, v, rc, p.rectum_radius * 1.15, p.rectum_radius)
        rwall = cavity & (dr < 0)
        img[rwall] = t.muscle
        tis[rwall] = T.BOWEL_WALL
        lumen = cavity & (dr < -3.0)
        content = t.bowel * (1.0 + 0.25 * hi)
        content = np.where(hi > 1.5, 0.03, content)
        img[lumen] = content[lumen]
        tis[lumen] = T.BOWEL_CONTENT
    if w < -12.0:
        mid_v = 0.5 * (p.bladder_center[1] + p.rectum_center[1])
        dm = ellipse2(u, v, (0.0, mid_v), 17.0, 13.0)
        organ = cavity & (dm < 0)
        img[organ] = (0.4 * (1.0 + 0.06 * hi))[organ]
        tis[organ] = T.PELVIC_ORGAN
