"""Signed-distance primitives and smooth random fields, vectorised over point arrays.

All functions take the point coordinates as three float32 arrays ``x, y, z`` of one
shape (mm, patient LPS, anatomy frame) and return an array of that shape. A signed
distance is negative inside, in mm (exact for spheres and capsules, approximate for
ellipsoids).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
Vec = tuple[float, float, float]


def unit(v: Vec | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    a = np.asarray(v, dtype=np.float64)
    return a / float(np.linalg.norm(a))


def segment_distance(x: F32, y: F32, z: F32, a: Vec, b: Vec) -> tuple[F32, F32]:
    """Distance (mm) from each point to the segment a-b, and the position 0..1 along it."""
    ab = np.subtract(b, a)
    length2 = float(ab @ ab)
    dx, dy, dz = x - np.float32(a[0]), y - np.float32(a[1]), z - np.float32(a[2])
    t = np.clip((dx * ab[0] + dy * ab[1] + dz * ab[2]) / length2, 0.0, 1.0).astype(np.float32)
    ex, ey, ez = dx - t * ab[0], dy - t * ab[1], dz - t * ab[2]
    return np.sqrt(ex * ex + ey * ey + ez * ez).astype(np.float32), t


def capsule(x: F32, y: F32, z: F32, a: Vec, b: Vec, r_a: float, r_b: float | None = None) -> F32:
    """Tapered capsule: radius r_a at a, r_b at b (mm)."""
    d, t = segment_distance(x, y, z, a, b)
    rb = r_a if r_b is None else r_b
    return (d - (r_a + t * (rb - r_a))).astype(np.float32)


def sphere(x: F32, y: F32, z: F32, c: Vec, r: float) -> F32:
    out: F32 = (np.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2) - r).astype(np.float32)
    return out


def ellipsoid(x: F32, y: F32, z: F32, c: Vec, axes: Vec) -> F32:
    """Axis-aligned ellipsoid, semi-axes in mm; the distance is scaled by the shortest axis."""
    q = np.sqrt(
        ((x - c[0]) / axes[0]) ** 2 + ((y - c[1]) / axes[1]) ** 2 + ((z - c[2]) / axes[2]) ** 2
    )
    out: F32 = ((q - 1.0) * min(axes)).astype(np.float32)
    return out


@dataclass(frozen=True)
class Waves:
    """A smooth random field: a sum of plane waves, ``sum a_k sin(k_k . p + phi_k)``.

    ``k``: (W, 3) wave vectors in rad/mm; ``phase``: (W,); ``amplitude``: (W,).
    """

    k: npt.NDArray[np.float64]
    phase: npt.NDArray[np.float64]
    amplitude: npt.NDArray[np.float64]

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        n: int,
        wavelength_mm: tuple[float, float],
        amplitude: tuple[float, float],
    ) -> Waves:
        direction = rng.normal(size=(n, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        lam = rng.uniform(*wavelength_mm, size=n)
        return cls(
            k=direction * (2 * np.pi / lam)[:, None],
            phase=rng.uniform(0, 2 * np.pi, size=n),
            amplitude=rng.uniform(*amplitude, size=n) / np.sqrt(n),
        )

    def __call__(self, x: F32, y: F32, z: F32) -> F32:
        out = np.zeros(np.shape(x), dtype=np.float32)
        for k, phi, amp in zip(self.k, self.phase, self.amplitude, strict=True):
            out += np.float32(amp) * np.sin(
                np.float32(k[0]) * x + np.float32(k[1]) * y + np.float32(k[2]) * z + np.float32(phi)
            )
        return out
