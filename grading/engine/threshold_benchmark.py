"""``onfh benchmark --threshold``: the necrosis step measured on its own, with true head masks.

The network is measured by :mod:`grading.engine.benchmark`; this separates what the
necrosis threshold and the series rules (:mod:`grading.engine.necrosis`,
:func:`grading.engine.pipeline.continue_lesions`) do from what the head mask does:

- **crops**: single-hip phantom crops (:func:`~grading.engine.phantoms.make_hip_crop`,
  one seed per crop from ``crop_seed``) of six kinds: normal heads, the two mimics (mild
  marrow oedema, a physeal scar) and the three lesion patterns (homogeneous, fat-like
  interior, mixed) at a random grade; :func:`~grading.engine.necrosis.find_necrosis`
  with the true head mask. Sections under 250 mm² are left out. Counts: necrosis
  reported, grade correct, necrosis Dice (lesions only).
- **series**: bilateral series (:func:`~grading.engine.phantoms.make_bilateral_series`,
  seeds from ``series_seed``) through :func:`~grading.engine.pipeline.grade_series` with
  the true head masks (:class:`TruthSegmenter`), and optionally with a network.

The true masks reach the pipeline through the images themselves: each stored value's
parity carries the head label (values change by at most 1 of 0..4095), because the
pipeline hands the segmenter windows, not whole slices.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from grading.engine.grading_rules import grade_from_proportion

CROP_KINDS = ("normal", "oedema", "physeal_scar", "homogeneous", "fat_like", "mixed")
SMALL_SECTION_MM2 = 250.0
ANTERIOR_UP = (-1.0, 0.0)  # phantom crops are standard axial: anterior is up


class TruthSegmenter:
    """Head probability 1 on odd stored values, 0 on even ones (see the module docstring)."""

    model_version = "truth"

    def predict(
        self, images: Sequence[npt.NDArray[np.float32]], *, batch_size: int = 16
    ) -> list[npt.NDArray[np.float32]]:
        return [(np.rint(np.asarray(im)) % 2 == 1).astype(np.float32) for im in images]


class TruthClassSegmenter:
    """A stand-in for a network with a necrosis output: the stored values modulo 4 carry
    the label (0 background, 1 viable head, 2 necrosis; see :func:`encode_classes`)."""

    model_version = "truth-classes"
    has_necrosis_output = True

    def predict(
        self, images: Sequence[npt.NDArray[np.float32]], *, batch_size: int = 16
    ) -> list[npt.NDArray[np.float32]]:
        return [(np.rint(np.asarray(im)) % 4 != 0).astype(np.float32) for im in images]

    def predict_classes(
        self, images: Sequence[npt.NDArray[np.float32]], *, batch_size: int = 16
    ) -> list[npt.NDArray[np.float32]]:
        out = []
        for im in images:
            label = np.minimum(np.rint(np.asarray(im)) % 4, 2).astype(np.int64)
            out.append(np.stack([label == k for k in range(3)]).astype(np.float32))
        return out


def encode_classes(
    images: npt.NDArray[np.float32], labels: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    """Images whose stored values modulo 4 are the label (changes of at most 3 units)."""
    out: npt.NDArray[np.float32] = (np.floor(images / 4.0) * 4.0 + labels).astype(np.float32)
    return out


def encode_truth(
    images: npt.NDArray[np.float32], labels: npt.NDArray[np.uint8]
) -> npt.NDArray[np.float32]:
    """Images whose stored values' parity is the head label (labels 1 and 2)."""
    out: npt.NDArray[np.float32] = (np.floor(images / 2.0) * 2.0 + (labels > 0)).astype(np.float32)
    return out


def _crop_case(args: tuple[str, int]) -> dict[str, Any] | None:
    from grading.engine.necrosis import find_necrosis
    from grading.engine.phantoms import make_hip_crop

    kind, seed = args
    if kind == "normal":
        crop = make_hip_crop(seed, necrosis=0.0, mimic=None)
    elif kind == "oedema":
        crop = make_hip_crop(seed, necrosis=0.0, mimic="oedema")
    elif kind == "physeal_scar":
        crop = make_hip_crop(seed, necrosis=0.0, mimic="physeal_scar")
    else:
        crop = make_hip_crop(seed, pattern=kind, mimic=None)  # type: ignore[arg-type]
    head = crop.labels > 0
    if head.sum() * crop.pixel_spacing_mm[0] * crop.pixel_spacing_mm[1] < SMALL_SECTION_MM2:
        return None
    result = find_necrosis(crop.image, head, crop.pixel_spacing_mm, anterior=ANTERIOR_UP)
    proportion = float((result.mask & head).sum() / head.sum())
    truth = crop.labels == 2
    dice = (
        2.0 * float((result.mask & truth).sum()) / float(result.mask.sum() + truth.sum())
        if truth.any()
        else None
    )
    return {
        "kind": kind,
        "reported": bool(result.mask.any()),
        "grade_ok": str(grade_from_proportion(proportion)) == str(crop.grade),
        "dice": dice,
    }


@functools.cache
def _network(weights: str) -> Any:
    """The network of ``weights`` ("" for the shipped one), loaded once per process."""
    from grading.engine.predictor import HeadSegmenter

    return HeadSegmenter.load(Path(weights) if weights else None)


def _series_case(args: tuple[int, str | None, tuple[str, ...]]) -> dict[str, Any]:
    import torch

    from grading.engine.flags import Flag, has_flag
    from grading.engine.phantoms import make_bilateral_series
    from grading.engine.pipeline import PipelineConfig, grade_series
    from grading.engine.series_rules import SeriesRulesConfig

    seed, weights, skip = args
    torch.set_num_threads(1)
    series = make_bilateral_series(seed, n_slices=20)
    slices = series.mr_slices()
    segmenter: Any
    if weights is None:
        pixels = encode_truth(series.images, series.labels)
        slices = [replace(m, pixels=pixels[k]) for k, m in enumerate(slices)]
        segmenter = TruthSegmenter()
    else:
        segmenter = _network(weights)
    config = PipelineConfig(series_rules=SeriesRulesConfig(skip=frozenset(skip)))
    result = grade_series(slices, segmenter, config=config)
    sections: list[tuple[float, str, str, bool]] = []
    inter = total = 0
    for k, slice_result in enumerate(result.slices):
        ours, truth = slice_result.labelmap == 2, series.labels[k] == 2
        inter += int((ours & truth).sum())
        total += int(ours.sum() + truth.sum())
        found = {h.side: h for h in slice_result.hips}
        for t in series.slice_truth[k]:
            hip = found.get(t.side)
            sections.append(
                (
                    t.head_area_mm2,
                    str(t.grade),
                    str(hip.grade) if hip else "no head",
                    hip is not None and has_flag(hip.flags, Flag.UNCERTAIN_GRADE),
                )
            )
    truths = [(s, str(t.grade), t.proportion) for s, t in series.truth.items()]
    hip_rows = series_hip_rows(result, truths)
    return {"sections": sections, "hips": hip_rows, "inter": inter, "total": total}


def series_hip_rows(result: Any, truths: Sequence[tuple[str, str, float]]) -> list[tuple[Any, ...]]:
    """One row per true hip ``(side, grade, proportion)`` against the graded series:
    grades, proportion error, flags, whether the interval holds the truth."""
    from grading.engine.flags import Flag, has_flag

    hips = {h.side: h for h in result.hips}
    rows = []
    for side, grade, proportion in truths:
        series_hip = hips.get(side)
        interval = (
            series_hip.uncertainty.interval if series_hip and series_hip.uncertainty else None
        )
        rows.append(
            (
                grade,
                str(series_hip.grade) if series_hip else "no head",
                abs(proportion - (series_hip.proportion if series_hip else 0.0)),
                series_hip is None or has_flag(series_hip.flags, Flag.UNCERTAIN_GRADE),
                series_hip is None or bool(series_hip.flags),
                interval is not None and interval[0] <= proportion <= interval[1],
                proportion,
                series_hip.proportion if series_hip else None,
                interval,
            )
        )
    return rows


def _series_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    sections = [s for r in rows for s in r["sections"]]
    hips = [h for r in rows for h in r["hips"]]
    large = [s for s in sections if s[0] >= SMALL_SECTION_MM2]
    total = sum(r["total"] for r in rows)
    return {
        "series": len(rows),
        "hips": len(hips),
        "hip_grade_correct": sum(h[0] == h[1] for h in hips),
        "sections": len(sections),
        "slice_grade_correct": sum(s[1] == s[2] for s in sections),
        "large_sections": len(large),
        "large_slice_grade_correct": sum(s[1] == s[2] for s in large),
        "necrosis_dice": 2.0 * sum(r["inter"] for r in rows) / total if total else float("nan"),
        "hip_proportion_mae": float(np.mean([h[2] for h in hips])) if hips else float("nan"),
        "normal_sections": sum(s[1] == "none" for s in sections),
        "normal_sections_with_necrosis": sum(
            s[1] == "none" and s[2] not in ("none", "no head") for s in sections
        ),
        # step 14: how many wrong and right grades carry ``uncertain_grade`` (any flag)
        "wrong_hips": sum(h[0] != h[1] for h in hips),
        "wrong_hips_uncertain": sum(h[0] != h[1] and h[3] for h in hips),
        "right_hips_uncertain": sum(h[0] == h[1] and h[3] for h in hips),
        "wrong_hips_flagged": sum(h[0] != h[1] and h[4] for h in hips),
        "right_hips_flagged": sum(h[0] == h[1] and h[4] for h in hips),
        "hip_interval_covers_truth": sum(h[5] for h in hips),
        "wrong_sections": sum(s[1] != s[2] for s in sections),
        "wrong_sections_uncertain": sum(s[1] != s[2] and s[3] for s in sections),
        "right_sections_uncertain": sum(s[1] == s[2] and s[3] for s in sections),
        "hip_rows": [list(h[:3]) + [h[3], h[6], h[7], h[8]] for h in hips],
    }


def run_threshold(
    *,
    n_crops: int = 60,
    crop_seed: int = 20000,
    n_series: int = 32,
    series_seed: int = 14000,
    n_network_series: int = 16,
    weights: str | None = "",
    workers: int = 2,
    skip_stages: Sequence[str] = (),
) -> dict[str, Any]:
    """Measure the necrosis step (see the module docstring). ``weights``: "" for the
    shipped network, a path, or None to skip the network rows. ``skip_stages``: series
    stages left out (``series_rules.series_stages`` names), for before/after figures."""
    skip = tuple(skip_stages)
    crop_jobs = [(kind, crop_seed + i) for kind in CROP_KINDS for i in range(n_crops)]
    truth_jobs = [(series_seed + i, None, skip) for i in range(n_series)]
    net_jobs = (
        [(series_seed + i, weights, skip) for i in range(n_network_series)]
        if weights is not None
        else []
    )
    with ProcessPoolExecutor(max_workers=max(workers, 1)) as pool:
        crops = [c for c in pool.map(_crop_case, crop_jobs) if c is not None]
        truth = list(pool.map(_series_case, truth_jobs))
        net = list(pool.map(_series_case, net_jobs))
    by_kind: dict[str, Any] = {}
    for kind in CROP_KINDS:
        items = [c for c in crops if c["kind"] == kind]
        dices = [c["dice"] for c in items if c["dice"] is not None]
        by_kind[kind] = {
            "n": len(items),
            "reported": sum(c["reported"] for c in items),
            "grade_correct": sum(c["grade_ok"] for c in items),
            "dice_mean": float(np.mean(dices)) if dices else None,
            "dice_median": float(np.median(dices)) if dices else None,
        }
    report: dict[str, Any] = {
        "kind": "threshold",
        "date": dt.date.today().isoformat(),
        "crops": by_kind,
        "config": {
            "n_crops": n_crops,
            "crop_seed": crop_seed,
            "n_series": n_series,
            "series_seed": series_seed,
            "n_network_series": n_network_series,
            "skip_stages": list(skip),
        },
        "series_truth_masks": _series_summary(truth),
    }
    if net:
        report["series_network"] = _series_summary(net)
    return report


def threshold_markdown(report: dict[str, Any], *, crops_table: bool = True) -> str:
    """Markdown tables of a :func:`run_threshold` report (``crops_table``: with the crops)."""
    crops = report["crops"]
    lines: list[str] = []
    if crops_table:
        head = "| | " + " | ".join(k.replace("_", " ") for k in CROP_KINDS) + " |"
        lines += [head, "|---" * (len(CROP_KINDS) + 1) + "|"]
        lines.append("| n | " + " | ".join(str(crops[k]["n"]) for k in CROP_KINDS) + " |")
        lines.append(
            "| necrosis reported | "
            + " | ".join(f"{crops[k]['reported']}/{crops[k]['n']}" for k in CROP_KINDS)
            + " |"
        )
        lines.append(
            "| grade correct | "
            + " | ".join(f"{crops[k]['grade_correct']}/{crops[k]['n']}" for k in CROP_KINDS)
            + " |"
        )
        lines.append(
            "| necrosis Dice, mean / median | "
            + " | ".join(
                "-"
                if crops[k]["dice_mean"] is None
                else f"{crops[k]['dice_mean']:.3f} / {crops[k]['dice_median']:.3f}"
                for k in CROP_KINDS
            )
            + " |"
        )
    lines += [
        "",
        "| head masks from | hip grade correct | slice grade correct "
        "| slice grade correct (sections >= 250 mm²) | necrosis Dice | hip proportion MAE "
        "| normal sections with necrosis |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, name in (("series_truth_masks", "ground truth"), ("series_network", "the network")):
        s = report.get(key)
        if s is None:
            continue
        lines.append(
            f"| {name} ({s['series']} series) | {s['hip_grade_correct']}/{s['hips']} "
            f"| {s['slice_grade_correct']}/{s['sections']} "
            f"| {s['large_slice_grade_correct']}/{s['large_sections']} "
            f"| {s['necrosis_dice']:.3f} | {s['hip_proportion_mae']:.3f} "
            f"| {s['normal_sections_with_necrosis']}/{s['normal_sections']} |"
        )
    lines += [
        "",
        "| head masks from | wrong hips with `uncertain_grade` | right hips with it "
        "| wrong hips with any flag | right hips with any flag | 85 % interval holds the "
        "true proportion | wrong slices with `uncertain_grade` | right slices with it |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, name in (("series_truth_masks", "ground truth"), ("series_network", "the network")):
        s = report.get(key)
        if s is None:
            continue
        right = s["hips"] - s["wrong_hips"]
        right_sections = s["sections"] - s["wrong_sections"]
        lines.append(
            f"| {name} | {s['wrong_hips_uncertain']}/{s['wrong_hips']} "
            f"| {s['right_hips_uncertain']}/{right} "
            f"| {s['wrong_hips_flagged']}/{s['wrong_hips']} | {s['right_hips_flagged']}/{right} "
            f"| {s['hip_interval_covers_truth']}/{s['hips']} "
            f"| {s['wrong_sections_uncertain']}/{s['wrong_sections']} "
            f"| {s['right_sections_uncertain']}/{right_sections} |"
        )
    return "\n".join(lines) + "\n"
