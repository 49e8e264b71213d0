"""The acetabular roof on a coronal slice, found in the image from the femoral head's mask.

On a coronal T1 image the femoral head's fatty marrow is bright; above it, across the
joint (cartilage, intermediate), lies the acetabulum's subchondral bone plate, a thin
low-signal line, and above that the bright marrow of the ilium. Lateral to the
acetabular edge the line and the marrow stop: the capsule, labrum and gluteal muscles
are intermediate. The weight-bearing portion of the JIC classification is the part of
the head under the roof, up to that lateral edge (Sugano et al., J Orthop Sci 2002).

Method (:func:`find_roof`), lengths in mm on the slice's grid:

1. Fit a circle to the head's outline (least squares); ``r`` its radius.
2. Cast rays from the circle's centre every ``step_deg``, from medial horizontal
   (-90 degrees from superior) through superior (0) to ``max_lateral_deg`` lateral, and
   sample the image along each ray from ``r - 1`` to ``r + search_mm`` (bilinear).
3. A ray is *roofed* when, between ``line_from_mm`` and ``line_within_mm`` past the
   head's surface (past the head's own subchondral plate), the profile dips below
   ``line_level`` x the bright level (the acetabulum's subchondral line), and beyond
   the dip, within ``bone_within_mm``, it rises above ``bone_level`` x bright (the
   ilium's marrow); or, where the roof thins to its bevelled lateral tip (cortex
   without marrow), when the dip is below ``tip_level`` x bright, darker than any soft
   tissue on T1. The bright level is the 95th percentile within ``search_mm`` of the
   head's circle: fatty marrow, whatever share of the head is necrotic.
4. Starting from the roofed ray nearest superior, the run of roofed rays is followed
   laterally, bridging gaps of at most ``max_gap_deg``; its last ray is the lateral
   edge. The roof mask is every roofed ray of the run (and of the medial side, which
   JIC counts from the head's medial edge anyway), painted along the dark run of the
   subchondral line (the sourcil, whose lateral end is the edge).

Pure numpy/scipy. ``lateral_col_sign`` and ``superior_row_sign`` as in
:mod:`grading.engine.classifications`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.hips import circle_fit, outline_points_mm

__all__ = ["AcetabularRoof", "RoofConfig", "find_roof"]

BoolImage = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class RoofConfig:
    """Lengths in mm, angles in degrees, levels as fractions of the head's marrow."""

    step_deg: float = 2.0
    max_lateral_deg: float = 100.0
    search_mm: float = 22.0
    sample_mm: float = 0.4
    line_from_mm: float = 1.0
    line_within_mm: float = 8.0
    line_level: float = 0.45
    tip_level: float = 0.25
    line_max_mm: float = 3.0
    bone_within_mm: float = 12.0
    bone_level: float = 0.6
    max_gap_deg: float = 6.0


DEFAULT_ROOF = RoofConfig()


@dataclass(frozen=True)
class AcetabularRoof:
    """``mask``: ``(H, W)`` roof pixels; ``edge_rc``: the lateral edge (pixel row, column)
    on the line; ``edge_deg``: its angle at the head's centre from superior towards
    lateral; ``centre_rc`` and ``radius_mm``: the head's fitted circle."""

    mask: BoolImage
    edge_rc: tuple[float, float]
    edge_deg: float
    centre_rc: tuple[float, float]
    radius_mm: float


def _roofed(
    profile: npt.NDArray[np.float32],
    distances: npt.NDArray[np.float64],
    radius: float,
    bright: float,
    config: RoofConfig,
) -> tuple[float, float] | None:
    """(start, end) of the acetabulum's subchondral line along one ray, distances from
    the centre in mm, or None: a dark line followed by bright marrow, or (the bevelled
    tip of the edge) a line darker than any soft tissue."""
    beyond = distances - radius
    window = (beyond >= config.line_from_mm) & (beyond <= config.line_within_mm)
    if not window.any():
        return None
    indices = np.flatnonzero(window)
    dip = int(indices[np.argmin(profile[indices])])
    if profile[dip] > config.line_level * bright:
        return None
    after = (distances > distances[dip]) & (distances <= distances[dip] + config.bone_within_mm)
    marrow = np.flatnonzero(after & (profile >= config.bone_level * bright))
    if marrow.size == 0 and profile[dip] > config.tip_level * bright:
        return None
    # the line: the run through the dip darker than halfway from the dip to line_level
    level = 0.5 * (float(profile[dip]) + config.line_level * bright)
    start, end = dip, dip
    while start - 1 >= 0 and window[start - 1] and profile[start - 1] <= level:
        start -= 1
    while end + 1 < len(profile) and profile[end + 1] <= level:
        end += 1
    end = min(end, int(np.searchsorted(distances, distances[start] + config.line_max_mm)))
    return float(distances[start]), float(distances[min(end, len(distances) - 1)])


def find_roof(
    pixels: npt.NDArray[np.floating],
    head: BoolImage,
    *,
    pixel_spacing_mm: tuple[float, float],
    lateral_col_sign: int,
    superior_row_sign: int = -1,
    config: RoofConfig = DEFAULT_ROOF,
) -> AcetabularRoof | None:
    """The acetabular roof above ``head`` on one coronal slice (see the module
    docstring), or None when no ray near superior is roofed. ``pixels``: ``(H, W)``
    stored values; ``head``: ``(H, W)`` bool on the same grid."""
    head = np.asarray(head, dtype=bool)
    if head.sum() < 20:
        return None
    spacing = np.asarray(pixel_spacing_mm, dtype=np.float64)
    points = outline_points_mm(head, pixel_spacing_mm)
    if len(points) < 8:
        return None
    cy, cx, radius = circle_fit(points)
    image = np.asarray(pixels, dtype=np.float32)
    yy, xx = np.mgrid[0 : head.shape[0], 0 : head.shape[1]]
    near = np.hypot(yy * spacing[0] - cy, xx * spacing[1] - cx) <= radius + config.search_mm
    bright = float(np.percentile(image[near], 95.0))
    if bright <= 0:
        return None
    distances = np.arange(radius - 1.0, radius + config.search_mm, config.sample_mm)
    angles = np.arange(-90.0, config.max_lateral_deg + 1e-6, config.step_deg)
    found: list[tuple[float, float, float] | None] = []
    for angle in angles:
        theta = math.radians(float(angle))
        d_row = superior_row_sign * math.cos(theta)
        d_col = lateral_col_sign * math.sin(theta)
        rows = (cy + distances * d_row) / spacing[0]
        cols = (cx + distances * d_col) / spacing[1]
        profile = ndimage.map_coordinates(image, [rows, cols], order=1, mode="nearest")
        hit = _roofed(profile, distances, radius, bright, config)
        found.append(None if hit is None else (float(angle), *hit))
    roofed = [i for i, f in enumerate(found) if f is not None]
    if not roofed:
        return None
    zero = int(np.argmin(np.abs(angles)))
    start = min(roofed, key=lambda i: abs(i - zero))
    if abs(float(angles[start])) > 30.0:
        return None  # nothing over the top of the head: not a roof
    gap = max(1, int(round(config.max_gap_deg / config.step_deg)))
    edge = start
    for i in roofed:
        if i > edge and i - edge <= gap:
            edge = i
    mask = np.zeros(head.shape, dtype=bool)
    for i in roofed:
        if i > edge:
            continue
        angle, line, end = found[i]  # type: ignore[misc]
        theta = math.radians(angle)
        along = np.arange(line, end + 1e-6, min(config.sample_mm, 0.5 * float(spacing.min())))
        rows = np.round((cy + along * superior_row_sign * math.cos(theta)) / spacing[0])
        cols = np.round((cx + along * lateral_col_sign * math.sin(theta)) / spacing[1])
        keep = (rows >= 0) & (rows < head.shape[0]) & (cols >= 0) & (cols < head.shape[1])
        mask[rows[keep].astype(int), cols[keep].astype(int)] = True
    edge_angle, edge_line, _ = found[edge]  # type: ignore[misc]
    theta = math.radians(edge_angle)
    edge_rc = (
        (cy + edge_line * superior_row_sign * math.cos(theta)) / spacing[0],
        (cx + edge_line * lateral_col_sign * math.sin(theta)) / spacing[1],
    )
    return AcetabularRoof(
        mask=mask,
        edge_rc=(float(edge_rc[0]), float(edge_rc[1])),
        edge_deg=float(edge_angle),
        centre_rc=(cy / spacing[0], cx / spacing[1]),
        radius_mm=radius,
    )
