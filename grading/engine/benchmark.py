"""``onfh benchmark``: ours vs U-Net vs LinkNet (+ ablations) on synthetic phantoms, and speed.

Accuracy (:func:`run_accuracy`): two independently written phantom families
(:mod:`grading.engine.families`: ``own`` and ``independent``), leave-one-family-out.
Every model is trained by :func:`grading.engine.training.train` on each training
family's crops (the same crops and budget for every model), then measured on the
held-out data of every family, side by side: the in-family figure and the figure on
the family it never saw (the shift). The independent family is never trained on
unless it is the training family of that row, and nothing is tuned on it.
Measured on each family's held-out data:

- femoral head (this module): pixel accuracy, sensitivity, specificity, PPV (the
  paper's Table 1), Dice and IoU, pooled over all pixels of held-out phantom crops on
  their own grid (the predictor's resize-back path), plus mean per-crop Dice, and for a
  network with the necrosis output the necrosis Dice of its own class map;
- necrosis and grading (the engine core): held-out bilateral phantom series go
  through :func:`grading.engine.pipeline.grade_series` with the model wrapped as a
  :class:`~grading.engine.predictor.HeadSegmenter`; necrosis Dice, mean absolute
  proportion error, grade accuracy and the confusion matrix, per slice and per hip,
  normal hips graded none, and sections with a true proportion above 30 % graded none.

Speed (:func:`run_speed`): ms per 256x256 hip through the whole predictor (normalise,
resize, network, resize back), batch 1 and 16, float32 and bfloat16 autocast, the
model's FLOPs and the floor = FLOPs / measured throughput of this machine.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from grading.engine.families import FAMILY_NAMES, PhantomFamily, available_families
from grading.engine.networks import MODEL_NAMES, NECROSIS_CLASSES, build_network, head_logit
from grading.engine.predictor import (
    HeadSegmenter,
    cpu_has_amx,
    normalise_intensity,
    resize,
    to_network_input,
)
from grading.engine.training import CropSet, TrainConfig, _machine, load_crops, train

GRADES = ("none", "mild", "moderate", "severe")
MISSED = 4
"""Confusion matrices have a fifth column: no femoral head found where the truth has one."""


# ------------------------------------------------------------------ head metrics


@dataclass
class Confusion:
    """Pixel counts of a binary segmentation against the truth."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def add(self, pred: npt.NDArray[np.bool_], truth: npt.NDArray[np.bool_]) -> None:
        self.tp += int(np.count_nonzero(pred & truth))
        self.fp += int(np.count_nonzero(pred & ~truth))
        self.fn += int(np.count_nonzero(~pred & truth))
        self.tn += int(np.count_nonzero(~pred & ~truth))

    def metrics(self) -> dict[str, float]:
        def ratio(a: int, b: int) -> float:
            return a / b if b else math.nan

        tp, fp, tn, fn = self.tp, self.fp, self.tn, self.fn
        return {
            "accuracy": ratio(tp + tn, tp + tn + fp + fn),
            "sensitivity": ratio(tp, tp + fn),
            "specificity": ratio(tn, tn + fp),
            "ppv": ratio(tp, tp + fp),
            "dice": ratio(2 * tp, 2 * tp + fp + fn),
            "iou": ratio(tp, tp + fp + fn),
        }


def head_metrics(
    segmenter: HeadSegmenter, crops: CropSet, *, batch_size: int = 32
) -> dict[str, float]:
    """Table-1 metrics of the femoral head on held-out crops, on their own pixel grid.

    Pooled over all pixels (threshold 0.5), plus ``mean_dice`` per crop (a crop with
    neither a true nor a predicted head counts 1).
    """
    confusion = Confusion()
    necrosis = Confusion()
    dices: list[float] = []
    for start in range(0, len(crops), batch_size):
        x = normalise_intensity(crops.images[start : start + batch_size])
        logits = segmenter.class_logits(x).cpu()
        labels = crops.labels[start : start + batch_size]
        back = resize(logits, (labels.shape[-2], labels.shape[-1]))
        pred = (head_logit(back)[:, 0] > 0).numpy()
        nec = (back.argmax(dim=1) == 2).numpy() if segmenter.has_necrosis_output else None
        for i, (p, lab) in enumerate(zip(pred, labels, strict=True)):
            t = lab > 0
            confusion.add(p, t)
            denom = int(p.sum() + t.sum())
            dices.append(2.0 * float((p & t).sum()) / denom if denom else 1.0)
            if nec is not None:
                necrosis.add(nec[i], lab == 2)
    out = confusion.metrics()
    out["mean_dice"] = float(np.mean(dices))
    if segmenter.has_necrosis_output:
        out["necrosis_dice"] = necrosis.metrics()["dice"]
    return out


# ------------------------------------------------------------------ grading metrics


def _pipeline() -> Any | None:
    try:
        return importlib.import_module("grading.engine.pipeline")
    except ImportError:
        return None


def grading_metrics(segmenter: HeadSegmenter, series_list: Sequence[Any]) -> dict[str, Any]:
    """Necrosis and grade metrics of the engine core's pipeline with this segmenter.

    ``series_list``: :class:`grading.engine.phantoms.PhantomSeries`. Per slice: every
    (slice, side) where the truth shows a femoral head; a head the pipeline missed
    counts as a wrong grade (confusion column "no head") and a proportion error of the
    true proportion. Per hip:
    the series' volumetric proportion and grade for each true hip. Necrosis Dice is
    pooled over all pixels of all slices. Returns ``{"available": False}`` while
    ``grading.engine.pipeline`` does not exist, or without series.
    """
    pipeline = _pipeline()
    if pipeline is None or not hasattr(pipeline, "grade_series"):
        return {"available": False, "reason": "grading.engine.pipeline.grade_series missing"}
    if not series_list:
        return {"available": False, "reason": "no held-out series (--n-series 0)"}
    index = {g: i for i, g in enumerate(GRADES)}
    slice_conf = np.zeros((4, 5), np.int64)
    hip_conf = np.zeros((4, 5), np.int64)
    slice_err: list[float] = []
    hip_err: list[float] = []
    necrosis = Confusion()
    head = Confusion()
    missed = extra = 0
    over30 = over30_none = 0
    seconds = 0.0
    n_slices = 0
    sections = 0
    # hips whose grade is wrong / right, and how many of each carry uncertain_grade or
    # methods_disagree (a missed hip counts as flagged: the engine said it found no head)
    flag_counts = {"wrong": 0, "wrong_flagged": 0, "right": 0, "right_flagged": 0}
    warning_codes = ("uncertain_grade", "methods_disagree")
    for series in series_list:
        slices = series.mr_slices()
        t0 = time.perf_counter()
        result = pipeline.grade_series(slices, segmenter)
        seconds += time.perf_counter() - t0
        n_slices += len(slices)
        for k, sres in enumerate(result.slices):
            truth_lab = series.labels[k]
            necrosis.add(sres.labelmap == 2, truth_lab == 2)
            head.add(sres.labelmap > 0, truth_lab > 0)
            found = {h.side: h for h in sres.hips}
            truth_sides = {t.side for t in series.slice_truth[k]}
            extra += sum(1 for s in found if s not in truth_sides)
            for t in series.slice_truth[k]:
                h = found.get(t.side)
                sections += 1
                if float(t.proportion) > 0.30:
                    over30 += 1
                    over30_none += int(h is None or str(h.grade) == "none")
                if h is None:
                    missed += 1
                    slice_conf[index[str(t.grade)], MISSED] += 1
                    slice_err.append(float(t.proportion))
                    continue
                slice_conf[index[str(t.grade)], index[str(h.grade)]] += 1
                slice_err.append(abs(float(h.proportion) - float(t.proportion)))
        found_hips = {h.side: h for h in result.hips}
        for side, t in series.truth.items():
            h = found_hips.get(side)
            hip_conf[index[str(t.grade)], index[str(h.grade)] if h else MISSED] += 1
            right = h is not None and str(h.grade) == str(t.grade)
            warned = h is None or any(f.split(":", 1)[0] in warning_codes for f in h.flags)
            kind = "right" if right else "wrong"
            flag_counts[kind] += 1
            flag_counts[f"{kind}_flagged"] += int(warned)
            hip_err.append(
                abs(float(h.proportion) - float(t.proportion)) if h else float(t.proportion)
            )
    return {
        "available": True,
        "series": len(series_list),
        "slices": n_slices,
        "necrosis_dice": necrosis.metrics()["dice"],
        "pipeline_head_dice": head.metrics()["dice"],
        "slice_grade_accuracy": float(np.trace(slice_conf) / max(slice_conf.sum(), 1)),
        "hip_grade_accuracy": float(np.trace(hip_conf) / max(hip_conf.sum(), 1)),
        "slice_proportion_mae": float(np.mean(slice_err)) if slice_err else math.nan,
        "hip_proportion_mae": float(np.mean(hip_err)) if hip_err else math.nan,
        "slice_confusion": slice_conf.tolist(),
        "hip_confusion": hip_conf.tolist(),
        "normal_hips_graded_none": int(hip_conf[0, 0]),
        "normal_hips": int(hip_conf[0].sum()),
        "over30_sections_graded_none": over30_none,
        "over30_sections": over30,
        "missed_hip_slices": missed,
        "extra_hip_slices": extra,
        "seconds_per_series": seconds / max(len(series_list), 1),
        "hips": int(hip_conf.sum()),
        "sections": sections,
        "wrong_hips": flag_counts["wrong"],
        "wrong_hips_flagged": flag_counts["wrong_flagged"],
        "right_hips": flag_counts["right"],
        "right_hips_flagged": flag_counts["right_flagged"],
    }


# ------------------------------------------------------------------ accuracy benchmark


@dataclass
class AccuracyConfig:
    models: tuple[str, ...] = MODEL_NAMES
    minutes_per_model: float = 3.0
    steps_per_model: int | None = None
    """Equal steps instead of (or as well as) equal time: each model stops at this many."""
    n_train: int = 1024
    train_seed: int = 1
    n_val: int = 64
    val_seed: int = 900_001
    n_test: int = 192
    test_seed: int = 700_001
    n_series: int = 8
    series_seed: int = 800_001
    device: str = "cpu"
    input_size: int = 128
    batch_size: int = 16
    lr: float = 3e-3
    shipped: bool = True
    """Also measure the shipped weights (``HeadSegmenter.load()``) on the same test data."""
    weights: tuple[Path, ...] = ()
    """Exported weights files (each with its JSON) to measure as they are, no training."""
    init_seeds: tuple[int, ...] = ()
    """Train each model once per seed (its start and batch order; the training crops stay
    those of ``train_seed``), a row each: the spread between initialisations. Empty: one
    run per model with ``train_seed``."""
    families: tuple[str, ...] = FAMILY_NAMES
    """Phantom families measured, side by side (:mod:`grading.engine.families`)."""
    train_families: tuple[str, ...] = FAMILY_NAMES
    """Each model is trained once per family here (leave-one-family-out: a row trained on
    ``own`` is measured on both, one trained on ``independent`` on both)."""
    out_channels: int = NECROSIS_CLASSES
    """3: networks with the learned necrosis output; 1: head only."""
    synth_share: float = 0.5
    """Share of each batch synthesised from tissue maps (families that have them)."""
    extra: dict[str, Any] = field(default_factory=dict)


def _family_data(
    family: PhantomFamily, cfg: AccuracyConfig, threads: int
) -> tuple[CropSet, list[Any]]:
    """A family's held-out crops (head metrics) and bilateral series (grading metrics)."""
    make = None if family.name == "own" else family.test_crops
    crops = load_crops(
        cfg.n_test,
        cfg.test_seed,
        256,
        cfg.input_size,
        workers=threads,
        desc=f"test phantoms ({family.name})",
        make=make,
    )
    series = (
        family.evaluation_series(cfg.series_seed, cfg.n_series)
        if _pipeline() is not None and cfg.n_series > 0
        else []
    )
    return crops, series


def _trained_on(meta: dict[str, Any]) -> str:
    return str(meta.get("training_data", {}).get("family", "own"))


def run_accuracy(
    cfg: AccuracyConfig,
    *,
    out: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train each model on each training family; measure every row on every family."""
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    found = available_families(tuple(dict.fromkeys(cfg.families + cfg.train_families)))
    families = {n: f for n, f in found.items() if isinstance(f, PhantomFamily)}
    missing = {n: str(f) for n, f in found.items() if not isinstance(f, PhantomFamily)}
    for name, why in missing.items():
        log(f"family {name}: {why}")
    tested = [n for n in cfg.families if n in families]
    test_data = {n: _family_data(families[n], cfg, threads) for n in tested}

    def measure(seg: HeadSegmenter) -> dict[str, Any]:
        return {
            n: {"head": head_metrics(seg, crops), "grading": grading_metrics(seg, series)}
            for n, (crops, series) in test_data.items()
        }

    rows: dict[str, Any] = {}
    if cfg.shipped:
        seg = HeadSegmenter.load(device=cfg.device)
        training = seg.metadata.get("training", {})
        rows[f"ours, shipped weights ({seg.model_version})"] = {
            "trained_on": _trained_on(seg.metadata),
            "steps": int(training.get("steps", 0)),
            "train_minutes": round(float(training.get("train_seconds", 0.0)) / 60, 2),
            "families": measure(seg),
        }
        log(f"shipped: measured on {', '.join(tested)}")
    for path in cfg.weights:
        seg = HeadSegmenter.load(path, device=cfg.device)
        training = seg.metadata.get("training", {})
        rows[f"{seg.metadata['model']} ({path.name})"] = {
            "trained_on": _trained_on(seg.metadata),
            "steps": int(training.get("steps", 0)),
            "train_minutes": round(float(training.get("train_seconds", 0.0)) / 60, 2),
            "families": measure(seg),
        }
    several = len([n for n in cfg.train_families if n in families]) > 1
    for fam_name in cfg.train_families:
        if fam_name not in families or not cfg.models:
            continue
        family = families[fam_name]
        make = None if fam_name == "own" else family.training_crops
        train_set = load_crops(
            cfg.n_train,
            cfg.train_seed,
            256,
            cfg.input_size,
            workers=threads,
            desc=f"training phantoms ({fam_name})",
            make=make,
        )
        val_set = load_crops(
            cfg.n_val,
            cfg.val_seed,
            256,
            cfg.input_size,
            workers=threads,
            desc=f"validation phantoms ({fam_name})",
            make=make,
        )
        # (model, start seed, row label, output folder): one run per model, or per seed
        suffix = f", trained on {fam_name}" if several else ""
        runs = [
            (name, seed, f"{name} (init seed {seed}{suffix})", f"{fam_name}/{name}-seed{seed}")
            if cfg.init_seeds
            else (
                name,
                seed,
                f"{name} (trained on {fam_name})" if several else name,
                f"{fam_name}/{name}",
            )
            for name in cfg.models
            for seed in (cfg.init_seeds or (cfg.train_seed,))
        ]
        for name, seed, label, folder in runs:
            tcfg = TrainConfig(
                model=name,
                minutes=cfg.minutes_per_model,
                max_steps=cfg.steps_per_model,
                device=cfg.device,
                input_size=cfg.input_size,
                n_train=cfg.n_train,
                train_seed=cfg.train_seed,
                init_seed=seed,
                n_val=cfg.n_val,
                val_seed=cfg.val_seed,
                batch_size=cfg.batch_size,
                lr=cfg.lr,
                out_channels=cfg.out_channels,
                synth_share=cfg.synth_share if family.has_tissue_maps else 0.0,
                extreme_lesion_share=0.0,
                family=fam_name,
            )
            result = train(
                tcfg,
                out=None if out is None else out / folder,
                train_set=train_set,
                val_set=val_set,
                progress=progress,
                log=log,
            )
            seg = HeadSegmenter(
                result.model,
                input_size=cfg.input_size,
                model_version=f"benchmark-{name}",
                device=torch.device(cfg.device),
            )
            rows[label] = {
                "trained_on": fam_name,
                "steps": result.steps,
                "train_minutes": round(result.train_seconds / 60, 2),
                "families": measure(seg),
            }
            log(f"{label}: {result.steps} steps")
    return {
        "kind": "accuracy",
        "config": cfg.__dict__,
        "families": {n: families[n].module for n in families} | missing,
        "machine": _machine(),
        "torch": torch.__version__,
        "date": dt.date.today().isoformat(),
        "results": rows,
    }


SUMMARY_METRICS: tuple[tuple[str, str], ...] = (
    ("head Dice (crops)", "head.dice"),
    ("necrosis Dice (network, crops)", "head.necrosis_dice"),
    ("necrosis Dice (engine, series)", "grading.necrosis_dice"),
    ("grade accuracy per slice", "grading.slice_grade_accuracy"),
    ("grade accuracy per hip (volumetric)", "grading.hip_grade_accuracy"),
    ("normal hips graded none", "grading.normal_hips_share"),
    ("sections > 30 % graded none (or head missed)", "grading.over30_none"),
    ("wrong hip grades flagged (uncertain_grade or methods_disagree)", "grading.wrong_flagged"),
    ("right hip grades flagged", "grading.right_flagged"),
    ("hips / sections measured", "grading.size"),
)


def _metric(entry: dict[str, Any], key: str) -> float | str | None:
    part, name = key.split(".")
    values = entry.get(part, {})
    if part == "grading" and not values.get("available"):
        return None
    if name == "normal_hips_share":
        total = values.get("normal_hips", 0)
        return values["normal_hips_graded_none"] / total if total else None
    if name == "over30_none":
        return f"{values['over30_sections_graded_none']} / {values['over30_sections']}"
    if name in ("wrong_flagged", "right_flagged"):
        kind = name.split("_")[0]
        if f"{kind}_hips" not in values:
            return None
        return f"{values[f'{kind}_hips_flagged']} / {values[f'{kind}_hips']}"
    if name == "size":
        return f"{values['hips']} / {values['sections']}" if "hips" in values else None
    value = values.get(name)
    return None if value is None else float(value)


def _fmt(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return "-" if math.isnan(value) else f"{value:.4f}"


def summary_markdown(report: dict[str, Any]) -> str:
    """The side-by-side table: every row's metrics on every family, in-family and shift.

    ``gap``: the value on the family a row was not trained on minus its in-family value."""
    rows = report["results"]
    names = sorted({f for r in rows.values() for f in r["families"]}, key=FAMILY_NAMES.index)
    lines = [
        "| model | trained on | metric | " + " | ".join(f"{n} family" for n in names) + " | gap |",
        "|---|---|---|" + "---|" * (len(names) + 1),
    ]
    for label, r in rows.items():
        for title, key in SUMMARY_METRICS:
            values = {n: _metric(r["families"][n], key) for n in names if n in r["families"]}
            if all(v is None for v in values.values()):
                continue
            own = values.get(r["trained_on"])
            others = [v for n, v in values.items() if n != r["trained_on"]]
            gap = (
                others[0] - own
                if len(others) == 1 and isinstance(own, float) and isinstance(others[0], float)
                else None
            )
            gap_text = "-" if gap is None else f"{gap:+.4f}"
            cells = " | ".join(_fmt(values.get(n)) for n in names)
            lines.append(f"| {label} | {r['trained_on']} | {title} | {cells} | {gap_text} |")
    return "\n".join(lines) + "\n"


def accuracy_markdown(report: dict[str, Any]) -> str:
    """Markdown: the side-by-side summary, then each family's detailed tables (head
    metrics, grading metrics, confusion matrices)."""
    parts = ["### All families, side by side", "", summary_markdown(report)]
    for why in (v for v in report.get("families", {}).values() if v.startswith("not ")):
        parts += [f"One family was {why}.", ""]
    names = sorted(
        {f for r in report["results"].values() for f in r["families"]}, key=FAMILY_NAMES.index
    )
    for name in names:
        per_family = {
            label: r["families"][name] | {"steps": r["steps"]}
            for label, r in report["results"].items()
            if name in r["families"]
        }
        parts += [f"### {name} family", "", family_markdown(per_family)]
    return "\n".join(parts)


def family_markdown(rows: dict[str, Any]) -> str:
    """Markdown tables (head metrics, grading metrics, confusion matrices) of one family."""
    pct = "{:.2%}".format
    lines = [
        "| model | steps | head accuracy | sensitivity | specificity | PPV | Dice | IoU "
        "| mean crop Dice | necrosis Dice (network) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        h = r["head"]
        lines.append(
            f"| {name} | {r['steps']} | {pct(h['accuracy'])} | {pct(h['sensitivity'])} "
            f"| {pct(h['specificity'])} | {pct(h['ppv'])} | {h['dice']:.4f} | {h['iou']:.4f} "
            f"| {h['mean_dice']:.4f} | {_fmt(h.get('necrosis_dice'))} |"
        )
    graded = {n: r["grading"] for n, r in rows.items() if r["grading"].get("available")}
    if graded:
        lines += [
            "",
            "| model | necrosis Dice | proportion MAE (slice) | proportion MAE (hip) "
            "| grade accuracy (slice) | grade accuracy (hip) | normal hips none "
            "| > 30 % graded none | missed / extra hip-slices | s per series |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, g in graded.items():
            lines.append(
                f"| {name} | {g['necrosis_dice']:.4f} | {g['slice_proportion_mae']:.4f} "
                f"| {g['hip_proportion_mae']:.4f} | {pct(g['slice_grade_accuracy'])} "
                f"| {pct(g['hip_grade_accuracy'])} "
                f"| {g['normal_hips_graded_none']} / {g['normal_hips']} "
                f"| {g['over30_sections_graded_none']} / {g['over30_sections']} "
                f"| {g['missed_hip_slices']} / "
                f"{g['extra_hip_slices']} | {g['seconds_per_series']:.2f} |"
            )
        for name, g in graded.items():
            for level in ("slice", "hip"):
                lines += [
                    "",
                    f"Confusion ({name}, per {level}; rows truth, columns predicted):",
                    "",
                    "| truth \\ predicted | " + " | ".join(GRADES) + " | no head |",
                    "|---|---|---|---|---|---|",
                ]
                for g_name, row in zip(GRADES, g[f"{level}_confusion"], strict=True):
                    lines.append(f"| {g_name} | " + " | ".join(str(v) for v in row) + " |")
    else:
        reason = next(iter(rows.values()))["grading"].get("reason", "") if rows else ""
        lines += ["", f"Grading metrics not measured: {reason}."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ speed benchmark


def _median_time(
    fn: Callable[[], object], *, min_reps: int = 3, min_seconds: float = 1.0, max_reps: int = 50
) -> float:
    fn()  # warm-up (oneDNN primitive creation)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_reps and (
        len(times) < min_reps or time.perf_counter() - start < min_seconds
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def model_flops(model: nn.Module, input_size: int) -> float:
    """Forward FLOPs (multiply-add = 2) of one ``(1, 1, S, S)`` input."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 1, input_size, input_size))
    return float(counter.get_total_flops())


def machine_throughput(dtype: torch.dtype) -> dict[str, float]:
    """Measured GFLOP/s of a 1024^3 matmul and of a 3x3 convolution (32->32, 16x64x64,
    the better of NCHW and channels_last)."""
    a = torch.randn(1024, 1024).to(dtype)
    b = torch.randn(1024, 1024).to(dtype)
    t_mm = _median_time(lambda: a @ b, min_seconds=0.5, max_reps=20)
    t_conv = math.inf
    for layout in (torch.contiguous_format, torch.channels_last):
        conv = nn.Conv2d(32, 32, 3, padding=1, bias=False).eval()
        conv = conv.to(memory_format=layout)  # type: ignore[call-overload]
        x = torch.randn(16, 32, 64, 64).contiguous(memory_format=layout)

        def run(conv: nn.Module = conv, x: torch.Tensor = x) -> object:
            with (
                torch.no_grad(),
                torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16),
            ):
                return conv(x)

        t_conv = min(t_conv, _median_time(run, min_seconds=0.5, max_reps=20))
    conv_flops = 2.0 * 16 * 64 * 64 * 32 * 32 * 9
    return {"matmul_gflops": 2 * 1024**3 / t_mm / 1e9, "conv_gflops": conv_flops / t_conv / 1e9}


def run_speed(
    models: Sequence[str] = ("ours", "unet", "linknet"),
    *,
    input_size: int = 128,
    image_size: int = 256,
    batch_sizes: Sequence[int] = (1, 16),
    precisions: Sequence[str] = ("float32", "bfloat16"),
    device: str = "cpu",
    out_channels: int = NECROSIS_CLASSES,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Ms per ``image_size``^2 hip through the whole predictor for each model.

    ``out_channels``: 3, the networks with the necrosis output as shipped (the predictor
    then resizes three logit maps back instead of one), or 1."""
    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    dev = torch.device(device)
    rng = np.random.default_rng(0)
    images = [
        rng.normal(1000, 300, (image_size, image_size)).astype(np.float32)
        for _ in range(max(batch_sizes))
    ]
    throughput = (
        {
            p: machine_throughput(torch.float32 if p == "float32" else torch.bfloat16)
            for p in precisions
        }
        if dev.type == "cpu"
        else {}
    )
    results: dict[str, Any] = {}
    for name in models:
        model = build_network(name, out_channels=out_channels).eval()
        flops = model_flops(model, input_size)
        entry: dict[str, Any] = {
            "gflops_per_hip": flops / 1e9,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        }
        for precision in precisions:
            seg = HeadSegmenter(
                build_network(name, out_channels=out_channels),
                input_size=input_size,
                model_version=name,
                device=dev,
                precision=precision,
            )
            for bs in batch_sizes:
                batch = images[:bs]

                def run_predict(
                    b: list[Any] = batch, s: HeadSegmenter = seg, n: int = bs
                ) -> object:
                    return s.predict(b, batch_size=n)

                t = _median_time(run_predict)
                entry[f"{precision}_b{bs}_ms"] = 1000 * t / bs
                x = to_network_input(batch, input_size)

                def run_network(x: torch.Tensor = x, s: HeadSegmenter = seg) -> object:
                    return s.logits(x)

                t_net = _median_time(run_network)
                entry[f"{precision}_b{bs}_network_ms"] = 1000 * t_net / bs
                log(f"{name} {precision} batch {bs}: {entry[f'{precision}_b{bs}_ms']:.1f} ms/hip")
            if precision in throughput:
                tp = throughput[precision]
                entry[f"{precision}_floor_ms"] = 1000 * flops / (tp["conv_gflops"] * 1e9)
                entry[f"{precision}_floor_matmul_ms"] = 1000 * flops / (tp["matmul_gflops"] * 1e9)
        if dev.type == "cuda":
            seg = HeadSegmenter(
                build_network(name, out_channels=out_channels),
                input_size=input_size,
                model_version=name,
                device=dev,
            )
            big = images * 4

            def run_cuda(b: list[Any] = big, s: HeadSegmenter = seg) -> object:
                out = s.predict(b, batch_size=len(b))
                torch.cuda.synchronize()
                return out

            t = _median_time(run_cuda)
            batch = big
            entry["cuda_slices_per_s"] = len(batch) / t
        results[name] = entry
    return {
        "kind": "speed",
        "machine": _machine(),
        "threads": threads,
        "device": device,
        "amx": cpu_has_amx(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "input_size": input_size,
        "image_size": image_size,
        "out_channels": out_channels,
        "throughput": throughput,
        "date": dt.date.today().isoformat(),
        "results": results,
    }


def _cell(row: dict[str, Any], key: str, digits: int) -> str:
    """A table cell: the value with ``digits`` decimals, or "-" when not measured (the
    floor needs the CPU throughput, which a CUDA run does not measure)."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def speed_markdown(report: dict[str, Any]) -> str:
    """A markdown table of a speed report."""
    results = report["results"]
    precisions = [
        p for p in ("float32", "bfloat16") if any(f"{p}_b1_ms" in r for r in results.values())
    ]
    head = ["model", "params (M)", f"GFLOP/hip @{report['input_size']}"]
    for p in precisions:
        head += [f"{p} b1 ms", f"{p} b16 ms", f"{p} b16 network ms", f"{p} floor ms"]
    if any("cuda_slices_per_s" in r for r in results.values()):
        head.append("CUDA slices/s")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in results.items():
        cells = [name, f"{r['params_m']:.2f}", f"{r['gflops_per_hip']:.3f}"]
        for p in precisions:
            cells += [
                _cell(r, f"{p}_b1_ms", 1),
                _cell(r, f"{p}_b16_ms", 1),
                _cell(r, f"{p}_b16_network_ms", 1),
                _cell(r, f"{p}_floor_ms", 2),
            ]
        if "CUDA slices/s" in head:
            cells.append(f"{r.get('cuda_slices_per_s', math.nan):.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    tp = report.get("throughput", {})
    notes = [
        f"{p}: matmul {v['matmul_gflops']:.0f} GFLOP/s, 3x3 conv {v['conv_gflops']:.0f} GFLOP/s"
        for p, v in tp.items()
    ]
    if notes:
        lines += [
            "",
            "Measured throughput (floor = FLOPs / conv throughput): " + "; ".join(notes) + ".",
        ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path, markdown: str) -> None:
    """``out``.json and ``out``.md."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown)
