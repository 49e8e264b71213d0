"""``onfh benchmark --threshold``: the necrosis step measured with true head masks."""

from __future__ import annotations

import numpy as np

from grading.engine.threshold_benchmark import (
    CROP_KINDS,
    TruthSegmenter,
    encode_truth,
    run_threshold,
    threshold_markdown,
)


def test_true_masks_travel_in_the_images_and_change_them_by_at_most_one() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 4096, (2, 40, 50)).astype(np.float32)
    labels = rng.integers(0, 3, (2, 40, 50)).astype(np.uint8)
    encoded = encode_truth(images, labels)
    assert np.abs(encoded - images).max() <= 1
    masks = TruthSegmenter().predict(list(encoded))
    assert np.array_equal(np.stack(masks) > 0.5, labels > 0)


def test_a_small_run_reports_every_kind_and_the_series() -> None:
    report = run_threshold(n_crops=1, n_series=1, n_network_series=0, weights=None, workers=1)
    assert set(report["crops"]) == set(CROP_KINDS)
    for kind in ("normal", "oedema", "physeal_scar"):
        assert report["crops"][kind]["reported"] == 0  # no necrosis on these heads
    truth = report["series_truth_masks"]
    assert truth["hips"] == 2 and truth["sections"] > 0
    assert truth["hip_grade_correct"] == 2
    assert "series_network" not in report
    table = threshold_markdown(report)
    assert "| ground truth (1 series) | 2/2 |" in table
