"""Step 13 of ``docs/grading.md``: necrosis from the network's own necrosis output.

A network with a necrosis output (``has_necrosis_output``) answers
``predict_classes(images) -> [(3, h, w)]``: the softmax of background, viable head and
necrosis on each image's own grid. Inside the head mask of the fine pass, a pixel is
necrotic where necrosis is more probable than viable head, cleaned up as step 8 cleans
the threshold's mask (holes filled inside the head, pieces under ``min_area_mm2``
dropped: a piece under 4 mm², about 2 mm across, is below the in-plane resolution of a
clinical hip MR series and below anything a reader grades; scattered pixels of
necrosis on a normal head are the network's noise, not a lesion). No marrow reference
and no series rule is involved: the method does not depend on how bright the lesion is.

Until the shipped weights have that output (``HeadSegmenter.has_necrosis_output`` is
False for them) the method does not run and the adaptive threshold alone grades.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol, TypeGuard

import numpy as np
import numpy.typing as npt
from scipy import ndimage

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


def clean_necrosis(
    necrosis: npt.NDArray[np.bool_],
    head: npt.NDArray[np.bool_],
    pixel_area_mm2: float,
    min_area_mm2: float,
) -> npt.NDArray[np.bool_]:
    """``necrosis`` with holes filled (inside ``head``) and pieces under ``min_area_mm2``
    dropped (8-connected pieces)."""
    if not necrosis.any():
        return np.zeros_like(necrosis, dtype=bool)
    filled = ndimage.binary_fill_holes(necrosis) & head
    labels, count = ndimage.label(filled, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1) * pixel_area_mm2
    keep = sizes >= min_area_mm2
    keep[0] = False
    return np.asarray(keep[labels], dtype=bool)


def learned_necrosis(
    ordered: Sequence[MRSlice],
    heads: Sequence[Sequence[FemoralHead]],
    segmenter: ClassSegmenter,
    *,
    batch_size: int = 16,
    min_area_mm2: float = 4.0,
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
        necrosis = clean_necrosis(
            (local[2] > local[1]) & head.mask, head.mask, ordered[i].pixel_area_mm2, min_area_mm2
        )
        out[i].append(learned_result(necrosis))
    return out
