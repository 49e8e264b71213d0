"""``onfh phantoms-b --out DIR``: a grade-balanced set of phantom family B as DICOM + truth.

Writes, below DIR::

    series_NNN/IIII.dcm             one axial T1 series per folder (MR Image Storage)
    series_NNN/labels/IIII.png      8-bit label map per slice: 0 / 1 viable head / 2 necrosis
    series_NNN/tissue/IIII.png      tissue classes (table in docs/phantoms-b-spec.md)
    crops/crop_NNN.dcm              256 x 256 single-hip crops, each its own series
    crops/labels/crop_NNN.png, crops/tissue/crop_NNN.png
    truth.json

``truth.json``: ``{"family", "seed", "series": [{"folder", "study_instance_uid",
"series_instance_uid", "hips": {"left"|"right": {"proportion", "grade",
"head_volume_mm3", "necrosis_volume_mm3", "lesion_style"}}, "slices": [{"file",
"labelmap", "sop_instance_uid", "instance_number", "hips": {"left"|"right":
{"head_area_mm2", "necrosis_area_mm2", "proportion", "grade"}}}]}], "crops": [{"file",
"labelmap", "sop_instance_uid", "series_instance_uid", "side", "proportion", "grade",
"lesion_style"}]}``. Proportions are fractions 0..1; a slice without a hip's head has
proportion and grade null. ``onfh grade DIR`` reads the DICOM files (PNG and JSON are
skipped). ``--compare RESULTS_JSON`` (with ``--out DIR`` of a written set) prints how ``onfh grade``
did against the truth and writes ``DIR/comparison.json``. ``--contact-sheet PNG`` draws a
sheet of the family
(``docs/phantoms-b-contact-sheet.png`` is ``--contact-sheet`` with seed 0). Synthetic
data for evaluation; research and teaching software.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from grading.engine.grading_rules import grade_from_proportion
from grading.engine.phantoms_b import PhantomBSeries, make_evaluation_set
from grading.engine.phantoms_b.anatomy import SIDES
from grading.engine.types import MRSlice

TRUTH_NAME = "truth.json"
STUDY_DATE = "20260101"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "phantoms-b",
        help="write phantom family B (independent synthetic T1 hips) as DICOM + truth.json",
        description=(
            "Write a grade-balanced evaluation set of phantom family B: bilateral axial "
            "T1 series and 256 x 256 single-hip crops as DICOM MR images, label maps as "
            "PNG and truth.json (per series, hip and slice: proportion and grade)."
        ),
    )
    p.add_argument("--out", type=Path, default=None, metavar="DIR", help="output folder")
    p.add_argument("--series", type=int, default=4, metavar="N", help="bilateral series")
    p.add_argument("--crops", type=int, default=8, metavar="N", help="single-hip crops")
    p.add_argument("--seed", type=int, default=0, metavar="S")
    p.add_argument("--n-slices", type=int, default=None, help="slices per series (default: 16-28)")
    p.add_argument(
        "--contact-sheet",
        type=Path,
        default=None,
        metavar="PNG",
        help="also (or only) write a contact sheet: slices of 2 series and 8 crops with "
        "head (green) and necrosis (red) outlines",
    )
    p.add_argument(
        "--compare",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="compare `onfh grade` results.json with DIR/truth.json (grade accuracy, "
        "confusion, proportion error) instead of writing a set",
    )
    p.set_defaults(func=run)


def _png(array: np.ndarray[Any, Any], path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(path)
    return path.as_posix()


def _write_slice(mr_slice: MRSlice, path: Path, *, description: str, patient: str) -> None:
    from grading.dicom.writer import write_mr_slice

    write_mr_slice(
        mr_slice.pixels,
        path,
        pixel_spacing_mm=mr_slice.pixel_spacing_mm,
        slice_thickness_mm=float(mr_slice.slice_thickness_mm or 5.0),
        spacing_between_slices_mm=mr_slice.spacing_between_slices_mm,
        image_orientation=tuple(mr_slice.image_orientation or (1, 0, 0, 0, 1, 0)),
        image_position=mr_slice.image_position or (0.0, 0.0, 0.0),
        patient_name="PHANTOM_B^HIP",
        patient_id=patient,
        study_instance_uid=mr_slice.study_instance_uid,
        series_instance_uid=mr_slice.series_instance_uid,
        sop_instance_uid=mr_slice.sop_instance_uid,
        series_description=description,
        instance_number=mr_slice.instance_number or 1,
        laterality=mr_slice.laterality,
        study_date=STUDY_DATE,
    )


def _slice_hips(series: PhantomBSeries, k: int, area_mm2: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in SIDES:
        hip = series.hips[side]
        head, nec = hip.slice_head_pixels[k], hip.slice_necrosis_pixels[k]
        proportion = nec / head if head else None
        out[side] = {
            "head_area_mm2": head * area_mm2,
            "necrosis_area_mm2": nec * area_mm2,
            "proportion": proportion,
            "grade": None if proportion is None else grade_from_proportion(proportion).value,
        }
    return out


def write_set(out: Path, *, n_series: int, n_crops: int, seed: int, n_slices: int | None) -> Path:
    """Render the set and write it below ``out``; returns the path of truth.json."""
    data = make_evaluation_set(seed, n_series=n_series, n_crops=n_crops, n_slices=n_slices)
    truth: dict[str, Any] = {"family": "phantoms-b", "seed": seed, "series": [], "crops": []}
    for i, series in enumerate(data.series, start=1):
        folder = out / f"series_{i:03d}"
        entry: dict[str, Any] = {
            "folder": folder.name,
            "study_instance_uid": series.slices[0].study_instance_uid,
            "series_instance_uid": series.slices[0].series_instance_uid,
            "hips": {
                side: {
                    "proportion": hip.proportion,
                    "grade": hip.grade.value,
                    "head_volume_mm3": hip.head_volume_mm3,
                    "necrosis_volume_mm3": hip.necrosis_volume_mm3,
                    "lesion_style": hip.lesion_style,
                }
                for side, hip in series.hips.items()
            },
            "slices": [],
        }
        for k, (mr_slice, labels, tissue) in enumerate(
            zip(series.slices, series.labels, series.tissue, strict=True)
        ):
            name = f"{k + 1:04d}"
            _write_slice(
                mr_slice, folder / f"{name}.dcm", description="AX T1 HIP (phantoms-b)",
                patient=f"PHB-{seed}-{i}",
            )  # fmt: skip
            _png(tissue, folder / "tissue" / f"{name}.png")
            entry["slices"].append(
                {
                    "file": f"{folder.name}/{name}.dcm",
                    "labelmap": f"{folder.name}/labels/{name}.png",
                    "sop_instance_uid": mr_slice.sop_instance_uid,
                    "instance_number": mr_slice.instance_number,
                    "hips": _slice_hips(series, k, mr_slice.pixel_area_mm2),
                }
            )
            _png(labels, folder / "labels" / f"{name}.png")
        truth["series"].append(entry)
    for i, crop in enumerate(data.crops, start=1):
        name = f"crop_{i:03d}"
        _write_slice(
            crop.slice, out / "crops" / f"{name}.dcm", description="AX T1 HIP CROP (phantoms-b)",
            patient=f"PHB-{seed}-crop-{i}",
        )  # fmt: skip
        _png(crop.labels, out / "crops" / "labels" / f"{name}.png")
        _png(crop.tissue, out / "crops" / "tissue" / f"{name}.png")
        truth["crops"].append(
            {
                "file": f"crops/{name}.dcm",
                "labelmap": f"crops/labels/{name}.png",
                "sop_instance_uid": crop.slice.sop_instance_uid,
                "series_instance_uid": crop.slice.series_instance_uid,
                "side": crop.side,
                "proportion": crop.proportion,
                "grade": crop.grade.value,
                "lesion_style": crop.lesion_style,
            }
        )
    path = out / TRUTH_NAME
    path.write_text(json.dumps(truth, indent=1))
    return path


def run(args: argparse.Namespace) -> int:
    for flag in ("series", "crops"):
        if getattr(args, flag) < 0:
            print(f"--{flag} must be 0 or more", file=sys.stderr)
            return 2
    if args.n_slices is not None and args.n_slices < 1:
        print("--n-slices must be at least 1", file=sys.stderr)
        return 2
    if args.compare is not None:
        if args.out is None:
            print("--compare needs --out DIR, the folder with truth.json", file=sys.stderr)
            return 2
        from grading.cli.phantoms_b_compare import compare, format_summary

        summary = compare(args.out / TRUTH_NAME, args.compare)
        print(format_summary(summary))
        (args.out / "comparison.json").write_text(json.dumps(summary, indent=1))
        return 0
    if args.out is None and args.contact_sheet is None:
        print("give --out DIR, --contact-sheet PNG or both", file=sys.stderr)
        return 2
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        path = write_set(
            args.out,
            n_series=args.series,
            n_crops=args.crops,
            seed=args.seed,
            n_slices=args.n_slices,
        )
        print(f"wrote {args.series} series and {args.crops} crops; truth in {path}")
    if args.contact_sheet is not None:
        from grading.cli.phantoms_b_sheet import write_contact_sheet

        write_contact_sheet(args.contact_sheet, seed=args.seed)
        print(f"wrote {args.contact_sheet}")
    return 0
