"""Pictures for people: a crop of one femoral head with the necrosis highlighted.

Pure numpy; no Django, no DICOM. Used by the patient explanation (page and PDF).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from grading.engine.types import NECROSIS as LABEL_NECROSIS
from grading.engine.types import VIABLE_HEAD as LABEL_HEAD

# Necrosis in a warm orange, the femoral head outlined in a soft blue: readable in
# colour and, as different brightness, on a black-and-white print.
NECROSIS_RGB = (255, 120, 0)
HEAD_OUTLINE_RGB = (90, 170, 255)


def _window(
    image: npt.NDArray[np.floating], low_pct: float = 1.0, high_pct: float = 99.5
) -> npt.NDArray[np.float32]:
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return np.zeros(image.shape, dtype=np.float32)
    low, high = np.percentile(finite, [low_pct, high_pct])
    if high <= low:
        high = low + 1.0
    scaled: npt.NDArray[np.float32] = (image.astype(np.float32) - np.float32(low)) / np.float32(
        high - low
    )
    clipped: npt.NDArray[np.float32] = np.clip(scaled, 0.0, 1.0)
    return clipped


def _outline(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Pixels of ``mask`` with a 4-neighbour outside it."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = (
        padded[1:-1, 1:-1]
        & padded[:-2, 1:-1]
        & padded[2:, 1:-1]
        & padded[1:-1, :-2]
        & padded[1:-1, 2:]
    )
    return mask & ~inner


def femoral_head_crop(
    image: npt.NDArray[np.floating],
    labelmap: npt.NDArray[np.integer],
    *,
    bbox: tuple[int, int, int, int] | None,
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0),
    margin_mm: float = 12.0,
    out_size: int = 320,
    necrosis_alpha: float = 0.55,
) -> npt.NDArray[np.uint8]:
    """An RGB picture of one femoral head.

    ``image``: ``(H, W)`` stored values; ``labelmap``: ``(H, W)`` with 0 background,
    1 femoral head, 2 necrosis; ``bbox``: the hip's (row0, col0, row1, col1), half-open,
    in the slice's grid (None: the whole labelled area, else the whole slice);
    ``pixel_spacing_mm``: (row, column) spacing in mm, so the margin is the same in mm on
    both axes. The crop is made square around the head and resized (nearest neighbour on
    the labels, bilinear on the image) to ``(out_size, out_size, 3)`` uint8: the image
    windowed to its 1st..99.5th percentile, the necrosis blended in orange and the head's
    outline in blue. Other hips are blanked from the crop's labels.
    """
    if image.shape != labelmap.shape or image.ndim != 2:
        raise ValueError(f"image {image.shape} and label map {labelmap.shape} must be equal (H, W)")
    height, width = image.shape
    if bbox is None:
        labelled = np.argwhere(labelmap > 0)
        if labelled.size:
            r0, c0 = labelled.min(axis=0)
            r1, c1 = labelled.max(axis=0) + 1
            bbox = (int(r0), int(c0), int(r1), int(c1))
        else:
            bbox = (0, 0, height, width)
    r0, c0, r1, c1 = (int(v) for v in bbox)
    row_mm, col_mm = (float(s) if s and s > 0 else 1.0 for s in pixel_spacing_mm)
    # Square in mm: the larger extent plus the margin on each side.
    centre_r, centre_c = (r0 + r1) / 2.0, (c0 + c1) / 2.0
    half_mm = max((r1 - r0) * row_mm, (c1 - c0) * col_mm) / 2.0 + margin_mm
    half_r, half_c = max(1, round(half_mm / row_mm)), max(1, round(half_mm / col_mm))
    top, left = round(centre_r) - half_r, round(centre_c) - half_c
    bottom, right = round(centre_r) + half_r, round(centre_c) + half_c

    windowed = _window(image)
    crop_h, crop_w = bottom - top, right - left
    grey = np.zeros((crop_h, crop_w), dtype=np.float32)
    labels = np.zeros((crop_h, crop_w), dtype=np.uint8)
    src_t, src_l = max(top, 0), max(left, 0)
    src_b, src_r = min(bottom, height), min(right, width)
    if src_b > src_t and src_r > src_l:
        grey[src_t - top : src_b - top, src_l - left : src_r - left] = windowed[
            src_t:src_b, src_l:src_r
        ]
        own = np.zeros(labelmap.shape, dtype=bool)
        own[max(r0, 0) : min(r1, height), max(c0, 0) : min(c1, width)] = True
        hip_labels = np.where(own, labelmap, 0).astype(np.uint8)
        labels[src_t - top : src_b - top, src_l - left : src_r - left] = hip_labels[
            src_t:src_b, src_l:src_r
        ]

    # Resize to out_size x out_size (the crop is square in mm, so this keeps proportions).
    rows = np.clip(((np.arange(out_size) + 0.5) * crop_h / out_size - 0.5), 0, crop_h - 1)
    cols = np.clip(((np.arange(out_size) + 0.5) * crop_w / out_size - 0.5), 0, crop_w - 1)
    r_lo, c_lo = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r_hi, c_hi = np.minimum(r_lo + 1, crop_h - 1), np.minimum(c_lo + 1, crop_w - 1)
    fr, fc = (rows - r_lo)[:, None], (cols - c_lo)[None, :]
    resized = (
        grey[r_lo][:, c_lo] * (1 - fr) * (1 - fc)
        + grey[r_hi][:, c_lo] * fr * (1 - fc)
        + grey[r_lo][:, c_hi] * (1 - fr) * fc
        + grey[r_hi][:, c_hi] * fr * fc
    )
    nearest_r = np.clip(np.round(rows).astype(int), 0, crop_h - 1)
    nearest_c = np.clip(np.round(cols).astype(int), 0, crop_w - 1)
    resized_labels = labels[nearest_r][:, nearest_c]

    rgb = np.repeat((resized * 255.0)[:, :, None], 3, axis=2)
    necrosis = resized_labels == LABEL_NECROSIS
    rgb[necrosis] = (1 - necrosis_alpha) * rgb[necrosis] + necrosis_alpha * np.array(
        NECROSIS_RGB, dtype=np.float32
    )
    head = (resized_labels == LABEL_HEAD) | necrosis
    rgb[_outline(head)] = np.array(HEAD_OUTLINE_RGB, dtype=np.float32)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def slice_overlay(
    image: npt.NDArray[np.floating],
    labelmap: npt.NDArray[np.integer],
    *,
    scale: int = 1,
    necrosis_alpha: float = 0.55,
) -> npt.NDArray[np.uint8]:
    """A whole slice with its masks burned in: ``image`` ``(H, W)`` stored values,
    ``labelmap`` ``(H, W)`` (0 background, 1 femoral head, 2 necrosis). Returns
    ``(H * scale, W * scale, 3)`` uint8 RGB (nearest-neighbour enlargement): the image
    windowed to its 1st..99.5th percentile, necrosis blended in orange, each head's
    outline in blue."""
    if image.shape != labelmap.shape or image.ndim != 2:
        raise ValueError(f"image {image.shape} and label map {labelmap.shape} must be equal (H, W)")
    scale = max(1, int(scale))
    grey = np.kron(_window(image), np.ones((scale, scale), dtype=np.float32))
    labels = np.kron(labelmap.astype(np.uint8), np.ones((scale, scale), dtype=np.uint8))
    rgb = np.repeat((grey * 255.0)[:, :, None], 3, axis=2)
    necrosis = labels == LABEL_NECROSIS
    rgb[necrosis] = (1 - necrosis_alpha) * rgb[necrosis] + necrosis_alpha * np.array(
        NECROSIS_RGB, dtype=np.float32
    )
    rgb[_outline((labels == LABEL_HEAD) | necrosis)] = np.array(HEAD_OUTLINE_RGB, dtype=np.float32)
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)
