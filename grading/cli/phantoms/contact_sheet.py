"""The contact sheet of ``onfh phantoms``: a grid of samples for a person to judge realism."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from grading.engine.phantoms import make_bilateral_series, make_hip_crop, make_training_crops
from grading.engine.phantoms.anatomy import Mimic, NecrosisPattern

TILE = 256
CAPTION = 30
OVERLAY = {1: (230, 60, 60), 2: (255, 220, 0)}


def _display(image: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """Auto window (0.5th to 99.7th percentile), as a viewer's default W/L."""
    lo, hi = np.percentile(image, [0.5, 99.7])
    grey: npt.NDArray[np.uint8] = (np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(
        np.uint8
    )
    return grey


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
    examples: list[tuple[float | str, NecrosisPattern | None, Mimic | None, str]] = [
        (0.0, None, None, "normal head"),
        ("moderate", "homogeneous", None, "necrosis: homogeneous low"),
        ("severe", "fat_like", None, "necrosis: fat-like centre, dark band"),
        ("mild", "mixed", None, "necrosis: mixed"),
        (0.0, None, "physeal_scar", "mimic: physeal scar (viable)"),
        (0.0, None, "oedema", "mimic: marrow oedema (viable)"),
    ]
    crops = []
    for n, (necrosis, pattern, mimic, caption) in enumerate(examples):
        crop = make_hip_crop(
            seed * 7 + 100 + n,
            level_mm=8.0,
            snr=28,
            necrosis=necrosis,
            pattern=pattern,
            mimic=mimic,
        )
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
