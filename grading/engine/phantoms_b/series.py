"""Series, crops, training crops and evaluation sets of phantom family B.

Shapes and units: images ``(H, W)`` float32 in stored-value units (integers 0..32767);
label maps ``(H, W)`` uint8 0 background / 1 viable femoral head / 2 necrosis; tissue
maps ``(H, W)`` uint8 (:data:`~grading.engine.phantoms_b.anatomy.TISSUES`); lengths mm,
volumes mm³, proportions fractions 0..1. Axial slices: ImageOrientationPatient
``(1,0,0, 0,1,0)``, columns towards the patient's left, rows posterior, so the image's
left is the patient's right. Labels and tissue are the geometry at each pixel centre on
the slice's centre plane; the image averages three planes across the slice thickness.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import GRADE_ORDER, grade_from_proportion
from grading.engine.phantoms_b import anatomy as an
from grading.engine.phantoms_b import mr
from grading.engine.phantoms_b.geometry import F32
from grading.engine.phantoms_b.lesion import draw_lesion, target_proportion, threshold_for
from grading.engine.types import Grade, MRSlice

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class HipTruthB:
    """Truth for one hip over a series: volumes are label counts x pixel area x spacing."""

    side: str  # "left" / "right": the patient's side
    head_volume_mm3: float
    necrosis_volume_mm3: float
    proportion: float  # necrosis / head voxels over the series
    grade: Grade
    lesion_style: str  # "none", or the interior appearance: fat, blood, fluid, fibrous, a+b
    slice_head_pixels: tuple[int, ...]  # per slice, in series order
    slice_necrosis_pixels: tuple[int, ...]


@dataclass(frozen=True)
class PhantomBSeries:
    slices: list[MRSlice]  # in increasing z (inferior to superior)
    labels: list[U8]
    tissue: list[U8]
    hips: dict[str, HipTruthB]


@dataclass(frozen=True)
class PhantomBCrop:
    slice: MRSlice  # 256 x 256, laterality "L"/"R" = the side it shows
    labels: U8
    tissue: U8
    proportion: float  # of the hip ``side`` on this slice
    grade: Grade
    side: str
    lesion_style: str


@dataclass(frozen=True)
class EvaluationSetB:
    series: list[PhantomBSeries]
    crops: list[PhantomBCrop]


def uid(*parts: object) -> str:
    """A deterministic UID under the UUID-derived root 2.25."""
    digest = hashlib.sha256(":".join(["phantoms-b", *map(str, parts)]).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _grade(name: str | Grade | None, rng: np.random.Generator) -> Grade:
    return Grade(name) if name is not None else GRADE_ORDER[int(rng.integers(4))]


def _add_lesion(hip: an.Hip, grade: Grade, rng: np.random.Generator) -> an.Hip:
    """The hip with a lesion (none for grade none), oedema and effusion drawn to match."""
    lesion = None
    if grade != Grade.NONE:
        lesion = draw_lesion(
            rng,
            centre=hip.centre,
            radius=hip.radius,
            lateral=hip.lateral,
            severe=grade == Grade.SEVERE,
        )
    ill = lesion is not None
    oedema = None
    if rng.random() < (0.25 if ill else 0.05):
        oedema = (hip.radius * rng.uniform(0.7, 1.3), rng.uniform(0.3, 0.6))
    effusion = rng.uniform(0.3, 1.0)
    if rng.random() < (0.45 if ill else 0.05):
        effusion = rng.uniform(3.0, 10.0)
    return replace(hip, lesion=lesion, oedema=oedema, effusion=effusion)


def _style(hip: an.Hip) -> str:
    return "none" if hip.lesion is None else hip.lesion.style


def _grid(x0: float, y0: float, spacing: float, h: int, w: int) -> tuple[F32, F32]:
    xs = (x0 + spacing * np.arange(w)).astype(np.float32)
    ys = (y0 + spacing * np.arange(h)).astype(np.float32)
    gx, gy = np.meshgrid(xs, ys)
    return gx, gy


def _set_thresholds(
    a: an.Anatomy,
    gx: F32,
    gy: F32,
    zs: list[float],
    targets: tuple[tuple[float, Grade], tuple[float, Grade]],
) -> an.Anatomy:
    """Lesion thresholds giving each hip its target proportion over the sampled head voxels."""
    thresholds = []
    for hip, (proportion, grade) in zip(a.hips, targets, strict=True):
        if hip.lesion is None:
            thresholds.append(math.inf)
            continue
        values = []
        for z in zs:
            ax, ay, az = an.to_anatomy(a, gx, gy, np.full_like(gx, z))
            inside = an.head_mask(hip, ax, ay, az)
            values.append(hip.lesion.field(ax[inside], ay[inside], az[inside]))
        thresholds.append(threshold_for(np.concatenate(values), proportion, grade))
    return a.with_lesion_thresholds((thresholds[0], thresholds[1]))


def _render(
    a: an.Anatomy,
    acq: mr.Acquisition,
    gx: F32,
    gy: F32,
    z: float,
    thickness: float,
    rng: np.random.Generator,
    planes: int = 3,  # 1 or 3
) -> tuple[F32, U8, U8, npt.NDArray[np.int8]]:
    """Image, labels, tissue and hip index of one axial slice on the grid (gx, gy) mm."""
    obj = np.zeros(gx.shape, np.float32)
    # the centre plane first (labels and tissue), then planes across the slab
    offsets = [0.0, *(thickness / 3 * s for s in (-1.0, 1.0) if planes > 1)]
    centre = an.sample(a, gx, gy, np.full_like(gx, z))
    for dz in offsets:
        tissue, aux, label, hip = (
            centre if dz == 0 else an.sample(a, gx, gy, np.full_like(gx, z + dz))
        )
        obj += mr.object_signal(acq.sequence, a, tissue, aux, hip)
    obj /= len(offsets)
    image = mr.acquire(obj, acq, mr.bias_field(acq, gx, gy), rng)
    return image, centre[2], centre[0], centre[3]


def make_series(
    seed: int,
    *,
    grades: tuple[str | None, str | None] = (None, None),
    n_slices: int | None = None,
) -> PhantomBSeries:
    """A bilateral axial T1 series. ``grades``: (left hip, right hip) grade names
    ("none", "mild", "moderate", "severe"), None for a random one. ``n_slices``: default
    16-28 from the iliac roof to below the lesser trochanter; fewer are centred on the heads.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB5]))
    a = an.draw_anatomy(rng)
    left, right = (_grade(g, rng) for g in grades)
    hips = (_add_lesion(a.hips[0], right, rng), _add_lesion(a.hips[1], left, rng))
    a = replace(a, hips=hips)
    acq = mr.draw_acquisition(rng, a.body)

    matrix = int(rng.choice([384, 416, 448, 480, 512]))
    spacing = round(float(rng.uniform(340.0, min(420.0, matrix * 1.0))) / matrix, 4)
    rows = min(matrix, int(math.ceil((2 * a.body[1] + 40) / spacing / 16) * 16))
    x0 = float(rng.uniform(-8, 8)) - (matrix - 1) / 2 * spacing
    y0 = a.body[2] + float(rng.uniform(-8, 8)) - (rows - 1) / 2 * spacing
    gx, gy = _grid(x0, y0, spacing, rows, matrix)
    thickness = round(float(rng.uniform(3.0, 6.0)), 2)
    step = round(thickness * float(rng.uniform(1.0, 1.3)), 2)
    if n_slices is None:
        n_slices = int(np.clip(round(rng.uniform(115, 140) / step) + 1, 16, 28))
    if n_slices < 1:
        raise ValueError(f"n_slices must be at least 1, got {n_slices}")
    z_mid = float(rng.uniform(-15.0, -5.0)) if n_slices > 12 else float(rng.uniform(-5.0, 3.0))
    zs = [z_mid + (k - (n_slices - 1) / 2) * step for k in range(n_slices)]
    targets = (
        (target_proportion(rng, right), right),
        (target_proportion(rng, left), left),
    )
    a = _set_thresholds(a, gx, gy, zs, targets)

    study, series = uid(seed, "study"), uid(seed, "series")
    slices, labels, tissues = [], [], []
    head_px: list[list[int]] = [[], []]
    nec_px: list[list[int]] = [[], []]
    for k, z in enumerate(zs):
        image, label, tissue, hipmap = _render(a, acq, gx, gy, z, thickness, rng)
        for i in range(2):
            head_px[i].append(int(np.count_nonzero((hipmap == i) & (label > 0))))
            nec_px[i].append(int(np.count_nonzero((hipmap == i) & (label == 2))))
        slices.append(
            MRSlice(
                pixels=image,
                pixel_spacing_mm=(spacing, spacing),
                slice_thickness_mm=thickness,
                spacing_between_slices_mm=step,
                image_position=(x0, y0, round(z, 4)),
                image_orientation=AXIAL,
                study_instance_uid=study,
                series_instance_uid=series,
                sop_instance_uid=uid(seed, "instance", k),
                instance_number=k + 1,
                source=f"phantoms-b seed {seed} slice {k + 1}",
            )
        )
        labels.append(label)
        tissues.append(tissue)
    voxel = spacing * spacing * step
    truth = {}
    for i, side in enumerate(an.SIDES):
        head, nec = sum(head_px[i]), sum(nec_px[i])
        proportion = nec / head if head else 0.0
        truth[side] = HipTruthB(
            side=side,
            head_volume_mm3=head * voxel,
            necrosis_volume_mm3=nec * voxel,
            proportion=proportion,
            grade=grade_from_proportion(proportion),
            lesion_style=_style(a.hips[i]),
            slice_head_pixels=tuple(head_px[i]),
            slice_necrosis_pixels=tuple(nec_px[i]),
        )
    return PhantomBSeries(slices=slices, labels=labels, tissue=tissues, hips=truth)


def _crop_setup(
    rng: np.random.Generator, grade: Grade
) -> tuple[an.Anatomy, mr.Acquisition, int, float, Grade]:
    """Anatomy with a lesion of ``grade`` on a random side, its acquisition, side index
    and the z of a slice through that head."""
    a = an.draw_anatomy(rng)
    index = int(rng.integers(2))
    hips = list(a.hips)
    hips[index] = _add_lesion(hips[index], grade, rng)
    a = replace(a, hips=(hips[0], hips[1]))
    hip = a.hips[index]
    world_centre = a.rotation @ hip.centre
    z = float(world_centre[2] + rng.uniform(-0.55, 0.55) * hip.radius)
    return a, mr.draw_acquisition(rng, a.body), index, z, grade


def make_crop(seed: int, *, grade: str | None = None) -> PhantomBCrop:
    """One 256 x 256 axial window around a femoral head (pixel spacing 0.66-1.0 mm)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC5]))
    a, acq, index, z, target = _crop_setup(rng, _grade(grade, rng))
    spacing = round(float(rng.uniform(0.66, 1.0)), 4)
    thickness = round(float(rng.uniform(3.0, 6.0)), 2)
    size, margin = 256, 32
    centre = a.rotation @ a.hips[index].centre + np.append(rng.uniform(-25, 25, 2), 0)
    x0 = float(centre[0]) - (size / 2 + margin) * spacing
    y0 = float(centre[1]) - (size / 2 + margin) * spacing
    gx, gy = _grid(x0, y0, spacing, size + 2 * margin, size + 2 * margin)
    targets = [(0.0, Grade.NONE), (0.0, Grade.NONE)]
    targets[index] = (target_proportion(rng, target), target)
    window = (slice(margin, margin + size), slice(margin, margin + size))
    a = _set_thresholds(a, gx[window], gy[window], [z], (targets[0], targets[1]))
    image, label, tissue, hipmap = _render(a, acq, gx, gy, z, thickness, rng)
    head = int(np.count_nonzero((hipmap[window] == index) & (label[window] > 0)))
    nec = int(np.count_nonzero((hipmap[window] == index) & (label[window] == 2)))
    proportion = nec / head if head else 0.0
    side = an.SIDES[index]
    return PhantomBCrop(
        slice=MRSlice(
            pixels=np.ascontiguousarray(image[window]),
            pixel_spacing_mm=(spacing, spacing),
            slice_thickness_mm=thickness,
            image_position=(x0 + margin * spacing, y0 + margin * spacing, round(z, 4)),
            image_orientation=AXIAL,
            laterality="L" if side == "left" else "R",
            study_instance_uid=uid(seed, "crop-study"),
            series_instance_uid=uid(seed, "crop-series"),
            sop_instance_uid=uid(seed, "crop-instance"),
            instance_number=1,
            source=f"phantoms-b crop seed {seed}",
        ),
        labels=np.ascontiguousarray(label[window]),
        tissue=np.ascontiguousarray(tissue[window]),
        proportion=proportion,
        grade=grade_from_proportion(proportion),
        side=side,
        lesion_style=_style(a.hips[index]),
    )


def make_training_crops(
    seed: int, n: int, *, size: int = 128
) -> tuple[npt.NDArray[np.float32], U8, U8]:
    """``n`` single-hip axial crops for training: images (n, size, size) float32 stored
    values, labels and tissue (n, size, size) uint8. Windows of 90-220 mm around a head
    (so pixel spacing varies), grades cycling none, mild, moderate, severe;
    one anatomy per crop, one plane per slice (no through-slice partial volume)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7C]))
    images = np.zeros((n, size, size), np.float32)
    labels = np.zeros((n, size, size), np.uint8)
    tissue = np.zeros((n, size, size), np.uint8)
    margin = size // 8
    for i in range(n):
        target = GRADE_ORDER[i % 4]
        a, acq, index, _, _ = _crop_setup(rng, target)
        hip = a.hips[index]
        centre = a.rotation @ hip.centre
        z = float(centre[2] + rng.uniform(-0.6, 0.6) * hip.radius)
        spacing = float(rng.uniform(90.0, 220.0)) / size
        corner = (
            centre[:2] + rng.uniform(-0.2, 0.2, 2) * size * spacing - (size / 2 + margin) * spacing
        )
        gx, gy = _grid(
            float(corner[0]), float(corner[1]), spacing, size + 2 * margin, size + 2 * margin
        )
        targets = [(0.0, Grade.NONE), (0.0, Grade.NONE)]
        targets[index] = (target_proportion(rng, target), target)
        window = (slice(margin, margin + size), slice(margin, margin + size))
        crop_a = _set_thresholds(a, gx[window], gy[window], [z], (targets[0], targets[1]))
        image, label, tis, _ = _render(
            crop_a, acq, gx, gy, z, float(rng.uniform(3, 6)), rng, planes=1
        )
        images[i], labels[i], tissue[i] = image[window], label[window], tis[window]
    return images, labels, tissue


def make_evaluation_set(
    seed: int, *, n_series: int, n_crops: int, n_slices: int | None = None
) -> EvaluationSetB:
    """Grade-balanced series and crops: the hips' grades cycle through none (normal),
    mild, moderate and severe in a shuffled order, so each appears about equally often.
    ``n_slices`` as in :func:`make_series` (default: the full series)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xE5]))
    hip_grades = [GRADE_ORDER[i % 4].value for i in range(2 * n_series)]
    crop_grades = [GRADE_ORDER[i % 4].value for i in range(n_crops)]
    rng.shuffle(hip_grades)
    rng.shuffle(crop_grades)

    def item_seed(kind: int, i: int) -> int:
        return int(np.random.SeedSequence([seed, kind, i]).generate_state(1)[0])

    series = [
        make_series(
            item_seed(1, i),
            grades=(hip_grades[2 * i], hip_grades[2 * i + 1]),
            n_slices=n_slices,
        )
        for i in range(n_series)
    ]
    crops = [make_crop(item_seed(2, i), grade=g) for i, g in enumerate(crop_grades)]
    return EvaluationSetB(series=series, crops=crops)
