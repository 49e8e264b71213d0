"""Bilateral axial series and single-hip crops with ground truth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import grade_from_proportion, proportion_of
from grading.engine.phantoms.acquisition import Acquisition, acquire, bias_field, sample_acquisition
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
from grading.engine.phantoms.render import (
    PlaneGrid,
    head_mask,
    head_window,
    necrosis_field,
    render_plane,
)
from grading.engine.types import Grade, MRSlice

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

MATRICES: tuple[tuple[int, int], ...] = (
    (256, 256),
    (320, 320),
    (384, 384),
    (512, 512),
    (256, 320),
    (320, 256),
    (320, 384),
    (448, 448),
)
AXIAL: tuple[float, float, float, float, float, float] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
NecrosisRequest = float | str | Grade | None


@dataclass(frozen=True)
class HipTruth:
    """Ground truth of one hip over a series (volumes from the label maps, mm³)."""

    side: HipSide
    head_volume_mm3: float
    necrosis_volume_mm3: float
    proportion: float
    grade: Grade
    target_proportion: float
    pattern: NecrosisPattern
    mimic: Mimic | None
    head_center_mm: tuple[float, float, float]  # patient (DICOM) coordinates
    head_radius_mm: float
    head_slices: tuple[int, ...]  # indices of the slices showing this head


@dataclass(frozen=True)
class SliceHipTruth:
    """One femoral head on one slice (areas from the label map, mm²)."""

    side: HipSide
    head_area_mm2: float
    necrosis_area_mm2: float
    proportion: float
    grade: Grade


@dataclass(frozen=True)
class PhantomSeries:
    """A bilateral axial T1 series with its ground truth.

    ``images``: ``(N, H, W)`` float32 stored values (whole numbers, 0..``intensity_max``).
    ``labels``: ``(N, H, W)`` uint8, 0 background, 1 viable head, 2 necrosis.
    Slice ``k`` lies at ``first_position + k * spacing_between_slices_mm * (0, 0, 1)``
    (inferior to superior); columns run to the patient's left, rows to posterior.
    ``pixel_spacing_mm``: (row, column) spacing, DICOM order.
    """

    images: F32
    labels: U8
    pixel_spacing_mm: tuple[float, float]
    slice_thickness_mm: float
    spacing_between_slices_mm: float
    image_orientation: tuple[float, float, float, float, float, float]
    first_position: tuple[float, float, float]
    truth: dict[HipSide, HipTruth]
    slice_truth: tuple[tuple[SliceHipTruth, ...], ...]
    acquisition: Acquisition
    seed: int

    def position(self, k: int) -> tuple[float, float, float]:
        x, y, z = self.first_position
        return (x, y, z + k * self.spacing_between_slices_mm)

    def mr_slices(self) -> list[MRSlice]:
        """The series as engine :class:`MRSlice` objects (no DICOM round trip)."""
        return [
            MRSlice(
                pixels=self.images[k],
                pixel_spacing_mm=self.pixel_spacing_mm,
                slice_thickness_mm=self.slice_thickness_mm,
                spacing_between_slices_mm=self.spacing_between_slices_mm,
                image_position=self.position(k),
                image_orientation=self.image_orientation,
                instance_number=k + 1,
                source=f"phantom-{self.seed}-{k + 1:03d}",
            )
            for k in range(self.images.shape[0])
        ]


@dataclass(frozen=True)
class PhantomCrop:
    """A single-hip window, as in the paper's 256 x 256 crops.

    ``image``: ``(size, size)`` float32 stored values; ``labels``: ``(size, size)`` uint8.
    ``proportion``/``grade``: of this crop's own label map (area ratio).
    ``level_mm``: slice height relative to the head centre (+ superior).
    """

    image: F32
    labels: U8
    pixel_spacing_mm: tuple[float, float]
    side: HipSide
    proportion: float
    grade: Grade
    has_head: bool
    level_mm: float
    pattern: NecrosisPattern
    mimic: Mimic | None
    seed: int
    acquisition: Acquisition


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
    inside = head_mask(hip, pts[0], pts[1], pts[2])  # type: ignore[arg-type]
    x, y, z = pts[0][inside], pts[1][inside], pts[2][inside]
    g = np.sort(necrosis_field(hip, x, y, z))[::-1]  # type: ignore[arg-type]
    k = int(round(nec.target * g.size))
    nec.threshold = float(0.5 * (g[k - 1] + g[k])) if 0 < k < g.size else float("inf")


def _sides_request(value: Mapping[str, object] | None) -> dict[str, object]:
    if value is None:
        return {}
    unknown = set(value) - set(SIDES)
    if unknown:
        raise ValueError(f"sides must be 'right' or 'left', got {sorted(unknown)}")
    return dict(value)


def _new_pelvis(
    rng: np.random.Generator,
    necrosis: Mapping[str, NecrosisRequest] | None,
    patterns: Mapping[str, NecrosisPattern] | None,
    mimics: Mapping[str, Mimic | None] | None,
) -> Pelvis:
    req = _sides_request(necrosis)
    targets = {s: resolve_target(rng, req.get(s)) for s in SIDES}  # type: ignore[arg-type]
    return sample_pelvis(
        rng,
        targets,
        dict(_sides_request(patterns)),  # type: ignore[arg-type]
        dict(_sides_request(mimics)) if mimics is not None else None,
    )


def make_bilateral_series(
    seed: int,
    *,
    n_slices: int = 20,
    matrix: tuple[int, int] | None = None,
    pixel_spacing_mm: float | tuple[float, float] | None = None,
    slice_thickness_mm: float | None = None,
    necrosis: Mapping[str, NecrosisRequest] | None = None,
    patterns: Mapping[str, NecrosisPattern] | None = None,
    mimics: Mapping[str, Mimic | None] | None = None,
    snr: float | None = None,
    intensity_max: int | None = None,
    rotation_deg: float | None = None,
) -> PhantomSeries:
    """A bilateral axial T1 hip series of ``n_slices`` contiguous slices.

    ``matrix``: (rows, columns), random among :data:`MATRICES` when None.
    ``pixel_spacing_mm``: one value (square pixels) or (row, column); random
    0.6-1.6 mm for a 340-440 mm field of view when None.
    ``slice_thickness_mm``: 3-5 mm when None; slices are contiguous.
    ``necrosis``: per side ("right"/"left") the target volumetric proportion
    (0..0.95), a grade name ("none", "mild", "moderate", "severe") for a
    proportion well inside that grade, or None / missing for a random grade.
    ``patterns``: per side "homogeneous", "fat_like" or "mixed" (random when missing).
    ``mimics``: per side "physeal_scar", "oedema" or None; random when the
    mapping is None. Mimics are labelled viable head.
    ``snr``: marrow signal over noise sigma (8-40 when None).
    ``intensity_max``: largest stored value (1000, 4095 or 30000 when None).
    """
    if n_slices < 1:
        raise ValueError("n_slices must be at least 1")
    rng = np.random.default_rng(seed)
    pelvis = _new_pelvis(rng, necrosis, patterns, mimics)
    if matrix is None:
        matrix = MATRICES[int(rng.integers(len(MATRICES)))]
    rows, cols = int(matrix[0]), int(matrix[1])
    if pixel_spacing_mm is None:
        col_sp = float(np.clip(rng.uniform(340, 440) / cols, 0.6, 1.6))
        row_sp = (
            col_sp
            if rng.uniform() < 0.85
            else float(np.clip(col_sp * rng.uniform(1.05, 1.25), 0.6, 1.6))
        )
        spacing = (round(row_sp, 4), round(col_sp, 4))
    elif isinstance(pixel_spacing_mm, tuple):
        spacing = (float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1]))
    else:
        spacing = (float(pixel_spacing_mm), float(pixel_spacing_mm))
    dz = float(
        slice_thickness_mm
        if slice_thickness_mm is not None
        else round(rng.uniform(3.0, 5.0) * 2) / 2
    )
    theta = np.deg2rad(rotation_deg if rotation_deg is not None else rng.uniform(-6, 6))
    acq = sample_acquisition(rng, snr=snr, intensity_max=intensity_max)

    # where the stack sits: the heads inside it with a few slices above and below
    r = max(h.radius for h in pelvis.hips.values())
    span = (n_slices - 1) * dz
    margin = span - 2 * r
    w0 = (
        -r - float(rng.uniform(5.0, margin - 5.0))
        if margin > 10
        else -span / 2 + float(rng.uniform(-2, 2))
    )
    body_offset = (float(rng.uniform(-15, 15)), float(rng.uniform(-25, 10)))
    table_z = float(rng.uniform(-80, 80))
    centre_uv = tuple(rotation(-theta) @ (-np.array(body_offset)))
    grids = [
        window_grid(
            (float(centre_uv[0]), float(centre_uv[1])), (rows, cols), spacing, theta, w0 + k * dz
        )
        for k in range(n_slices)
    ]
    for hip in pelvis.hips.values():
        fit_threshold(hip, grids)

    images = np.empty((n_slices, rows, cols), np.float32)
    labels = np.empty((n_slices, rows, cols), np.uint8)
    pixel_area = spacing[0] * spacing[1]
    head_px = {s: np.zeros(n_slices, np.int64) for s in SIDES}
    nec_px = {s: np.zeros(n_slices, np.int64) for s in SIDES}
    marrow = pelvis.tissue.marrow_femur
    for k, grid in enumerate(grids):
        signal, lab, heads, necs = render_plane(pelvis, grid, rng)
        images[k] = acquire(signal, acq, bias_field(acq, pelvis, grid), rng, marrow=marrow)
        labels[k] = lab
        for s in SIDES:
            head_px[s][k] = heads[s]
            nec_px[s][k] = necs[s]

    # scanner coordinates of the model origin and of pixel (0, 0) of slice 0
    x0 = -(cols - 1) / 2 * spacing[1]
    y0 = -(rows - 1) / 2 * spacing[0]
    truth: dict[HipSide, HipTruth] = {}
    fwd = rotation(theta)
    for s in SIDES:
        hip = pelvis.hips[s]
        head_v = float(head_px[s].sum() * pixel_area * dz)
        nec_v = float(nec_px[s].sum() * pixel_area * dz)
        prop = proportion_of(nec_v, head_v)
        cx, cy = fwd @ hip.center[:2] + np.array(body_offset)
        truth[s] = HipTruth(
            side=s,
            head_volume_mm3=head_v,
            necrosis_volume_mm3=nec_v,
            proportion=prop,
            grade=grade_from_proportion(prop),
            target_proportion=float(hip.necrosis.target or 0.0),
            pattern=hip.necrosis.pattern,
            mimic=hip.mimic,
            head_center_mm=(float(cx), float(cy), table_z + float(hip.center[2])),
            head_radius_mm=hip.radius,
            head_slices=tuple(int(k) for k in np.flatnonzero(head_px[s])),
        )
    slice_truth = []
    for k in range(n_slices):
        hips = []
        for s in SIDES:
            if head_px[s][k]:
                ha = float(head_px[s][k] * pixel_area)
                na = float(nec_px[s][k] * pixel_area)
                p = proportion_of(na, ha)
                hips.append(SliceHipTruth(s, ha, na, p, grade_from_proportion(p)))
        slice_truth.append(tuple(hips))
    return PhantomSeries(
        images=images,
        labels=labels,
        pixel_spacing_mm=spacing,
        slice_thickness_mm=dz,
        spacing_between_slices_mm=dz,
        image_orientation=AXIAL,
        first_position=(float(x0), float(y0), table_z + w0),
        truth=truth,
        slice_truth=tuple(slice_truth),
        acquisition=acq,
        seed=seed,
    )


def make_hip_crop(
    seed: int,
    *,
    size: int = 256,
    side: HipSide | None = None,
    level_mm: float | None = None,
    necrosis: NecrosisRequest = None,
    pattern: NecrosisPattern | None = None,
    mimic: Mimic | None | str = "random",
    pixel_spacing_mm: float | None = None,
    snr: float | None = None,
    intensity_max: int | None = None,
) -> PhantomCrop:
    """A ``size`` x ``size`` window around one hip of an axial slice, as in the paper.

    ``level_mm``: slice height relative to the head centre (+ superior); random
    within the head when None (pass e.g. ``radius + 10`` for a slice above it).
    ``necrosis``: target proportion *of this crop's head area*, a grade name, or
    None for a random grade. ``pixel_spacing_mm``: 0.45-0.8 mm when None (a
    256-pixel window of 115-205 mm, the head about a third to half of it).
    """
    rng = np.random.default_rng(seed)
    chosen_side: HipSide = side if side is not None else SIDES[int(rng.integers(2))]
    mimics = None if mimic == "random" else {chosen_side: mimic}
    pelvis = _new_pelvis(
        rng, {chosen_side: necrosis}, {chosen_side: pattern} if pattern else None, mimics
    )  # type: ignore[arg-type]
    hip = pelvis.hips[chosen_side]
    if level_mm is None:
        level_mm = float(rng.uniform(-0.85, 0.9) * hip.radius)
    sp = float(pixel_spacing_mm if pixel_spacing_mm is not None else rng.uniform(0.45, 0.8))
    theta = np.deg2rad(rng.uniform(-6, 6))
    offset = rng.uniform(-0.12, 0.12, 2) * size * sp
    centre = (float(hip.center[0] + hip.sign * 8.0 + offset[0]), float(hip.center[1] + offset[1]))
    grid = window_grid(centre, (size, size), (sp, sp), theta, float(hip.center[2] + level_mm))
    fit_threshold(hip, [grid])
    acq = sample_acquisition(rng, snr=snr, intensity_max=intensity_max)
    signal, lab, heads, necs = render_plane(pelvis, grid, rng)
    image = acquire(
        signal, acq, bias_field(acq, pelvis, grid), rng, marrow=pelvis.tissue.marrow_femur
    )
    prop = proportion_of(float(necs[chosen_side]), float(heads[chosen_side]))
    return PhantomCrop(
        image=image,
        labels=lab,
        pixel_spacing_mm=(sp, sp),
        side=chosen_side,
        proportion=prop,
        grade=grade_from_proportion(prop),
        has_head=heads[chosen_side] > 0,
        level_mm=level_mm,
        pattern=hip.necrosis.pattern,
        mimic=hip.mimic,
        seed=seed,
        acquisition=acq,
    )


GRADE_CYCLE: tuple[Grade, ...] = (Grade.NONE, Grade.MILD, Grade.MODERATE, Grade.SEVERE)


def grade_balanced_series(seed: int, count: int, **kwargs: object) -> list[PhantomSeries]:
    """``count`` series whose hips cover the four grades evenly on each side.

    Series ``i`` has the right hip at grade ``i % 4`` and the left at
    ``(i + 1 + i // 4) % 4``; keyword arguments go to :func:`make_bilateral_series`.
    """
    out = []
    for i in range(count):
        right = GRADE_CYCLE[i % 4]
        left = GRADE_CYCLE[(i + 1 + i // 4) % 4]
        out.append(
            make_bilateral_series(
                seed * 100_003 + i, necrosis={"right": right.value, "left": left.value}, **kwargs
            )
        )  # type: ignore[arg-type]
    return out
