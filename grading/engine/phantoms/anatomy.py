"""The anatomy model behind the phantoms: one pelvis with two hips, sampled from a seed.

Model coordinates ``(u, v, w)`` in mm: ``u`` towards the patient's left, ``v``
posterior, ``w`` superior (DICOM LPS axes), origin midway between the two
femoral head centres at their mean height. Each hip also has a local frame
``(x, y, z)``: ``x`` lateral (away from the midline), ``y`` posterior, ``z``
superior, origin at its femoral head centre, so one description serves both
sides (the left hip is the mirror image of the right).

Tissue signals are relative to subcutaneous fat = 1 (T1: fat and yellow marrow
bright, muscle grey, cortex, tendon, flowing blood and urine dark).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import MILD_BELOW, MODERATE_UP_TO, NONE_BELOW
from grading.engine.types import Grade

FloatArray = npt.NDArray[np.float64]

HipSide = Literal["right", "left"]
SIDES: tuple[HipSide, HipSide] = ("right", "left")
# u grows towards the patient's left, so the right hip sits at negative u.
SIDE_SIGN: dict[HipSide, float] = {"right": -1.0, "left": 1.0}

NecrosisPattern = Literal["none", "homogeneous", "fat_like", "mixed"]
NECROSIS_PATTERNS: tuple[NecrosisPattern, ...] = ("homogeneous", "fat_like", "mixed")
Mimic = Literal["physeal_scar", "oedema"]
MIMICS: tuple[Mimic, ...] = ("physeal_scar", "oedema")

# Proportions drawn for a requested grade keep clear of the Steinberg edges so a
# one-pixel difference never changes the grade.
GRADE_PROPORTION_RANGE: dict[Grade, tuple[float, float]] = {
    Grade.NONE: (0.0, 0.0),
    Grade.MILD: (max(0.02, 4 * NONE_BELOW), MILD_BELOW - 0.02),
    Grade.MODERATE: (MILD_BELOW + 0.02, MODERATE_UP_TO - 0.02),
    Grade.SEVERE: (MODERATE_UP_TO + 0.03, 0.55),
}


@dataclass
class Tissue:
    """T1 signal of each tissue, relative to subcutaneous fat."""

    fat: float = 1.0
    marrow_femur: float = 0.9
    marrow_pelvis: float = 0.72
    cortex: float = 0.05
    cartilage: float = 0.42
    joint_line: float = 0.24
    muscle: float = 0.33
    urine: float = 0.12
    vessel: float = 0.05
    vein: float = 0.2  # slow flow: dark to intermediate
    nerve: float = 0.42
    bowel: float = 0.3
    labrum: float = 0.07
    skin: float = 0.55


@dataclass
class Necrosis:
    """A 3-D necrotic segment: head points with ``g(p) > threshold``.

    ``g(p) = p.axis - curvature |p_perp|^2 / R + sum_i a_i sin(k_i.p + phi_i)``
    in the hip's local frame (mm), so the lesion is a cap at the anterosuperior
    pole whose margin bulges towards the head centre and wanders (serpiginous).
    The outer ``band_mm`` of the lesion is the dark reactive band.
    """

    pattern: NecrosisPattern = "none"
    target: float | None = None  # requested proportion of the head volume (0..1)
    axis: FloatArray = field(default_factory=lambda: np.array([0.0, -0.6, 0.8]))
    curvature: float = 0.6
    wave_vectors: FloatArray = field(default_factory=lambda: np.zeros((0, 3)))
    wave_phases: FloatArray = field(default_factory=lambda: np.zeros(0))
    wave_amplitudes: FloatArray = field(default_factory=lambda: np.zeros(0))
    band_mm: float = 2.0
    band_signal: float = 0.1  # relative to fat
    interior_signal: float = 0.35  # relative to fat (fat_like: near marrow)
    threshold: float = float("inf")


@dataclass
class HeadVariants:
    """Normal findings of an adult femoral head that are darker than fatty marrow on T1.

    All are viable head in the label map (label 1); each is present per hip with its
    own random size and contrast (:func:`sample_head_variants`), in normal and lesioned
    hips alike. Hip-local frame (mm, ``x`` lateral, ``y`` posterior, ``z`` superior).

    - ``fovea``: the fovea capitis, a pit in the medial, slightly posteroinferior
      articular surface where the ligamentum teres inserts (no cartilage there). On T1
      a dark notch (ligament, with a little fat) lined by cortex. ``fovea_dir`` (unit,
      from the head centre), ``fovea_radius_mm`` (the pit's mouth), ``fovea_depth_mm``,
      ``fovea_signal`` (relative to fat).
    - ``red_marrow``: residual haematopoietic (red) marrow islands, intermediate on T1
      (less fat than yellow marrow: darker than it, brighter than muscle), with feathery
      edges, commonest in the medial and inferior head and along the old physis.
      ``islands``: ``(K, 7)`` rows of centre (3), semi-axes (3) in mm and the signal
      relative to the hip's marrow.
    - ``trabeculae``: the primary compressive trabeculae, a dense fan of bone from the
      medial neck cortex (calcar) to the superior, weight-bearing surface: less marrow
      fat per voxel, so a darker, stippled band on T1. ``trabecula_from``/``_to``
      (mm), ``trabecula_width_mm`` at its upper end, ``trabecula_drop`` (the fraction
      of marrow signal lost at its axis).
    """

    fovea: bool = False
    fovea_dir: FloatArray = field(default_factory=lambda: np.array([-1.0, 0.0, 0.0]))
    fovea_radius_mm: float = 7.0
    fovea_depth_mm: float = 3.0
    fovea_signal: float = 0.2
    red_marrow: bool = False
    islands: FloatArray = field(default_factory=lambda: np.zeros((0, 7)))
    trabeculae: bool = False
    trabecula_from: FloatArray = field(default_factory=lambda: np.zeros(3))
    trabecula_to: FloatArray = field(default_factory=lambda: np.zeros(3))
    trabecula_width_mm: float = 5.0
    trabecula_drop: float = 0.2


def sample_head_variants(rng: np.random.Generator, radius: float) -> HeadVariants:
    """Random normal variants of one head (see :class:`HeadVariants`). Presence rates:
    fovea 0.8 (always there anatomically, but a small one hides in the joint line),
    red marrow islands 0.35, compressive trabeculae visible 0.6."""
    fovea_dir = _unit(np.array([-1.0, rng.uniform(0.0, 0.4), rng.uniform(-0.5, -0.1)]))
    k = int(rng.integers(1, 5))
    islands = []
    for _ in range(k):
        # mostly medial and inferior (metaphyseal side of the old physis), some anywhere
        if rng.uniform() < 0.7:
            direction = _unit(
                np.array([rng.uniform(-1, 0.3), rng.uniform(-0.6, 0.6), rng.uniform(-1, 0.1)])
            )
        else:
            direction = _unit(rng.standard_normal(3))
        centre = direction * radius * rng.uniform(0.15, 0.7)
        axes = rng.uniform(3.0, 9.0, 3)
        islands.append([*centre, *axes, rng.uniform(0.55, 0.82)])
    lateral_end = rng.uniform(-0.05, 0.3)
    return HeadVariants(
        fovea=bool(rng.uniform() < 0.8),
        fovea_dir=fovea_dir,
        fovea_radius_mm=float(rng.uniform(5.0, 9.0)),
        fovea_depth_mm=float(rng.uniform(1.5, 4.5)),
        fovea_signal=float(rng.uniform(0.12, 0.4)),
        red_marrow=bool(rng.uniform() < 0.35),
        islands=np.asarray(islands, dtype=np.float64),
        trabeculae=bool(rng.uniform() < 0.6),
        trabecula_from=np.array([rng.uniform(0.1, 0.4), rng.uniform(-0.15, 0.15), -0.95]) * radius,
        trabecula_to=np.array([lateral_end, rng.uniform(-0.2, 0.1), 0.97]) * radius,
        trabecula_width_mm=float(rng.uniform(3.0, 8.0)),
        trabecula_drop=float(rng.uniform(0.08, 0.35)),
    )


@dataclass
class Hip:
    """One hip joint (femur and acetabulum) in its local frame, mm."""

    side: HipSide
    center: FloatArray  # femoral head centre, model (u, v, w)
    radius: float  # bony femoral head radius incl. subchondral plate
    neck_dir: FloatArray  # unit vector head centre -> neck base (lateral, posterior, inferior)
    neck_length: float
    neck_radius: float
    cup_axis: FloatArray  # unit vector out of the acetabular opening
    cup_thickness: float
    necrosis: Necrosis
    mimic: Mimic | None = None
    scar_normal: FloatArray = field(default_factory=lambda: np.array([0.75, 0.15, -0.64]))
    scar_offset: float = 8.0
    scar_width: float = 1.0
    oedema_depth: float = 0.12
    marrow_scale: float = 1.0
    variants: HeadVariants = field(default_factory=HeadVariants)

    @property
    def sign(self) -> float:
        return SIDE_SIGN[self.side]


@dataclass
class Pelvis:
    """A whole subject: body outline, pelvis, two hips and soft tissue; model frame, mm."""

    hips: dict[HipSide, Hip]
    tissue: Tissue
    half_width: float  # body outline half width (u)
    ant: float  # v of the anterior skin
    post: float  # v of the posterior skin
    fat_lateral: float
    fat_anterior: float
    fat_posterior: float
    boxiness: float  # 0 = elliptic outline, ~0.8 = squarer
    outline_poly: FloatArray  # (4,) small shape terms of the outline (fractions)
    cavity_half_width: float
    cavity_half_depth: float
    cavity_center_v: float
    bladder_center: FloatArray  # (u, v, w)
    bladder_radii: FloatArray  # (u, v, w) half axes
    rectum_center: FloatArray  # (u, v)
    rectum_radius: float
    sacrum_v: float
    muscle_jitter: FloatArray  # (K, 3): per-muscle seed shift (mm, mm) and size factor
    fat_plane_width: float
    muscle_fat_fraction: float  # intramuscular fat streaks, 0..~0.15


def _unit(v: FloatArray) -> FloatArray:
    return np.asarray(v / np.linalg.norm(v), dtype=np.float64)


def grade_proportion(rng: np.random.Generator, grade: Grade) -> float:
    """A proportion well inside the grade's Steinberg range."""
    low, high = GRADE_PROPORTION_RANGE[Grade(grade)]
    return float(rng.uniform(low, high)) if high > 0 else 0.0


def resolve_target(rng: np.random.Generator, request: float | str | Grade | None) -> float:
    """Turn a requested proportion, grade name or None (random grade) into a proportion."""
    if request is None:
        grade = Grade(rng.choice([g.value for g in Grade], p=[0.3, 0.25, 0.2, 0.25]))
        return grade_proportion(rng, grade)
    if isinstance(request, str):
        return grade_proportion(rng, Grade(request))
    target = float(request)
    if not 0.0 <= target <= 0.95:
        raise ValueError(f"necrosis proportion must be within [0, 0.95], got {target!r}")
    return target


def sample_necrosis(
    rng: np.random.Generator, radius: float, target: float, pattern: NecrosisPattern | None
) -> Necrosis:
    if target <= 0.0:
        return Necrosis(pattern="none", target=0.0)
    chosen: NecrosisPattern = (
        pattern
        if pattern is not None
        else NECROSIS_PATTERNS[int(rng.choice(3, p=[0.45, 0.3, 0.25]))]
    )
    tilt = np.deg2rad(rng.uniform(25, 55))  # from superior towards anterior
    axis = _unit(np.array([rng.uniform(-0.1, 0.3), -np.sin(tilt), np.cos(tilt)]))
    k = 5
    directions = rng.standard_normal((k, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = rng.uniform(13.0, 30.0, k)
    return Necrosis(
        pattern=chosen,
        target=target,
        axis=axis,
        curvature=float(rng.uniform(0.3, 0.9)),
        wave_vectors=directions * (2 * np.pi / wavelengths)[:, None],
        wave_phases=rng.uniform(0, 2 * np.pi, k),
        wave_amplitudes=rng.uniform(0.6, 1.8, k) * radius / 24.0,
        band_mm=float(rng.uniform(1.3, 2.6)),
        band_signal=float(rng.uniform(0.06, 0.14)),
        interior_signal=float(
            rng.uniform(0.22, 0.42) if chosen == "homogeneous" else rng.uniform(0.78, 0.92)
        ),
    )


def sample_hip(
    rng: np.random.Generator,
    side: HipSide,
    center: FloatArray,
    radius: float,
    target: float,
    pattern: NecrosisPattern | None,
    mimic: Mimic | None,
) -> Hip:
    shaft_angle = np.deg2rad(rng.uniform(36, 46))  # neck below the horizontal (neck-shaft 126-136)
    anteversion = np.deg2rad(rng.uniform(5, 20))
    neck_dir = _unit(
        np.array(
            [
                np.cos(shaft_angle) * np.cos(anteversion),
                np.cos(shaft_angle) * np.sin(anteversion),
                -np.sin(shaft_angle),
            ]
        )
    )
    inclination = np.deg2rad(rng.uniform(38, 50))
    cup_anteversion = np.deg2rad(rng.uniform(12, 24))
    cup_axis = _unit(
        np.array(
            [
                np.sin(inclination) * np.cos(cup_anteversion),
                -np.sin(inclination) * np.sin(cup_anteversion),
                -np.cos(inclination),
            ]
        )
    )
    scar_normal = _unit(neck_dir + rng.normal(0, 0.15, 3))
    return Hip(
        side=side,
        center=center,
        radius=radius,
        neck_dir=neck_dir,
        neck_length=float(rng.uniform(1.9, 2.2) * radius),
        neck_radius=float(rng.uniform(0.6, 0.68) * radius),
        cup_axis=cup_axis,
        cup_thickness=float(rng.uniform(5, 8.5)),
        necrosis=sample_necrosis(rng, radius, target, pattern),
        mimic=mimic,
        scar_normal=scar_normal,
        scar_offset=float(rng.uniform(-0.05, 0.3) * radius),
        scar_width=float(rng.uniform(1.2, 2.0)),
        oedema_depth=float(rng.uniform(0.08, 0.16)),
        marrow_scale=float(rng.uniform(0.95, 1.03)),
    )


def sample_pelvis(
    rng: np.random.Generator,
    targets: dict[HipSide, float],
    patterns: dict[HipSide, NecrosisPattern | None] | None = None,
    mimics: dict[HipSide, Mimic | None] | None = None,
) -> Pelvis:
    """A random adult pelvis; ``targets`` gives each hip's necrotic proportion (0 = normal)."""
    patterns = patterns or {}
    mimics = mimics or {}
    half_gap = rng.uniform(80, 98)  # head centre to the midline
    radius = rng.uniform(21.5, 26.0)
    obliquity = rng.uniform(-2.5, 2.5)  # head heights differ a little
    fat = rng.uniform(6, 34)
    hips: dict[HipSide, Hip] = {}
    # The normal variants come from a stream of their own (a jump ahead of ``rng`` that
    # leaves ``rng`` where it is), so adding them left every other draw of a seed as it was.
    variant_rng = np.random.Generator(cast(np.random.PCG64, rng.bit_generator).jumped())
    for side in SIDES:
        sign = SIDE_SIGN[side]
        center = np.array([sign * half_gap, 0.0, sign * obliquity / 2])
        mimic = mimics.get(side, "unset")
        if mimic == "unset":
            roll = rng.uniform()
            mimic = "physeal_scar" if roll < 0.2 else "oedema" if roll < 0.32 else None
        hips[side] = sample_hip(
            rng,
            side,
            center,
            float(radius * rng.uniform(0.98, 1.02)),
            targets.get(side, 0.0),
            patterns.get(side),
            mimic,  # type: ignore[arg-type]
        )
        hips[side].variants = sample_head_variants(variant_rng, hips[side].radius)
    tissue = Tissue(
        marrow_femur=float(rng.uniform(0.84, 0.95)),
        marrow_pelvis=float(rng.uniform(0.72, 0.88)),
        muscle=float(rng.uniform(0.27, 0.4)),
        cartilage=float(rng.uniform(0.36, 0.48)),
        urine=float(rng.uniform(0.08, 0.16)),
        vein=float(rng.uniform(0.08, 0.4)),
        bowel=float(rng.uniform(0.25, 0.38)),
    )
    half_width = half_gap + rng.uniform(62, 78) + fat * rng.uniform(0.8, 1.2)
    ant = -(rng.uniform(55, 70) + fat * rng.uniform(0.6, 1.1))
    post = rng.uniform(95, 120) + fat * rng.uniform(0.9, 1.4)
    cavity_half_width = half_gap - radius - rng.uniform(14, 20)
    bladder_radii = np.array(
        [rng.uniform(25, 50), rng.uniform(18, 38), rng.uniform(22, 42)], dtype=float
    )
    bladder_center = np.array(
        [rng.uniform(-6, 6), rng.uniform(-30, -18), rng.uniform(-20, 5)], dtype=float
    )
    return Pelvis(
        hips=hips,
        tissue=tissue,
        half_width=float(half_width),
        ant=float(ant),
        post=float(post),
        fat_lateral=float(fat * rng.uniform(0.8, 1.2)),
        fat_anterior=float(fat * rng.uniform(0.5, 1.0) + 4),
        fat_posterior=float(fat * rng.uniform(0.9, 1.5) + 4),
        boxiness=float(rng.uniform(0.05, 0.5)),
        outline_poly=rng.normal(0.0, 0.025, 4),
        cavity_half_width=float(cavity_half_width),
        cavity_half_depth=float(rng.uniform(40, 52)),
        cavity_center_v=float(rng.uniform(-2, 8)),
        bladder_center=bladder_center,
        bladder_radii=bladder_radii,
        rectum_center=np.array([rng.uniform(-8, 8), rng.uniform(35, 48)]),
        rectum_radius=float(rng.uniform(11, 18)),
        sacrum_v=float(post - fat * 1.2 - rng.uniform(32, 45)),
        muscle_jitter=np.column_stack(
            [rng.normal(0, 3.0, 40), rng.normal(0, 3.0, 40), rng.uniform(0.85, 1.15, 40)]
        ),
        fat_plane_width=float(rng.uniform(0.8, 2.0)),
        muscle_fat_fraction=float(rng.uniform(0.0, 0.06)),
    )
