"""``onfh train``'s loop: steps and time budgets, checkpoints, resuming, exported weights.

Tiny runs (a few steps on 16 small phantom crops) so the loop itself is under test; how
well a long run segments is the shipped weights' regression test and the benchmark.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from grading.engine.phantoms import make_training_crops
from grading.engine.predictor import HeadSegmenter
from grading.engine.training import CropSet, TrainConfig, augment, prepare_crops, train


@pytest.fixture(scope="module")
def crops() -> CropSet:
    images, labels = make_training_crops(16, 7, 96)
    return prepare_crops(images, labels, 64, workers=2)


def _config(**kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        model="ours",
        minutes=10.0,
        input_size=64,
        source_size=96,
        batch_size=4,
        threads=1,
        val_every_s=1e9,
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_a_step_budget_stops_the_run_and_the_weights_load(crops: CropSet, tmp_path: Path) -> None:
    result = train(
        _config(max_steps=3),
        out=tmp_path,
        train_set=crops,
        val_set=crops,
        progress=False,
        log=lambda _: None,
    )
    assert result.steps == 3
    assert 0.0 <= result.val_dice <= 1.0
    assert (tmp_path / "checkpoint.pt").is_file()
    segmenter = HeadSegmenter.load(tmp_path / "ours.pt")
    assert segmenter.metadata["training"]["steps"] == 3
    assert segmenter.metadata["model"] == "ours"
    probability = segmenter.predict([np.zeros((80, 90), np.float32)])[0]
    assert probability.shape == (80, 90)


def test_resuming_continues_from_the_checkpoint(crops: CropSet, tmp_path: Path) -> None:
    first = tmp_path / "first"
    train(
        _config(max_steps=2),
        out=first,
        train_set=crops,
        val_set=crops,
        progress=False,
        log=lambda _: None,
    )
    state = torch.load(first / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2 and state["config"]["max_steps"] == 2
    # the new total budget (4 steps) replaces the checkpoint's; the run goes on from step 2
    resumed = train(
        _config(max_steps=4),
        out=tmp_path / "second",
        resume=first / "checkpoint.pt",
        train_set=crops,
        val_set=crops,
        progress=False,
        log=lambda _: None,
    )
    assert resumed.steps == 4
    assert [h["step"] for h in resumed.history] == [2, 4]


def test_a_time_budget_stops_the_run(crops: CropSet) -> None:
    result = train(
        _config(minutes=0.02), train_set=crops, val_set=crops, progress=False, log=lambda _: None
    )
    assert result.steps >= 1
    assert result.train_seconds >= 0.02 * 60


def test_augmentation_keeps_targets_aligned_and_is_deterministic(crops: CropSet) -> None:
    x, head, sdf = crops.images[:8], crops.head[:8], crops.sdf[:8]
    a = augment(x, head, sdf, torch.Generator().manual_seed(3))
    b = augment(x, head, sdf, torch.Generator().manual_seed(3))
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
        assert u.is_contiguous() and u.shape == x.shape
    # a flipped image comes with its flipped head mask: the head stays where its targets say
    _, head_out, sdf_out = a
    disagree = ((head_out > 0.5) ^ (sdf_out > 0)).float().mean()
    assert disagree < 0.02
