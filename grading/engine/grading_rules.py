"""Steinberg extent grade from the necrotic proportion of the femoral head.

Boundary rule (proportion p is a fraction, compared exactly, no rounding):
  none      p <  0.001        (below 0.1 %)
  mild      0.001 <= p < 0.15
  moderate  0.15 <= p <= 0.30 (15 % to 30 % inclusive)
  severe    p >  0.30
"""

from __future__ import annotations

import math

from grading.engine.types import Grade

NONE_BELOW = 0.001
MILD_BELOW = 0.15
MODERATE_UP_TO = 0.30

GRADE_ORDER: tuple[Grade, ...] = (Grade.NONE, Grade.MILD, Grade.MODERATE, Grade.SEVERE)


def grade_from_proportion(proportion: float) -> Grade:
    """Grade for a necrotic proportion in 0..1 (see the module docstring for the edges)."""
    if math.isnan(proportion) or proportion < 0.0 or proportion > 1.0:
        raise ValueError(f"proportion must be a fraction in [0, 1], got {proportion!r}")
    if proportion < NONE_BELOW:
        return Grade.NONE
    if proportion < MILD_BELOW:
        return Grade.MILD
    if proportion <= MODERATE_UP_TO:
        return Grade.MODERATE
    return Grade.SEVERE


def proportion_of(necrosis_area: float, head_area: float) -> float:
    """necrosis / head, 0.0 for an empty head; clipped to [0, 1]."""
    if head_area <= 0.0:
        return 0.0
    return min(1.0, max(0.0, necrosis_area / head_area))
