"""``onfh phantoms``: write synthetic T1 hip series (and crops) as DICOM with ground truth.

Layout under ``--out DIR``::

    truth.json                      everything below, machine-readable
    series_000/001_0001.dcm ...     one bilateral axial series per folder
    series_000/labels/<SOPInstanceUID>.png   8-bit label map per slice (0/1/2)
    crops/crop_0000.dcm, crops/labels/<SOPInstanceUID>.png   single-hip crops

``--contact-sheet PNG`` draws a grid of samples (levels, lesion patterns,
mimics, noise levels, label overlays) for a person to judge realism.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.out is None and args.contact_sheet is None:
        print("onfh phantoms: give --out DIR and/or --contact-sheet PNG")
        return 2
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


def _uid(*parts: object) -> str:
    return str(pydicom.uid.generate_uid(entropy_srcs=["onfh-phantom", *map(str, parts)]))


def _storage(intensity_max: int) -> dict[str, int]:
    """DICOM bit depth for a stored-value range, as scanners do (12 bits when it fits)."""
    return {"bits_allocated": 16, "bits_stored": 12 if intensity_max < 4096 else 16}


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
        **_storage(series.acquisition.intensity_max),
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
        **_storage(crop.acquisition.intensity_max),
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


# --- contact sheet --------------------------------------------------------------------------

TILE = 256
CAPTION = 30
OVERLAY = {1: (230, 60, 60), 2: (255, 220, 0)}


def _display(image: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Auto window (0.5th to 99.7th percentile), as a viewer's default W/L."""
    lo, hi = np.percentile(image, [0.5, 99.7])
    return (np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def _tile(
    image: npt.NDArray[np.float32],
    labels: npt.NDArray[np.uint8] | None,
    caption: str,
    font: Any,
    spacing: tuple[float, float] = (1.0, 1.0),
) -> Image.Image:
    grey = _display(image)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if labels is not None:
        for value, colour in OVERLAY.items():
            mask = labels == value
            rgb[mask] = (0.55 * rgb[mask] + 0.45 * np.array(colour)).astype(np.uint8)
    picture = Image.fromarray(rgb)
    # physical aspect: rows x row spacing by columns x column spacing; wide
    # images (a whole pelvis) get a tile two columns wide
    h_mm, w_mm = image.shape[0] * spacing[0], image.shape[1] * spacing[1]
    width = 2 * TILE if w_mm > 1.4 * h_mm else TILE
    scale = min(width / w_mm, TILE / h_mm)
    size = (max(int(round(w_mm * scale)), 1), max(int(round(h_mm * scale)), 1))
    picture = picture.resize(size, Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (width, TILE + CAPTION), (0, 0, 0))
    canvas.paste(picture, ((width - size[0]) // 2, (TILE - size[1]) // 2))
    draw = ImageDraw.Draw(canvas)
    for n, line in enumerate(caption.split("\n")[:2]):
        draw.text((4, TILE + 1 + 14 * n), line, fill=(235, 235, 235), font=font)
    return canvas


def contact_sheet_tiles(
    seed: int = 0,
) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8] | None, str, tuple[float, float]]]:
    """The samples on the contact sheet: (image, labels or None, caption, spacing)."""
    tiles: list[
        tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8] | None, str, tuple[float, float]]
    ] = []
    series = make_bilateral_series(
        seed * 7 + 1,
        n_slices=20,
        matrix=(384, 384),
        necrosis={"right": "severe", "left": "none"},
        patterns={"right": "homogeneous"},
        mimics={"left": None},
        snr=25,
    )
    heads = series.truth["right"].head_slices
    top, bottom = max(heads), min(heads)
    mid = (top + bottom) // 2
    picks = [
        (min(top + 3, series.images.shape[0] - 1), "above the heads: acetabular roof"),
        (top - 2, "upper head (R: severe necrosis)"),
        (mid, "head centre"),
        (bottom + 1, "lower head / neck"),
        (max(bottom - 2, 0), "below: neck, trochanters"),
    ]
    # the sheet shows the body, not the whole field of view
    body = series.images.max(axis=0) > 0.25 * np.percentile(series.images, 99.5)
    rows, cols = np.nonzero(body)
    box = (
        slice(max(rows.min() - 4, 0), rows.max() + 5),
        slice(max(cols.min() - 4, 0), cols.max() + 5),
    )
    fov = (
        f"{series.images.shape[1]}x{series.images.shape[2]} at {series.pixel_spacing_mm[0]:.2f} mm"
    )
    for k, what in picks:
        p = series.slice_truth[k]
        grades = ", ".join(f"{h.side[0].upper()} {h.proportion:.0%}" for h in p) or "no head"
        tiles.append(
            (series.images[k][box], None, f"#{k}: {what}\n{grades}; {fov}", series.pixel_spacing_mm)
        )
    tiles.append(
        (
            series.images[top - 2][box],
            series.labels[top - 2][box],
            f"labels on #{top - 2}: red head,\nyellow necrosis",
            series.pixel_spacing_mm,
        )
    )
    examples = [
        dict(necrosis=0.0, mimic=None, caption="normal head"),
        dict(
            necrosis="moderate",
            pattern="homogeneous",
            mimic=None,
            caption="necrosis: homogeneous low",
        ),
        dict(
            necrosis="severe",
            pattern="fat_like",
            mimic=None,
            caption="necrosis: fat-like centre, dark band",
        ),
        dict(necrosis="mild", pattern="mixed", mimic=None, caption="necrosis: mixed"),
        dict(necrosis=0.0, mimic="physeal_scar", caption="mimic: physeal scar (viable)"),
        dict(necrosis=0.0, mimic="oedema", caption="mimic: marrow oedema (viable)"),
    ]
    crops = []
    for n, ex in enumerate(examples):
        caption = str(ex.pop("caption"))
        crop = make_hip_crop(seed * 7 + 100 + n, level_mm=8.0, snr=28, **ex)  # type: ignore[arg-type]
        crops.append(crop)
        tiles.append(
            (
                crop.image,
                None,
                f"{caption}\n{crop.side} hip, {crop.proportion:.0%} {crop.grade.value}",
                crop.pixel_spacing_mm,
            )
        )
    for crop, caption in zip(crops[1:4], ("homogeneous", "fat-like", "mixed"), strict=True):
        tiles.append(
            (
                crop.image,
                crop.labels,
                f"labels: {caption}\n{crop.proportion:.0%} {crop.grade.value}",
                crop.pixel_spacing_mm,
            )
        )
    for n, snr in enumerate((8.0, 15.0, 40.0)):
        crop = make_hip_crop(seed * 7 + 200 + n, necrosis="moderate", snr=snr, level_mm=5.0)
        tiles.append(
            (
                crop.image,
                None,
                f"SNR {snr:.0f}\n{crop.proportion:.0%} {crop.grade.value}",
                crop.pixel_spacing_mm,
            )
        )
    images, labels = make_training_crops(6, seed * 7 + 300, 256)
    for n in range(6):
        has = "head" if labels[n].any() else "no head"
        tiles.append(
            (
                images[n],
                labels[n] if n % 2 else None,
                f"training window {n + 1}\n({has}, resampled)",
                (1.0, 1.0),
            )
        )
    return tiles


def draw_contact_sheet(path: Path, *, seed: int = 0, columns: int = 6) -> Path:
    """Render the contact sheet PNG (tiles of 256 px with captions); returns ``path``."""
    try:
        font: Any = ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    tiles = [_tile(img, lab, cap, font, sp) for img, lab, cap, sp in contact_sheet_tiles(seed)]
    places = []
    x = y = 0
    for tile in tiles:
        units = tile.width // TILE
        if x + units > columns:
            x, y = 0, y + 1
        places.append((x * TILE, 24 + y * (TILE + CAPTION)))
        x += units
    sheet = Image.new("RGB", (columns * TILE, (y + 1) * (TILE + CAPTION) + 24), (20, 20, 20))
    draw = ImageDraw.Draw(sheet)
    draw.text(
        (6, 5),
        "onfh phantoms: synthetic axial T1 hip MRI (not patient data); "
        "image left = patient right, anterior up",
        fill=(255, 255, 255),
        font=font,
    )
    for tile, place in zip(tiles, places, strict=True):
        sheet.paste(tile, place)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a 256-colour palette keeps the PNG small enough to live in the repository
    sheet.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path
