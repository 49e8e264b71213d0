"""Steps 13 and 14: the learned necrosis method beside the threshold, and the uncertainty.

The learned method is driven by ``TruthClassSegmenter`` (a stand-in for a network with a
necrosis output: the phantom's labels ride in the stored values modulo 4), so these
tests check the plumbing and the decisions, not a network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from grading.engine.flags import Flag, FlagNote, flag_code, has_flag
from grading.engine.pipeline import PipelineConfig, grade_series
from grading.engine.threshold_benchmark import TruthClassSegmenter, encode_classes
from grading.engine.types import Grade, MRSlice
from grading.engine.uncertainty import proportion_uncertainty, uncertain_grade_note

GRADES = ("none", "mild", "moderate", "severe")


@cache
def phantom(seed: int, right: str, left: str):  # type: ignore[no-untyped-def]
    from grading.engine.phantoms import make_bilateral_series

    return make_bilateral_series(seed, n_slices=20, necrosis={"right": right, "left": left})


def class_slices(series, labels: npt.NDArray[np.uint8] | None = None) -> list[MRSlice]:  # type: ignore[no-untyped-def]
    pixels = encode_classes(series.images, series.labels if labels is None else labels)
    return [
        replace(m, pixels=pixels[k], sop_instance_uid=f"1.2.9.{k}", series_instance_uid="1.2.9")
        for k, m in enumerate(series.mr_slices())
    ]


class CountingSegmenter(TruthClassSegmenter):
    def __init__(self, *, necrosis_output: bool = True) -> None:
        self.calls: list[int] = []
        self.has_necrosis_output = necrosis_output

    def predict(
        self, images: Sequence[npt.NDArray[np.float32]], *, batch_size: int = 16
    ) -> list[npt.NDArray[np.float32]]:
        self.calls.append(len(images))
        return super().predict(images, batch_size=batch_size)


# ------------------------------------------------------------------ the numbers


def test_a_sure_normal_hip_is_none_with_certainty() -> None:
    u = proportion_uncertainty(0.0, [0.0, 0.0, 0.0])
    assert u.interval[0] == 0.0 and u.interval[1] < 0.001
    assert u.grade_probabilities["none"] == pytest.approx(1.0)


@pytest.mark.parametrize("p", [0.0, 0.004, 0.12, 0.149, 0.22, 0.3, 0.31, 0.7, 1.0])
def test_probabilities_sum_to_one_and_the_interval_holds_the_proportion(p: float) -> None:
    u = proportion_uncertainty(p, [p * 0.9, p * 1.1])
    assert set(u.grade_probabilities) == set(GRADES)
    assert sum(u.grade_probabilities.values()) == pytest.approx(1.0, abs=1e-3)
    assert u.interval[0] <= p <= u.interval[1]


def test_spread_between_augmentations_and_methods_widens_the_interval() -> None:
    sure = proportion_uncertainty(0.22, [0.22, 0.22])
    spread = proportion_uncertainty(0.22, [0.18, 0.26])
    methods = proportion_uncertainty(0.22, [0.22, 0.22], method_difference=0.1)
    width = lambda u: u.interval[1] - u.interval[0]  # noqa: E731
    assert width(spread) > width(sure) and width(methods) > width(sure)
    assert methods.grade_probabilities["moderate"] < sure.grade_probabilities["moderate"]


def test_uncertain_grade_when_the_interval_crosses_a_boundary_or_mild_rests_on_little() -> None:
    near = proportion_uncertainty(0.145, [0.14, 0.15])
    note = uncertain_grade_note(Grade.MILD, near, 900.0, 900.0, limit=150.0, unit="mm³")
    assert isinstance(note, FlagNote) and note.code is Flag.UNCERTAIN_GRADE
    assert "moderate" in note
    inside = proportion_uncertainty(0.07, [0.07, 0.07])
    assert uncertain_grade_note(Grade.MILD, inside, 900.0, 900.0, limit=150.0, unit="mm³") is None
    small = uncertain_grade_note(Grade.MILD, inside, 80.0, 80.0, limit=150.0, unit="mm³")
    assert small is not None and "80 mm³" in small
    none = proportion_uncertainty(0.0, [0.0, 0.0])
    assert uncertain_grade_note(Grade.NONE, none, 0.0, 0.0, limit=150.0, unit="mm³") is None
    seen = uncertain_grade_note(Grade.NONE, none, 0.0, 40.0, limit=150.0, unit="mm³")
    assert seen is not None and "40 mm³" in seen


def test_flags_keep_their_string_form() -> None:
    note = Flag.METHODS_DISAGREE.note("threshold 8 %, learned 17 %")
    assert note == "methods_disagree: threshold 8 %, learned 17 %"
    assert flag_code(note) == flag_code(str(note)) == "methods_disagree"
    assert all(flag.meaning for flag in Flag)


# ------------------------------------------------------------------ through grade_series


def test_every_hip_and_slice_has_an_interval_and_grade_probabilities() -> None:
    series = phantom(9000, "none", "moderate")
    segmenter = CountingSegmenter(necrosis_output=False)
    result = grade_series(class_slices(series), segmenter)
    for hip in result.hips:
        assert hip.uncertainty is not None
        low, high = hip.uncertainty.interval
        assert low <= hip.proportion <= high
        assert sum(hip.uncertainty.grade_probabilities.values()) == pytest.approx(1.0, abs=1e-3)
        assert len(hip.uncertainty.samples) == 3  # flip, darker, brighter
        truth = series.truth[hip.side]
        assert str(hip.grade) == str(truth.grade)
        assert hip.method_proportions == {"threshold": pytest.approx(hip.proportion)}
    none = next(h for h in result.hips if h.side == "right")
    assert none.uncertainty is not None and none.uncertainty.grade_probabilities["none"] > 0.9
    for slice_result in result.slices:
        for hip in slice_result.hips:
            assert hip.uncertainty is not None
            assert hip.uncertainty.interval[0] <= hip.proportion <= hip.uncertainty.interval[1]
    # the flipped windows ride in the fine pass's call: twice its windows
    coarse, *fine = segmenter.calls
    heads = sum(len(s.hips) for s in result.slices)
    assert sum(fine) == 2 * heads


def test_without_the_uncertainty_step_nothing_is_added() -> None:
    series = phantom(9000, "none", "moderate")
    segmenter = CountingSegmenter(necrosis_output=False)
    config = PipelineConfig(uncertainty=None)
    result = grade_series(class_slices(series), segmenter, config=config)
    assert all(h.uncertainty is None for h in result.hips)
    assert not any(has_flag(h.flags, Flag.UNCERTAIN_GRADE) for h in result.hips)
    coarse, *fine = segmenter.calls
    assert sum(fine) == sum(len(s.hips) for s in result.slices)


def test_the_learned_method_runs_beside_the_threshold_and_agrees_on_the_truth() -> None:
    series = phantom(9002, "moderate", "severe")
    result = grade_series(class_slices(series), CountingSegmenter())
    for hip in result.hips:
        truth = series.truth[hip.side].proportion
        assert set(hip.method_proportions) == {"threshold", "learned"}
        assert hip.method_proportions["learned"] == pytest.approx(truth, abs=0.01)
        assert hip.proportion == pytest.approx(hip.method_proportions["threshold"])
        assert not has_flag(hip.flags, Flag.METHODS_DISAGREE)


def test_methods_that_disagree_on_the_grade_are_flagged_and_both_reported() -> None:
    """The learned output sees necrosis on twice the rows of the true lesion: a moderate
    hip becomes severe by that method; the threshold's grade is reported, both shown."""
    series = phantom(9002, "moderate", "severe")
    labels = series.labels.copy()
    necrotic = labels == 2
    grown = necrotic | np.roll(necrotic, 6, axis=1) | np.roll(necrotic, -6, axis=1)
    labels[grown & (labels > 0)] = 2
    result = grade_series(class_slices(series, labels), CountingSegmenter())
    right = next(h for h in result.hips if h.side == "right")
    assert str(right.grade) == "moderate"
    learned = right.method_proportions["learned"]
    assert learned > 0.3
    flag = next(f for f in right.flags if flag_code(f) == "methods_disagree")
    assert "learned" in flag and "threshold" in flag and "reported: threshold" in flag
    # the disagreement widens the interval into severe
    assert right.uncertainty is not None and right.uncertainty.interval[1] > 0.3
    assert has_flag(right.flags, Flag.UNCERTAIN_GRADE)


def test_the_learned_method_can_set_the_reported_proportion() -> None:
    series = phantom(9002, "moderate", "severe")
    config = PipelineConfig(reported_method="learned")
    result = grade_series(class_slices(series), CountingSegmenter(), config=config)
    for hip in result.hips:
        assert hip.proportion == pytest.approx(hip.method_proportions["learned"])
        assert hip.proportion == pytest.approx(series.truth[hip.side].proportion, abs=0.01)
    # without a necrosis output the threshold reports, whatever the config says
    plain = grade_series(
        class_slices(series), CountingSegmenter(necrosis_output=False), config=config
    )
    assert all(set(h.method_proportions) == {"threshold"} for h in plain.hips)


def test_a_head_missed_inside_its_run_of_slices_widens_the_interval() -> None:
    """The truth stand-in finds every head; hiding the left head on three middle slices
    (as a network that misses it would) leaves a hole in the hip's run: its interval then
    allows any share of necrosis there, and the flag says so."""
    from grading.engine.uncertainty import missing_sections

    series = phantom(9013, "mild", "moderate")
    slices = class_slices(series)
    labels = series.labels.copy()
    segmenter = CountingSegmenter(necrosis_output=False)
    full = grade_series(slices, segmenter)
    left = next(h for h in full.hips if h.side == "left")
    rows = [k for k, r in enumerate(full.slices) if any(h.side == "left" for h in r.hips)]
    hidden = rows[len(rows) // 2 - 1 : len(rows) // 2 + 2]
    middle = labels.shape[2] // 2
    for k in hidden:  # the patient's left is the image's right half
        labels[k][:, middle:] = 0
    holed = grade_series(class_slices(series, labels), segmenter)
    assert all(not any(h.side == "left" for h in holed.slices[k].hips) for k in hidden), (
        "the left head should be missing on the hidden slices"
    )
    count, area = missing_sections(holed.slices, "left")
    assert count == 3 and area > 0
    assert missing_sections(full.slices, "left") == (0, 0.0)
    hip = next(h for h in holed.hips if h.side == "left")
    assert left.uncertainty is not None and hip.uncertainty is not None
    width = lambda u: u.interval[1] - u.interval[0]  # noqa: E731
    assert width(hip.uncertainty) > 2 * width(left.uncertainty)
    flag = next(f for f in hip.flags if flag_code(f) == "uncertain_grade")
    assert "no head found on 3 section(s)" in flag


def test_the_learned_mask_is_cleaned_as_step_8_cleans_the_threshold() -> None:
    from grading.engine.learned import clean_necrosis

    head = np.ones((40, 40), bool)
    necrosis = np.zeros((40, 40), bool)
    necrosis[5, 5] = necrosis[30, 8] = necrosis[12, 33] = True  # scattered noise pixels
    necrosis[20:26, 20:26] = True  # a 6 x 6 px lesion (36 px = 9 mm² at 0.5 mm)
    necrosis[22, 22] = False  # a hole in it
    cleaned = clean_necrosis(necrosis, head, 0.25, 4.0)
    assert not cleaned[5, 5] and not cleaned[30, 8] and not cleaned[12, 33]
    assert cleaned[20:26, 20:26].all()
    assert int(cleaned.sum()) == 36
    assert not clean_necrosis(np.zeros((4, 4), bool), np.ones((4, 4), bool), 1.0, 4.0).any()
