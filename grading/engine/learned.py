"""Step 13 of ``docs/grading.md``: necrosis from the network's own necrosis output.

A network with a necrosis output (``has_necrosis_output``) answers
``predict_classes(images) -> [(3, h, w)]``: the softmax of background, viable head and
necrosis on each image's own grid. Inside the head mask of the fine pass, a pixel is
necrotic where necrosis is more probable than viable head. No marrow reference and no
series rule is involved: the method does not depend on how bright the lesion is.

Until the shipped weights have that output (``HeadSegmenter.has_necrosis_output`` is
False for them) the method does not run and the adaptive threshold alone grades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, TypeGuard

import numpy as np
import numpy.typing as npt

from grading.engine.hips import FemoralHead, extract
from grading.engine.necrosis import NecrosisResult
from grading.engine.types import MRSlice

FloatImage = npt.NDArray[np.float32]


class ClassSegmenter(Protocol):
    """A segmenter with a necrosis output (``grading.engine.predictor.HeadSegmenter``)."""

    has_necrosis_output: bool

    def predict_classes(
        self, images: Sequence[FloatImage], *, batch_size: int = 16
    ) -> list[npt.NDArray[np.float32]]:
        """Each ``(h, w)`` image -> ``(3, h, w)`` softmax (background, viable, necrosis)."""
        ...


def has_necrosis_output(segmenter: Any) -> TypeGuard[ClassSegmenter]:
    """Whether ``segmenter`` has a necrosis output (False for today's shipped weights)."""
    return bool(getattr(segmenter, "has_necrosis_output", False)) and hasattr(
        segmenter, "predict_classes"
    )


def learned_result(mask: npt.NDArray[np.bool_]) -> NecrosisResult:
    """A :class:`NecrosisResult` for necrosis found by the network (no threshold)."""
    return NecrosisResult(
        mask=mask,
        threshold=math.nan,
        relative_threshold=math.nan,
        reference=math.nan,
        otsu_relative=math.nan,
        contrast=0.0,
        otsu_separation=0.0,
        bimodal=bool(mask.any()),
        ambiguous=False,
        reason="the network's necrosis output (necrosis more probable than viable head)",
    )


def learned_necrosis(
    ordered: Sequence[MRSlice],
    heads: Sequence[Sequence[FemoralHead]],
    segmenter: ClassSegmenter,
    *,
    batch_size: int = 16,
) -> list[list[NecrosisResult]]:
    """Per slice and head (same nesting as ``heads``), the learned necrosis inside the
    head mask (``head.box.shape``), with ONE ``predict_classes`` call for the series."""
    requests = [(i, k) for i, slice_heads in enumerate(heads) for k in range(len(slice_heads))]
    images = [extract(ordered[i].pixels, heads[i][k].window) for i, k in requests]
    answers = segmenter.predict_classes(images, batch_size=batch_size) if images else []
    out: list[list[NecrosisResult]] = [[] for _ in heads]
    for (i, k), answer in zip(requests, answers, strict=True):
        head = heads[i][k]
        classes = np.asarray(answer, dtype=np.float32)
        if classes.shape != (3, *head.window.shape):
            raise ValueError(
                f"predict_classes gave {classes.shape}, expected (3, {head.window.shape})"
            )
        local = classes[:, *head.box.relative_to(head.window).slices]
        necrosis = (local[2] > local[1]) & head.mask
        out[i].append(learned_result(np.asarray(necrosis, dtype=bool)))
    return out
