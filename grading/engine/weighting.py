"""Does a series of unknown weighting look like T1? Marrow against muscle, on the pixels.

On T1 the fatty marrow of the femoral head is much brighter than the muscle around the
hip; on STIR and fat-suppressed images it is darker. :func:`marrow_to_muscle_ratio`
compares the median of the whole head (labels 1 and 2: the engine's necrosis step may
swap them on a non-T1 image) with the lower third of a ring 4-12 mm
around the head (muscle; the acetabulum's bright marrow and fat fall in the upper part),
over the slices where the engine found a head. Pure numpy/scipy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage

__all__ = ["GRADED_PLANES", "T1_MARROW_TO_MUSCLE", "looks_like_t1", "marrow_to_muscle_ratio"]

#: Median marrow over muscle at and above which a series counts as T1-like.
T1_MARROW_TO_MUSCLE = 1.5


def marrow_to_muscle_ratio(
    images: Sequence[npt.NDArray[np.floating]],
    labelmaps: Sequence[npt.NDArray[np.integer]],
    pixel_spacing_mm: Sequence[tuple[float, float]],
) -> float | None:
    """``images``: ``(H, W)`` stored values; ``labelmaps``: ``(H, W)`` 0/1/2 (the
    engine's); spacing (row, column) mm per slice. None when no slice has a head."""
    marrow: list[npt.NDArray[np.floating]] = []
    muscle: list[npt.NDArray[np.floating]] = []
    for image, labels, spacing in zip(images, labelmaps, pixel_spacing_mm, strict=True):
        head = np.asarray(labels) > 0
        if head.sum() < 20:
            continue
        pixel = float(min(spacing))
        inner = ndimage.binary_dilation(head, iterations=max(1, round(4.0 / pixel)))
        outer = ndimage.binary_dilation(head, iterations=max(2, round(12.0 / pixel)))
        # The whole head (viable and necrotic): on STIR a bright lesion can be taken for
        # viable bone and the dark marrow for necrosis, so neither label alone is marrow.
        marrow.append(np.asarray(image)[head])
        muscle.append(np.asarray(image)[outer & ~inner])
    if not marrow or not muscle:
        return None
    marrow_level = float(np.median(np.concatenate(marrow)))
    ring = np.concatenate(muscle)
    muscle_level = float(np.percentile(ring, 33.0)) if ring.size else 0.0
    if muscle_level <= 0.0:
        return float("inf") if marrow_level > 0 else None
    return marrow_level / muscle_level


def looks_like_t1(ratio: float | None) -> bool:
    """True when the marrow is at least :data:`T1_MARROW_TO_MUSCLE` times the muscle."""
    return ratio is not None and ratio >= T1_MARROW_TO_MUSCLE


#: The planes the engine grades: axial, coronal and sagittal (the head window search is
#: plane-aware, ``grading.engine.hips``; the JIC type and the Kerboul arcs come from the
#: mid-coronal and mid-sagittal slices, ``grading.engine.hip_classification``). A
#: sagittal series shows one hip: its side comes from its Laterality.
GRADED_PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
