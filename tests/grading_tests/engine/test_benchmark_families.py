"""``onfh benchmark`` across phantom families: leave-one-family-out rows, every row
measured on every family, the side-by-side table with in-family and shift figures.

The second family here is a stand-in (the project's generator with inverted contrast)
so the test runs whether or not ``grading.engine.phantoms_b`` is in the tree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from grading.engine import families
from grading.engine.benchmark import AccuracyConfig, accuracy_markdown, run_accuracy
from grading.engine.families import PhantomFamily
from grading.engine.phantoms import make_training_crops


def _inverted() -> PhantomFamily:
    def crops(n: int, seed: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels = make_training_crops(n, seed + 17, size)
        return (images.max() - images).astype(np.float32), labels

    return PhantomFamily(
        name="independent",
        module="tests.inverted",
        training_crops=crops,
        test_crops=crops,
        evaluation_series=lambda seed, count: [],
    )


def test_rows_are_trained_per_family_and_measured_on_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONFH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(families._FACTORIES, "independent", _inverted)
    cfg = AccuracyConfig(
        models=("unet",),
        minutes_per_model=5.0,
        steps_per_model=2,
        n_train=16,
        n_val=8,
        n_test=8,
        n_series=0,
        shipped=False,
    )
    report = run_accuracy(cfg, out=tmp_path / "out", progress=False, log=lambda _: None)
    rows = report["results"]
    assert set(rows) == {"unet (trained on own)", "unet (trained on independent)"}
    for label, row in rows.items():
        assert set(row["families"]) == {"own", "independent"}
        head = row["families"]["own"]["head"]
        assert 0.0 <= head["dice"] <= 1.0 and 0.0 <= head["necrosis_dice"] <= 1.0
        family = row["trained_on"]
        meta = json.loads((tmp_path / "out" / family / "unet" / "unet.json").read_text())
        assert meta["training_data"]["family"] == family, label
        assert meta["config"]["out_channels"] == 3
    table = accuracy_markdown(report)
    header = table.splitlines()[2]
    assert header == "| model | trained on | metric | own family | independent family | gap |"
    line = next(
        ln
        for ln in table.splitlines()
        if ln.startswith("| unet (trained on own) | own | head Dice")
    )
    own, other, gap = (float(c) for c in line.strip("| ").split(" | ")[3:6])
    assert gap == pytest.approx(other - own, abs=2e-4)
    assert "### independent family" in table


def test_a_family_not_in_the_tree_is_reported_not_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> PhantomFamily:
        raise ImportError("No module named 'grading.engine.phantoms_b'")

    monkeypatch.setenv("ONFH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(families._FACTORIES, "independent", missing)
    cfg = AccuracyConfig(models=(), n_test=4, n_series=0, shipped=True)
    report = run_accuracy(cfg, progress=False, log=lambda _: None)
    assert report["families"]["independent"].startswith("not available")
    assert "not available" in accuracy_markdown(report)


def test_the_independent_family_is_seen_through_the_benchmarks_interface() -> None:
    from grading.engine import phantoms_b

    raw = phantoms_b.make_evaluation_set(5, n_series=1, n_crops=2, n_slices=3)
    s = families.evaluation_series_b(raw.series[0])
    assert len(s.mr_slices()) == 3 and s.labels.shape[0] == 3
    assert set(s.truth) == {"left", "right"}
    hips = raw.series[0].hips.values()
    for k, on_slice in enumerate(s.slice_truth):
        # the per-side counts behind the truth add up to the slice's label map
        assert sum(int(h.slice_head_pixels[k]) for h in hips) == int((s.labels[k] > 0).sum())
        nec = sum(int(h.slice_necrosis_pixels[k]) for h in hips)
        assert nec == int((s.labels[k] == 2).sum())
        assert len(on_slice) == sum(1 for h in hips if h.slice_head_pixels[k] > 0)
        for hip in on_slice:
            assert 0.0 <= hip.proportion <= 1.0
    images, labels = families._b_test_crops(phantoms_b, 2, 5, 128)
    assert images.shape == labels.shape == (2, 128, 128) and labels.max() <= 2


def test_without_series_the_grading_rows_are_left_out_not_zero(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONFH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setitem(families._FACTORIES, "independent", _inverted)
    cfg = AccuracyConfig(models=(), n_test=4, n_series=0, shipped=True)
    table = accuracy_markdown(run_accuracy(cfg, progress=False, log=lambda _: None))
    summary = table.split("### own family")[0]
    assert "head Dice (crops)" in summary
    assert "grade accuracy" not in summary and "nan" not in summary
