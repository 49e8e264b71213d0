"""The ONFH lesion of one femoral head: a 3D level set, its band and its T1 appearance.

The lesion is ``{p in head : g(p) > threshold}`` with
``g(p) = -|M (p - s)| + n(p)`` (mm): ``s`` a subchondral seed in the anterosuperior
dome, ``M`` anisotropic (flatter radially), ``n`` a smooth random field that makes the
margin serpiginous. The threshold is chosen afterwards, from the head voxels a series or
crop actually samples, so the recorded proportion hits the requested grade exactly
(:func:`threshold_for`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import GRADE_ORDER, grade_from_proportion
from grading.engine.phantoms_b.geometry import F32, Waves, unit
from grading.engine.types import Grade

# Interior appearance on T1 (Mitchell classes): fat-like (A), blood-like (B), fluid-like (C),
# fibrous / sclerotic (D).
STYLES = ("fat", "blood", "fluid", "fibrous")
_STYLE_WEIGHTS = (0.35, 0.15, 0.25, 0.25)

# target proportion ranges drawn per grade (fractions of the head)
PROPORTION_RANGE: dict[Grade, tuple[float, float]] = {
    Grade.MILD: (0.003, 0.145),
    Grade.MODERATE: (0.155, 0.295),
    Grade.SEVERE: (0.31, 0.65),
}


@dataclass(frozen=True)
class Lesion:
    """One lesion, in the anatomy frame (mm). ``threshold`` is NaN until set."""

    seed: tuple[float, float, float]
    matrix: npt.NDArray[np.float64]  # (3, 3), maps p - seed to the anisotropic frame
    waves: Waves
    band_mm: float  # 0: no band
    style: str  # one of STYLES, or "a+b" for a mixture
    mix: Waves  # 0..1 field mixing the two styles of a mixture
    crescent: bool
    threshold: float = math.nan

    def field(self, x: F32, y: F32, z: F32) -> F32:
        """``g`` at the points (mm; larger is deeper inside the lesion)."""
        dx, dy, dz = x - self.seed[0], y - self.seed[1], z - self.seed[2]
        m = self.matrix
        qx = m[0, 0] * dx + m[0, 1] * dy + m[0, 2] * dz
        qy = m[1, 0] * dx + m[1, 1] * dy + m[1, 2] * dz
        qz = m[2, 0] * dx + m[2, 1] * dy + m[2, 2] * dz
        g: F32 = (-np.sqrt(qx * qx + qy * qy + qz * qz) + self.waves(x, y, z)).astype(np.float32)
        return g

    @property
    def styles(self) -> tuple[str, str]:
        a, _, b = self.style.partition("+")
        return a, (b or a)


def draw_lesion(
    rng: np.random.Generator,
    *,
    centre: npt.NDArray[np.float64],
    radius: float,
    lateral: float,
    severe: bool,
) -> Lesion:
    """A lesion seeded in the anterosuperior dome of the head at ``centre`` (mm)."""
    anterior = math.radians(rng.uniform(10, 35))
    lateral_tilt = math.radians(rng.uniform(-10, 20))
    direction = unit(
        (
            lateral * math.sin(lateral_tilt),
            -math.sin(anterior),
            math.cos(anterior) * math.cos(lateral_tilt),
        )
    )
    seed = centre + direction * radius * rng.uniform(0.55, 0.9)
    # anisotropy: shrink distances radially (along direction) less than tangentially
    radial = rng.uniform(1.0, 1.6)
    matrix = np.eye(3) + (radial - 1.0) * np.outer(direction, direction)
    if rng.random() < 0.25:
        a, b = rng.choice(len(STYLES), size=2, replace=False)
        style = f"{STYLES[a]}+{STYLES[b]}"
    else:
        style = STYLES[int(rng.choice(len(STYLES), p=_STYLE_WEIGHTS))]
    return Lesion(
        seed=(float(seed[0]), float(seed[1]), float(seed[2])),
        matrix=matrix,
        waves=Waves.draw(rng, 5, (10.0, 30.0), (1.0, 4.0)),
        band_mm=0.0 if rng.random() < 0.1 else float(rng.uniform(1.5, 4.0)),
        style=style,
        mix=Waves.draw(rng, 3, (8.0, 20.0), (1.0, 1.0)),
        crescent=severe and rng.random() < 0.3,
    )


def target_proportion(rng: np.random.Generator, grade: Grade) -> float:
    """A proportion drawn uniformly inside the grade's range (0 for none)."""
    if grade == Grade.NONE:
        return 0.0
    low, high = PROPORTION_RANGE[grade]
    return float(rng.uniform(low, high))


def threshold_for(values: F32, proportion: float, grade: Grade) -> float:
    """Threshold on ``g`` so that the fraction of ``values`` above it is ``proportion``.

    ``values``: g over the sampled head voxels of one hip. The count is nudged so its
    fraction has exactly ``grade``; raises ValueError when no count can (too few voxels).
    """
    n = int(values.size)
    if grade == Grade.NONE or n == 0:
        return math.inf
    order = np.sort(values)[::-1]
    rank = GRADE_ORDER.index

    k = min(max(1, round(proportion * n)), n)
    while k > 1 and rank(grade_from_proportion(k / n)) > rank(grade):
        k -= 1
    while k < n and rank(grade_from_proportion(k / n)) < rank(grade):
        k += 1
    if grade_from_proportion(k / n) != grade:
        raise ValueError(f"{n} head voxels cannot give a {grade.value} proportion")
    if k == n:
        return float(order[-1]) - 1.0
    return float((order[k - 1] + order[k]) / 2.0)
