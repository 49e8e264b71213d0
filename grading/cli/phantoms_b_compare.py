"""Compare ``onfh grade`` results with a phantom family B truth.json.

Hips are matched by (SeriesInstanceUID, side): each series' two hips, and each crop's one
hip. Reported separately for series (volumetric) and crops (one slice): the number of
hips, grade accuracy, the confusion matrix (truth rows x engine columns, in the order
none, mild, moderate, severe), the mean absolute proportion error in percentage points,
and hips the engine did not report. Proportions are fractions 0..1 in both files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grading.engine.grading_rules import GRADE_ORDER

_ORDER = [g.value for g in GRADE_ORDER]


def _truth_hips(truth: dict[str, Any]) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    series = {
        (s["series_instance_uid"], side): hip
        for s in truth["series"]
        for side, hip in s["hips"].items()
    }
    crops = {(c["series_instance_uid"], c["side"]): c for c in truth["crops"]}
    return {"series": series, "crops": crops}


def compare(truth_path: Path, results_path: Path) -> dict[str, Any]:
    """Per-kind summary (see the module docstring) plus ``rows``: one per truth hip."""
    truth = json.loads(Path(truth_path).read_text())
    results = json.loads(Path(results_path).read_text())
    engine = {(h["series_instance_uid"], h["side"]): h for h in results.get("hips", [])}
    summary: dict[str, Any] = {"rows": []}
    for kind, hips in _truth_hips(truth).items():
        confusion = [[0] * 4 for _ in range(4)]
        errors: list[float] = []
        missing = 0
        for key, hip in sorted(hips.items()):
            found = engine.get(key)
            row = {"kind": kind, "series_instance_uid": key[0], "side": key[1]}
            row |= {"truth_proportion": hip["proportion"], "truth_grade": hip["grade"]}
            if found is None:
                missing += 1
                summary["rows"].append(row | {"proportion": None, "grade": None})
                continue
            confusion[_ORDER.index(hip["grade"])][_ORDER.index(found["grade"])] += 1
            errors.append(abs(float(found["proportion"]) - float(hip["proportion"])))
            summary["rows"].append(
                row | {"proportion": found["proportion"], "grade": found["grade"]}
            )
        graded = len(errors)
        summary[kind] = {
            "hips": len(hips),
            "missing": missing,
            "grade_accuracy": (sum(confusion[i][i] for i in range(4)) / graded) if graded else None,
            "confusion": confusion,
            "proportion_mae_pp": (100 * sum(errors) / graded) if graded else None,
        }
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    lines = []
    for kind in ("series", "crops"):
        s = summary[kind]
        acc = "n/a" if s["grade_accuracy"] is None else f"{100 * s['grade_accuracy']:.1f} %"
        mae = "n/a" if s["proportion_mae_pp"] is None else f"{s['proportion_mae_pp']:.2f} pp"
        lines.append(
            f"{kind}: {s['hips']} hips ({s['missing']} not reported), grade accuracy {acc}, "
            f"proportion MAE {mae}"
        )
        lines.append("  truth \\ engine  " + " ".join(f"{g:>8}" for g in _ORDER))
        for g, counts in zip(_ORDER, s["confusion"], strict=True):
            lines.append(f"  {g:>14}  " + " ".join(f"{c:>8}" for c in counts))
    return "\n".join(lines)
