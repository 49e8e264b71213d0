"""Draw one axial plane of a :class:`~.anatomy.Pelvis`: T1 signal and the label map.

Shapes are implicit (signed distances in mm, negative inside) evaluated at pixel
centres, so any matrix, spacing, rotation or window renders the same anatomy.
Each structure is evaluated only on the pixel window its bounding box covers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from grading.engine.phantoms.anatomy import SIDES, HipSide, Pelvis
from grading.engine.phantoms.bones import (
    head_mask,
    head_window,
    necrosis_field,
    paint_femur,
    paint_joint,
    paint_pelvic_bone,
    paint_sacrum,
)
from grading.engine.phantoms.shapes import Canvas, PlaneGrid, smooth_noise
from grading.engine.phantoms.soft_tissue import paint_body, paint_pelvic_cavity

F32 = npt.NDArray[np.float32]

__all__ = [
    "PlaneGrid",
    "head_mask",
    "head_window",
    "necrosis_field",
    "render_plane",
    "render_plane_tissue",
    "smooth_noise",
]


def render_plane(
    pelvis: Pelvis, grid: PlaneGrid, rng: np.random.Generator
) -> tuple[F32, npt.NDArray[np.uint8], dict[HipSide, int], dict[HipSide, int]]:
    """T1 signal (relative to fat, before acquisition effects) and labels of one plane.

    Returns ``(signal (H, W) float32, labels (H, W) uint8, head pixels per side,
    necrosis pixels per side)``.
    """
    cv = render_plane_tissue(pelvis, grid, rng)
    return cv.img, cv.lab, cv.head_px, cv.necrosis_px


def render_plane_tissue(pelvis: Pelvis, grid: PlaneGrid, rng: np.random.Generator) -> Canvas:
    """The drawn plane as a :class:`~.shapes.Canvas`: ``img`` (signal), ``lab`` (labels),
    ``tissue`` (``(H, W)`` uint8 :class:`~.tissues.TissueClass` codes), ``head_px`` and
    ``necrosis_px``. Same random draws as :func:`render_plane`."""
    cv = Canvas(pelvis, grid, rng)
    paint_body(cv)
    paint_pelvic_cavity(cv)
    paint_sacrum(cv)
    for side in SIDES:
        hip = pelvis.hips[side]
        paint_pelvic_bone(cv, hip)
        paint_joint(cv, hip)
        paint_femur(cv, hip)
    return cv
