"""``onfh benchmark --threshold --family b``: the grading on the independent phantom family.

Family B (:mod:`grading.engine.phantoms_b`) was written from a specification by an
engineer who never read this engine; it is for evaluation only and nothing here is tuned
on it. :func:`run_family_b` grades its grade-balanced evaluation set
(``make_evaluation_set``): every bilateral series through
:func:`~grading.engine.pipeline.grade_series` with the network and with the true head
masks (:class:`~grading.engine.threshold_benchmark.TruthSegmenter`), every 256 x 256 crop
through :func:`~grading.engine.pipeline.grade_slice` with the network. The report has
the same keys as :func:`grading.engine.threshold_benchmark.run_threshold`'s series rows
(hip and slice grades, necrosis Dice, the flags on wrong and right grades, interval
coverage), plus the crops.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from grading.engine.threshold_benchmark import (
    SMALL_SECTION_MM2,
    TruthSegmenter,
    _network,
    _series_summary,
    encode_truth,
    series_hip_rows,
)


@functools.cache
def _evaluation_set(seed: int, n_series: int, n_crops: int) -> Any:
    """The evaluation set, made once per worker process."""
    from grading.engine.phantoms_b import make_evaluation_set

    return make_evaluation_set(seed, n_series=n_series, n_crops=n_crops)


Sizes = tuple[int, int, int]
"""(seed, n_series, n_crops) of the evaluation set."""


def _series_case(args: tuple[Sizes, int, str | None, tuple[str, ...]]) -> dict[str, Any]:
    import torch

    from grading.engine.flags import Flag, has_flag
    from grading.engine.pipeline import PipelineConfig, grade_series
    from grading.engine.series_rules import SeriesRulesConfig

    sizes, index, weights, skip = args
    torch.set_num_threads(1)
    series = _evaluation_set(*sizes).series[index]
    slices = list(series.slices)
    segmenter: Any
    if weights is None:
        images = np.stack([s.pixels for s in slices])
        pixels = encode_truth(images, np.stack(series.labels))
        slices = [replace(m, pixels=pixels[k]) for k, m in enumerate(slices)]
        segmenter = TruthSegmenter()
    else:
        segmenter = _network(weights)
    config = PipelineConfig(series_rules=SeriesRulesConfig(skip=frozenset(skip)))
    result = grade_series(slices, segmenter, config=config)
    from grading.engine.grading_rules import grade_from_proportion

    sections: list[tuple[float, str, str, bool]] = []
    inter = total = 0
    for k, slice_result in enumerate(result.slices):
        ours, truth = slice_result.labelmap == 2, series.labels[k] == 2
        inter += int((ours & truth).sum())
        total += int(ours.sum() + truth.sum())
        found = {h.side: h for h in slice_result.hips}
        area = slices[k].pixel_area_mm2
        for side, hip_truth in series.hips.items():
            head = hip_truth.slice_head_pixels[k]
            if head == 0:
                continue
            grade = grade_from_proportion(hip_truth.slice_necrosis_pixels[k] / head)
            hip = found.get(side)
            sections.append(
                (
                    head * area,
                    str(grade),
                    str(hip.grade) if hip else "no head",
                    hip is not None and has_flag(hip.flags, Flag.UNCERTAIN_GRADE),
                )
            )
    truths = [(side, str(t.grade), t.proportion) for side, t in series.hips.items()]
    hip_rows = series_hip_rows(result, truths)
    return {"sections": sections, "hips": hip_rows, "inter": inter, "total": total}


def _crop_case(args: tuple[Sizes, int, str]) -> dict[str, Any]:
    import torch

    from grading.engine.flags import Flag, has_flag
    from grading.engine.pipeline import grade_slice

    sizes, index, weights = args
    torch.set_num_threads(1)
    crop = _evaluation_set(*sizes).crops[index]
    result = grade_slice(crop.slice, _network(weights))
    hip = result.hips[0] if result.hips else None
    return {
        "grade": str(crop.grade),
        "ours": str(hip.grade) if hip else "no head",
        "uncertain": hip is None or has_flag(hip.flags, Flag.UNCERTAIN_GRADE),
        "flagged": hip is None or bool(hip.flags),
        "large": float(crop.labels.astype(bool).sum()) * crop.slice.pixel_area_mm2
        >= SMALL_SECTION_MM2,
    }


def run_family_b(
    *,
    seed: int = 7000,
    n_series: int = 6,
    n_crops: int = 60,
    weights: str = "",
    workers: int = 2,
    skip_stages: Sequence[str] = (),
) -> dict[str, Any]:
    """Grade family B's evaluation set (see the module docstring). ``weights``: "" for
    the shipped network or a path."""
    skip = tuple(skip_stages)
    sizes = (seed, n_series, n_crops)
    with ProcessPoolExecutor(max_workers=max(workers, 1)) as pool:
        truth = list(pool.map(_series_case, [(sizes, i, None, skip) for i in range(n_series)]))
        net = list(pool.map(_series_case, [(sizes, i, weights, skip) for i in range(n_series)]))
        crops = list(pool.map(_crop_case, [(sizes, i, weights) for i in range(n_crops)]))
    wrong = [c for c in crops if c["grade"] != c["ours"]]
    right = [c for c in crops if c["grade"] == c["ours"]]
    return {
        "kind": "family_b",
        "date": dt.date.today().isoformat(),
        "config": {"seed": seed, "n_series": n_series, "n_crops": n_crops, "skip": list(skip)},
        "series_truth_masks": _series_summary(truth),
        "series_network": _series_summary(net),
        "crops": {
            "n": len(crops),
            "grade_correct": len(right),
            "large_grade_correct": sum(c["large"] for c in right),
            "large": sum(c["large"] for c in crops),
            "wrong_uncertain": sum(c["uncertain"] for c in wrong),
            "right_uncertain": sum(c["uncertain"] for c in right),
            "wrong_flagged": sum(c["flagged"] for c in wrong),
            "right_flagged": sum(c["flagged"] for c in right),
            "severe_graded_none": sum(
                c["grade"] == "severe" and c["ours"] == "none" for c in crops
            ),
        },
    }


def family_b_markdown(report: dict[str, Any]) -> str:
    from grading.engine.threshold_benchmark import threshold_markdown

    c = report["crops"]
    wrong, right = c["n"] - c["grade_correct"], c["grade_correct"]
    series = threshold_markdown({**report, "crops": {}}, crops_table=False)
    return (
        series + "\n| family B crops (network) | grade correct | wrong with `uncertain_grade` "
        "| right with it | wrong with any flag | right with any flag | severe graded none |\n"
        "|---|---|---|---|---|---|---|\n"
        f"| {c['n']} crops | {c['grade_correct']}/{c['n']} | {c['wrong_uncertain']}/{wrong} "
        f"| {c['right_uncertain']}/{right} | {c['wrong_flagged']}/{wrong} "
        f"| {c['right_flagged']}/{right} | {c['severe_graded_none']} |\n"
    )
