"""The femoral-head picture of the patient explanation (pure numpy, no Django)."""

from __future__ import annotations

import numpy as np
import pytest

from grading.engine.rendering import HEAD_OUTLINE_RGB, femoral_head_crop


def _two_hips() -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:128, 0:160]
    labels = np.zeros((128, 160), dtype=np.uint8)
    right = (yy - 64) ** 2 + (xx - 40) ** 2 < 15**2
    left = (yy - 64) ** 2 + (xx - 120) ** 2 < 15**2
    labels[right | left] = 1
    labels[right & (yy < 58)] = 2  # necrosis on the right hip only
    image = np.where(labels > 0, 800.0, 200.0) + np.random.default_rng(0).normal(0, 5, labels.shape)
    return image.astype(np.float32), labels


def test_crop_is_square_rgb_with_necrosis_in_orange():
    image, labels = _two_hips()
    rgb = femoral_head_crop(
        image, labels, bbox=(49, 25, 79, 55), pixel_spacing_mm=(0.8, 0.8), out_size=200
    )
    assert rgb.shape == (200, 200, 3) and rgb.dtype == np.uint8
    orange = (rgb[..., 0] > 200) & (rgb[..., 1] > 60) & (rgb[..., 1] < 200) & (rgb[..., 2] < 150)
    assert orange.sum() > 200
    assert (rgb == np.array(HEAD_OUTLINE_RGB, dtype=np.uint8)).all(axis=2).sum() > 50


def test_other_hip_is_not_highlighted():
    image, labels = _two_hips()
    rgb = femoral_head_crop(image, labels, bbox=(49, 105, 79, 135), pixel_spacing_mm=(0.8, 0.8))
    orange = (rgb[..., 0] > 200) & (rgb[..., 2] < 150) & (rgb[..., 1] < 200)
    assert orange.sum() == 0


def test_anisotropic_pixels_give_a_square_crop_in_mm():
    image, labels = _two_hips()
    rgb = femoral_head_crop(image, labels, bbox=(49, 25, 79, 55), pixel_spacing_mm=(1.0, 0.5))
    assert rgb.shape[0] == rgb.shape[1]


def test_crop_at_the_edge_and_without_bbox():
    image, labels = _two_hips()
    edge = femoral_head_crop(image, labels, bbox=(0, 0, 10, 10), out_size=64)
    assert edge.shape == (64, 64, 3)
    whole = femoral_head_crop(image, labels, bbox=None, out_size=64)
    assert whole.shape == (64, 64, 3)
    empty = femoral_head_crop(image, np.zeros_like(labels), bbox=None, out_size=64)
    assert empty.shape == (64, 64, 3)
    with pytest.raises(ValueError):
        femoral_head_crop(image, labels[:10], bbox=None)
