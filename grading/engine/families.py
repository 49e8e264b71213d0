"""Phantom families: independently written generators the benchmark trains and tests on.

- ``own``: :mod:`grading.engine.phantoms`, the project's generator (training crops with
  tissue maps, grade-balanced bilateral series).
- ``independent``: :mod:`grading.engine.phantoms_b`, written by another engineer from a
  short written specification (``docs/``) without reading ``phantoms``; used to measure
  what a network or rule learned about one generator's look. Nothing is tuned on it.

Each family gives the same three things: training crops and held-out test crops
``(n, seed, size) -> (images, labels)`` and held-out bilateral series as
:class:`EvaluationSeries`, which
carry what :func:`grading.engine.benchmark.grading_metrics` reads (the engine's
:class:`~grading.engine.types.MRSlice` list, the label maps and the per-slice and
per-hip truth). A family whose package is missing is reported as not available.
"""

from __future__ import annotations

import hashlib
import importlib
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import grade_from_proportion, proportion_of
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
    test_crops: Callable[[int, int, int], tuple[F32, U8]]
    """Held-out single-hip windows for head metrics, ``(n, seed, size)``."""
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
        test_crops=crops,
        evaluation_series=lambda seed, count: list(grade_balanced_series(seed, count)),
        has_tissue_maps=True,
    )


def _independent() -> PhantomFamily:
    module = importlib.import_module("grading.engine.phantoms_b")
    return independent_family(module)


def independent_family(module: Any) -> PhantomFamily:
    """The ``independent`` family from :mod:`grading.engine.phantoms_b`.

    Training crops: its ``make_training_crops(seed, n, size=...)`` (its own tissue codes
    are not used: synthesis here knows only the project's :class:`TissueClass`). Test
    crops and series: its grade-balanced ``make_evaluation_set`` (crops 256 x 256,
    resampled when another size is asked for; per-slice truth from its per-hip pixel
    counts, proportions and grades by :mod:`grading.engine.grading_rules`).
    """
    digest = _source_digest(module)
    return PhantomFamily(
        name="independent",
        module=module.__name__,
        training_crops=lambda n, seed, size: _b_training_crops(module, n, seed, size),
        test_crops=lambda n, seed, size: _cached(
            f"b-test-{digest}-n{n}-s{seed}-{size}", lambda: _b_test_crops(module, n, seed, size)
        ),
        evaluation_series=lambda seed, count: _cached(
            f"b-series-{digest}-n{count}-s{seed}", lambda: _b_series(module, seed, count)
        ),
    )


def _source_digest(module: Any) -> str:
    """sha256 (16 hex) over a package's Python source: cache keys change with the data."""
    digest = hashlib.sha256()
    for path in sorted(Path(module.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


T = TypeVar("T")


def _cached(key: str, make: Callable[[], T]) -> T:
    """``make()``, pickled once in the training cache directory (``ONFH_CACHE_DIR``):
    the independent family renders slowly, and the benchmark measures several rows on
    the same held-out data. Our own files only, read back by this module."""
    from grading.engine.training import cache_dir

    path = cache_dir() / f"{key}.pickle"
    if path.is_file():
        with path.open("rb") as f:
            value: T = pickle.load(f)  # noqa: S301 - written by _cached below
            return value
    value = make()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
    except OSError:
        pass
    return value


def _b_training_crops(module: Any, n: int, seed: int, size: int) -> tuple[F32, U8]:
    images, labels, _ = module.make_training_crops(seed, n, size=size)
    return np.asarray(images, np.float32), np.asarray(labels, np.uint8)


def _b_test_crops(module: Any, n: int, seed: int, size: int) -> tuple[F32, U8]:
    from grading.engine.phantoms.shapes import resize_linear, resize_nearest

    crops = module.make_evaluation_set(seed, n_series=0, n_crops=n).crops
    images = np.empty((n, size, size), np.float32)
    labels = np.empty((n, size, size), np.uint8)
    for i, crop in enumerate(crops):
        im = np.asarray(crop.slice.pixels, np.float32)
        lab = np.asarray(crop.labels, np.uint8)
        if im.shape != (size, size):
            im, lab = resize_linear(im, (size, size)), resize_nearest(lab, (size, size))
        images[i], labels[i] = im, lab
    return images, labels


def _b_series(
    module: Any, seed: int, count: int, n_slices: int | None = None
) -> list[EvaluationSeries]:
    evaluation = module.make_evaluation_set(seed, n_series=count, n_crops=0, n_slices=n_slices)
    return [
        evaluation_series_b(series, name=f"phantoms_b-{seed}-{j}")
        for j, series in enumerate(evaluation.series)
    ]


def evaluation_series_b(series: Any, *, name: str = "") -> EvaluationSeries:
    """A :class:`~grading.engine.phantoms_b.PhantomBSeries` as an :class:`EvaluationSeries`:
    per-slice truth from its per-hip head and necrosis pixel counts."""
    per_slice = []
    for k in range(len(series.slices)):
        on_slice = []
        for side, hip in series.hips.items():
            head = int(hip.slice_head_pixels[k])
            if head > 0:
                p = proportion_of(float(hip.slice_necrosis_pixels[k]), float(head))
                on_slice.append(HipTruthView(str(side), p, grade_from_proportion(p)))
        per_slice.append(tuple(on_slice))
    return EvaluationSeries(
        slices=tuple(series.slices),
        labels=np.stack([np.asarray(lab, np.uint8) for lab in series.labels]),
        slice_truth=tuple(per_slice),
        truth={
            str(side): HipTruthView(str(side), float(hip.proportion), Grade(hip.grade))
            for side, hip in series.hips.items()
        },
        name=name,
    )


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
