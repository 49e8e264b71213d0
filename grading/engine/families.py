"""Phantom families: independently written generators the benchmark trains and tests on.

- ``own``: :mod:`grading.engine.phantoms`, the project's generator (training crops with
  tissue maps, grade-balanced bilateral series).
- ``independent``: :mod:`grading.engine.phantoms_b`, written by another engineer from a
  short written specification (``docs/``) without reading ``phantoms``; used to measure
  what a network or rule learned about one generator's look. Nothing is tuned on it.

Each family gives the same three things: training (and test) crops ``(n, seed, size) ->
(images, labels)`` and held-out bilateral series as :class:`EvaluationSeries`, which
carry what :func:`grading.engine.benchmark.grading_metrics` reads (the engine's
:class:`~grading.engine.types.MRSlice` list, the label maps and the per-slice and
per-hip truth). A family whose package is missing is reported as not available.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import grade_from_proportion
from grading.engine.types import Grade, MRSlice

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]

FAMILY_NAMES: tuple[str, ...] = ("own", "independent")


@dataclass(frozen=True)
class HipTruthView:
    """One hip's truth (a slice's or a series'): side, necrotic proportion, grade."""

    side: str
    proportion: float
    grade: Grade


@dataclass(frozen=True)
class EvaluationSeries:
    """A held-out bilateral series of any family.

    ``slices``: the engine's input; ``labels``: ``(N, H, W)`` uint8 (0 background,
    1 viable head, 2 necrosis); ``slice_truth[k]``: the hips on slice ``k``;
    ``truth``: per side, the series' volumetric truth.
    """

    slices: tuple[MRSlice, ...]
    labels: U8
    slice_truth: tuple[tuple[HipTruthView, ...], ...]
    truth: dict[str, HipTruthView]
    name: str = ""

    def mr_slices(self) -> list[MRSlice]:
        return list(self.slices)


@dataclass(frozen=True)
class PhantomFamily:
    """A phantom generator seen through the benchmark's three needs."""

    name: str
    module: str
    training_crops: Callable[[int, int, int], tuple[F32, U8]]
    evaluation_series: Callable[[int, int], list[Any]]
    """``(seed, count)`` -> series with ``mr_slices()``, ``labels``, ``slice_truth`` and
    ``truth`` as :class:`EvaluationSeries` has them."""
    has_tissue_maps: bool = False


def _own() -> PhantomFamily:
    from grading.engine.phantoms import grade_balanced_series, make_training_crops

    def crops(n: int, seed: int, size: int) -> tuple[F32, U8]:
        return make_training_crops(n, seed, size)

    return PhantomFamily(
        name="own",
        module="grading.engine.phantoms",
        training_crops=crops,
        evaluation_series=lambda seed, count: list(grade_balanced_series(seed, count)),
        has_tissue_maps=True,
    )


def _view(side: Any, proportion: Any, grade: Any = None) -> HipTruthView:
    p = float(proportion)
    return HipTruthView(
        str(side), p, Grade(str(grade)) if grade is not None else grade_from_proportion(p)
    )


def _independent() -> PhantomFamily:
    module = importlib.import_module("grading.engine.phantoms_b")
    return independent_family(module)


def independent_family(module: Any) -> PhantomFamily:
    """The ``independent`` family from :mod:`grading.engine.phantoms_b` (see its docstrings)."""
    return PhantomFamily(
        name="independent",
        module=module.__name__,
        training_crops=lambda n, seed, size: _b_crops(module, n, seed, size),
        evaluation_series=lambda seed, count: _b_series(module, seed, count),
    )


def _b_crops(module: Any, n: int, seed: int, size: int) -> tuple[F32, U8]:
    out = module.make_training_crops(n, seed, size)
    images, labels = out[0], out[1]
    return np.asarray(images, np.float32), np.asarray(labels, np.uint8)


def _b_series(module: Any, seed: int, count: int) -> list[EvaluationSeries]:
    raise NotImplementedError("filled in once grading.engine.phantoms_b lands")


_FACTORIES: dict[str, Callable[[], PhantomFamily]] = {"own": _own, "independent": _independent}


def load_family(name: str) -> PhantomFamily:
    """The family by name; ``ImportError`` when its package is not in this tree."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown phantom family {name!r}; choose from {', '.join(FAMILY_NAMES)}")
    return _FACTORIES[name]()


def available_families(names: Sequence[str] = FAMILY_NAMES) -> dict[str, PhantomFamily | str]:
    """Each name -> its family, or the reason it is not available."""
    out: dict[str, PhantomFamily | str] = {}
    for name in names:
        try:
            out[name] = load_family(name)
        except ImportError as exc:
            out[name] = f"not available: {exc}"
    return out
