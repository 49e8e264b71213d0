"""``onfh benchmark --init-seeds``: one trained row per model and initialisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grading.engine.benchmark import AccuracyConfig, run_accuracy


def test_each_initialisation_is_trained_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONFH_CACHE_DIR", str(tmp_path / "cache"))
    cfg = AccuracyConfig(
        models=("unet",),
        minutes_per_model=5.0,
        steps_per_model=2,
        n_train=32,
        n_val=8,
        n_test=8,
        n_series=0,
        shipped=False,
        init_seeds=(3, 4),
        families=("own",),
        train_families=("own",),
    )
    report = run_accuracy(cfg, out=tmp_path / "out", progress=False, log=lambda _: None)
    rows = report["results"]
    assert set(rows) == {"unet (init seed 3)", "unet (init seed 4)"}
    assert all(row["steps"] == 2 for row in rows.values())
    assert all(0.0 <= row["families"]["own"]["head"]["dice"] <= 1.0 for row in rows.values())
    for seed in (3, 4):
        meta = json.loads((tmp_path / "out" / "own" / f"unet-seed{seed}" / "unet.json").read_text())
        # a start of its own, on the benchmark's training crops
        assert meta["training_data"]["init_seed"] == seed
        assert meta["training_data"]["train_seed"] == cfg.train_seed
