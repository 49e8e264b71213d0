"""HeadSegmenter: exact grid round trips, loading the shipped weights, bf16 agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from grading.engine.networks import SegmentationOutput
from grading.engine.predictor import (
    DEFAULT_WEIGHTS,
    HeadSegmenter,
    normalise_intensity,
    resize,
    to_network_input,
)

ODD_SIZES = [(97, 131), (255, 33), (129, 129), (300, 211), (64, 200)]


class _Passthrough(nn.Module):
    """Logits = the normalised input, scaled: a 'network' whose mask is the bright disc."""

    def forward(self, x: torch.Tensor) -> SegmentationOutput:
        logits = (x - 0.5) * 20.0
        return SegmentationOutput(logits=logits, seg_logits=logits)


def _disc(shape: tuple[int, int], centre: tuple[float, float], radius: float) -> np.ndarray:
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot(rr - centre[0], cc - centre[1])
    return np.clip(radius + 0.5 - d, 0.0, 1.0).astype(np.float32)  # anti-aliased edge


def _centroid(w: np.ndarray) -> np.ndarray:
    rr, cc = np.mgrid[: w.shape[0], : w.shape[1]]
    return np.array([(rr * w).sum(), (cc * w).sum()]) / w.sum()


@pytest.mark.parametrize("shape", ODD_SIZES)
def test_resize_down_and_back_keeps_the_grid(shape: tuple[int, int]) -> None:
    centre = (shape[0] * 0.43, shape[1] * 0.57)
    image = _disc(shape, centre, 0.2 * min(shape))
    small = resize(torch.from_numpy(image)[None, None], (128, 128))
    back = resize(small, shape)[0, 0].numpy()
    assert back.shape == shape
    shift = _centroid(back) - _centroid(image)
    assert np.abs(shift).max() < 0.05, shift  # no half-pixel shift either way


@pytest.mark.parametrize("shape", ODD_SIZES)
def test_predict_returns_each_image_on_its_own_grid(shape: tuple[int, int]) -> None:
    seg = HeadSegmenter(
        _Passthrough(), input_size=128, model_version="test", device=torch.device("cpu")
    )
    centre = (shape[0] * 0.5 + 3.3, shape[1] * 0.5 - 2.1)
    radius = 0.25 * min(shape)
    disc = _disc(shape, centre, radius)
    image = 200.0 + 1800.0 * disc  # stored values: arbitrary scale and offset
    (prob,) = seg.predict([image])
    assert prob.shape == shape and prob.dtype == np.float32
    mask = prob > 0.5
    truth = disc > 0.5
    # only boundary pixels may differ, and the mask is not shifted
    assert np.count_nonzero(mask ^ truth) <= 2.5 * np.pi * 2 * radius
    assert np.abs(_centroid(mask.astype(float)) - _centroid(truth.astype(float))).max() < 0.3


def test_predict_batches_mixed_sizes_in_input_order() -> None:
    seg = HeadSegmenter(
        _Passthrough(), input_size=64, model_version="test", device=torch.device("cpu")
    )
    images = [_disc(s, (s[0] / 2, s[1] / 2), 0.2 * min(s)) * 1000 for s in ODD_SIZES]
    out = seg.predict(images, batch_size=2)
    assert [o.shape for o in out] == ODD_SIZES


def test_normalisation_removes_scale_and_offset() -> None:
    rng = np.random.default_rng(3)
    image = rng.gamma(2.0, 300.0, (90, 70)).astype(np.float32)
    a = to_network_input([image], 64)
    b = to_network_input([image * 7.5 + 1234.0], 64)
    assert torch.allclose(a, b, atol=1e-4)
    flat = normalise_intensity(torch.zeros(1, 1, 8, 8))
    assert torch.count_nonzero(flat) == 0


def test_shipped_weights_load_on_cpu_without_download() -> None:
    seg = HeadSegmenter.load(device="cpu")
    assert seg.model_version.startswith("onfh-net-1.0+") and len(seg.model_version) == 21
    assert seg.input_size == seg.metadata["input_size"]
    assert seg.device == torch.device("cpu")
    # the file is a plain state dict: loadable with weights_only=True
    state = torch.load(DEFAULT_WEIGHTS, map_location="cpu", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    (prob,) = seg.predict([np.zeros((50, 61), np.float32)])
    assert prob.shape == (50, 61) and np.isfinite(prob).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_shipped_weights_run_on_cuda() -> None:
    seg = HeadSegmenter.load(device="cuda")
    cpu = HeadSegmenter.load(device="cpu", precision="float32")
    rng = np.random.default_rng(0)
    images = [rng.normal(500, 100, (200, 180)).astype(np.float32)]
    agree = np.mean((seg.predict(images)[0] > 0.5) == (cpu.predict(images)[0] > 0.5))
    assert agree > 0.999


def test_bf16_masks_match_float32() -> None:
    from grading.engine.phantoms import make_training_crops

    images, _ = make_training_crops(6, 31337, 160)
    f32 = HeadSegmenter.load(precision="float32").predict(list(images))
    bf16 = HeadSegmenter.load(precision="bfloat16").predict(list(images))
    same = np.mean([np.mean((a > 0.5) == (b > 0.5)) for a, b in zip(f32, bf16, strict=True)])
    assert same > 0.999
