"""Bilateral axial series and single-hip crops with ground truth."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import grade_from_proportion, proportion_of
from grading.engine.phantoms.acquisition import Acquisition, acquire, bias_field, sample_acquisition
from grading.engine.phantoms.anatomy import (
    SIDES,
    HipSide,
    Mimic,
    NecrosisPattern,
    Pelvis,
)
from grading.engine.phantoms.geometry import (
    NecrosisRequest,
    fit_threshold,
    new_pelvis,
    rotation,
    window_grid,
)
from grading.engine.phantoms.render import PlaneGrid, render_plane_tissue
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
    tissue: U8 | None = None
    """``(N, H, W)`` uint8 :class:`~.tissues.TissueClass` of each pixel (what was drawn
    there, e.g. a normal variant of the head), the centre plane's."""

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
    pelvis = new_pelvis(rng, necrosis, patterns, mimics)
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
    tissue = np.empty((n_slices, rows, cols), np.uint8)
    pixel_area = spacing[0] * spacing[1]
    head_px = {s: np.zeros(n_slices, np.int64) for s in SIDES}
    nec_px = {s: np.zeros(n_slices, np.int64) for s in SIDES}
    marrow = pelvis.tissue.marrow_femur
    for k, grid in enumerate(grids):
        state = copy.deepcopy(rng)
        cv = render_plane_tissue(pelvis, grid, rng)
        signal = _slice_profile(pelvis, grid, dz, cv.img, state)
        images[k] = acquire(
            signal, acq, bias_field(acq, pelvis, grid), rng, marrow=marrow, tissue=cv.tissue
        )
        labels[k] = cv.lab
        tissue[k] = cv.tissue
        for s in SIDES:
            head_px[s][k] = cv.head_px[s]
            nec_px[s][k] = cv.necrosis_px[s]

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
        tissue=tissue,
    )


def _slice_profile(
    pelvis: Pelvis, grid: PlaneGrid, thickness_mm: float, signal: F32, state: np.random.Generator
) -> F32:
    """The signal of a slice ``thickness_mm`` thick rather than of its centre plane, where
    that differs most for grading: within one thickness of a femoral head's pole, the
    section averages the curved subchondral plate, cartilage and joint over its
    thickness (partial volume), so a cap at the dome reads darker than its marrow.
    Sub-planes at +-thickness/5 and +-2 thickness/5 are drawn with the same textures
    (``state``: a copy of the generator before the centre plane) and averaged with it (a
    flat slice profile); elsewhere the centre plane stands. The label map stays the
    centre plane's (a reader grades what the section's centre shows)."""
    near_pole = any(
        abs(abs(grid.w - float(hip.center[2])) - hip.radius) < thickness_mm
        for hip in pelvis.hips.values()
    )
    if not near_pole:
        return signal
    total = signal.astype(np.float32).copy()
    offsets = (-0.4, -0.2, 0.2, 0.4)
    for offset in offsets:
        plane = grid.at(grid.w + offset * thickness_mm)
        total += render_plane_tissue(pelvis, plane, copy.deepcopy(state)).img
    out: F32 = (total / (1 + len(offsets))).astype(np.float32)
    return out


GRADE_CYCLE: tuple[Grade, ...] = (Grade.NONE, Grade.MILD, Grade.MODERATE, Grade.SEVERE)


def grade_balanced_series(seed: int, count: int, **kwargs: Any) -> list[PhantomSeries]:
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
        )
    return out
