"""Own-family validation: the shifted look and the coverage calibration of uncertain_grade."""

from __future__ import annotations

from typing import Any

import numpy as np

from grading.engine.own_validation import (
    calibrate_coverage,
    detection_limit_mm3,
    extra_sections,
    false_necrosis_mm3,
    rates,
    shift_appearance,
    strong_appearance,
)


def _row(true_grade: str, grade: str, proportion: float, samples: list[float]) -> dict[str, Any]:
    return {
        "true_grade": true_grade,
        "grade": grade,
        "proportion": proportion,
        "samples": samples,
        "methods": {"threshold": proportion},
        "necrosis_mm3": proportion * 60000.0,
        "head_mm3": 60000.0,
        "flags": [],
    }


def test_shift_appearance_keeps_shape_scale_and_order_mostly() -> None:
    rng = np.random.default_rng(0)
    images = (rng.random((3, 32, 40)) * 1000).astype(np.float32)
    shifted = shift_appearance(images, 7)
    assert shifted.shape == images.shape and shifted.dtype == np.float32
    assert float(shifted.min()) >= 0.0
    assert 0.3 < float(np.percentile(shifted, 99)) / float(np.percentile(images, 99)) < 3.0
    assert np.array_equal(shifted, shift_appearance(images, 7))
    assert not np.array_equal(shifted, shift_appearance(images, 8))
    # a monotone curve: brighter stays brighter on average
    assert np.corrcoef(images.ravel(), shifted.ravel())[0, 1] > 0.5


def test_coverage_is_the_widest_that_keeps_false_alarms_under_the_limit() -> None:
    # right hips far from a boundary, some near one; wrong hips near a boundary
    rows = [_row("mild", "mild", 0.08, [0.08, 0.081]) for _ in range(8)]
    rows += [_row("mild", "mild", 0.135, [0.13, 0.14]) for _ in range(2)]
    rows += [_row("moderate", "mild", 0.14, [0.13, 0.16]) for _ in range(2)]
    coverage, table = calibrate_coverage(rows, coverages=(0.5, 0.9, 0.999))
    assert table[0.999].recall >= table[0.5].recall
    assert table[coverage].false_alarm <= 0.2
    wider = [c for c in table if c > coverage]
    assert all(table[c].false_alarm > 0.2 for c in wider)
    assert rates(rows, coverage).wrong == 2


def test_strong_appearance_is_harsher_but_keeps_the_order_on_average() -> None:
    rng = np.random.default_rng(1)
    images = (rng.random((2, 48, 64)) * 1000).astype(np.float32)
    images[:, 10:30, 10:30] = 2000.0  # a bright block: fat stays brighter than the rest
    strong = strong_appearance(images, 3)
    assert strong.shape == images.shape and strong.dtype == np.float32
    assert float(strong.min()) >= 0.0
    assert np.array_equal(strong, strong_appearance(images, 3))
    assert float(strong[:, 10:30, 10:30].mean()) > float(strong[:, 35:, 35:].mean())


def test_the_detection_limit_is_the_false_necrosis_of_normal_heads() -> None:
    normal = [_row("none", "none", 0.0, [0.0, 0.0]) for _ in range(18)]
    normal += [_row("none", "none", 0.0, [0.0, 0.01])]  # 600 mm³ in one augmentation
    normal += [_row("none", "mild", 0.02, [0.02, 0.03])]  # 1800 mm³ under augmentation
    assert sorted(false_necrosis_mm3(normal))[-2:] == [600.0, 1800.0]
    assert detection_limit_mm3(normal, quantile=1.0) == 1800.0
    assert 150.0 <= detection_limit_mm3(normal, quantile=0.9) < 1800.0
    assert detection_limit_mm3([_row("mild", "mild", 0.05, [0.05])]) == 150.0  # no normal hip
    # with the limit, the false mild hip is flagged and a large mild lesion is not
    lesion = _row("mild", "mild", 0.1, [0.1, 0.1])
    assert rates([normal[-1], lesion], 0.5, 1800.0 + 1).wrong_flagged == 1
    assert rates([normal[-1], lesion], 0.5, 1800.0 + 1).right_flagged == 0


def test_extra_sections_count_heads_found_where_the_section_has_none() -> None:
    found = [{"left"}, {"left", "right"}, {"right"}, set()]
    true = [set(), {"left", "right"}, {"left"}, {"left"}]
    assert extra_sections(found, true) == {"left": 1, "right": 1}
    assert extra_sections(true, true) == {}
