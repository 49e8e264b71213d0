"""Own-family validation hips: for choosing weights and calibrating the flags.

Held-out discipline (issue #12): everything the engine chooses -- which weights ship,
which necrosis method reports, where ``uncertain_grade`` is raised -- is chosen here, on
the project's own phantom family with series seeds used for nothing else
(:data:`VALIDATION_SEED`, never trained on, never the test seeds 800001 of
``onfh benchmark``), and only then measured on the independent family B.

Three looks of the same series:

- ``realistic``: the phantom series as rendered
  (the series of :func:`~grading.engine.phantoms.grade_balanced_series`);
- ``shifted``: the same series seen through a random T1 appearance
  (:func:`shift_appearance`): a random monotone intensity curve (tissue contrasts change,
  their order on T1 does not), a smooth multiplicative bias field, an in-plane blur and
  extra noise, one draw per series. A network and a rule stack make errors here, so
  there are wrong grades to calibrate the flags on;
- ``strong``: a harsher random appearance (:func:`strong_appearance`: steeper contrast
  curves, stronger bias, a coarser matrix, more blur and noise), so that there are
  enough wrong grades to measure how many of them the flags catch.

:func:`validation_hips` grades each series through the whole pipeline and returns one
row per hip with everything needed to recompute the uncertainty offline
(:func:`flags_with`), so the calibration (:func:`calibrate_coverage`) does not need the
network again.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

VALIDATION_SEED = 870001
"""``grade_balanced_series`` seed of the own-family validation series (not the test
seed 800001, not a tuning seed of ``docs/grading.md``, not a training seed)."""

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Look:
    """The ranges of one random T1 appearance (:func:`random_look`)."""

    salt: int
    knots: int
    step: tuple[float, float]
    bias_grid: int
    bias_sd: tuple[float, float]
    coarser: tuple[float, float] | None
    blur: float
    noise: tuple[float, float]


SHIFTED = Look(0x5EED, 7, (0.3, 1.7), 4, (0.05, 0.3), None, 1.0, (0.0, 0.06))
STRONG = Look(0x57A0, 9, (0.1, 2.5), 3, (0.15, 0.5), (1.0, 2.0), 1.2, (0.01, 0.1))


def random_look(images: F32, seed: int, look: Look) -> F32:
    """``images`` ``(N, H, W)`` of one series under one random T1 appearance drawn from
    ``look``: a random monotone intensity curve through ``knots`` points (tissue
    contrasts change, their order on T1 does not), a smooth multiplicative bias field
    (one coil, the same on every slice), optionally a coarser in-plane matrix shown at
    this one, an in-plane blur and Rician noise. Same shape, non-negative, same scale."""
    rng = np.random.default_rng([seed, look.salt])
    top = float(np.percentile(images, 99.5)) or 1.0
    x = np.clip(images / top, 0.0, 1.5)
    knots = np.linspace(0.0, 1.5, look.knots)
    steps = rng.uniform(*look.step, look.knots - 1)
    values = np.concatenate([[0.0], np.cumsum(steps)])
    x = np.interp(x, knots, values / values[-1] * 1.5)
    n, h, w = images.shape
    g = look.bias_grid
    coarse = rng.normal(0.0, rng.uniform(*look.bias_sd), (g, g))
    bias = np.exp(ndimage.zoom(coarse, (h / g, w / g), order=3))[:h, :w]
    x = x * bias[None]
    if look.coarser is not None:
        factor = float(rng.uniform(*look.coarser))
        if factor > 1.1:
            small = ndimage.zoom(x, (1.0, 1.0 / factor, 1.0 / factor), order=1)
            x = ndimage.zoom(small, (1.0, h / small.shape[1], w / small.shape[2]), order=3)
            x = x[:, :h, :w]
    sigma = float(rng.uniform(0.0, look.blur))
    if sigma > 0.2:
        x = ndimage.gaussian_filter(x, (0.0, sigma, sigma))
    noise = float(rng.uniform(*look.noise))
    x = np.hypot(x + rng.normal(0.0, noise, x.shape), rng.normal(0.0, noise, x.shape))
    out: F32 = np.asarray(x * top, dtype=np.float32)
    return out


def shift_appearance(images: F32, seed: int) -> F32:
    """``images`` under one random T1 appearance of the ``shifted`` look."""
    return random_look(images, seed, SHIFTED)


def strong_appearance(images: F32, seed: int) -> F32:
    """``images`` under a harsher random appearance than :func:`shift_appearance`, in
    the spirit of SynthSeg's randomisation but keeping T1's order of fat above muscle: a
    steeper random monotone curve (tissue contrasts from nearly flat to doubled), a
    stronger bias field, more blur and noise, and a random in-plane resampling
    (coarser matrix). It makes the engine wrong often enough on its own family to
    measure whether its flags catch its errors (the calibration set of step 14), without
    any image of another family."""
    return random_look(images, seed, STRONG)


LOOKS = {"shifted": shift_appearance, "strong": strong_appearance}


@functools.cache
def _segmenter(weights: str) -> Any:
    from grading.engine.predictor import HeadSegmenter

    return HeadSegmenter.load(Path(weights) if weights else None)


def extra_sections(found: Sequence[set[str]], true: Sequence[set[str]]) -> dict[str, int]:
    """Per side, the sections on which the engine found a head that the section does
    not have (the finder took other bone for the head above or below it)."""
    extra: dict[str, int] = {}
    for found_sides, true_sides in zip(found, true, strict=True):
        for side in found_sides - true_sides:
            extra[side] = extra.get(side, 0) + 1
    return extra


def _case(
    args: tuple[int, int, str, str, str, tuple[str, ...]],
) -> list[dict[str, Any]]:
    import torch

    from grading.engine.phantoms import GRADE_CYCLE, make_bilateral_series
    from grading.engine.pipeline import PipelineConfig, grade_series
    from grading.engine.series_rules import SeriesRulesConfig
    from grading.engine.types import Grade

    index, seed, look, weights, method, skip = args
    torch.set_num_threads(1)
    # series ``index`` of ``grade_balanced_series(seed, n)``, made alone
    right, left = GRADE_CYCLE[index % 4], GRADE_CYCLE[(index + 1 + index // 4) % 4]
    series = make_bilateral_series(
        seed * 100_003 + index, necrosis={"right": right.value, "left": left.value}
    )
    slices = series.mr_slices()
    if look in LOOKS:
        images = LOOKS[look](series.images, seed * 1000 + index)
        slices = [replace(m, pixels=images[k]) for k, m in enumerate(slices)]
    result = grade_series(
        slices,
        _segmenter(weights),
        config=PipelineConfig(
            reported_method=method,  # type: ignore[arg-type]
            series_rules=SeriesRulesConfig(skip=frozenset(skip)),
        ),
    )
    hips = {h.side: h for h in result.hips}
    # per section its true proportion and grade; those above 30 % graded none or missed
    sections: dict[str, list[tuple[float, str]]] = {}
    severe: dict[str, list[int]] = {}
    extra = extra_sections(
        [{h.side for h in r.hips} for r in result.slices],
        [{t.side for t in truths} for truths in series.slice_truth],
    )
    for slice_result, truths in zip(result.slices, series.slice_truth, strict=True):
        found = {h.side: h for h in slice_result.hips}
        for on_slice in truths:
            section = found.get(on_slice.side)
            sections.setdefault(on_slice.side, []).append(
                (float(on_slice.proportion), str(section.grade) if section else "no head")
            )
            if on_slice.proportion > 0.30:
                counts = severe.setdefault(on_slice.side, [0, 0])
                counts[0] += 1
                counts[1] += section is None or section.grade == Grade.NONE
    rows = []
    for side, truth in series.truth.items():
        hip = hips.get(side)
        rows.append(
            {
                "series": f"{seed}:{index}",
                "look": look,
                "side": side,
                "true_grade": str(truth.grade),
                "true_proportion": float(truth.proportion),
                "grade": str(hip.grade) if hip else "no head",
                "proportion": float(hip.proportion) if hip else None,
                "methods": dict(hip.method_proportions) if hip else {},
                "samples": list(hip.uncertainty.samples) if hip and hip.uncertainty else [],
                "interval": list(hip.uncertainty.interval) if hip and hip.uncertainty else None,
                "necrosis_mm3": float(hip.necrosis_volume_mm3) if hip else 0.0,
                "head_mm3": float(hip.head_volume_mm3) if hip else 0.0,
                "flags": [f.split(":", 1)[0] for f in hip.flags] if hip else [],
                "sections": sections.get(side, []),
                "severe_sections": severe.get(side, [0, 0])[0],
                "severe_sections_none": severe.get(side, [0, 0])[1],
                "missed_sections": sum(g == "no head" for _, g in sections.get(side, [])),
                "extra_sections": extra.get(side, 0),
            }
        )
    return rows


def validation_hips(
    n_series: int,
    *,
    seed: int = VALIDATION_SEED,
    looks: Sequence[str] = ("realistic", "shifted"),
    weights: str = "",
    method: str = "threshold",
    workers: int = 2,
    skip: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One row per hip of ``n_series`` grade-balanced own-family series in each look,
    graded with ``weights`` ("" the shipped ones) reporting ``method``, leaving out the
    series stages named in ``skip`` (for before/after measurements)."""
    jobs = [
        (i, seed, look, weights, method, tuple(skip)) for look in looks for i in range(n_series)
    ]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        return [row for rows in pool.map(_case, jobs) for row in rows]


@dataclass(frozen=True)
class FlagRates:
    wrong: int
    wrong_flagged: int
    right: int
    right_flagged: int

    @property
    def recall(self) -> float:
        return self.wrong_flagged / self.wrong if self.wrong else float("nan")

    @property
    def false_alarm(self) -> float:
        return self.right_flagged / self.right if self.right else float("nan")


def flags_with(row: dict[str, Any], coverage: float, min_volume_mm3: float | None = None) -> bool:
    """Would the hip of ``row`` carry ``uncertain_grade`` or ``methods_disagree`` with the
    interval's ``coverage`` (the rest of step 14 as configured)? A missed hip counts as
    flagged (the engine says it found no head)."""
    from grading.engine.types import Grade
    from grading.engine.uncertainty import (
        DEFAULT_UNCERTAINTY,
        proportion_uncertainty,
        uncertain_grade_note,
    )

    if row["proportion"] is None:
        return True
    if "methods_disagree" in row["flags"]:
        return True
    methods = row["methods"]
    difference = (
        float(methods["learned"]) - float(methods["threshold"])
        if "learned" in methods and "threshold" in methods
        else 0.0
    )
    config = replace(DEFAULT_UNCERTAINTY, coverage=coverage)
    if min_volume_mm3 is not None:
        config = replace(config, min_volume_mm3=min_volume_mm3)
    unc = proportion_uncertainty(
        row["proportion"], row["samples"], method_difference=difference, config=config
    )
    largest = max(row["samples"], default=0.0) * row["head_mm3"]
    note = uncertain_grade_note(
        Grade(row["grade"]),
        unc,
        row["necrosis_mm3"],
        largest,
        limit=config.min_volume_mm3,
        unit="mm³",
        coverage=coverage,
    )
    return note is not None


def rates(
    rows: Sequence[dict[str, Any]], coverage: float, min_volume_mm3: float | None = None
) -> FlagRates:
    wrong = [r for r in rows if r["grade"] != r["true_grade"]]
    right = [r for r in rows if r["grade"] == r["true_grade"]]
    return FlagRates(
        wrong=len(wrong),
        wrong_flagged=sum(flags_with(r, coverage, min_volume_mm3) for r in wrong),
        right=len(right),
        right_flagged=sum(flags_with(r, coverage, min_volume_mm3) for r in right),
    )


def false_necrosis_mm3(rows: Sequence[dict[str, Any]]) -> list[float]:
    """Per truly normal hip: the most necrosis the engine reported in it, as graded or
    under any of its test-time augmentations (mm³). These are the engine's false
    lesions on heads known to be healthy."""
    return [
        max([float(r["necrosis_mm3"])] + [float(s) * float(r["head_mm3"]) for s in r["samples"]])
        for r in rows
        if r["true_grade"] == "none" and r["proportion"] is not None
    ]


def detection_limit_mm3(
    rows: Sequence[dict[str, Any]], *, quantile: float = 0.95, floor: float = 150.0
) -> float:
    """The necrosis volume under which "none" against "mild" is not decided
    (``UncertaintyConfig.min_volume_mm3``): the ``quantile`` of the false lesions the
    engine finds in normal heads of the validation set (:func:`false_necrosis_mm3`, the
    hips without any counted as 0), rounded up to 50 mm³, at least ``floor``. A mild
    grade resting on less necrosis than the engine invents in healthy heads under the
    same looks is not a finding it can vouch for."""
    volumes = false_necrosis_mm3(rows)
    if not volumes:
        return floor
    value = float(np.quantile(np.asarray(volumes), quantile))
    return max(floor, float(np.ceil(value / 50.0) * 50.0))


COVERAGES: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)


def calibrate_coverage(
    rows: Sequence[dict[str, Any]],
    *,
    max_false_alarm: float = 0.2,
    coverages: Sequence[float] = COVERAGES,
    min_volume_mm3: float | None = None,
) -> tuple[float, dict[float, FlagRates]]:
    """The interval coverage for ``uncertain_grade``: the largest of ``coverages`` (the
    most wrong grades flagged: recall never falls as the interval widens) that flags at
    most ``max_false_alarm`` of the right hip grades. Returns it and every coverage's
    rates. With few wrong grades in the validation set, maximising recall under the
    false-alarm limit is steadier than the smallest coverage that reaches a recall."""
    table = {c: rates(rows, c, min_volume_mm3) for c in coverages}
    allowed = [c for c, r in table.items() if r.right and r.false_alarm <= max_false_alarm]
    return (max(allowed) if allowed else min(coverages)), table


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from grading.engine.grading_rules import grade_from_proportion

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-series", type=int, default=16)
    p.add_argument("--seed", type=int, default=VALIDATION_SEED)
    p.add_argument("--weights", default="")
    p.add_argument("--method", choices=("threshold", "learned"), default="threshold")
    p.add_argument("--looks", nargs="+", default=["realistic", "shifted"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--skip-stage",
        action="append",
        default=[],
        help="leave out this series stage (e.g. coherent_lesions; repeatable)",
    )
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    rows = validation_hips(
        args.n_series,
        seed=args.seed,
        looks=args.looks,
        weights=args.weights,
        method=args.method,
        workers=args.workers,
        skip=args.skip_stage,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    for look in args.looks:
        sub = [r for r in rows if r["look"] == look]
        right = sum(r["grade"] == r["true_grade"] for r in sub)
        normal = [r for r in sub if r["true_grade"] == "none"]
        sections = [s for r in sub for s in r.get("sections", [])]
        section_right = sum(str(grade_from_proportion(p)) == g for p, g in sections)
        print(
            f"{look}: hips {right}/{len(sub)}, normal graded none "
            f"{sum(r['grade'] == 'none' for r in normal)}/{len(normal)}, "
            f"sections graded right {section_right}/{len(sections)}, sections > 30 % "
            f"graded none or missed {sum(r.get('severe_sections_none', 0) for r in sub)}"
            f"/{sum(r.get('severe_sections', 0) for r in sub)}, hip-sections missed "
            f"{sum(r.get('missed_sections', 0) for r in sub)} / extra "
            f"{sum(r.get('extra_sections', 0) for r in sub)}"
        )
    limit = detection_limit_mm3(rows)
    coverage, table = calibrate_coverage(rows, min_volume_mm3=limit)
    print(
        f"false necrosis in normal hips (mm³): {sorted(round(v) for v in false_necrosis_mm3(rows))}"
    )
    print(
        f"detection limit {limit:.0f} mm³; coverage {coverage} (largest with <= 20 % false alarms)"
    )
    for c, r in table.items():
        print(
            f"  coverage {c}: wrong flagged {r.wrong_flagged}/{r.wrong}, "
            f"right flagged {r.right_flagged}/{r.right}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
