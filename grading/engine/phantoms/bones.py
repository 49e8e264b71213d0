"""Pelvic bones, sacrum, the hip joint and the femur with its head, lesion and mimics."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from grading.engine.phantoms.anatomy import Hip, Pelvis
from grading.engine.phantoms.shapes import (
    Canvas,
    Field,
    PlaneGrid,
    Window,
    capsule,
    ellipse2,
    ellipsoid,
    resize_linear,
    smin,
)
from grading.engine.phantoms.tissues import TissueClass as T
from grading.engine.types import NECROSIS, VIABLE_HEAD


def _paint_bone(
    cv: Canvas,
    win: Window,
    d: Field,
    cortex_mm: float | Field,
    marrow: float,
    marrow_class: T = T.PELVIC_MARROW,
) -> npt.NDArray[np.bool_]:
    """Cortex (``-cortex_mm < d < 0``) and textured marrow inside; returns the marrow mask."""
    img, tis = cv.img[win], cv.tissue[win]
    bone = d < 0
    inner = d < -cortex_mm
    img[bone] = cv.p.tissue.cortex
    tis[bone] = T.CORTEX
    tex = marrow * (1.0 + 0.06 * cv.tex_hi[win] + 0.04 * cv.tex_lo[win])
    img[inner] = tex[inner]
    tis[inner] = marrow_class
    return inner


def _smax(a: Field, b: Field, k: float) -> Field:
    """Smooth maximum (rounded intersection) of two signed distances."""
    return -smin(-a, -b, k)


def paint_sacrum(cv: Canvas) -> None:
    """Sacrum above, coccyx below, in the posterior midline."""
    p, t = cv.p, cv.p.tissue
    w = cv.grid.w
    if w < -28.0:
        return
    a = min(6.0 + 0.55 * (w + 28.0), 48.0)
    b = 8.0 + 0.1 * (w + 28.0)
    vc = p.sacrum_v + 0.3 * w
    win = cv.grid.window(-a - 3, a + 3, vc - b - 3, vc + b + 3)
    if win is None:
        return
    u, v = cv.grid.coords(win)
    d = ellipse2(u, v, (0.0, vc), a, b)
    _paint_bone(cv, win, d, 1.6, t.marrow_pelvis)


def _pelvic_bone_sdf(hip: Hip, p: Pelvis, x: Field, y: Field, z: float) -> Field:
    r = hip.radius
    rr = np.sqrt(x * x + y * y + z * z) + 1e-6
    a = hip.cup_axis
    cosa = (x * a[0] + y * a[1] + z * a[2]) / rr
    fossa = np.clip((-cosa - 0.75) / 0.15, 0.0, 1.0)
    r1 = r + 3.6 + 3.0 * fossa
    # the posterior column and the roof are the thick parts of the socket
    r2 = (
        r
        + 3.6
        + hip.cup_thickness
        + 6.0 * np.clip(y / rr, 0.0, 1.0)
        + 3.0 * np.clip(z / rr, 0.0, 1.0)
    )
    d = _smax(np.maximum(r1 - rr, rr - r2), (cosa - 0.08) * rr, 2.5)
    half_gap = abs(hip.center[0])
    if z > -6.0:  # iliac body and wing above the acetabulum
        ilium = ellipse2(
            x,
            y,
            (-6.0 + 0.12 * z, 6.0 + 0.5 * z),
            min(20.0 + 0.55 * z, 60.0),
            9.0 + 0.06 * z,
            np.deg2rad(115),
        )
        d = smin(d, np.maximum(ilium, 2.0 - z), 5.0)
    d = smin(d, capsule(x, y, z, (-12.0, r + 2.0, 8.0), (-4.0, r + 14.0, -70.0), 10.0, 14.0), 5.0)
    d = smin(
        d,
        capsule(x, y, z, (-14.0, -r, -4.0), (-(half_gap - 3.0), -(r + 24.0), -24.0), 10.0, 8.0),
        5.0,
    )
    d = np.minimum(
        d,
        capsule(
            x, y, z, (-(half_gap - 5.0), -(r + 20.0), -30.0), (-18.0, r + 8.0, -62.0), 7.0, 7.0
        ),
    )
    return d


def paint_pelvic_bone(cv: Canvas, hip: Hip) -> None:
    r = hip.radius
    half_gap = abs(hip.center[0])
    got = cv.local_window(hip, -half_gap + 1.0, r + 18.0, -(r + 36.0), r + 46.0)
    if got is None:
        return
    win, x, y, z = got
    if z < -80.0 or z > r + 70.0:
        return
    if min(x.shape) >= 64:  # smooth field: half resolution, interpolated
        d = resize_linear(_pelvic_bone_sdf(hip, cv.p, x[::2, ::2], y[::2, ::2], z), x.shape)
    else:
        d = _pelvic_bone_sdf(hip, cv.p, x, y, z)
    _paint_bone(cv, win, d, 1.6, cv.p.tissue.marrow_pelvis)


def paint_joint(cv: Canvas, hip: Hip) -> None:
    """Articular cartilage with the dark joint line, the fossa fat, labrum and capsule."""
    t = cv.p.tissue
    r = hip.radius
    got = cv.local_window(hip, -(r + 9), r + 9, -(r + 9), r + 9)
    if got is None:
        return
    win, x, y, z = got
    if abs(z) > r + 8:
        return
    img, tis = cv.img[win], cv.tissue[win]
    rr = np.sqrt(x * x + y * y + z * z) + 1e-6
    a = hip.cup_axis
    cosa = (x * a[0] + y * a[1] + z * a[2]) / rr
    shell = (rr > r) & (rr < r + 3.6)
    covered = cosa < 0.12
    fossa = -cosa > 0.8
    capsule = (rr > r) & (rr < r + 1.8) & ~covered
    img[capsule] = t.cartilage * 0.55
    tis[capsule] = T.CAPSULE
    cart = shell & covered & ~fossa
    img[cart] = (t.cartilage * (1.0 + 0.05 * cv.tex_hi[win]))[cart]
    tis[cart] = T.CARTILAGE
    line = cart & (np.abs(rr - (r + 1.8)) < 0.35)
    img[line] = t.joint_line
    tis[line] = T.JOINT_LINE
    pulvinar = (rr > r) & (rr < r + 7.0) & fossa
    img[pulvinar] = t.fat * 0.85
    tis[pulvinar] = T.PULVINAR_FAT
    labrum = (rr > r + 0.3) & (rr < r + 4.5 - 12.0 * (cosa - 0.04)) & (cosa > 0.04) & (cosa < 0.2)
    img[labrum] = t.labrum
    tis[labrum] = T.LABRUM


def _femur_sdf(hip: Hip, x: Field, y: Field, z: float) -> tuple[Field, Field]:
    """Signed distance to the femur and the distance from the head centre (both mm)."""
    r = hip.radius
    n = hip.neck_dir
    base = n * hip.neck_length
    rr = np.sqrt(x * x + y * y + z * z)
    d: Field = rr - r
    neck = capsule(
        x,
        y,
        z,
        (0.0, 0.0, 0.0),
        (float(base[0]), float(base[1]), float(base[2])),
        hip.neck_radius,
        0.95 * r,
    )
    d = smin(d, neck, 3.0)
    gt = (float(base[0] + 14.0), float(base[1] + 4.0), float(base[2] + 9.0))
    d = smin(d, ellipsoid(x, y, z, gt, (13.0, 19.0, 22.0)), 6.0)
    shaft_top = float(base[2] - 6.0)
    if z < shaft_top + 8:
        sx, sy = float(base[0] + 8.0), float(base[1] + 2.0)
        shaft = np.maximum(np.sqrt((x - sx) ** 2 + (y - sy) ** 2) - 0.6 * r, z - shaft_top)
        d = smin(d, shaft, 6.0)
        lt = (float(base[0] - 6.0), float(base[1] + 16.0), float(base[2] - 22.0))
        d = smin(d, ellipsoid(x, y, z, lt, (8.0, 10.0, 12.0)), 4.0)
    return d, rr


def necrosis_field(hip: Hip, x: Field, y: Field, z: float | Field) -> Field:
    """``g(p)`` of :class:`~.anatomy.Necrosis` at hip-local points (mm)."""
    nec = hip.necrosis
    ax = nec.axis
    along = x * ax[0] + y * ax[1] + z * ax[2]
    perp2 = x * x + y * y + z * z - along * along
    g = along - nec.curvature * perp2 / hip.radius
    for kv, ph, amp in zip(nec.wave_vectors, nec.wave_phases, nec.wave_amplitudes, strict=True):
        g = g + amp * np.sin(x * kv[0] + y * kv[1] + z * kv[2] + ph)
    out: Field = g.astype(np.float32)
    return out


def head_mask(hip: Hip, x: Field, y: Field, z: float | Field) -> npt.NDArray[np.bool_]:
    """Femoral head: the bony sphere up to the head-neck junction."""
    r = hip.radius
    rr2 = x * x + y * y + z * z
    n = hip.neck_dir
    along = x * n[0] + y * n[1] + z * n[2]
    junction = np.sqrt(r * r - hip.neck_radius**2)
    inside: npt.NDArray[np.bool_] = (rr2 <= r * r) & (along <= junction)
    return inside


def head_window(cv_grid: PlaneGrid, hip: Hip) -> tuple[Window, Field, Field, float] | None:
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


def _paint_head_variants(
    cv: Canvas,
    win: Window,
    hip: Hip,
    x: Field,
    y: Field,
    z: float,
    inner: npt.NDArray[np.bool_],
    rr: Field,
) -> None:
    """The normal variants of :class:`~.anatomy.HeadVariants` (viable head, label 1):
    compressive trabeculae and red marrow islands darken the marrow (``inner``), the
    fovea capitis cuts a pit lined by cortex into the medial head."""
    va = hip.variants
    img, tis = cv.img[win], cv.tissue[win]
    r = hip.radius
    if va.trabeculae:
        a, b = va.trabecula_from, va.trabecula_to
        ab = b - a
        along = (x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]
        t = np.clip(along / (ab @ ab), 0, 1)
        dist = np.sqrt(
            (x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2 + (z - a[2] - t * ab[2]) ** 2
        )
        width = va.trabecula_width_mm * (0.45 + 0.55 * t)  # the fan widens upwards
        profile = np.clip(1.0 - dist / width, 0.0, 1.0) * (0.75 + 0.25 * cv.tex_hi[win])
        band = inner & (profile > 0) & (rr < r + 6.0)
        img[band] = (img * (1.0 - va.trabecula_drop * np.clip(profile, 0.0, 1.0)))[band]
        tis[band & (profile > 0.3)] = T.COMPRESSIVE_TRABECULAE
    if va.red_marrow:
        drop = np.zeros(x.shape, np.float32)
        core = np.zeros(x.shape, dtype=bool)
        for cx, cy, cz, ax, ay, az, signal in va.islands:
            q = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2)
            weight = np.clip((1.0 - q + 0.25 * cv.tex_hi[win]) / 0.35, 0.0, 1.0)
            drop = np.maximum(drop, weight * (1.0 - signal))
            core |= weight >= 0.75
        island = inner & (drop > 0)
        img[island] = (img * (1.0 - drop))[island]
        tis[inner & core] = T.RED_MARROW
    if va.fovea:
        f, mouth, depth = va.fovea_dir, va.fovea_radius_mm, va.fovea_depth_mm
        rho = (mouth * mouth + depth * depth) / (2.0 * depth)  # a cap of a ball this wide
        c = f * (r + rho - depth)
        dist = np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
        in_head = rr <= r
        lining = in_head & (dist >= rho) & (dist < rho + 0.8)
        img[lining] = cv.p.tissue.cortex
        tis[lining] = T.CORTEX
        pit = in_head & (dist < rho)
        img[pit] = (va.fovea_signal * (1.0 + 0.15 * cv.tex_hi[win]))[pit]
        tis[pit] = T.LIGAMENTUM_TERES


def paint_femur(cv: Canvas, hip: Hip) -> None:
    t = cv.p.tissue
    r = hip.radius
    got = cv.local_window(hip, -(r + 2), hip.neck_length + 40.0, -(r + 8), r + 40.0)
    if got is None:
        return
    win, x, y, z = got
    if z > r + 2:
        return
    d, rr = _femur_sdf(hip, x, y, z)
    cortex = (
        0.8
        + 1.0 * (rr > r + 1.0)
        + 3.5 * np.clip((hip.neck_dir[2] * hip.neck_length - 12.0 - z) / 25.0, 0.0, 1.0)
    )
    marrow = t.marrow_femur * hip.marrow_scale
    inner = _paint_bone(cv, win, d, cortex.astype(np.float32), marrow, T.FEMUR_MARROW)
    img, tis = cv.img[win], cv.tissue[win]
    if hip.mimic == "oedema":
        along = (x * hip.neck_dir[0] + y * hip.neck_dir[1] + z * hip.neck_dir[2]) / r
        fade = np.clip(1.3 - 0.5 * along, 0.0, 1.0) * (1.0 + 0.3 * cv.tex_lo[win])
        img[inner] = (img * (1.0 - hip.oedema_depth * fade))[inner]
        # the tissue map marks the marrow darkened by more than a third of the depth
        tis[inner & (fade > 0.35)] = T.OEDEMA
    if hip.mimic == "physeal_scar":
        m = hip.scar_normal
        s = x * m[0] + y * m[1] + z * m[2] - hip.scar_offset + 0.8 * np.sin(0.35 * (y - z))
        scar = inner & (np.abs(s) < hip.scar_width / 2) & (rr < r + 4)
        img[scar] = marrow * 0.3
        tis[scar] = T.PHYSEAL_SCAR
    _paint_head_variants(cv, win, hip, x, y, z, inner, rr)
    head = head_mask(hip, x, y, z) & (d < 0)
    lab = cv.lab[win]
    lab[head] = VIABLE_HEAD
    tis[head & (tis == T.FEMUR_MARROW)] = T.HEAD_MARROW
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
                tis[interior] = T.LESION_FAT_LIKE
            else:
                img[interior] = (nec.interior_signal * (1.0 + 0.05 * cv.tex_hi[win]))[interior]
                tis[interior] = (
                    T.LESION_INTERIOR if nec.pattern == "homogeneous" else T.LESION_FAT_LIKE
                )
            band = lesion & (g <= nec.threshold + nec.band_mm)
            img[band] = (nec.band_signal * (1.0 + 0.15 * cv.tex_hi[win]))[band]
            tis[band] = T.LESION_BAND
    cv.head_px[hip.side] += int(np.count_nonzero(head))
    cv.necrosis_px[hip.side] += int(np.count_nonzero(lab[head] == NECROSIS))
