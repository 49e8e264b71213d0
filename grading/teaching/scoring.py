"""How an attempt is scored (pure functions, no Django).

Grade agreement, per hip, on the Steinberg extent grades none < mild < moderate < severe:
the same grade as the reference scores 1, one grade off 0.5, further off 0. A case's score
is the mean over the reference's hips, so it lies in 0..1.

JIC type (when the reference hip has one, set by a clinician on the coronal T1), per hip,
on the order A < B < C1 < C2: the same type scores 1, a neighbouring type 0.5, further
off 0; the case's JIC score is the mean over the reference hips that have a type (None
when none has), apart from the grade score.

Necrosis marking is scored separately (it never changes the grade score): the Dice
coefficient 2|A ∩ B| / (|A| + |B|) of the student's necrosis pixels A and the reference's
B over every slice of the case (a volume Dice; slices the student did not mark count as
empty). When neither marks any necrosis the Dice is 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

GRADES = ("none", "mild", "moderate", "severe")
EXACT, ONE_OFF, FURTHER = 1.0, 0.5, 0.0


def grade_distance(answer: str, reference: str) -> int:
    return abs(GRADES.index(answer) - GRADES.index(reference))


def grade_score(answer: str, reference: str) -> float:
    distance = grade_distance(answer, reference)
    return EXACT if distance == 0 else ONE_OFF if distance == 1 else FURTHER


def case_score(answers: Mapping[str, str], references: Mapping[str, str]) -> float:
    """Mean grade score over the reference's hips (``{side: grade}`` both)."""
    if not references:
        return 0.0
    return sum(grade_score(answers[side], ref) for side, ref in references.items()) / len(
        references
    )


def dice(pairs: Iterable[tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]]) -> float:
    """Volume Dice over (student, reference) boolean ``(H, W)`` masks, one pair a slice."""
    overlap = total = 0
    for student, reference in pairs:
        overlap += int(np.count_nonzero(student & reference))
        total += int(np.count_nonzero(student)) + int(np.count_nonzero(reference))
    return 1.0 if total == 0 else 2.0 * overlap / total


JIC_TYPES = ("A", "B", "C1", "C2")


def jic_score(answer: str, reference: str) -> float:
    distance = abs(JIC_TYPES.index(answer) - JIC_TYPES.index(reference))
    return EXACT if distance == 0 else ONE_OFF if distance == 1 else FURTHER


def case_jic_score(answers: Mapping[str, str], references: Mapping[str, str]) -> float | None:
    """Mean JIC score over the reference hips with a type (``{side: type}`` both)."""
    if not references:
        return None
    return sum(jic_score(answers[side], ref) for side, ref in references.items()) / len(references)
