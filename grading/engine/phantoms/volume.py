"""A 3-D phantom of both hips, sliced in any plane with any MR weighting.

One tissue volume (1 mm voxels, LPS: ``x`` towards the patient's left, ``y`` posterior,
``z`` superior; array index ``[k, j, i]`` = ``[z, y, x]``) holds both femoral heads with
their necks and shafts, the acetabulum (roof with a bevelled lateral edge), cartilage,
joint fluid, muscle, subcutaneous fat and the bladder. A necrotic lesion is a cap of the
head around an axis; its margin is a double band (outer sclerotic rim, dark on every
weighting; inner granulation tissue, bright on T2, STIR and fat-saturated T2: the
double-line sign), the core is fat-like or low; some hips have marrow oedema, some a
flattened (collapsed) head.

:func:`make_volume_phantom` samples the anatomy from a seed; :meth:`VolumePhantom.render`
gives the image of one weighting (:data:`CONTRAST`); :func:`slice_volume` samples axial,
coronal or sagittal slices of that image and of the tissue labels on a series' grid.
Truth per hip (:class:`HipVolumeTruth`) comes from the same volume: head and necrosis
volumes, proportion and grade, and the JIC type and Kerboul arcs measured on the exact
mid-coronal and mid-sagittal planes through the head centre with
:mod:`grading.engine.classifications`.

Research and teaching data, not patient data. Pure numpy/scipy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.classifications import (
    JicType,
    extent_from_proportion,
    jic_type,
    kerboul_combined,
    necrotic_arc_deg,
)
from grading.engine.grading_rules import grade_from_proportion
from grading.engine.types import Grade

__all__ = [
    "CONTRAST",
    "PLANES",
    "WEIGHTINGS",
    "HipVolumeTruth",
    "PlaneSlices",
    "Tissue",
    "VolumePhantom",
    "make_volume_phantom",
    "slice_volume",
    "slice_truth",
]

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
Plane = Literal["axial", "coronal", "sagittal"]
Weighting = Literal["T1", "T2", "PD", "STIR", "T2FS"]
PLANES: tuple[Plane, ...] = ("axial", "coronal", "sagittal")
WEIGHTINGS: tuple[Weighting, ...] = ("T1", "T2", "PD", "STIR", "T2FS")


class Tissue:
    """Tissue labels of the volume (uint8)."""

    AIR = 0
    FAT = 1
    MUSCLE = 2
    CORTEX = 3
    MARROW_FEMUR = 4
    MARROW_PELVIS = 5
    CARTILAGE = 6
    FLUID = 7
    NECROSIS_CORE = 8
    SCLEROTIC_RIM = 9
    GRANULATION = 10
    OEDEMA = 11
    URINE = 12
    NECROSIS_LOW = 13  # a core that is not fat-like (dark on T1)


# Signal of each tissue relative to subcutaneous fat on T1 (fat = 1), per weighting.
# T1: fat and yellow marrow bright, fluid and oedema dark. T2 (fast spin echo): fat
# still bright, fluid brightest. STIR and fat-saturated T2: fat and fatty marrow dark,
# fluid, oedema and granulation bright.
CONTRAST: dict[str, dict[int, float]] = {
    "T1": {
        0: 0.0,
        1: 1.0,
        2: 0.33,
        3: 0.05,
        4: 0.9,
        5: 0.72,
        6: 0.42,
        7: 0.15,
        8: 0.78,
        9: 0.08,
        10: 0.2,
        11: 0.38,
        12: 0.12,
        13: 0.3,
    },
    "T2": {
        0: 0.0,
        1: 0.85,
        2: 0.25,
        3: 0.05,
        4: 0.72,
        5: 0.62,
        6: 0.5,
        7: 1.0,
        8: 0.62,
        9: 0.08,
        10: 0.92,
        11: 0.85,
        12: 1.0,
        13: 0.45,
    },
    "PD": {
        0: 0.0,
        1: 0.9,
        2: 0.45,
        3: 0.06,
        4: 0.85,
        5: 0.75,
        6: 0.65,
        7: 0.7,
        8: 0.8,
        9: 0.1,
        10: 0.7,
        11: 0.72,
        12: 0.7,
        13: 0.55,
    },
    "STIR": {
        0: 0.0,
        1: 0.05,
        2: 0.3,
        3: 0.03,
        4: 0.08,
        5: 0.12,
        6: 0.45,
        7: 1.0,
        8: 0.12,
        9: 0.06,
        10: 0.85,
        11: 0.8,
        12: 1.0,
        13: 0.4,
    },
    "T2FS": {
        0: 0.0,
        1: 0.08,
        2: 0.25,
        3: 0.04,
        4: 0.1,
        5: 0.14,
        6: 0.45,
        7: 1.0,
        8: 0.14,
        9: 0.06,
        10: 0.8,
        11: 0.75,
        12: 1.0,
        13: 0.38,
    },
}
# Stored value of subcutaneous fat on T1; the other weightings are scaled alike.
FULL_SCALE = 1000.0
NECROSIS_LABELS = (
    Tissue.NECROSIS_CORE,
    Tissue.SCLEROTIC_RIM,
    Tissue.GRANULATION,
    Tissue.NECROSIS_LOW,
)


@dataclass(frozen=True)
class HipSpec:
    """One hip: ``side`` "right" (negative x) or "left". Angles in degrees, lengths in mm.

    The lesion is the head's cap within ``cap_deg`` of its axis, which leans
    ``lateral_deg`` from vertical towards lateral and ``anterior_deg`` forwards;
    ``cap_deg`` 0 means no lesion. ``ce_deg``: the lateral edge of the roof, measured
    from vertical at the head centre. ``collapse_mm``: the head flattened under the
    lesion by this depth."""

    side: str
    centre_mm: tuple[float, float, float]
    radius_mm: float
    ce_deg: float
    cap_deg: float
    lateral_deg: float
    anterior_deg: float
    fat_like: bool
    oedema: bool
    collapse_mm: float

    @property
    def lateral_sign(self) -> float:
        return -1.0 if self.side == "right" else 1.0


@dataclass(frozen=True)
class HipVolumeTruth:
    """Truth of one hip from the volume. Volumes in mm³, arcs in degrees."""

    side: str
    centre_mm: tuple[float, float, float]
    radius_mm: float
    head_volume_mm3: float
    necrosis_volume_mm3: float
    proportion: float
    grade: Grade
    extent: str | None
    jic_type: JicType | None
    jic_fraction: float | None
    kerboul_coronal_deg: float
    kerboul_sagittal_deg: float
    kerboul_angle_deg: float
    collapse_mm: float

    def as_dict(self) -> dict[str, object]:
        return {
            "side": self.side,
            "centre_mm": list(self.centre_mm),
            "radius_mm": self.radius_mm,
            "head_volume_mm3": round(self.head_volume_mm3, 1),
            "necrosis_volume_mm3": round(self.necrosis_volume_mm3, 1),
            "proportion": round(self.proportion, 5),
            "grade": str(self.grade),
            "extent": self.extent,
            "jic_type": None if self.jic_type is None else str(self.jic_type),
            "jic_fraction": None if self.jic_fraction is None else round(self.jic_fraction, 4),
            "kerboul_coronal_deg": round(self.kerboul_coronal_deg, 1),
            "kerboul_sagittal_deg": round(self.kerboul_sagittal_deg, 1),
            "kerboul_angle_deg": round(self.kerboul_angle_deg, 1),
            "collapse_mm": self.collapse_mm,
        }


@dataclass
class VolumePhantom:
    """``tissues``: ``(Z, Y, X)`` uint8 labels (:class:`Tissue`), 1 mm voxels; voxel
    ``[k, j, i]`` is at ``origin_mm + (i, j, k)`` mm (x, y, z). ``head``/``roof``:
    per hip, bool volumes of the femoral head and the acetabular bone."""

    tissues: U8
    origin_mm: tuple[float, float, float]
    hips: tuple[HipSpec, ...]
    head: dict[str, npt.NDArray[np.bool_]]
    roof: dict[str, npt.NDArray[np.bool_]]
    seed: int
    truth: tuple[HipVolumeTruth, ...] = field(default=())

    voxel_mm: float = 1.0

    def render(self, weighting: str, *, seed: int | None = None, noise: float = 0.02) -> F32:
        """The ``(Z, Y, X)`` image of one weighting in stored-value units: the tissue
        signal, a little partial-volume blur, a smooth coil bias and Rician noise
        (``noise`` x fat's signal)."""
        table = CONTRAST[weighting]
        lut = np.zeros(256, dtype=np.float32)
        for label, value in table.items():
            lut[label] = value * FULL_SCALE
        image = lut[self.tissues]
        image = ndimage.gaussian_filter(image, 0.6)
        rng = np.random.default_rng(
            self.seed * 7919 + WEIGHTINGS.index(weighting) if seed is None else seed
        )
        shape = image.shape
        coarse = rng.normal(0.0, 1.0, size=(3, 3, 3))
        bias = ndimage.zoom(coarse, [s / 3 for s in shape], order=1)[
            : shape[0], : shape[1], : shape[2]
        ]
        image *= (1.0 + 0.06 * bias).astype(np.float32)
        sigma = noise * FULL_SCALE
        real = image + rng.normal(0.0, sigma, size=shape).astype(np.float32)
        imaginary = rng.normal(0.0, sigma, size=shape).astype(np.float32)
        magnitude: F32 = np.hypot(real, imaginary).astype(np.float32)
        return magnitude

    def labels(self) -> U8:
        """``(Z, Y, X)`` uint8: 0 background, 1 viable femoral head, 2 necrosis."""
        out = np.zeros(self.tissues.shape, dtype=np.uint8)
        necrosis = np.isin(self.tissues, NECROSIS_LABELS)
        for head in self.head.values():
            out[head] = 1
            out[head & necrosis] = 2
        return out


def _grid(shape: tuple[int, int, int], origin: tuple[float, float, float]) -> tuple[F32, F32, F32]:
    k, j, i = np.meshgrid(
        np.arange(shape[0], dtype=np.float32),
        np.arange(shape[1], dtype=np.float32),
        np.arange(shape[2], dtype=np.float32),
        indexing="ij",
    )
    return i + origin[0], j + origin[1], k + origin[2]


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return v / np.linalg.norm(v)


def _hip_spec(rng: np.random.Generator, side: str, *, lesion: bool, collapse: bool) -> HipSpec:
    sign = -1.0 if side == "right" else 1.0
    radius = float(rng.uniform(21.0, 25.0))
    cap = float(rng.uniform(28.0, 82.0)) if lesion else 0.0
    # Where the lesion's lateral end falls (degrees from vertical, + lateral): spread so
    # that every JIC type occurs.
    lateral_end = float(rng.uniform(-50.0, 80.0))
    return HipSpec(
        side=side,
        centre_mm=(sign * float(rng.uniform(84.0, 92.0)), float(rng.uniform(-4.0, 4.0)), 0.0),
        radius_mm=radius,
        ce_deg=float(rng.uniform(24.0, 38.0)),
        cap_deg=cap,
        lateral_deg=lateral_end - cap if lesion else 0.0,
        anterior_deg=float(rng.uniform(5.0, 30.0)),
        fat_like=bool(rng.random() < 0.6),
        oedema=bool(lesion and rng.random() < 0.4),
        collapse_mm=float(rng.uniform(1.5, 4.0)) if (lesion and collapse) else 0.0,
    )


def make_volume_phantom(
    seed: int,
    *,
    lesion_sides: tuple[str, ...] = ("right", "left"),
    collapse: bool | None = None,
) -> VolumePhantom:
    """Both hips in one volume, sampled from ``seed``.

    ``lesion_sides``: the hips that have a lesion. ``collapse``: flatten those heads
    (None: one case in four, by seed). About 300 x 200 x 170 mm, 1 mm voxels."""
    rng = np.random.default_rng(seed)
    if collapse is None:
        collapse = bool(rng.random() < 0.25)
    specs = tuple(
        _hip_spec(rng, side, lesion=side in lesion_sides, collapse=collapse)
        for side in ("right", "left")
    )
    origin = (-150.0, -100.0, -95.0)
    shape = (170, 200, 300)
    tissues = np.zeros(shape, dtype=np.uint8)

    # Body: subcutaneous fat around muscle, an elliptic cylinder.
    x2 = np.arange(shape[2], dtype=np.float32)[None, :] + origin[0]
    y2 = np.arange(shape[1], dtype=np.float32)[:, None] + origin[1]
    tissues[:] = np.where((x2 / 150.0) ** 2 + ((y2 - 5.0) / 98.0) ** 2 <= 1.0, Tissue.FAT, 0)[None]
    muscle = (x2 / 136.0) ** 2 + ((y2 - 5.0) / 84.0) ** 2 <= 1.0
    tissues[:, muscle] = Tissue.MUSCLE
    box = (slice(85, 160), slice(20, 90), slice(105, 195))
    x, y, z = _grid(tissues[box].shape, (origin[0] + 105, origin[1] + 20, origin[2] + 85))
    bladder = (x / 38.0) ** 2 + ((y + 40.0) / 26.0) ** 2 + ((z - 30.0) / 28.0) ** 2 <= 1.0
    tissues[box][bladder] = Tissue.URINE

    heads: dict[str, npt.NDArray[np.bool_]] = {}
    roofs: dict[str, npt.NDArray[np.bool_]] = {}
    for spec in specs:
        # Each hip is painted inside a box around it (the rest of the body is far away).
        i0 = max(0, int(round(spec.centre_mm[0] - origin[0])) - 70)
        j0 = max(0, int(round(spec.centre_mm[1] - origin[1])) - 55)
        hip_box = (slice(0, shape[0]), slice(j0, j0 + 110), slice(i0, min(i0 + 140, shape[2])))
        x, y, z = _grid(tissues[hip_box].shape, (origin[0] + i0, origin[1] + j0, origin[2]))
        head_box, roof_box = _paint_hip(tissues[hip_box], x, y, z, spec, rng)
        head = np.zeros(shape, dtype=bool)
        roof = np.zeros(shape, dtype=bool)
        head[hip_box] = head_box
        roof[hip_box] = roof_box
        heads[spec.side] = head
        roofs[spec.side] = roof
    phantom = VolumePhantom(tissues, origin, specs, heads, roofs, seed)
    phantom.truth = tuple(_truth(phantom, spec) for spec in specs)
    return phantom


def _paint_hip(
    tissues: U8, x: F32, y: F32, z: F32, spec: HipSpec, rng: np.random.Generator
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Paint one hip into ``tissues``; returns its head and acetabular-bone masks."""
    cx, cy, cz = spec.centre_mm
    sign = spec.lateral_sign
    r_head = spec.radius_mm
    dx, dy, dz = x - cx, y - cy, z - cz
    lateral = dx * sign
    radius = np.sqrt(dx * dx + dy * dy + dz * dz)
    # Unit direction from the centre (0 at the centre itself).
    safe = np.maximum(radius, 1e-3)
    u_lat, u_ant, u_sup = lateral / safe, -dy / safe, dz / safe

    # Pelvis: the ilium above the socket (marrow in a cortex shell).
    ilium = ((lateral + 12.0) / 26.0) ** 2 + (dy / 38.0) ** 2 + ((dz - 48.0) / 42.0) ** 2
    tissues[ilium <= 1.0] = Tissue.CORTEX
    tissues[ilium <= 0.8] = Tissue.MARROW_PELVIS

    # The socket: a shell around the head on the side away from the opening, whose
    # lateral rim is bevelled (the outer bone stops short of the inner edge).
    ce = math.radians(spec.ce_deg)
    opening = _unit(np.array([math.cos(ce), math.sin(math.radians(15.0)), -math.sin(ce)]))
    facing = u_lat * opening[0] + u_ant * opening[1] + u_sup * opening[2]
    depth = radius - (r_head + 2.0)
    shell = (depth > 0.0) & (depth < 12.0)
    bevel = np.sin(np.radians(2.5 * np.clip(depth, 0.0, None)))
    cup = shell & (facing < -bevel)
    tissues[cup] = Tissue.MARROW_PELVIS
    tissues[cup & ((depth < 1.5) | (depth > 10.5))] = Tissue.CORTEX
    # The cavity inside the socket and the ilium is joint, not bone.
    tissues[(radius <= r_head + 2.0) & (facing < 0.2)] = Tissue.CARTILAGE
    roof = cup | ((ilium <= 1.0) & (radius > r_head + 2.0))

    # Femur: neck towards lateral and inferior (neck-shaft angle 130 deg), then the shaft.
    neck_dir = np.array([math.cos(math.radians(40.0)), 0.0, -math.sin(math.radians(40.0))])
    along = lateral * neck_dir[0] + dz * neck_dir[2]
    off_lat = lateral - along * neck_dir[0]
    off_sup = dz - along * neck_dir[2]
    neck = (along > 0) & (along < 48.0) & (off_lat**2 + dy**2 + off_sup**2 < (0.62 * r_head) ** 2)
    end_lat, end_sup = 48.0 * neck_dir[0], 48.0 * neck_dir[2]
    shaft = (dz < end_sup + 8.0) & ((lateral - end_lat) ** 2 + dy**2 < 15.0**2)
    trochanter = ((lateral - end_lat - 4.0) / 14.0) ** 2 + (dy / 16.0) ** 2 + (
        (dz - end_sup - 6.0) / 18.0
    ) ** 2 < 1.0
    femur_outer = neck | shaft | trochanter
    femur_inner = ndimage.binary_erosion(femur_outer, iterations=2)
    tissues[femur_outer & (tissues != Tissue.CARTILAGE)] = Tissue.CORTEX
    tissues[femur_inner] = Tissue.MARROW_FEMUR

    # Head: cartilage around it, a thin subchondral plate, fatty marrow.
    head = radius <= r_head
    tissues[(radius <= r_head + 1.6) & ~head & ~cup] = Tissue.CARTILAGE
    # Joint fluid in the inferior recess around the neck.
    recess = (
        (radius > r_head + 1.6) & (radius < r_head + 4.0) & (u_sup < -0.3) & ~cup & ~femur_outer
    )
    tissues[recess] = Tissue.FLUID
    tissues[head] = Tissue.MARROW_FEMUR
    tissues[head & (radius > r_head - 0.8)] = Tissue.CORTEX

    if spec.cap_deg > 0.0:
        lat = math.radians(spec.lateral_deg)
        ant = math.radians(spec.anterior_deg)
        axis = _unit(
            np.array([math.sin(lat) * math.cos(ant), math.sin(ant), math.cos(lat) * math.cos(ant)])
        )
        projection = (lateral * axis[0] + (-dy) * axis[1] + dz * axis[2]).astype(np.float32)
        # The margin wanders a little (serpiginous), by up to ~1.5 mm.
        phase = rng.uniform(0, 2 * np.pi, size=3)
        wobble = 1.5 * (
            np.sin(0.21 * dx + phase[0])
            * np.sin(0.19 * dy + phase[1])
            * np.sin(0.23 * dz + phase[2])
        )
        threshold = r_head * math.cos(math.radians(spec.cap_deg))
        margin = projection + wobble - threshold
        lesion = head & (margin > 0.0)
        core = Tissue.NECROSIS_CORE if spec.fat_like else Tissue.NECROSIS_LOW
        tissues[lesion] = core
        tissues[lesion & (margin < 3.2)] = Tissue.GRANULATION
        tissues[lesion & (margin < 1.6)] = Tissue.SCLEROTIC_RIM
        if spec.oedema:
            oedema = (head | (neck & (along < 25.0))) & ~lesion & (margin > -14.0)
            tissues[oedema & np.isin(tissues, (Tissue.MARROW_FEMUR,))] = Tissue.OEDEMA
        if spec.collapse_mm > 0.0:
            # The head gives way under the lesion: its surface sinks along the axis.
            sunk = head & (projection > r_head - spec.collapse_mm) & (margin > 0.0)
            tissues[sunk] = Tissue.FLUID
            head = head & ~sunk
    return head, roof


def _truth(phantom: VolumePhantom, spec: HipSpec) -> HipVolumeTruth:
    head = phantom.head[spec.side]
    necrosis = head & np.isin(phantom.tissues, NECROSIS_LABELS)
    head_mm3 = float(head.sum()) * phantom.voxel_mm**3
    necrosis_mm3 = float(necrosis.sum()) * phantom.voxel_mm**3
    proportion = 0.0 if head_mm3 == 0 else min(1.0, necrosis_mm3 / head_mm3)
    cx, cy, cz = spec.centre_mm
    ox, oy, oz = phantom.origin_mm
    j = int(round(cy - oy))
    i = int(round(cx - ox))
    # Mid-coronal: rows z (superior row 0 after the flip), columns x.
    coronal_head = head[::-1, j, :]
    coronal_lesion = necrosis[::-1, j, :]
    coronal_roof = phantom.roof[spec.side][::-1, j, :]
    jic = jic_type(
        coronal_head,
        coronal_lesion,
        coronal_roof,
        pixel_spacing_mm=(phantom.voxel_mm, phantom.voxel_mm),
        lateral_col_sign=int(spec.lateral_sign),
    )
    coronal_arc = necrotic_arc_deg(coronal_head, coronal_lesion, pixel_spacing_mm=(1.0, 1.0))
    sagittal_arc = necrotic_arc_deg(
        head[::-1, :, i], necrosis[::-1, :, i], pixel_spacing_mm=(1.0, 1.0)
    )
    kerboul = kerboul_combined(coronal_arc, sagittal_arc)
    extent = extent_from_proportion(proportion)
    return HipVolumeTruth(
        side=spec.side,
        centre_mm=spec.centre_mm,
        radius_mm=spec.radius_mm,
        head_volume_mm3=head_mm3,
        necrosis_volume_mm3=necrosis_mm3,
        proportion=proportion,
        grade=grade_from_proportion(proportion),
        extent=None if extent is None else str(extent),
        jic_type=jic.type,
        jic_fraction=jic.lateral_fraction,
        kerboul_coronal_deg=coronal_arc,
        kerboul_sagittal_deg=sagittal_arc,
        kerboul_angle_deg=0.0 if kerboul is None else kerboul.angle_deg,
        collapse_mm=spec.collapse_mm,
    )


# ---------------------------------------------------------------------------
# Slicing
# ---------------------------------------------------------------------------

# ImageOrientationPatient of each plane: rows, then columns (LPS).
ORIENTATION: dict[str, tuple[float, float, float, float, float, float]] = {
    "axial": (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    "coronal": (1.0, 0.0, 0.0, 0.0, 0.0, -1.0),
    "sagittal": (0.0, 1.0, 0.0, 0.0, 0.0, -1.0),
}


@dataclass(frozen=True)
class PlaneSlices:
    """Slices of one plane. ``images``: ``(N, H, W)`` float32; ``labels``: ``(N, H, W)``
    uint8 (0/1/2: head, necrosis, as :meth:`VolumePhantom.labels`); ``roof``: ``(N, H, W)``
    bool acetabular bone; slice ``k`` has its top-left pixel at ``first_position_mm +
    k * spacing_mm * normal`` with ``orientation`` (the writer's convention)."""

    plane: str
    images: F32
    labels: U8
    roof: npt.NDArray[np.bool_]
    pixel_spacing_mm: tuple[float, float]
    spacing_mm: float
    orientation: tuple[float, float, float, float, float, float]
    first_position_mm: tuple[float, float, float]


def _plane_axes(
    plane: str,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    o = ORIENTATION[plane]
    row, col = np.asarray(o[:3]), np.asarray(o[3:])
    return row, col, np.cross(row, col)


def slice_volume(
    phantom: VolumePhantom,
    image: F32,
    plane: str,
    *,
    centre_mm: tuple[float, float, float],
    count: int,
    spacing_mm: float,
    field_of_view_mm: tuple[float, float],
    pixel_mm: float,
    offset_mm: float = 0.0,
) -> PlaneSlices:
    """``count`` slices of ``image`` (a :meth:`VolumePhantom.render`) in ``plane``,
    centred on ``centre_mm`` along the slice normal (plus ``offset_mm``, so the middle
    slice need not pass through a head centre), ``spacing_mm`` apart; each ``field_of_view_mm``
    (along rows' direction, along columns' direction) at ``pixel_mm``. Image values are
    interpolated linearly, labels by nearest neighbour."""
    row, col, normal = _plane_axes(plane)
    width = int(round(field_of_view_mm[0] / pixel_mm))
    height = int(round(field_of_view_mm[1] / pixel_mm))
    centre = np.asarray(centre_mm, dtype=np.float64)
    start = centre - row * field_of_view_mm[0] / 2 - col * field_of_view_mm[1] / 2
    start = start + normal * (offset_mm - spacing_mm * (count - 1) / 2)
    a = np.arange(height, dtype=np.float64) * pixel_mm
    b = np.arange(width, dtype=np.float64) * pixel_mm
    origin = np.asarray(phantom.origin_mm)
    labels_volume = phantom.labels()
    roof_volume = np.zeros(phantom.tissues.shape, dtype=np.uint8)
    for mask in phantom.roof.values():
        roof_volume[mask] = 1
    images, labels, roofs = [], [], []
    for k in range(count):
        corner = start + normal * spacing_mm * k
        points = (
            corner[None, None, :]
            + a[:, None, None] * col[None, None, :]
            + b[None, :, None] * row[None, None, :]
        )
        voxel = (points - origin) / phantom.voxel_mm  # x, y, z -> i, j, k
        coords = np.stack([voxel[..., 2], voxel[..., 1], voxel[..., 0]])
        images.append(ndimage.map_coordinates(image, coords, order=1, mode="constant", cval=0.0))
        labels.append(
            ndimage.map_coordinates(labels_volume, coords, order=0, mode="constant", cval=0)
        )
        roofs.append(
            ndimage.map_coordinates(roof_volume, coords, order=0, mode="constant", cval=0) > 0
        )
    first = start
    return PlaneSlices(
        plane=plane,
        images=np.clip(np.stack(images), 0.0, None).astype(np.float32),
        labels=np.stack(labels).astype(np.uint8),
        roof=np.stack(roofs),
        pixel_spacing_mm=(pixel_mm, pixel_mm),
        spacing_mm=spacing_mm,
        orientation=ORIENTATION[plane],
        first_position_mm=(float(first[0]), float(first[1]), float(first[2])),
    )


def slice_truth(slices: PlaneSlices) -> list[float]:
    """Position of each slice along the normal (mm): for finding the mid slice."""
    _, _, normal = _plane_axes(slices.plane)
    first = float(np.dot(slices.first_position_mm, normal))
    return [first + k * slices.spacing_mm for k in range(slices.images.shape[0])]
