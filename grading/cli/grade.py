"""``onfh grade INPUT [INPUT ...] --out DIR``: grade DICOM series, write results.json.

INPUT: DICOM files or folders (searched recursively). Slices are grouped by
SeriesInstanceUID and each series is graded as a whole (volumes per hip). Writes
``DIR/results.json``::

    {"images": [{"path", "sop_instance_uid", "labelmap", "hips": [{"side",
      "head_area_mm2", "necrosis_area_mm2", "proportion", "grade", "flags",
      "proportion_interval", "grade_probabilities"}]}],
     "hips": [{"series_instance_uid", "side", "head_volume_mm3",
      "necrosis_volume_mm3", "proportion", "grade", "flags", "proportion_interval",
      "grade_probabilities", "method_proportions"}]}

plus ``series``: ``[{"series_instance_uid", "weighting", "plane", "graded",
"not_graded_reason"}]`` (only T1 without fat suppression in an axial or coronal plane is
graded; ``grading.dicom.protocol``), per hip ``classification`` (this series' mid slice:
``{"plane", "mid_sop_instance_uid", "arc_deg", "jic_type", "jic_fraction",
"roof_edge_deg", "reason"}`` or null on an axial series), the hip's ``jic_type`` (from
the coronal series), ``kerboul_angle_deg`` and ``kerboul_partial`` (coronal plus sagittal
arc; partial with one plane), a ``series_disagreement`` flag when two series grade it
differently, ``extent``, ``stage`` and ``stage_source`` (docs/grading.md section 5),
``model_version`` and ``errors`` (one line per unreadable input), and per image
``series_instance_uid``, ``instance_number`` and, for a frame of a multi-frame file,
``frame`` (1-based). ``labelmap`` is
the path, relative to DIR, of an 8-bit PNG of the image's Rows x Columns with 0
background, 1 viable femoral head, 2 necrosis. ``proportion`` is a fraction 0..1;
``proportion_interval`` ``[low, high]`` its 85 % interval and ``grade_probabilities``
``{"none", "mild", "moderate", "severe"}`` the probability of each grade (step 14 of
docs/grading.md); ``method_proportions`` the proportion by each necrosis method that ran.

A bad input costs one line on stderr and the rest is processed; the exit status is
non-zero only when nothing could be processed. Research and teaching software, not a
medical device.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS_NAME = "results.json"
LABELMAP_DIR = "labelmaps"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "grade",
        help="grade DICOM series and write results.json with label maps",
        description=(
            "Find the femoral heads, segment them, threshold necrosis and grade each hip "
            "(Steinberg extent: none < 0.1 %, mild < 15 %, moderate 15-30 %, severe > "
            "30 %). Writes DIR/results.json and one label-map PNG per image. Research and "
            "teaching software, not a medical device."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="DICOM files or folders")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    p.add_argument(
        "--weights", type=Path, default=None, help="network weights (default: the shipped ones)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def load_segmenter(weights: Path | None, device: str) -> Any:
    """The segmenter, loaded once (a seam for tests that use a stand-in)."""
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"{weights}: no such weights file")
    from grading.engine.predictor import HeadSegmenter

    return HeadSegmenter.load(weights, device=device)


def _series_key(mr_slice: Any) -> str:
    return str(mr_slice.series_instance_uid) or f"(no SeriesInstanceUID) {mr_slice.source}"


def uncertainty_as_dict(uncertainty: Any) -> dict[str, Any]:
    from grading.engine.uncertainty import uncertainty_as_dict as as_dict

    return as_dict(uncertainty)


def _hip_json(hip: Any) -> dict[str, Any]:
    return {
        "side": hip.side,
        "head_area_mm2": float(hip.head_area_mm2),
        "necrosis_area_mm2": float(hip.necrosis_area_mm2),
        "proportion": float(hip.proportion),
        "grade": hip.grade.value,
        "flags": list(hip.flags),
        **uncertainty_as_dict(hip.uncertainty),
    }


def _series_hip_json(hip: Any, extra_flags: Sequence[str] = ()) -> dict[str, Any]:
    from grading.engine.classifications import extent_from_proportion, stage_from_findings

    proportion = min(max(float(hip.proportion), 0.0), 1.0)
    extent = extent_from_proportion(proportion)
    stage = stage_from_findings(necrosis_on_mri=extent is not None, findings=None, extent=extent)
    return {
        "series_instance_uid": hip.series_instance_uid,
        "side": hip.side,
        "head_volume_mm3": float(hip.head_volume_mm3),
        "necrosis_volume_mm3": float(hip.necrosis_volume_mm3),
        "proportion": float(hip.proportion),
        "grade": hip.grade.value,
        "flags": list(hip.flags) + [f for f in extra_flags if f not in hip.flags],
        "slice_count": int(hip.slice_count),
        **uncertainty_as_dict(hip.uncertainty),
        "method_proportions": {k: float(v) for k, v in hip.method_proportions.items()},
        # Classifications (docs/grading.md section 5): this series' own measurement
        # (coronal, sagittal), then the study's JIC type and Kerboul angle per side
        # (_study_classifications) once every series is graded.
        "classification": None if hip.classification is None else hip.classification.as_dict(),
        "jic_type": None,
        "kerboul_angle_deg": None,
        "kerboul_partial": None,
        "extent": None if extent is None else str(extent),
        "stage": stage.text,
        "stage_source": stage.source,
    }


def _study_classifications(hips: list[dict[str, Any]], series: list[dict[str, Any]]) -> None:
    """Per side, the JIC type from the graded coronal series and the Kerboul angle from the
    mid-coronal plus mid-sagittal arcs (partial with one), on every hip of that side; and
    a ``series_disagreement`` flag on each hip of a side graded differently by two
    series (all the inputs are taken as one study)."""
    from grading.engine.classifications import kerboul_combined
    from grading.engine.hip_classification import series_disagreements

    labels = {
        row["series_instance_uid"]: f"{row['plane']} series {row['series_instance_uid']}"
        for row in series
    }
    by_side: dict[str, dict[str, dict[str, Any]]] = {}
    for hip in hips:
        found = hip.get("classification")
        if found:
            by_side.setdefault(hip["side"], {}).setdefault(found["plane"], found)
    for hip in hips:
        planes = by_side.get(hip["side"], {})
        coronal, sagittal = planes.get("coronal"), planes.get("sagittal")
        kerboul = kerboul_combined(
            None if coronal is None else coronal["arc_deg"],
            None if sagittal is None else sagittal["arc_deg"],
        )
        hip["jic_type"] = None if coronal is None else coronal["jic_type"]
        hip["kerboul_angle_deg"] = None if kerboul is None else round(kerboul.angle_deg, 1)
        hip["kerboul_partial"] = None if kerboul is None else kerboul.partial
    notes = series_disagreements(
        [(h["side"], h["grade"], labels.get(h["series_instance_uid"], "")) for h in hips]
    )
    for hip in hips:
        note = notes.get(hip["side"])
        if note is not None and str(note) not in hip["flags"]:
            hip["flags"].append(str(note))


def _file_weightings(slices: Sequence[Any]) -> dict[str, str]:
    """Weighting of each file (by path) from its header."""
    import pydicom

    from grading.dicom.protocol import classify_weighting, sequence_header

    found: dict[str, str] = {}
    for mr_slice in slices:
        path, _ = _path_and_frame(mr_slice.source)
        if path in found:
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            found[path] = str(classify_weighting(sequence_header(ds))[0])
        except Exception:  # noqa: BLE001 - it was read once; the weighting is then unknown
            found[path] = "unknown"
    return found


def _path_and_frame(source: str) -> tuple[str, int | None]:
    """``"a/b.dcm [frame 3]"`` (a frame of a multi-frame file) -> ``("a/b.dcm", 3)``."""
    head, marker, tail = source.rpartition(" [frame ")
    if marker and tail.endswith("]") and tail[:-1].isdigit():
        return head, int(tail[:-1])
    return source, None


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in ".-" else "_" for c in text)[:80] or "image"


def grade_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    out: Path,
    segmenter: Any,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    config: Any = None,
) -> dict[str, Any]:
    """Read, group, grade and write; returns the results document (also written).

    ``progress(n)`` is called with the number of slices just finished; ``on_total`` once
    with the number of slices to grade; ``warn`` with one line per bad input;
    ``config``: a :class:`grading.engine.pipeline.PipelineConfig` (default: the product's).
    """
    import numpy as np
    from PIL import Image

    from grading.dicom.reader import iter_dicom_paths, read_many
    from grading.engine.pipeline import DEFAULT_PIPELINE, grade_series

    out.mkdir(parents=True, exist_ok=True)
    (out / LABELMAP_DIR).mkdir(exist_ok=True)
    slices, errors = read_many(iter_dicom_paths(inputs), split_frames=True)
    error_lines = [str(e) for e in errors]
    for line in error_lines:
        warn(line)
    if on_total is not None:
        on_total(len(slices))

    series: dict[str, list[int]] = {}
    for index, mr_slice in enumerate(slices):
        series.setdefault(_series_key(mr_slice), []).append(index)

    from grading.dicom.protocol import FileProtocol, series_decision
    from grading.engine.measure import positions_along_normal
    from grading.engine.weighting import GRADED_PLANES, looks_like_t1, marrow_to_muscle_ratio

    weightings = _file_weightings(slices)
    images: list[dict[str, Any] | None] = [None] * len(slices)
    series_hips: list[dict[str, Any]] = []
    series_rows: list[dict[str, Any]] = []
    model_version = str(getattr(segmenter, "model_version", ""))
    for key, indices in series.items():
        members = [slices[i] for i in indices]
        along = positions_along_normal(members)
        decision = series_decision(
            [
                FileProtocol(
                    weightings[_path_and_frame(m.source)[0]],
                    m.image_orientation,
                    m.pixel_spacing_mm,
                    along[k] if along is not None else None,
                )
                for k, m in enumerate(members)
            ],
            graded_planes=GRADED_PLANES,
        )
        row: dict[str, Any] = {
            "series_instance_uid": members[0].series_instance_uid or key,
            "weighting": str(decision.weighting),
            "plane": str(decision.plane),
            "graded": decision.graded,
            "not_graded_reason": decision.not_graded_reason,
        }
        series_rows.append(row)
        if not decision.graded:
            if progress is not None:
                progress(len(members))
            continue
        reported = 0

        def advance(done: int, total: int) -> None:
            nonlocal reported
            if progress is not None and done > reported:
                progress(done - reported)
            reported = max(reported, done)

        try:
            result = grade_series(members, segmenter, advance, config=config or DEFAULT_PIPELINE)
        except Exception as exc:  # noqa: BLE001 - one bad series never stops the others
            for mr_slice in members:
                line = f"{mr_slice.source}: could not be graded ({type(exc).__name__}: {exc})"
                error_lines.append(" ".join(line.split()))
                warn(error_lines[-1])
            if progress is not None and len(members) > reported:
                progress(len(members) - reported)
            continue
        model_version = result.model_version or model_version
        if decision.weighting == "unknown":
            ratio = marrow_to_muscle_ratio(
                [m.pixels for m in members],
                [r.labelmap for r in result.slices],
                [m.pixel_spacing_mm for m in members],
            )
            if not looks_like_t1(ratio):
                row["graded"] = False
                shown = "no femoral head found" if ratio is None else f"marrow/muscle {ratio:.2f}"
                row["not_graded_reason"] = (
                    f"unknown weighting and the images do not look like T1 ({shown})"
                )
                continue
        series_hips.extend(_series_hip_json(h, decision.flags) for h in result.hips)
        for index, mr_slice, slice_result in zip(indices, members, result.slices, strict=True):
            name = f"{LABELMAP_DIR}/{index:05d}_{_safe(mr_slice.sop_instance_uid)}.png"
            labelmap = np.ascontiguousarray(slice_result.labelmap, dtype=np.uint8)
            Image.fromarray(labelmap).save(out / name)
            path, frame = _path_and_frame(mr_slice.source)
            entry: dict[str, Any] = {
                "path": path,
                "sop_instance_uid": mr_slice.sop_instance_uid,
                "labelmap": name,
                "hips": [_hip_json(h) for h in slice_result.hips],
                "series_instance_uid": mr_slice.series_instance_uid,
                "instance_number": mr_slice.instance_number,
            }
            if frame is not None:
                entry["frame"] = frame
            images[index] = entry
    _study_classifications(series_hips, series_rows)
    document = {
        "series": series_rows,
        "images": [image for image in images if image is not None],
        "hips": series_hips,
        "model_version": model_version,
        "errors": error_lines,
    }
    (out / RESULTS_NAME).write_text(json.dumps(document, indent=2) + "\n")
    return document


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        segmenter = load_segmenter(args.weights, args.device)
    except Exception as exc:  # noqa: BLE001 - a clear line, not a traceback
        print(f"onfh grade: cannot load the segmentation network: {exc}", file=sys.stderr)
        return 2
    loaded = time.perf_counter()

    from tqdm import tqdm

    bar = tqdm(
        total=0,
        unit="slice",
        desc="grading",
        file=sys.stderr,
        disable=bool(args.no_progress),
        dynamic_ncols=True,
    )

    def on_total(total: int) -> None:
        bar.reset(total=total)

    try:
        document = grade_inputs(
            args.inputs,
            args.out,
            segmenter,
            progress=bar.update,
            on_total=on_total,
            warn=lambda line: bar.write(line, file=sys.stderr),
        )
    finally:
        bar.close()
    graded = len(document["images"])
    skipped = [row for row in document["series"] if not row["graded"]]
    for row in skipped:
        print(
            f"series {row['series_instance_uid']}: not graded: {row['not_graded_reason']}",
            file=sys.stderr,
        )
    print(
        f"onfh grade: {graded} image(s) graded, {len(skipped)} series not graded, "
        f"{len(document['errors'])} problem(s); "
        f"{args.out / RESULTS_NAME} (model load {loaded - started:.1f} s, "
        f"grading {time.perf_counter() - loaded:.1f} s)",
        file=sys.stderr,
    )
    return 0 if graded > 0 else 1
