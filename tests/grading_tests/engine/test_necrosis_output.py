"""The learned necrosis output: 3-class networks, their loss, the predictor's interface,
training them (synthesis mixed in, warm start from binary weights) and old weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from grading.engine.networks import (
    NECROSIS_CLASSES,
    SegmentationLoss,
    build_network,
    head_logit,
)
from grading.engine.phantoms import make_training_crops_with_tissue
from grading.engine.predictor import DEFAULT_WEIGHTS, HeadSegmenter, normalise_intensity
from grading.engine.training import (
    CropSet,
    TrainConfig,
    class_target,
    make_batch,
    prepare_crops,
    train,
    warm_start,
)

SMALL = {"channels": [4, 8, 16, 32]}


@pytest.fixture(scope="module")
def crops() -> CropSet:
    images, labels, tissue = make_training_crops_with_tissue(16, 7, 96, extreme_lesion_share=0.3)
    return prepare_crops(images, labels, 64, tissue=tissue)


@pytest.mark.parametrize("name", ["ours", "unet", "linknet"])
def test_three_class_networks_give_three_logits_and_a_head_logit(name: str) -> None:
    config = {"width": 4} if name == "linknet" else SMALL
    model = build_network(name, out_channels=3, **config).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 64, 64))
    assert out.logits.shape == (2, 3, 64, 64)
    probs = torch.softmax(out.logits, dim=1)
    head = torch.sigmoid(head_logit(out.logits))[:, 0]
    torch.testing.assert_close(head, probs[:, 1] + probs[:, 2], atol=1e-5, rtol=1e-5)


def test_three_class_loss_has_every_path_and_refuses_a_binary_target() -> None:
    model = build_network("ours", out_channels=3, **SMALL).train()
    out = model(torch.randn(2, 1, 32, 32))
    maps = torch.zeros(2, 2, 32, 32)
    maps[:, 0, 8:24, 8:24] = 1.0
    maps[:, 1, 8:14, 8:24] = 1.0
    target = class_target(maps, 3)
    torch.testing.assert_close(target.sum(dim=1), torch.ones(2, 32, 32))
    assert float(target[:, 2].sum()) == 2 * 6 * 16
    loss, parts = SegmentationLoss()(out, target, torch.zeros(2, 1, 32, 32))
    assert set(parts) == {"final", "seg", "deep", "geometric"}
    loss.backward()
    with pytest.raises(ValueError, match="3-channel target"):
        SegmentationLoss()(model(torch.randn(2, 1, 32, 32)), maps[:, :1])


def test_fusion_of_a_three_class_network_shifts_only_the_head_log_odds() -> None:
    model = build_network("ours", out_channels=3, **SMALL).eval()
    with torch.no_grad():
        model.fusion.copy_(torch.tensor([1.0, 2.0, 0.5]))
        out = model(torch.randn(1, 1, 32, 32))
    assert out.sdf is not None
    shift = 2.0 * out.sdf + 0.5
    torch.testing.assert_close(out.logits[:, 0], out.seg_logits[:, 0])
    torch.testing.assert_close(
        out.logits[:, 1:] - out.seg_logits[:, 1:], shift.expand(1, 2, 32, 32)
    )


def _segmenter(model: torch.nn.Module) -> HeadSegmenter:
    return HeadSegmenter(model, input_size=64, model_version="test", device=torch.device("cpu"))


def test_predict_classes_gives_softmax_on_each_images_grid() -> None:
    torch.manual_seed(0)
    seg = _segmenter(build_network("ours", out_channels=3, **SMALL))
    assert seg.has_necrosis_output
    rng = np.random.default_rng(0)
    images = [rng.normal(500, 100, s).astype(np.float32) for s in ((97, 131), (64, 64), (200, 80))]
    classes = seg.predict_classes(images, batch_size=2)
    heads = seg.predict(images, batch_size=2)
    for im, c, h in zip(images, classes, heads, strict=True):
        assert c.shape == (3, *im.shape) and c.dtype == np.float32
        np.testing.assert_allclose(c.sum(axis=0), 1.0, atol=1e-5)
        np.testing.assert_allclose(c[1] + c[2], h, atol=1e-5)


def test_binary_weights_still_load_and_have_no_necrosis_output() -> None:
    seg = HeadSegmenter.load(DEFAULT_WEIGHTS, precision="float32")
    if seg.has_necrosis_output:
        pytest.skip("the shipped weights have the necrosis output; see the 1-channel case below")
    assert seg.predict([np.ones((40, 40), np.float32)])[0].shape == (40, 40)
    with pytest.raises(ValueError, match="no necrosis output"):
        seg.predict_classes([np.ones((40, 40), np.float32)])


def test_a_one_channel_network_has_no_necrosis_output() -> None:
    seg = _segmenter(build_network("unet", out_channels=1, **SMALL))
    assert not seg.has_necrosis_output
    with pytest.raises(ValueError, match="no necrosis output"):
        seg.predict_classes([np.ones((40, 40), np.float32)])


def test_warm_start_from_binary_weights_keeps_the_head_probability(tmp_path: Path) -> None:
    torch.manual_seed(1)
    binary = build_network("ours", out_channels=1, **SMALL).eval()
    path = tmp_path / "binary.pt"
    torch.save(binary.state_dict(), path)
    three = build_network("ours", out_channels=3, **SMALL)
    assert warm_start(three, path) == []
    three.eval()
    x = normalise_intensity(torch.rand(2, 1, 32, 32))
    with torch.no_grad():
        p_binary = torch.sigmoid(binary(x).logits)
        p_three = torch.sigmoid(head_logit(three(x).logits))
        necrosis = torch.softmax(three(x).logits, dim=1)[:, 2]
    # the head is the binary network's (necrosis starts at e^-4 of the viable class)
    torch.testing.assert_close(p_three, p_binary, atol=0.01, rtol=0.0)
    assert float(necrosis.max()) < 0.05


def test_batches_mix_synthesised_and_realistic_samples(crops: CropSet) -> None:
    assert crops.tissue is not None and crops.tissue.shape == (16, 64, 64)
    # blank realistic images: a realistic sample comes out flat (noise only), a
    # synthesised one shows the anatomy of its tissue map
    blank = dataclasses.replace(crops, images=torch.zeros_like(crops.images))
    idx = torch.arange(16)

    def structured(share: float) -> int:
        x, maps, _ = make_batch(blank, idx, torch.Generator().manual_seed(0), synth_share=share)
        assert x.shape == (16, 1, 64, 64) and maps.shape == (16, 2, 64, 64)
        # necrosis stays inside the head through both paths
        assert bool((maps[:, 1] <= maps[:, 0] + 1e-4).all())
        # pooled 8 x 8: noise averages out, anatomy does not
        pooled = torch.nn.functional.avg_pool2d(x, 8).flatten(1)
        spread = pooled.amax(dim=1) - pooled.amin(dim=1)
        return int((spread > 0.35).sum())

    assert structured(0.0) == 0
    assert structured(1.0) == 16
    assert 3 <= structured(0.5) <= 13
    without_tissue = dataclasses.replace(blank, tissue=None)
    x, _, _ = make_batch(without_tissue, idx, torch.Generator(), synth_share=1.0)
    pooled = torch.nn.functional.avg_pool2d(x, 8).flatten(1)
    assert float((pooled.amax(dim=1) - pooled.amin(dim=1)).max()) < 0.35  # all realistic


def test_a_three_class_run_trains_and_exports_a_necrosis_output(
    crops: CropSet, tmp_path: Path
) -> None:
    cfg = TrainConfig(
        model="ours",
        minutes=10.0,
        max_steps=2,
        input_size=64,
        source_size=96,
        batch_size=4,
        threads=1,
        val_every_s=1e9,
        config=SMALL,
        synth_share=0.5,
    )
    result = train(cfg, out=tmp_path, train_set=crops, val_set=crops, progress=False, log=print)
    assert result.steps == 2
    assert "val_necrosis_dice" in result.history[-1]
    seg = HeadSegmenter.load(tmp_path / "ours.pt")
    assert seg.has_necrosis_output
    assert seg.metadata["config"]["out_channels"] == NECROSIS_CLASSES
    assert seg.metadata["training_data"]["synth_share"] == 0.5
    assert seg.predict_classes([np.zeros((50, 70), np.float32)])[0].shape == (3, 50, 70)


def test_a_binary_checkpoint_of_before_resumes_as_binary(crops: CropSet, tmp_path: Path) -> None:
    cfg = TrainConfig(
        model="unet",
        minutes=10.0,
        max_steps=1,
        input_size=64,
        batch_size=4,
        threads=1,
        val_every_s=1e9,
        config=SMALL,
        out_channels=1,
        synth_share=0.0,
    )
    train(cfg, out=tmp_path / "a", train_set=crops, val_set=crops, progress=False, log=print)
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    for key in ("out_channels", "synth_share", "extreme_lesion_share", "init_weights"):
        del state["config"][key]  # as written before these existed
    torch.save(state, tmp_path / "old.pt")
    cfg.max_steps = 2
    result = train(
        cfg,
        out=tmp_path / "b",
        resume=tmp_path / "old.pt",
        train_set=crops,
        val_set=crops,
        progress=False,
        log=print,
    )
    assert result.steps == 2 and result.config.out_channels == 1
    assert not HeadSegmenter.load(tmp_path / "b" / "unet.pt").has_necrosis_output
