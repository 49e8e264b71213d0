"""Contact sheet of phantom family B: series slices and crops with label outlines (PIL).

Rows 1-2: four slices of each of two bilateral series (from below the femoral heads to the
acetabular roof); rows 3-4: two crops of each grade. Femoral head outlined in green,
necrosis in red; captions give the truth (patient side, proportion, grade, lesion style).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from grading.engine.phantoms_b import make_evaluation_set
from grading.engine.types import Grade

TILE_HEIGHT = 256
CAPTION = 30
GREEN, RED = (40, 220, 60), (235, 40, 40)


def _outline(mask: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Pixels of ``mask`` with a 4-neighbour outside it (the inner boundary)."""
    padded = np.pad(mask, 1)
    core = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    edge: np.ndarray[Any, Any] = mask & ~core
    return edge


def _tile(image: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], caption: str) -> Image.Image:
    low, high = np.percentile(image, [0.5, 99.5])
    grey = np.clip((image - low) / max(high - low, 1.0) * 255, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    rgb[_outline(labels > 0)] = GREEN
    rgb[_outline(labels == 2)] = RED
    tile = Image.fromarray(rgb)
    width = round(tile.width * TILE_HEIGHT / tile.height)
    tile = tile.resize((width, TILE_HEIGHT), Image.Resampling.LANCZOS)
    framed = Image.new("RGB", (width, TILE_HEIGHT + CAPTION), (0, 0, 0))
    framed.paste(tile, (0, CAPTION))
    draw = ImageDraw.Draw(framed)
    for i, line in enumerate(caption.split("\n")[:2]):
        draw.text((4, 2 + 13 * i), line, fill=(255, 255, 255))
    return framed


def write_contact_sheet(path: Path, *, seed: int = 0) -> Path:
    data = make_evaluation_set(seed, n_series=2, n_crops=8)
    rows: list[list[Image.Image]] = []
    for n, series in enumerate(data.series, start=1):
        heads = [
            series.hips["left"].slice_head_pixels[k] + series.hips["right"].slice_head_pixels[k]
            for k in range(len(series.slices))
        ]
        on_head = [k for k, h in enumerate(heads) if h > 0]
        first, last = on_head[0], on_head[-1]
        picks = [max(first - 3, 0), first + (last - first) // 3, first + 2 * (last - first) // 3]
        picks.append(min(last + 3, len(series.slices) - 1))
        truth = ", ".join(
            f"{side[0].upper()} {hip.grade.value} {100 * hip.proportion:.1f}% ({hip.lesion_style})"
            for side, hip in sorted(series.hips.items())
        )
        rows.append(
            [
                _tile(
                    series.slices[k].pixels,
                    series.labels[k],
                    f"series {n} slice {k + 1}/{len(series.slices)}\n{truth}",
                )
                for k in picks
            ]
        )
    by_grade = sorted(data.crops, key=lambda c: list(Grade).index(c.grade))
    for start in (0, 1):
        rows.append(
            [
                _tile(
                    c.slice.pixels,
                    c.labels,
                    f"crop {c.side} {c.grade.value}\n{100 * c.proportion:.1f}% ({c.lesion_style})",
                )
                for c in by_grade[start::2]
            ]
        )
    width = max(sum(t.width for t in row) + 4 * (len(row) - 1) for row in rows)
    height = sum(TILE_HEIGHT + CAPTION + 4 for _ in rows)
    sheet = Image.new("RGB", (width, height), (20, 20, 20))
    y = 0
    for row in rows:
        x = 0
        for tile in row:
            sheet.paste(tile, (x, y))
            x += tile.width + 4
        y += TILE_HEIGHT + CAPTION + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
