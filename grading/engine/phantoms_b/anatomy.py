"""A 3D model of the pelvis and proximal femora, sampled at points into tissue classes.

Coordinates: patient LPS in mm (+x patient left, +y posterior, +z superior); the origin
is the midpoint between the femoral-head centres. The model lives in an "anatomy frame"
that the patient's positioning rotates slightly (``Anatomy.rotation``). Ranges come from
``docs/phantoms-b-spec.md``.

:func:`sample` returns, per point, the tissue class (table :data:`TISSUES`), an auxiliary
value (marrow fat fraction for classes 4, 5, 14; the style mixture 0..1 for class 12;
1.0 for a slow-flow vein in class 9; a texture -1..1 for muscle, class 2), the
femoral-head label (0/1/2) and the hip index (0 right, 1 left, -1 none) of head voxels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from grading.engine.phantoms_b.geometry import (
    F32,
    Vec,
    Waves,
    capsule,
    ellipsoid,
    segment_distance,
    sphere,
    unit,
)
from grading.engine.phantoms_b.lesion import Lesion

TISSUES = (
    "air", "fat", "muscle", "cortical bone", "fatty marrow", "red marrow", "cartilage",
    "joint fluid", "urine", "vessel", "viscera", "tendon/ligament/capsule",
    "necrotic interior", "lesion band", "marrow oedema", "skin",
)  # fmt: skip
(AIR, FAT, MUSCLE, CORTEX, YELLOW, RED, CARTILAGE, FLUID, URINE, VESSEL, VISCERA, TENDON,
 NECROTIC, BAND, OEDEMA, SKIN) = range(16)  # fmt: skip
SIDES = ("right", "left")  # hip index 0 is the patient's right (-x), 1 the left (+x)


@dataclass(frozen=True)
class Hip:
    """One hip joint and proximal femur (anatomy frame, mm)."""

    lateral: float  # +1 left hip, -1 right hip (the sign of x lateral to the head)
    centre: npt.NDArray[np.float64]
    radius: float
    neck_dir: npt.NDArray[np.float64]  # unit, head centre -> trochanteric junction
    neck_length: float
    neck_radius: float
    shaft_dir: npt.NDArray[np.float64]  # unit, down the shaft
    opening: npt.NDArray[np.float64]  # unit acetabular opening axis
    cover_cos: float  # the acetabulum covers directions with dot(u, opening) < cover_cos
    joint_space: float
    wall: float
    cortex: tuple[float, float, float]  # head, neck/trochanters, shaft
    fat_fraction: tuple[float, float, float, float]  # head, neck, trochanter, shaft
    physis: tuple[float, float, float]  # offset along the neck (mm), curvature (1/mm), width
    fovea_dir: npt.NDArray[np.float64]
    fovea_radius: float
    effusion: float  # fluid thickness around head and neck, mm
    oedema: tuple[float, float] | None  # (radius mm, fat-fraction drop 0..1)
    lesion: Lesion | None

    @property
    def junction(self) -> npt.NDArray[np.float64]:
        return self.centre + self.neck_length * self.neck_dir

    @property
    def head_cut(self) -> float:
        """Distance along the neck from the centre to the head-neck junction plane (mm)."""
        return math.sqrt(max(self.radius**2 - self.neck_radius**2, 0.0))


@dataclass(frozen=True)
class Anatomy:
    rotation: npt.NDArray[np.float64]  # (3, 3): world = rotation @ anatomy
    body: tuple[float, float, float]  # half-width, half-depth, centre y (mm)
    fat: tuple[float, float, float]  # subcutaneous fat lateral, anterior, posterior (mm)
    skin: float
    septum: float
    cavity: tuple[float, float, float]  # half-width, half-depth, centre y
    bladder: tuple[float, float, float, float]  # radius x, y, z (0: empty), centre y
    rectum: tuple[float, float, bool]  # radius, centre y, gas
    pelvic_vessels: tuple[tuple[Vec, Vec, float], ...]  # internal iliac branches (flow voids)
    bowel: tuple[tuple[Vec, float], ...]  # loops of bowel in the upper pelvis: centre, radius
    slow_vein: bool
    marrow_pelvis: float
    texture: Waves  # marrow heterogeneity
    marbling: Waves  # muscle heterogeneity
    hips: tuple[Hip, Hip]  # right, left

    def with_lesion_thresholds(self, thresholds: tuple[float, float]) -> Anatomy:
        hips = tuple(
            h if h.lesion is None else replace(h, lesion=replace(h.lesion, threshold=t))
            for h, t in zip(self.hips, thresholds, strict=True)
        )
        return replace(self, hips=(hips[0], hips[1]))


def _t(v: npt.NDArray[np.float64] | Vec) -> Vec:
    return (float(v[0]), float(v[1]), float(v[2]))


def _rotation(yaw: float, roll: float, pitch: float) -> npt.NDArray[np.float64]:
    cz, sz, cy, sy, cx, sx = (f(a) for a in (yaw, roll, pitch) for f in (math.cos, math.sin))
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    out: npt.NDArray[np.float64] = rz @ ry @ rx
    return out


def draw_hip(rng: np.random.Generator, lateral: float, half_span: float, age: float) -> Hip:
    radius = rng.uniform(20.0, 27.5)
    nsa, tau = math.radians(rng.uniform(122, 138)), math.radians(rng.uniform(6, 10))
    elevation, antev = tau + nsa - math.pi / 2, math.radians(rng.uniform(5, 25))
    neck_dir = unit(
        (
            lateral * math.cos(elevation) * math.cos(antev),
            math.cos(elevation) * math.sin(antev),
            -math.sin(elevation),
        )
    )
    incl, av = math.radians(rng.uniform(38, 50)), math.radians(rng.uniform(12, 25))
    opening = unit(
        (lateral * math.sin(incl) * math.cos(av), -math.sin(incl) * math.sin(av), -math.cos(incl))
    )
    young = float(np.clip((60.0 - age) / 40.0, 0.0, 1.0))  # red marrow persists in the young
    return Hip(
        lateral=lateral,
        centre=np.array([lateral * half_span, 0.0, 0.0]),
        radius=radius,
        neck_dir=neck_dir,
        neck_length=rng.uniform(45, 60),
        neck_radius=radius * rng.uniform(0.62, 0.72),
        shaft_dir=unit((-lateral * math.sin(tau), 0.0, -math.cos(tau))),
        opening=opening,
        cover_cos=math.cos(math.radians(rng.uniform(85, 100))),
        joint_space=rng.uniform(3.0, 5.0),
        wall=rng.uniform(8.0, 15.0),
        cortex=(rng.uniform(1.0, 2.0), rng.uniform(2.0, 3.5), rng.uniform(4.0, 7.0)),
        fat_fraction=(
            rng.uniform(0.85, 0.97),
            rng.uniform(0.45, 0.9) - 0.15 * young + 0.1,
            rng.uniform(0.75, 0.95),
            rng.uniform(0.8, 0.95),
        ),
        physis=(radius * rng.uniform(0.45, 0.65), rng.uniform(0.004, 0.012), rng.uniform(0.5, 0.9)),
        fovea_dir=unit((-lateral * 0.8, rng.uniform(0.0, 0.3), -0.55)),
        fovea_radius=rng.uniform(4.0, 7.0) / 2 + 1.5,
        effusion=0.6,
        oedema=None,
        lesion=None,
    )


def draw_anatomy(rng: np.random.Generator) -> Anatomy:
    """A random adult pelvis without lesions (``Hip.lesion`` is None on both sides)."""
    half_span = rng.uniform(80.0, 100.0)
    age = rng.uniform(20, 75)
    rot = _rotation(*(math.radians(rng.uniform(-a, a)) for a in (4.0, 3.0, 5.0)))
    right, left = (draw_hip(rng, s, half_span, age) for s in (-1.0, 1.0))
    bladder_fill = rng.uniform(0.0, 1.0)
    cavity_w = half_span - rng.uniform(42, 52)
    vessels = []
    for side in (-1.0, 1.0):
        for _ in range(int(rng.integers(3, 7))):
            x_top, x_bottom = cavity_w * rng.uniform(0.55, 0.9), cavity_w * rng.uniform(0.5, 0.85)
            y = rng.uniform(-25, 40)
            vessels.append(
                (
                    (side * x_top, y, 95.0),
                    (side * x_bottom, y + rng.uniform(-15, 15), -45.0),
                    rng.uniform(1.5, 4.0),
                )
            )
    bowel = tuple(
        ((rng.uniform(-0.5, 0.5) * cavity_w, rng.uniform(0, 35), rng.uniform(20, 80)),
         rng.uniform(10, 18))
        for _ in range(int(rng.integers(0, 4)))
    )  # fmt: skip
    return Anatomy(
        rotation=rot,
        body=(rng.uniform(160, 195), rng.uniform(105, 140), rng.uniform(15, 30)),
        fat=(rng.uniform(8, 35), rng.uniform(8, 35), rng.uniform(15, 45)),
        skin=rng.uniform(1.5, 2.5),
        septum=rng.uniform(1.0, 2.5),
        cavity=(cavity_w, rng.uniform(45, 55), rng.uniform(0, 10)),
        bladder=(
            bladder_fill * rng.uniform(25, 50),
            bladder_fill * rng.uniform(18, 35),
            bladder_fill * rng.uniform(20, 40),
            rng.uniform(-25, -15),
        ),
        rectum=(rng.uniform(12, 20), rng.uniform(35, 45), bool(rng.random() < 0.5)),
        pelvic_vessels=tuple(vessels),
        bowel=bowel,
        slow_vein=bool(rng.random() < 0.4),
        marrow_pelvis=rng.uniform(0.35, 0.75),
        texture=Waves.draw(rng, 4, (4.0, 12.0), (1.0, 1.0)),
        marbling=Waves.draw(rng, 12, (3.0, 10.0), (1.0, 1.0)),
        hips=(right, left),
    )


def to_anatomy(a: Anatomy, x: F32, y: F32, z: F32) -> tuple[F32, F32, F32]:
    """World points (mm) in the anatomy frame, flattened to 1-D float32 arrays."""
    pts = np.stack([np.ravel(x), np.ravel(y), np.ravel(z)]).astype(np.float64)
    ax, ay, az = (v.astype(np.float32) for v in a.rotation.T @ pts)
    return ax, ay, az


def head_mask(hip: Hip, x: F32, y: F32, z: F32) -> npt.NDArray[np.bool_]:
    """Points (anatomy frame) inside the femoral head: the bone of the head sphere, less
    the fovea, on the head's side of the head-neck junction plane (cortex included)."""
    c, r = hip.centre, hip.radius
    head = sphere(x, y, z, _t(c), r)
    fovea = sphere(x, y, z, _t(c + r * hip.fovea_dir), hip.fovea_radius)
    along = (
        (x - c[0]) * hip.neck_dir[0] + (y - c[1]) * hip.neck_dir[1] + (z - c[2]) * hip.neck_dir[2]
    )
    inside: npt.NDArray[np.bool_] = (np.maximum(head, -fovea) < 0) & (along < hip.head_cut)
    return inside


def _muscles(a: Anatomy) -> list[tuple[Vec, Vec, float]]:
    """Centre lines (start, end, radius mm) of the hip and thigh muscles, both sides."""
    out: list[tuple[Vec, Vec, float]] = []
    for hip in a.hips:
        s, w = hip.lateral, abs(float(hip.centre[0]))
        for (x0, y0, z0), (x1, y1, z1), r in (
            ((w - 40, 95, 70), (w + 45, 75, -70), 42.0),  # gluteus maximus
            ((w + 20, 35, 90), (w + 55, 15, -5), 28.0),  # gluteus medius
            ((w + 5, 10, 70), (w + 45, -5, 0), 16.0),  # gluteus minimus
            ((w - 38, -18, 90), (w - 5, -38, -45), 21.0),  # iliopsoas
            ((w + 55, -55, 40), (w + 10, -80, -120), 12.0),  # sartorius
            ((w + 25, -42, 20), (w + 30, -70, -120), 16.0),  # rectus femoris
            ((w + 70, -35, 50), (w + 85, -20, -80), 14.0),  # tensor fasciae latae
            ((w - 55, -10, -30), (w - 5, 15, -35), 14.0),  # obturator externus
            ((w - 25, 40, -5), (w + 35, 25, -20), 11.0),  # gemelli, quadratus femoris
            ((w - 65, -35, -30), (w - 10, -10, -80), 14.0),  # pectineus
            ((w - 70, -10, -45), (w - 20, 10, -150), 30.0),  # adductors
            ((w + 45, -10, -60), (w + 35, -15, -200), 30.0),  # vasti
        ):
            out.append(((s * x0, y0, z0), (s * x1, y1, z1), r))
    return out


def _paint_muscles(a: Anatomy, x: F32, y: F32, z: F32) -> npt.NDArray[np.uint8]:
    """Muscle where a point is within a muscle's reach and not on a fat septum.

    Each side's points see that side's muscles only, and only those whose reach spans
    the points' z range (the partition is the same, the cost a fraction)."""
    out = np.full(x.shape, FAT, np.uint8)
    lines = _muscles(a)
    for side, chosen in ((1, x >= 0), (-1, x < 0)):
        idx = np.nonzero(chosen)[0]
        if idx.size == 0:
            continue
        px, py, pz = x[idx], y[idx], z[idx]
        z_lo, z_hi = float(pz.min()), float(pz.max())
        near = [
            (p, q, r)
            for p, q, r in lines
            if p[0] * side > 0 and min(p[2], q[2]) - r <= z_hi and max(p[2], q[2]) + r >= z_lo
        ]
        if len(near) < 2:
            continue
        d = np.stack([segment_distance(px, py, pz, p, q)[0] / r for p, q, r in near])
        radii = np.array([r for _, _, r in near], dtype=np.float32)
        first = np.argmin(d, axis=0)
        d1 = np.take_along_axis(d, first[None], 0)[0]
        np.put_along_axis(d, first[None], np.inf, 0)
        d2 = d.min(axis=0)
        muscle = (d1 < 1.7) & ((d2 - d1) * radii[first] > a.septum)
        out[idx[muscle]] = MUSCLE
    return out


def _bone(
    tissue: npt.NDArray[np.uint8], aux: F32, sdf: F32, cortex: F32 | float, ff: F32 | float
) -> None:
    inside = sdf < 0
    marrow_ff = np.broadcast_to(np.asarray(ff, dtype=np.float32), sdf.shape)
    marrow = np.where(marrow_ff >= 0.6, YELLOW, RED).astype(np.uint8)
    tissue[inside] = np.where(sdf > -np.asarray(cortex), CORTEX, marrow)[inside]
    aux[inside] = marrow_ff[inside]


def _paint_hip(
    a: Anatomy,
    hip: Hip,
    index: int,
    x: F32,
    y: F32,
    z: F32,
    out: tuple[npt.NDArray[np.uint8], F32, npt.NDArray[np.uint8], npt.NDArray[np.int8]],
) -> None:
    """Joint, pelvic bones and femur of one hip at points near it (arrays updated in place)."""
    tissue, aux, label, hipmap = out
    s, c, r = hip.lateral, hip.centre, hip.radius
    cx, cy, cz = _t(c)
    tex = a.texture(x, y, z) * np.float32(0.05)
    rel = (x - cx, y - cy, z - cz)
    dist = np.sqrt(rel[0] ** 2 + rel[1] ** 2 + rel[2] ** 2)
    u_open = (rel[0] * hip.opening[0] + rel[1] * hip.opening[1] + rel[2] * hip.opening[2]) / (
        dist + 1e-6
    )
    along = rel[0] * hip.neck_dir[0] + rel[1] * hip.neck_dir[1] + rel[2] * hip.neck_dir[2]
    j = hip.junction
    rn = hip.neck_radius

    # joint capsule with its fluid (a thin film, or an effusion), then its fibrous wall
    fluid = np.minimum(
        dist - (r + hip.joint_space + hip.effusion),
        capsule(x, y, z, _t(c), _t(c + 0.7 * (j - c)), rn + 0.5 + hip.effusion),
    )
    tissue[(fluid < 1.5) & (fluid >= 0)] = TENDON
    tissue[fluid < 0] = FLUID
    # pelvic bones: acetabular shell, medial wall, rami, ischium, ilium
    ff_p = np.float32(a.marrow_pelvis) + tex
    inner = r + hip.joint_space
    # the cup: a spherical shell cut by the rim (angular term as arc length, mm)
    rim = (u_open - np.float32(hip.cover_cos)) * dist
    shell = np.maximum(np.maximum(inner - dist, dist - inner - hip.wall), rim)
    w = abs(cx)
    pelvis = np.minimum.reduce(
        [
            shell,
            ellipsoid(x, y, z, (cx - s * (inner + 7), 5, 10), (7, 30, 35)),
            capsule(x, y, z, (cx - s * 15, -r - 5, -10), (s * 4, -55, -25), 10, 8),
            capsule(x, y, z, (s * 10, -50, -40), (s * (w - 35), 35, -70), 7, 9),
            capsule(x, y, z, (cx - s * 5, r + 8, -8), (s * (w - 25), 50, -65), 15, 17),
            capsule(x, y, z, (cx - s * 20, r + 12, 5), (s * (w - 50), 45, 0), 6),
            capsule(x, y, z, (cx, 8, r + 12), (s * (w - 15), 55, 110), 16, 12),
            ellipsoid(x, y, z, (cx + s * 8, 30, 85), (11, 55, 45)),
        ]
    )
    _bone(tissue, aux, pelvis, 2.0, ff_p)
    # articular cartilage: acetabular and femoral
    tissue[(dist >= r) & (dist < inner) & (u_open < hip.cover_cos + 0.2)] = CARTILAGE
    tissue[(dist >= r) & (dist < r + hip.joint_space / 2) & (along < 0.3 * r)] = CARTILAGE
    # femur: head, neck, intertrochanteric region, trochanters, shaft
    head = sphere(x, y, z, _t(c), r)
    fovea = sphere(x, y, z, _t(c + r * hip.fovea_dir), hip.fovea_radius)
    head = np.maximum(head, -fovea)
    parts = [
        head,
        capsule(x, y, z, _t(c), _t(j), rn, 1.25 * rn),
        ellipsoid(x, y, z, _t(j), (1.2 * rn, 1.3 * rn, 1.7 * rn)),
        ellipsoid(x, y, z, _t(j + (s * 14, 8, 12)), (14, 20, 26)),
        ellipsoid(x, y, z, _t(j + 35 * hip.shaft_dir + (-s * 14, 10, 0)), (8, 8, 12)),
        capsule(x, y, z, _t(j + 10 * hip.shaft_dir), _t(j + 250 * hip.shaft_dir), 14.0),
    ]
    stack = np.stack(parts)
    which = np.argmin(stack, axis=0)
    femur = np.min(stack, axis=0)
    t_head, t_neck, t_shaft = hip.cortex
    cortex = np.array([t_head, t_neck, t_neck, t_neck, t_neck, t_shaft], np.float32)[which]
    f_head, f_neck, f_troch, f_shaft = hip.fat_fraction
    ff = np.array([f_head, f_neck, f_neck, f_troch, f_neck, f_shaft], np.float32)[which]
    _bone(tissue, aux, femur, cortex, np.clip(ff + tex, 0.05, 0.99))
    notch = (fovea < 0) & (dist < r + 1) & (femur >= 0)
    tissue[notch] = FAT
    tissue[
        notch
        & (capsule(x, y, z, _t(c + r * hip.fovea_dir), _t(c + (r + 6) * hip.fovea_dir), 2.5) < 0)
    ] = TENDON

    in_head = head_mask(hip, x, y, z)
    marrow = in_head & (tissue != CORTEX)
    # physeal scar: a thin curved plate of dense bone in the base of the head
    perp2 = np.maximum(dist**2 - along**2, 0)
    offset, curve, width = hip.physis
    tissue[marrow & (np.abs(along - offset + curve * perp2) < width / 2)] = CORTEX
    if hip.oedema is not None:
        reach, drop = hip.oedema
        centre = c + 0.4 * r * hip.neck_dir
        oedema = (sphere(x, y, z, _t(centre), reach) < 0) & np.isin(tissue, (YELLOW, RED))
        oedema &= femur < 0
        tissue[oedema] = OEDEMA
        aux[oedema] *= np.float32(1.0 - drop)
    label[in_head] = 1
    hipmap[in_head] = index
    lesion = hip.lesion
    if lesion is not None and math.isfinite(lesion.threshold):
        g = lesion.field(x, y, z) - np.float32(lesion.threshold)
        necrotic = in_head & (g > 0)
        label[necrotic] = 2
        soft = necrotic & (tissue != CORTEX)
        tissue[soft] = np.where(g < lesion.band_mm, BAND, NECROTIC)[soft]
        aux[soft] = np.clip(lesion.mix(x, y, z) * 0.5 + 0.5, 0, 1)[soft]
        if lesion.crescent:
            depth = r - dist
            tissue[soft & (depth > t_head) & (depth < t_head + 1.5)] = FLUID


def sample(
    a: Anatomy, x: F32, y: F32, z: F32
) -> tuple[npt.NDArray[np.uint8], F32, npt.NDArray[np.uint8], npt.NDArray[np.int8]]:
    """Tissue class, auxiliary value, head label and hip index at world points (mm).

    ``x, y, z``: float32 arrays of one shape (patient LPS, mm). Returns arrays of that
    shape: tissue uint8 (:data:`TISSUES`), aux float32, label uint8 (0/1/2), hip int8.
    """
    shape = np.shape(x)
    ax, ay, az = to_anatomy(a, x, y, z)
    n = ax.size
    tissue = np.zeros(n, np.uint8)
    aux = np.zeros(n, np.float32)
    label = np.zeros(n, np.uint8)
    hipmap = np.full(n, -1, np.int8)

    half_w, half_d, yb = a.body
    narrow = 1.0 - 0.12 * np.clip((az - 40.0) / 80.0, 0.0, 1.0)
    r_out = np.sqrt((ax / (half_w * narrow)) ** 2 + ((ay - yb) / half_d) ** 2)
    tissue[r_out < 1.0] = SKIN
    tissue[r_out < 1.0 - a.skin / half_d] = FAT
    f_lat, f_ant, f_post = a.fat
    yi = yb + (f_ant - f_post) / 2
    r_in = np.sqrt(
        (ax / (half_w * narrow - f_lat)) ** 2 + ((ay - yi) / (half_d - (f_ant + f_post) / 2)) ** 2
    )
    deep = np.nonzero(r_in < 1.0)[0]
    tissue[deep] = _paint_muscles(a, ax[deep], ay[deep], az[deep])
    # marbling of muscle (intramuscular fat, fibre bundles): a second smooth field
    aux[deep] = a.marbling(ax[deep], ay[deep], az[deep])

    # pelvic cavity: pelvic fat, obturator internus on the side walls, bladder, rectum
    cw, cd, cyc = a.cavity
    taper = 1.0 - 0.35 * np.clip(-az / 40.0, 0.0, 1.0)
    r_cav = np.sqrt((ax / (cw * taper)) ** 2 + ((ay - cyc) / cd) ** 2)
    cav = (r_cav < 1.0) & (az > -45) & (az < 90)
    tissue[cav] = FAT
    tissue[cav & (r_cav > 0.72) & (np.abs(ax) > 0.55 * cw * taper)] = MUSCLE
    for centre, radius in a.bowel:
        loop = sphere(ax, ay, az, centre, radius)
        tissue[cav & (loop < 0)] = VISCERA
        if radius > 15:  # a gas-filled loop; smaller ones hold intermediate contents
            tissue[cav & (loop < -2.5)] = AIR
    for top, bottom, radius in a.pelvic_vessels:
        vessel = cav & (capsule(ax, ay, az, top, bottom, radius) < 0)
        tissue[vessel] = VESSEL
        aux[vessel] = 0.0
    bx, by, bz, bcy = a.bladder
    if bx > 3.0:
        bl = ellipsoid(ax, ay, az, (0, bcy, bz / 2), (bx, by, bz))
        tissue[cav & (bl < 0)] = VISCERA
        tissue[cav & (bl < -3.0)] = URINE
    viscus = ellipsoid(ax, ay, az, (0, 15, -25), (18, 16, 22))
    tissue[cav & (viscus < 0)] = VISCERA
    rr, ry, gas = a.rectum
    rect = capsule(ax, ay, az, (0, ry, -45), (0, ry + 10, 90), rr)
    tissue[rect < 0] = VISCERA
    if gas:
        tissue[ellipsoid(ax, ay, az, (0, ry - 2, 10), (rr * 0.6, rr * 0.5, 30)) < 0] = AIR
    # sacrum, coccyx, pubic symphysis
    _bone(tissue, aux, ellipsoid(ax, ay, az, (0, 90, 110), (45, 25, 60)), 2.0, a.marrow_pelvis)
    _bone(tissue, aux, capsule(ax, ay, az, (0, 98, 55), (0, 82, 5), 8, 5), 1.5, a.marrow_pelvis)
    tissue[ellipsoid(ax, ay, az, (0, -55, -25), (4, 9, 15)) < 0] = CARTILAGE
    # femoral vessels and nerve in their fat, anterior-medial to each hip
    for hip in a.hips:
        s, w, r = hip.lateral, abs(float(hip.centre[0])), hip.radius
        top, bottom = (s * (w - 28), -r - 18, 80.0), (s * (w - 18), -r - 38, -100.0)
        tissue[capsule(ax, ay, az, top, bottom, 16) < 0] = FAT

        def shifted(p: Vec, dx: float, sign: float = s) -> Vec:
            return (p[0] + sign * dx, p[1], p[2])

        tissue[capsule(ax, ay, az, shifted(top, 10), shifted(bottom, 10), 3.5) < 0] = MUSCLE
        tissue[capsule(ax, ay, az, top, bottom, 4.5) < 0] = VESSEL
        vein = capsule(ax, ay, az, shifted(top, -12), shifted(bottom, -12), 6.0) < 0
        tissue[vein] = VESSEL
        aux[vein] = 1.0 if a.slow_vein else 0.0

    for index, hip in enumerate(a.hips):
        near = np.nonzero((np.abs(ax - hip.centre[0]) < 130.0) & (ay > -100) & (ay < 110))[0]
        parts = (tissue[near], aux[near], label[near], hipmap[near])
        _paint_hip(a, hip, index, ax[near], ay[near], az[near], parts)
        tissue[near], aux[near], label[near], hipmap[near] = parts
    return (
        tissue.reshape(shape),
        aux.reshape(shape),
        label.reshape(shape),
        hipmap.reshape(shape),
    )
