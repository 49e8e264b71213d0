import math

import pytest

from grading.engine.grading_rules import grade_from_proportion, proportion_of
from grading.engine.types import Grade


@pytest.mark.parametrize(
    ("proportion", "grade"),
    [
        (0.0, Grade.NONE),
        (0.000999999, Grade.NONE),
        (0.001, Grade.MILD),
        (0.149999, Grade.MILD),
        (0.15, Grade.MODERATE),
        (0.30, Grade.MODERATE),
        (0.3000001, Grade.SEVERE),
        (1.0, Grade.SEVERE),
    ],
)
def test_grade_edges(proportion: float, grade: Grade) -> None:
    assert grade_from_proportion(proportion) is grade


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan])
def test_grade_rejects_non_fractions(bad: float) -> None:
    with pytest.raises(ValueError):
        grade_from_proportion(bad)


def test_proportion_of_empty_head_is_zero() -> None:
    assert proportion_of(5.0, 0.0) == 0.0
    assert proportion_of(15.0, 100.0) == pytest.approx(0.15)
