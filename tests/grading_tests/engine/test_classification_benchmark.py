"""``onfh benchmark --classifications``: the true-mask rules and the engine's own masks on
held-out volume phantoms (counts that must add up, the published figure beside)."""

from __future__ import annotations

import pytest

from grading.engine.classification_benchmark import (
    JIC_LABELS,
    classification_benchmark,
    engine_classification_benchmark,
)


@pytest.mark.slow
def test_both_reports_on_one_phantom() -> None:
    from grading.engine.predictor import HeadSegmenter

    true_masks = classification_benchmark(n_phantoms=1)
    assert true_masks.hips == 2
    assert sum(sum(row.values()) for row in true_masks.confusion.values()) == 2

    report = engine_classification_benchmark(HeadSegmenter.load(), n_phantoms=1)
    assert report.hips == 2
    assert set(report.confusion) == set(JIC_LABELS)
    assert sum(sum(row.values()) for row in report.confusion.values()) == 2
    assert 0 <= report.jic_correct <= 2
    # one roof measurement (or a miss) per hip with a coronal classification
    assert len(report.roof_edge_errors_mm) + report.roof_missing == len(report.coronal_arc_errors)
    assert report.slices >= 10  # coronal slices with a true head section, both hips
    assert 0 <= report.slices_correct <= report.slices
    assert len(report.coronal_dice) == 1 and len(report.sagittal_dice) == 2
    assert 0.0 <= report.coronal_dice[0] <= 1.0
    text = report.as_text()
    assert "JIC type accuracy" in text and "87.8 %" in text
    assert report.axial_split == {}  # only with split
    assert "axial vs coronal grade agreement" in text and "roof lateral edge" in text


@pytest.mark.slow
def test_the_split_measures_the_axial_grade_with_true_masks_too() -> None:
    """With ``split`` the axial series is graded again with the true head, the true
    necrosis and both: with both true, the grade is the volume's truth on a 4 mm grid."""
    from grading.engine.predictor import HeadSegmenter

    report = engine_classification_benchmark(HeadSegmenter.load(), n_phantoms=1, split=True)
    assert set(report.axial_split) == {"true_both", "true_head", "true_necrosis", "engine"}
    for counts in report.axial_split.values():
        assert counts.hips == 2 and len(counts.details) == 2
    assert report.axial_split["engine"].grade_correct == report.axial_correct
    assert report.axial_split["true_both"].grade_correct >= 1
    assert "axial split" in report.as_text()
