"""``onfh benchmark --threshold --family b`` on the smallest set: one series, one crop.

The figures come from the full run in docs/benchmarks.md; this checks that the set is
read, graded with the network and with the true head masks, and counted.
"""

from __future__ import annotations

import pytest

from grading.engine.family_b_benchmark import family_b_markdown, run_family_b

pytestmark = pytest.mark.slow


def test_family_b_report_counts_hips_sections_and_crops() -> None:
    report = run_family_b(seed=7000, n_series=1, n_crops=1, workers=1)
    for key in ("series_truth_masks", "series_network"):
        rows = report[key]
        assert rows["series"] == 1 and rows["hips"] == 2
        assert rows["sections"] >= 10  # both hips over the slices that show them
        assert 0 <= rows["hip_grade_correct"] <= 2
        assert rows["wrong_hips_uncertain"] <= rows["wrong_hips"]
        assert rows["hip_interval_covers_truth"] <= 2
    assert report["crops"]["n"] == 1
    text = family_b_markdown(report)
    assert "ground truth (1 series)" in text and "family B crops" in text
