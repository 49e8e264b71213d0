"""Pixel grids of a plane or a window, and fitting the lesion to a requested proportion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

import numpy as np
import numpy.typing as npt

from grading.engine.phantoms.anatomy import (
    SIDES,
    Hip,
    HipSide,
    Mimic,
    NecrosisPattern,
    Pelvis,
    resolve_target,
    sample_pelvis,
)
from grading.engine.phantoms.render import PlaneGrid, head_mask, head_window, necrosis_field
from grading.engine.types import Grade

NecrosisRequest = float | str | Grade | None


def rotation(theta: float) -> npt.NDArray[np.float64]:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def window_grid(
    center_uv: tuple[float, float],
    shape: tuple[int, int],
    spacing: tuple[float, float],
    theta: float,
    w: float,
) -> PlaneGrid:
    """A grid of ``shape`` pixels centred on model point ``center_uv``; the body is
    rotated by ``theta`` (radians) in the scanner, so image axes are rotated by -theta in
    the model."""
    back = rotation(-theta)
    row_step = back @ np.array([0.0, spacing[0]])
    col_step = back @ np.array([spacing[1], 0.0])
    origin = np.array(center_uv) - (shape[0] - 1) / 2 * row_step - (shape[1] - 1) / 2 * col_step
    return PlaneGrid(
        shape,
        (float(origin[0]), float(origin[1])),
        (float(row_step[0]), float(row_step[1])),
        (float(col_step[0]), float(col_step[1])),
        float(w),
    )


def fit_threshold(hip: Hip, grids: Sequence[PlaneGrid]) -> None:
    """Set the lesion threshold so exactly the target share of the head pixels on
    ``grids`` is necrotic (the proportion a reader of those planes measures)."""
    nec = hip.necrosis
    if nec.pattern == "none" or not nec.target:
        nec.threshold = float("inf")
        return
    values = []
    for grid in grids:
        got = head_window(grid, hip)
        if got is None:
            continue
        _, x, y, z = got
        inside = head_mask(hip, x, y, z)
        values.append(necrosis_field(hip, x, y, z)[inside])
    if not values:
        nec.threshold = float("inf")
        return
    g = np.sort(np.concatenate(values))[::-1]
    k = int(round(nec.target * g.size))
    if k <= 0:
        nec.threshold = float("inf")
    else:
        nec.threshold = float(0.5 * (g[k - 1] + g[k])) if k < g.size else float(g[-1] - 1.0)


_BALL_CACHE: dict[int, npt.NDArray[np.float32]] = {}


def _unit_ball(n: int) -> npt.NDArray[np.float32]:
    """Points of a regular grid inside the unit ball, ``(3, M)``; ``n`` points per radius."""
    if n not in _BALL_CACHE:
        axis = (np.arange(-n, n + 1, dtype=np.float32) + 0.5) / (n + 0.5)
        x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
        inside = x * x + y * y + z * z <= 1.0
        _BALL_CACHE[n] = np.stack([x[inside], y[inside], z[inside]])
    return _BALL_CACHE[n]


def fit_threshold_volume(hip: Hip, step_mm: float = 2.0) -> None:
    """Set the lesion threshold to the target share of the head *volume* (3-D grid)."""
    nec = hip.necrosis
    if nec.pattern == "none" or not nec.target:
        nec.threshold = float("inf")
        return
    pts = _unit_ball(max(int(round(hip.radius / step_mm)), 4)) * np.float32(hip.radius)
    inside = head_mask(hip, pts[0], pts[1], pts[2])
    x, y, z = pts[0][inside], pts[1][inside], pts[2][inside]
    g = np.sort(necrosis_field(hip, x, y, z))[::-1]
    k = int(round(nec.target * g.size))
    nec.threshold = float(0.5 * (g[k - 1] + g[k])) if 0 < k < g.size else float("inf")


def sides_request(value: Mapping[str, object] | None) -> dict[str, object]:
    if value is None:
        return {}
    unknown = set(value) - set(SIDES)
    if unknown:
        raise ValueError(f"sides must be 'right' or 'left', got {sorted(unknown)}")
    return dict(value)


def new_pelvis(
    rng: np.random.Generator,
    necrosis: Mapping[str, NecrosisRequest] | None,
    patterns: Mapping[str, NecrosisPattern] | None,
    mimics: Mapping[str, Mimic | None] | None,
) -> Pelvis:
    req = cast(dict[HipSide, NecrosisRequest], sides_request(necrosis))
    targets = {s: resolve_target(rng, req.get(s)) for s in SIDES}
    chosen = cast(dict[HipSide, NecrosisPattern | None], sides_request(patterns))
    fixed = cast(dict[HipSide, Mimic | None], sides_request(mimics))
    return sample_pelvis(rng, targets, chosen, fixed if mimics is not None else None)
