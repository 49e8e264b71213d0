"""Training windows on coronal and sagittal T1 slices of the 3-D phantom.

The axial generator (:mod:`.crops`) shows the network the femoral head as a disc in an
axial slice. Coronal grading (the JIC and Kerboul views) needs the same network to find
the head where it sits under the acetabular roof with the neck running down and out
from it, and a sagittal slice shows it above the neck with the acetabulum in front and
behind. :func:`make_volume_training_crops` cuts such windows from
:func:`~.volume.make_volume_phantom` volumes rendered as T1, with the tissue map of each
window in :class:`~.tissues.TissueClass` codes, so the training's domain randomisation
(:mod:`grading.engine.synthesis`) works on them as on the axial windows.

Windows, per phantom ``WINDOWS_PER_VOLUME`` of them, each with its own side, plane (a
share ``coronal_share`` coronal, the rest sagittal), slice position and field of view:
the slice passes through the head (up to 0.95 of its radius from the centre) or, in
``no_head_share`` of windows, just beside it (no head label); the field of view runs
from a tight crop (about four head radii) to half of the slice (the hip, the midline
pelvis and the lateral soft tissue), at a random offset and a native pixel spacing of
0.6-1.6 mm, resampled to ``size`` x ``size`` as the axial windows are.

Research and teaching data, not patient data. Pure numpy/scipy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from grading.engine.phantoms.shapes import resize_linear, resize_nearest
from grading.engine.phantoms.tissues import TissueClass as T
from grading.engine.phantoms.volume import Tissue, VolumePhantom, make_volume_phantom

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

WINDOWS_PER_VOLUME = 16

TISSUE_TO_CLASS: dict[int, T] = {
    Tissue.AIR: T.AIR,
    Tissue.FAT: T.FAT,
    Tissue.MUSCLE: T.MUSCLE,
    Tissue.CORTEX: T.CORTEX,
    Tissue.MARROW_FEMUR: T.FEMUR_MARROW,
    Tissue.MARROW_PELVIS: T.PELVIC_MARROW,
    Tissue.CARTILAGE: T.CARTILAGE,
    Tissue.FLUID: T.JOINT_LINE,
    Tissue.NECROSIS_CORE: T.LESION_FAT_LIKE,
    Tissue.SCLEROTIC_RIM: T.LESION_BAND,
    Tissue.GRANULATION: T.LESION_BAND,
    Tissue.OEDEMA: T.OEDEMA,
    Tissue.URINE: T.URINE,
    Tissue.NECROSIS_LOW: T.LESION_INTERIOR,
}
"""The volume's tissues in the axial generator's classes (femoral marrow inside the head
becomes :attr:`~.tissues.TissueClass.HEAD_MARROW`; granulation, dark on T1, joins the
lesion band)."""


def tissue_classes(phantom: VolumePhantom) -> U8:
    """``(Z, Y, X)`` :class:`~.tissues.TissueClass` codes of the phantom's tissues."""
    lut = np.zeros(256, np.uint8)
    for label, cls in TISSUE_TO_CLASS.items():
        lut[label] = int(cls)
    out: U8 = lut[phantom.tissues]
    for head in phantom.head.values():
        out[head & (phantom.tissues == Tissue.MARROW_FEMUR)] = int(T.HEAD_MARROW)
    return out


def _sample(volume: npt.NDArray[np.generic], coords: F32, order: int) -> npt.NDArray[np.generic]:
    out: npt.NDArray[np.generic] = np.asarray(
        ndimage.map_coordinates(volume, coords, order=order, mode="constant", cval=0)
    )
    return out


def make_volume_training_crops(
    n: int,
    seed: int,
    size: int = 256,
    *,
    coronal_share: float = 0.7,
    no_head_share: float = 0.15,
) -> tuple[F32, U8, U8]:
    """``n`` coronal and sagittal T1 windows around a hip of the 3-D phantom.

    Returns ``(images (n, size, size) float32 stored values, labels (n, size, size)
    uint8 (0 background, 1 viable head, 2 necrosis), tissue (n, size, size) uint8
    :class:`~.tissues.TissueClass` codes)``. Deterministic by ``seed``; every
    :data:`WINDOWS_PER_VOLUME` windows share one phantom (lesions on no, one or both
    hips)."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size), np.float32)
    labels = np.empty((n, size, size), np.uint8)
    tissue = np.empty((n, size, size), np.uint8)
    for start in range(0, n, WINDOWS_PER_VOLUME):
        sides = ("right", "left")
        lesion_sides = tuple(s for s in sides if rng.uniform() < 0.75)
        phantom = make_volume_phantom(int(rng.integers(2**31)), lesion_sides=lesion_sides)
        image = phantom.render("T1", seed=int(rng.integers(2**31)), noise=rng.uniform(0.01, 0.05))
        lab_volume = phantom.labels()
        tis_volume = tissue_classes(phantom)
        for i in range(start, min(start + WINDOWS_PER_VOLUME, n)):
            images[i], labels[i], tissue[i] = _window(
                rng, phantom, image, lab_volume, tis_volume, size, coronal_share, no_head_share
            )
    return images, labels, tissue


def _window(
    rng: np.random.Generator,
    phantom: VolumePhantom,
    image: F32,
    lab_volume: U8,
    tis_volume: U8,
    size: int,
    coronal_share: float,
    no_head_share: float,
) -> tuple[F32, U8, U8]:
    spec = phantom.hips[int(rng.integers(2))]
    centre = np.asarray(spec.centre_mm, np.float64)
    r = spec.radius_mm
    coronal = rng.uniform() < coronal_share
    # row direction (image columns run along it) and column direction (rows run along it)
    if coronal:
        row_dir = np.array([1.0, 0.0, 0.0])  # patient's left
        col_dir = np.array([0.0, 0.0, -1.0])  # inferior
    else:
        row_dir = np.array([0.0, 1.0, 0.0])  # posterior
        col_dir = np.array([0.0, 0.0, -1.0])
    normal = np.cross(row_dir, col_dir)
    if rng.uniform() < no_head_share:
        offset = float(rng.uniform(r + 1.0, r + 25.0)) * (1 if rng.uniform() < 0.5 else -1)
    else:
        offset = float(rng.uniform(-0.95, 0.95) * r)

    t = float(rng.uniform() ** 1.5)  # 0 = tight crop, 1 = half of the slice
    tight = 4.0 * r * rng.uniform(0.85, 1.25)
    half_w = 150.0 if coronal else 200.0  # lateral skin to midline / anterior to posterior
    half_h = rng.uniform(150.0, 200.0)
    w_mm = tight + t * (half_w - tight)
    h_mm = tight * rng.uniform(0.85, 1.15) + t * (half_h - tight)
    jitter = rng.uniform(-0.2, 0.2, 2) * np.array([w_mm, h_mm]) * (1.0 - t)
    # the window's centre within the plane: the head, moved towards the half's centre
    if coronal:
        half_c = np.array([spec.lateral_sign * 75.0, 0.0, rng.uniform(-20.0, 20.0)])
    else:
        half_c = np.array([0.0, 5.0, rng.uniform(-20.0, 20.0)])
    in_plane = centre + t * (half_c - centre)
    in_plane = in_plane - np.dot(in_plane - centre, normal) * normal
    middle = in_plane + row_dir * jitter[0] + col_dir * jitter[1] + normal * offset

    native = float(rng.uniform(0.6, 1.6))
    sp = (max(native, h_mm / size), max(native, w_mm / size))
    shape = (max(int(round(h_mm / sp[0])), 8), max(int(round(w_mm / sp[1])), 8))
    a = (np.arange(shape[0]) - (shape[0] - 1) / 2) * sp[0]
    b = (np.arange(shape[1]) - (shape[1] - 1) / 2) * sp[1]
    points = (
        middle[None, None, :]
        + a[:, None, None] * col_dir[None, None, :]
        + b[None, :, None] * row_dir[None, None, :]
    )
    voxel = (points - np.asarray(phantom.origin_mm)) / phantom.voxel_mm
    coords = np.stack([voxel[..., 2], voxel[..., 1], voxel[..., 0]]).astype(np.float32)
    img = np.clip(_sample(image, coords, 1), 0.0, None).astype(np.float32)
    lab = _sample(lab_volume, coords, 0).astype(np.uint8)
    tis = _sample(tis_volume, coords, 0).astype(np.uint8)
    if shape != (size, size):
        img = resize_linear(img, (size, size)).astype(np.float32)
        lab = resize_nearest(lab, (size, size))
        tis = resize_nearest(tis, (size, size))
    if rng.uniform() < 0.5:  # either hip, either way round
        img, lab, tis = img[:, ::-1], lab[:, ::-1], tis[:, ::-1]
    return (
        np.ascontiguousarray(np.rint(img), np.float32),
        np.ascontiguousarray(lab),
        np.ascontiguousarray(tis),
    )
