"""Phantom family B: independently written synthetic T1 hip MRI with ground truth.

Built from ``docs/phantoms-b-spec.md`` (anatomy, ONFH lesion, T1 spin-echo signal and
acquisition ranges) to evaluate the engine on images it was never tuned on. Pure
numpy; deterministic by seed. See :mod:`grading.engine.phantoms_b.series` for shapes.
"""

from grading.engine.phantoms_b.anatomy import TISSUES
from grading.engine.phantoms_b.series import (
    EvaluationSetB,
    HipTruthB,
    PhantomBCrop,
    PhantomBSeries,
    make_crop,
    make_evaluation_set,
    make_series,
    make_training_crops,
)

__all__ = [
    "TISSUES",
    "EvaluationSetB",
    "HipTruthB",
    "PhantomBCrop",
    "PhantomBSeries",
    "make_crop",
    "make_evaluation_set",
    "make_series",
    "make_training_crops",
]
