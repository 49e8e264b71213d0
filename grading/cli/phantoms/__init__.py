"""``onfh phantoms``: write synthetic T1 hip series (and crops) as DICOM with ground truth.

Layout under ``--out DIR``::

    truth.json                      everything below, machine-readable
    series_000/001_0001.dcm ...     one bilateral axial series per folder
    series_000/labels/<SOPInstanceUID>.png   8-bit label map per slice (0/1/2)
    crops/crop_0000.dcm, crops/labels/<SOPInstanceUID>.png   single-hip crops

``--time-crops N`` prints the cost of :func:`make_training_crops` per window.
``--contact-sheet PNG`` draws a grid of samples (levels, lesion patterns,
mimics, noise levels, label overlays) for a person to judge realism.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image
from tqdm import tqdm

from grading.cli.phantoms.contact_sheet import draw_contact_sheet
from grading.dicom.reader import read_mr_slice
from grading.dicom.writer import write_mr_series, write_mr_slice
from grading.engine.phantoms import (
    PhantomCrop,
    PhantomSeries,
    make_bilateral_series,
    make_hip_crop,
    make_training_crops,
)
from grading.engine.phantoms.series import GRADE_CYCLE

STUDY_DATE = "20240101"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "phantoms",
        help="write synthetic axial T1 hip MRI (DICOM) with ground truth",
        description=(
            "Write synthetic bilateral axial T1 hip series as DICOM, with label maps "
            "(0 background, 1 viable femoral head, 2 necrosis) and truth.json. "
            "Synthetic research and teaching data, not patient data."
        ),
    )
    parser.add_argument("--out", type=Path, help="output folder (created)")
    parser.add_argument("--count", type=int, default=4, help="number of series (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--slices", type=int, default=20, help="slices per series (default 20)")
    parser.add_argument(
        "--crops", type=int, default=0, metavar="N", help="also write N single-hip 256x256 crops"
    )
    parser.add_argument(
        "--random-grades",
        action="store_true",
        help="draw each hip's grade at random instead of cycling the four grades",
    )
    parser.add_argument(
        "--contact-sheet",
        type=Path,
        metavar="PNG",
        help="draw a contact sheet of samples to this PNG",
    )
    parser.add_argument(
        "--time-crops",
        type=int,
        default=0,
        metavar="N",
        help="time make_training_crops on N 256x256 windows and print ms per sample",
    )
    parser.add_argument(
        "--protocol",
        action="store_true",
        help=(
            "instead: write --count full hip protocol studies from the 3-D volume phantom "
            "(coronal T1, coronal STIR, axial T1, sagittal T1 as Legacy Converted Enhanced MR) "
            "with each hip's truth (grade, extent, JIC type, Kerboul angles) in truth.json"
        ),
    )
    parser.set_defaults(func=run)


def _run_protocol(args: argparse.Namespace) -> int:
    from grading.dicom.protocol_writer import write_protocol_study
    from grading.engine.phantoms.volume import make_volume_phantom

    for index in range(args.count):
        seed = args.seed + index
        folder = args.out / f"protocol_{seed:04d}"
        series = write_protocol_study(
            make_volume_phantom(seed), folder, patient_id=f"PHANTOM-PROTOCOL-{seed:04d}"
        )
        files = sum(len(s.paths) for s in series)
        print(f"{folder}: {len(series)} series, {files} files")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.protocol:
        if args.out is None:
            print("onfh phantoms --protocol: give --out DIR")
            return 2
        return _run_protocol(args)
    if args.out is None and args.contact_sheet is None and not args.time_crops:
        print("onfh phantoms: give --out DIR, --contact-sheet PNG and/or --time-crops N")
        return 2
    if args.time_crops:
        wall, cpu = time_training_crops(args.time_crops, seed=args.seed)
        print(f"make_training_crops: {wall:.1f} ms wall, {cpu:.1f} ms CPU per 256x256 sample")
    if args.contact_sheet is not None:
        draw_contact_sheet(args.contact_sheet, seed=args.seed)
        print(f"contact sheet: {args.contact_sheet}")
    if args.out is not None:
        truth = write_phantoms(
            args.out,
            count=args.count,
            seed=args.seed,
            n_slices=args.slices,
            crops=args.crops,
            balanced=not args.random_grades,
        )
        print(f"{len(truth['series'])} series, {len(truth['crops'])} crops -> {args.out}")
    return 0


def time_training_crops(n: int, *, seed: int = 0, size: int = 256) -> tuple[float, float]:
    """Wall-clock and CPU milliseconds per window of :func:`make_training_crops`."""
    make_training_crops(2, seed, size)  # warm caches
    wall, cpu = time.perf_counter(), time.process_time()
    make_training_crops(n, seed, size)
    return (time.perf_counter() - wall) * 1e3 / n, (time.process_time() - cpu) * 1e3 / n


def _uid(*parts: object) -> str:
    return str(pydicom.uid.generate_uid(entropy_srcs=["onfh-phantom", *map(str, parts)]))


def _bits_stored(intensity_max: int) -> int:
    """DICOM bit depth for a stored-value range, as scanners do (12 bits when it fits)."""
    return 12 if intensity_max < 4096 else 16


def _save_labels(labels: npt.NDArray[np.uint8], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels.astype(np.uint8), mode="L").save(path)


def write_series(series: PhantomSeries, folder: Path, root: Path, *, index: int) -> dict[str, Any]:
    """Write one series as DICOM plus its label maps; returns its truth.json entry."""
    study_uid = _uid("study", series.seed)
    series_uid = _uid("series", series.seed)
    paths = write_mr_series(
        series.images,
        folder,
        pixel_spacing_mm=series.pixel_spacing_mm,
        slice_thickness_mm=series.slice_thickness_mm,
        spacing_between_slices_mm=series.spacing_between_slices_mm,
        image_orientation=series.image_orientation,
        first_position=series.first_position,
        patient_name=f"PHANTOM^HIP{index:03d}",
        patient_id=f"PHANTOM{series.seed}",
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
        series_description="AX T1 HIP (synthetic)",
        laterality="B",
        study_date=STUDY_DATE,
        bits_stored=_bits_stored(series.acquisition.intensity_max),
    )
    slices = []
    for k, path in enumerate(paths):
        sop = read_mr_slice(path).sop_instance_uid
        label_path = folder / "labels" / f"{sop}.png"
        _save_labels(series.labels[k], label_path)
        slices.append(
            {
                "index": k,
                "file": path.relative_to(root).as_posix(),
                "sop_instance_uid": sop,
                "labelmap": label_path.relative_to(root).as_posix(),
                "image_position": list(series.position(k)),
                "hips": [asdict(h) for h in series.slice_truth[k]],
            }
        )
    return {
        "dir": folder.relative_to(root).as_posix(),
        "seed": series.seed,
        "study_instance_uid": study_uid,
        "series_instance_uid": series_uid,
        "matrix": list(series.images.shape[1:]),
        "pixel_spacing_mm": list(series.pixel_spacing_mm),
        "slice_thickness_mm": series.slice_thickness_mm,
        "spacing_between_slices_mm": series.spacing_between_slices_mm,
        "acquisition": asdict(series.acquisition),
        "hips": [asdict(series.truth[side]) for side in ("right", "left")],
        "slices": slices,
    }


def write_crop(crop: PhantomCrop, folder: Path, root: Path, *, index: int) -> dict[str, Any]:
    series_uid = _uid("crops", crop.seed)
    path = write_mr_slice(
        crop.image,
        folder / f"crop_{index:04d}.dcm",
        pixel_spacing_mm=crop.pixel_spacing_mm,
        slice_thickness_mm=4.0,
        patient_name=f"PHANTOM^CROP{index:04d}",
        patient_id=f"PHANTOMCROP{crop.seed}",
        study_instance_uid=_uid("crop-study", crop.seed),
        series_instance_uid=series_uid,
        series_description="AX T1 HIP CROP (synthetic)",
        instance_number=1,
        laterality="R" if crop.side == "right" else "L",
        study_date=STUDY_DATE,
        bits_stored=_bits_stored(crop.acquisition.intensity_max),
    )
    sop = read_mr_slice(path).sop_instance_uid
    label_path = folder / "labels" / f"{sop}.png"
    _save_labels(crop.labels, label_path)
    return {
        "file": path.relative_to(root).as_posix(),
        "sop_instance_uid": sop,
        "labelmap": label_path.relative_to(root).as_posix(),
        "seed": crop.seed,
        "side": crop.side,
        "pixel_spacing_mm": list(crop.pixel_spacing_mm),
        "has_head": crop.has_head,
        "proportion": crop.proportion,
        "grade": crop.grade.value,
        "level_mm": crop.level_mm,
        "pattern": crop.pattern,
        "mimic": crop.mimic,
    }


def write_phantoms(
    out: Path,
    *,
    count: int,
    seed: int,
    n_slices: int = 20,
    crops: int = 0,
    balanced: bool = True,
    series_options: dict[str, Any] | None = None,
    crop_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Generate and write ``count`` series and ``crops`` crops under ``out``; returns the truth.

    ``series_options`` / ``crop_options``: extra keyword arguments for
    :func:`make_bilateral_series` / :func:`make_hip_crop` (e.g. a fixed matrix).
    """
    out.mkdir(parents=True, exist_ok=True)
    truth: dict[str, Any] = {
        "generator": "grading.engine.phantoms",
        "seed": seed,
        "synthetic": True,
        "labels": {"0": "background", "1": "viable femoral head", "2": "necrosis"},
        "series": [],
        "crops": [],
    }
    for i in tqdm(range(count), desc="series", unit="series", disable=count < 2):
        series_seed = seed * 100_003 + i
        necrosis = None
        if balanced:
            necrosis = {
                "right": GRADE_CYCLE[i % 4].value,
                "left": GRADE_CYCLE[(i + 1 + i // 4) % 4].value,
            }
        series = make_bilateral_series(
            series_seed, n_slices=n_slices, necrosis=necrosis, **(series_options or {})
        )
        truth["series"].append(write_series(series, out / f"series_{i:03d}", out, index=i))
    for j in tqdm(range(crops), desc="crops", unit="crop", disable=crops < 2):
        crop_seed = seed * 100_003 + 50_000 + j
        grade = GRADE_CYCLE[j % 4].value if balanced else None
        crop = make_hip_crop(crop_seed, necrosis=grade, **(crop_options or {}))
        truth["crops"].append(write_crop(crop, out / "crops", out, index=j))
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth
