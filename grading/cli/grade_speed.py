"""``onfh benchmark --speed``, second part: a 20-slice bilateral series through the whole
of ``onfh grade`` (read the DICOM files, grade with the uncertainty, write results.json
and the label maps), after the model is loaded.

Phantom series (``make_bilateral_series``, 384 x 384, 1.0 mm pixels, 4 mm slices) are
written as DICOM to a temporary folder; each is graded ``repeats`` times after one
warm-up, with the uncertainty (step 14) and without it, and the medians are reported.
The target (issue 12): under 3 s per series with the uncertainty. Process CPU time is
reported beside the wall clock: on a shared machine it shows the work done, whatever
else runs.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_S = 3.0


def run_grade_speed(
    segmenter: Any, *, n_series: int = 2, repeats: int = 3, seed: int = 930001
) -> dict[str, Any]:
    """Median seconds per series through :func:`grading.cli.grade.grade_inputs`."""
    from grading.cli.grade import grade_inputs
    from grading.dicom.writer import write_mr_series
    from grading.engine.phantoms import make_bilateral_series
    from grading.engine.pipeline import DEFAULT_PIPELINE, PipelineConfig

    rows: dict[str, list[float]] = {"with_uncertainty": [], "without_uncertainty": []}
    cpu: dict[str, list[float]] = {"with_uncertainty": [], "without_uncertainty": []}
    configs = {
        "with_uncertainty": DEFAULT_PIPELINE,
        "without_uncertainty": PipelineConfig(uncertainty=None),
    }
    with tempfile.TemporaryDirectory(prefix="onfh-grade-speed-") as tmp:
        root = Path(tmp)
        folders = []
        for k in range(n_series):
            series = make_bilateral_series(seed + k, n_slices=20, matrix=(384, 384))
            folder = root / f"series_{k}"
            write_mr_series(
                series.images,
                folder,
                pixel_spacing_mm=series.pixel_spacing_mm,
                slice_thickness_mm=series.slice_thickness_mm,
                spacing_between_slices_mm=series.spacing_between_slices_mm,
                image_orientation=series.image_orientation,
                first_position=series.first_position,
            )
            folders.append(folder)
        for folder in folders:
            for name, config in configs.items():
                out = root / f"out_{folder.name}_{name}"
                grade_inputs([folder], out, segmenter, warn=lambda _: None, config=config)
                for _ in range(repeats):
                    started, cpu_started = time.perf_counter(), time.process_time()
                    grade_inputs([folder], out, segmenter, warn=lambda _: None, config=config)
                    rows[name].append(time.perf_counter() - started)
                    cpu[name].append(time.process_time() - cpu_started)
    return {
        "series": n_series,
        "slices_per_series": 20,
        "repeats": repeats,
        "median_s": {name: statistics.median(times) for name, times in rows.items()},
        "max_s": {name: max(times) for name, times in rows.items()},
        "median_cpu_s": {name: statistics.median(times) for name, times in cpu.items()},
        "target_s": TARGET_S,
    }


def grade_speed_markdown(report: dict[str, Any]) -> str:
    with_u = report["median_s"]["with_uncertainty"]
    without = report["median_s"]["without_uncertainty"]
    met = "met" if with_u < report["target_s"] else "NOT met"
    return (
        "\n| `onfh grade`, 20-slice bilateral series, after model load | median s "
        "| max s | median process CPU s |\n|---|---|---|---|\n"
        f"| with the uncertainty (step 14) | {with_u:.2f} "
        f"| {report['max_s']['with_uncertainty']:.2f} "
        f"| {report['median_cpu_s']['with_uncertainty']:.2f} |\n"
        f"| without it | {without:.2f} | {report['max_s']['without_uncertainty']:.2f} "
        f"| {report['median_cpu_s']['without_uncertainty']:.2f} |\n\n"
        f"Target: under {report['target_s']:g} s with the uncertainty: {met} "
        f"({report['series']} series x {report['repeats']} runs).\n"
    )
