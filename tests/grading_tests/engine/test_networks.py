"""Networks: output shapes, each supervision path's output and loss, ablation switches."""

from __future__ import annotations

import pytest
import torch

from grading.engine.networks import (
    MODEL_NAMES,
    LinkNet,
    ONFHNet,
    SegmentationLoss,
    UNet,
    build_network,
    has_geometric_path,
)

SIZE = 64


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def _targets(batch: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = torch.randn(batch, 1, SIZE, SIZE)
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    d = 12.0 - ((yy - 30.0) ** 2 + (xx - 34.0) ** 2).sqrt()
    head = (d > 0).float().expand(batch, 1, SIZE, SIZE).contiguous()
    sdf = torch.tanh(d / 8.0).expand(batch, 1, SIZE, SIZE).contiguous()
    return x, head, sdf


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_network_maps_input_to_same_size_logits(name: str) -> None:
    model = build_network(name, **({"width": 8} if name == "linknet" else {})).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 1, SIZE, SIZE))
    assert out.logits.shape == (3, 1, SIZE, SIZE)
    assert out.seg_logits.shape == (3, 1, SIZE, SIZE)
    assert torch.isfinite(out.logits).all()
    assert out.deep == ()  # deep supervision heads only run in training mode


def test_unknown_model_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        build_network("resnet-9000")


def test_ours_has_both_paths_and_each_has_its_own_loss() -> None:
    model = build_network("ours").train()
    assert isinstance(model, ONFHNet) and has_geometric_path(model)
    x, head, sdf = _targets()
    out = model(x)
    assert [d.shape[-1] for d in out.deep] == [SIZE // 2, SIZE // 4, SIZE // 8]
    assert out.sdf is not None and out.sdf.shape == (2, 1, SIZE, SIZE)
    assert out.sdf.abs().max() <= 1.0  # tanh-normalised
    assert out.logits is not out.seg_logits  # fused with the signed distance
    total, parts = SegmentationLoss()(out, head, sdf)
    assert set(parts) == {"final", "seg", "deep", "geometric"}
    assert torch.isclose(total, sum(parts.values()))
    total.backward()
    assert model.sdf_head is not None
    for module in (model.sdf_head, model.deep_heads, model.head):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    assert model.fusion is not None and model.fusion.grad is not None


def test_geometric_loss_is_zero_for_a_perfect_distance_map() -> None:
    x, head, sdf = _targets()
    out = build_network("ours").eval()(x)
    out.sdf = sdf.clone()
    _, parts = SegmentationLoss()(out, head, sdf)
    assert float(parts["geometric"]) == pytest.approx(0.0, abs=1e-7)


def test_geometric_path_needs_a_distance_target() -> None:
    x, head, _ = _targets()
    with pytest.raises(ValueError, match="sdf_target"):
        SegmentationLoss()(build_network("ours").train()(x), head, None)


def test_ablation_without_geometry_has_no_distance_head() -> None:
    model = build_network("ours-no-geom").train()
    assert not has_geometric_path(model)
    x, head, _ = _targets()
    out = model(x)
    assert out.sdf is None and out.logits is out.seg_logits and len(out.deep) == 3
    _, parts = SegmentationLoss()(out, head)
    assert set(parts) == {"final", "deep"}


def test_ablation_without_deep_supervision_has_no_auxiliary_heads() -> None:
    model = build_network("ours-no-ds").train()
    assert len(model.deep_heads) == 0  # type: ignore[arg-type]
    x, head, sdf = _targets()
    out = model(x)
    assert out.deep == () and out.sdf is not None
    _, parts = SegmentationLoss()(out, head, sdf)
    assert set(parts) == {"final", "seg", "geometric"}


def test_fusion_starts_as_the_plain_segmentation() -> None:
    # the untrained distance head must not steer the mask at the start of training
    model = build_network("ours").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, SIZE, SIZE))
    assert out.logits is not out.seg_logits
    assert torch.equal(out.logits, out.seg_logits)


def test_fusion_can_be_switched_off_at_inference() -> None:
    model = build_network("ours").eval()
    assert isinstance(model, ONFHNet) and model.fusion is not None
    x = torch.randn(1, 1, SIZE, SIZE)
    with torch.no_grad():
        model.fusion.copy_(torch.tensor([1.0, 4.0, 0.0]))  # as after training
        fused = model(x)
        model.fuse_geometry = False
        plain = model(x)
    assert plain.logits is plain.seg_logits
    assert torch.equal(plain.seg_logits, fused.seg_logits)
    assert not torch.equal(plain.logits, fused.logits)


def test_baselines_have_one_path_and_plain_unet_matches_ours_backbone() -> None:
    unet = build_network("unet")
    ours = build_network("ours")
    assert isinstance(unet, UNet)
    backbone = sum(p.numel() for p in unet.backbone.parameters())  # type: ignore[union-attr]
    assert backbone == sum(p.numel() for p in ours.backbone.parameters())  # type: ignore[union-attr]
    x, head, _ = _targets()
    _, parts = SegmentationLoss()(unet.train()(x), head)
    assert set(parts) == {"final"}
    link = build_network("linknet")
    assert isinstance(link, LinkNet)
    n = sum(p.numel() for p in link.parameters())
    assert 10e6 < n < 13e6  # ResNet-18-sized encoder, as in the paper's LinkNet


def test_a_few_steps_reduce_the_loss() -> None:
    model = build_network("ours").train()
    x, head, sdf = _targets(4)
    x = x * 0.1 + head * 2.0  # an easy bright disc
    loss_fn = SegmentationLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = None
    for _ in range(15):
        loss, _ = loss_fn(model(x), head, sdf)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.8 * first
