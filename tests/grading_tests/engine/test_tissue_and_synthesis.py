"""Tissue label maps of the phantoms and the SynthSeg-style synthesis built on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grading.engine.grading_rules import proportion_of
from grading.engine.phantoms import (
    N_TISSUE_CLASSES,
    TissueClass,
    make_training_crops,
    make_training_crops_with_tissue,
)
from grading.engine.phantoms.tissues import LESION_CLASSES
from grading.engine.synthesis import (
    DEFAULT_SYNTHESIS,
    SynthesisConfig,
    class_intensities,
    synthesise,
)
from grading.engine.types import NECROSIS, VIABLE_HEAD


@pytest.fixture(scope="module")
def crops() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return make_training_crops_with_tissue(24, 31, 128, extreme_lesion_share=0.5)


def test_tissue_maps_agree_with_the_labels(
    crops: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    _, labels, tissue = crops
    assert tissue.dtype == np.uint8 and tissue.shape == labels.shape
    assert int(tissue.max()) < N_TISSUE_CLASSES
    lesion = np.isin(tissue, [int(c) for c in LESION_CLASSES])
    # every lesion tissue is labelled necrosis, head marrow is viable head
    assert lesion.any() and np.all(labels[lesion] == NECROSIS)
    head_marrow = tissue == TissueClass.HEAD_MARROW
    assert head_marrow.any() and np.all(labels[head_marrow] == VIABLE_HEAD)
    # the body is drawn: fat, muscle and bone on every window
    for cls in (TissueClass.FAT, TissueClass.MUSCLE, TissueClass.CORTEX):
        assert (tissue == cls).any()
    # necrosis is band, interior or the cortex under it, nothing else
    nec = labels == NECROSIS
    assert np.all(lesion[nec] | (tissue[nec] == TissueClass.CORTEX))


def test_without_extremes_the_images_are_those_of_make_training_crops() -> None:
    images, labels = make_training_crops(4, 5, 96)
    images2, labels2, _ = make_training_crops_with_tissue(4, 5, 96)
    np.testing.assert_array_equal(images, images2)
    np.testing.assert_array_equal(labels, labels2)


def test_extreme_lesions_are_tiny_or_fill_most_of_the_section(
    crops: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    _, plain, _ = make_training_crops_with_tissue(24, 31, 128)
    _, labels, _ = crops

    def proportion(lab: np.ndarray) -> float:
        return proportion_of(float((lab == 2).sum()), float((lab > 0).sum()))

    changed = [
        proportion(lab)
        for lab, before in zip(labels, plain, strict=True)
        if not np.array_equal(lab, before)
    ]
    # the windows given an extreme lesion, and only those, differ; each is tiny or near total
    assert len(changed) >= 5
    assert all(p < 0.04 or p > 0.55 for p in changed)
    assert any(p < 0.04 for p in changed) and any(p > 0.55 for p in changed)


def test_class_intensities_keep_the_lesion_visible_against_marrow() -> None:
    cfg = SynthesisConfig()
    lut = class_intensities(4000, torch.Generator().manual_seed(0), cfg)
    marrow = lut[:, TissueClass.FEMUR_MARROW]
    assert torch.equal(lut[:, TissueClass.HEAD_MARROW], marrow)
    band = lut[:, TissueClass.LESION_BAND]
    interior = lut[:, TissueClass.LESION_INTERIOR]
    visible = ((band - marrow).abs() >= cfg.lesion_contrast - 1e-6) | (
        (interior - marrow).abs() >= cfg.lesion_contrast - 1e-6
    )
    assert bool(visible.all())
    # brightness order changes: marrow darker than muscle in some samples, brighter in others
    darker = (marrow < lut[:, TissueClass.MUSCLE]).float().mean()
    assert 0.3 < float(darker) < 0.7
    # some lesions have no band of their own
    assert bool((band == interior).any()) and bool((band != interior).any())


def _disc_batch(b: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rr, cc = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = ((rr - size / 2 + 4) ** 2 + (cc - size / 2 - 6) ** 2) < (size / 5) ** 2
    tissue = torch.full((b, size, size), int(TissueClass.MUSCLE), dtype=torch.uint8)
    tissue[:, disc] = int(TissueClass.HEAD_MARROW)
    target = torch.zeros(b, 2, size, size)
    target[:, 0, disc] = 1.0
    sdf = torch.where(disc, 1.0, -1.0).expand(b, 1, size, size).clone()
    return tissue, target, sdf


def test_synthesis_moves_image_and_targets_together() -> None:
    quiet = SynthesisConfig(
        texture_max=0.0, blur_min_px=0.0, blur_max_px=0.01, bias_max=0.0, noise_max=0.0,
        gamma_sd=0.0, deform_share=1.0, rotation_deg=25.0, elastic=0.04,
    )  # fmt: skip
    tissue, target, sdf = _disc_batch(32, 64)
    x, t, d = synthesise(tissue, target, sdf, torch.Generator().manual_seed(1), cfg=quiet)
    assert x.shape == (32, 1, 64, 64) and t.shape == (32, 2, 64, 64) and d.shape == sdf.shape
    moved = 0
    for i in range(32):
        inside, outside = t[i, 0] > 0.99, t[i, 0] < 0.01
        moved += int(not torch.equal(t[i, 0] > 0.5, target[i, 0] > 0.5))
        img = x[i, 0]
        # inside the deformed target the image is one tissue, outside another
        assert float(img[inside].std()) < 0.05
        assert float(img[outside].std()) < 0.05
        assert torch.equal(d[i, 0][inside] > 0, torch.ones_like(d[i, 0][inside], dtype=torch.bool))
    assert moved >= 24  # the deformation did move the head


def test_synthesis_is_deterministic_and_varies_with_the_generator() -> None:
    tissue, target, sdf = _disc_batch(4, 32)
    a = synthesise(tissue, target, sdf, torch.Generator().manual_seed(5))
    b = synthesise(tissue, target, sdf, torch.Generator().manual_seed(5))
    c = synthesise(tissue, target, sdf, torch.Generator().manual_seed(6))
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    assert DEFAULT_SYNTHESIS.deform_share < 1.0


def test_synthesis_refuses_tissue_maps_off_the_input_grid() -> None:
    tissue, target, sdf = _disc_batch(2, 32)
    with pytest.raises(ValueError, match="input size"):
        synthesise(tissue, target[..., :16, :16], sdf, torch.Generator())


def test_volume_windows_are_coronal_or_sagittal_heads_with_tissue_maps() -> None:
    from grading.engine.phantoms.volume_crops import make_volume_training_crops

    images, labels, tissue = make_volume_training_crops(16, 5, 96)
    again = make_volume_training_crops(16, 5, 96)
    assert np.array_equal(images, again[0]) and np.array_equal(labels, again[1])
    assert images.shape == labels.shape == tissue.shape == (16, 96, 96)
    assert int(tissue.max()) < N_TISSUE_CLASSES
    # windows with a head and without; the head is head marrow, cortex or lesion tissue
    has_head = (labels > 0).reshape(16, -1).any(axis=1)
    assert 0 < int(has_head.sum()) < 16
    head_tissue = set(np.unique(tissue[labels > 0]).tolist())
    allowed = {int(TissueClass.HEAD_MARROW), int(TissueClass.CORTEX), int(TissueClass.OEDEMA)}
    allowed |= {int(c) for c in LESION_CLASSES}
    assert head_tissue <= allowed
    lesion = np.isin(tissue, [int(c) for c in LESION_CLASSES]) & (labels > 0)
    assert np.all(labels[lesion] == NECROSIS)


def test_midline_windows_show_the_pelvic_cavity() -> None:
    plain = make_training_crops_with_tissue(16, 12, 64)
    moved = make_training_crops_with_tissue(16, 12, 64, midline_share=1.0)
    cavity = [int(TissueClass.URINE), int(TissueClass.BLADDER_WALL), int(TissueClass.BOWEL_WALL)]
    seen_plain = np.isin(plain[2], cavity).reshape(16, -1).any(axis=1).sum()
    seen_moved = np.isin(moved[2], cavity).reshape(16, -1).any(axis=1).sum()
    assert seen_moved > seen_plain
