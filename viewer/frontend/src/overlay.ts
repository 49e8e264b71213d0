// Head and necrosis overlays drawn by the viewer itself on Cornerstone's 2D canvas, after
// each render, instead of as a Cornerstone labelmap segmentation. Why: on machines without
// a GPU, WebGL runs in software (SwiftShader) and a WebGL redraw of the viewport costs a
// few hundred ms per slice, while Cornerstone's CPU rendering draws a slice in ~20 ms but
// cannot show a labelmap segmentation (5.14 throws `getActors(...).filter is not a
// function`). Drawing the label map ourselves works on both rendering paths, and a slice's
// RGBA overlay is built once and reused until its labels or the style change.
// Pure logic here; the canvas side is in cornerstone.ts.
import { FEMORAL_HEAD, NECROSIS } from './labels';

export type Rgba = readonly [number, number, number, number];

export interface OverlayStyle {
  headColour: Rgba;
  necrosisColour: Rgba;
  /** Fill opacity, 0-1. */
  fillAlpha: number;
  /** Opacity of the one-pixel outline of each region, 0-1 (drawn even at fill 0, as Cornerstone does). */
  outlineAlpha: number;
  showHead: boolean;
  showNecrosis: boolean;
  /** Colours of display-only values above 2 (the teaching pages' comparison, see
   *  teaching-logic.ts), shown with the necrosis. */
  extraColours?: Readonly<Record<number, Rgba>>;
}

/**
 * Fill `out` (RGBA, 4 bytes per pixel, row-major `columns` x `rows`) with the overlay of one
 * slice's labels: transparent background, each label in its colour at the fill opacity, its
 * boundary pixels (a 4-neighbour with another label, or the image edge) at the outline opacity.
 * Returns the number of non-transparent pixels.
 */
export function labelmapToRgba(labels: ArrayLike<number>, columns: number, rows: number, style: OverlayStyle, out: Uint8ClampedArray): number {
  if (labels.length !== columns * rows) throw new Error(`label map has ${labels.length} values, expected ${columns} x ${rows}`);
  if (out.length !== labels.length * 4) throw new Error('RGBA buffer has the wrong size');
  const fill = Math.round(clamp01(style.fillAlpha) * 255);
  const edge = Math.round(clamp01(style.outlineAlpha) * 255);
  let drawn = 0;
  for (let y = 0; y < rows; y++) {
    const row = y * columns;
    for (let x = 0; x < columns; x++) {
      const i = row + x;
      const v = labels[i]!;
      const o = i * 4;
      const colour =
        v === FEMORAL_HEAD
          ? style.showHead
            ? style.headColour
            : null
          : v === NECROSIS
            ? style.showNecrosis
              ? style.necrosisColour
              : null
            : v > NECROSIS && style.showNecrosis
              ? (style.extraColours?.[v] ?? null)
              : null;
      if (!colour) {
        out[o] = 0;
        out[o + 1] = 0;
        out[o + 2] = 0;
        out[o + 3] = 0;
        continue;
      }
      const boundary =
        x === 0 || y === 0 || x === columns - 1 || y === rows - 1 || labels[i - 1] !== v || labels[i + 1] !== v || labels[i - columns] !== v || labels[i + columns] !== v;
      const alpha = boundary ? Math.max(edge, fill) : fill;
      out[o] = colour[0];
      out[o + 1] = colour[1];
      out[o + 2] = colour[2];
      out[o + 3] = Math.round((alpha * colour[3]) / 255);
      if (out[o + 3]! > 0) drawn++;
    }
  }
  return drawn;
}

/** A 2D affine map [a, b, c, d, e, f] as in CanvasRenderingContext2D.setTransform:
 *  x' = a x + c y + e, y' = b x + d y + f. */
export type Affine = [number, number, number, number, number, number];

/**
 * The map from image coordinates (column, row; (0, 0) the top-left corner of the first pixel)
 * to canvas coordinates, from where three image corners land on the canvas:
 * `origin` = (0, 0), `alongColumns` = (columns, 0), `alongRows` = (0, rows).
 */
export function imageToCanvasAffine(
  origin: readonly [number, number],
  alongColumns: readonly [number, number],
  alongRows: readonly [number, number],
  columns: number,
  rows: number,
): Affine {
  return [
    (alongColumns[0] - origin[0]) / columns,
    (alongColumns[1] - origin[1]) / columns,
    (alongRows[0] - origin[0]) / rows,
    (alongRows[1] - origin[1]) / rows,
    origin[0],
    origin[1],
  ];
}

export function applyAffine(m: Affine, x: number, y: number): [number, number] {
  return [m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]];
}

/** The inverse map (canvas to image); null when the map is degenerate. */
export function invertAffine(m: Affine): Affine | null {
  const [a, b, c, d, e, f] = m;
  const det = a * d - b * c;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-12) return null;
  return [d / det, -b / det, -c / det, a / det, (c * f - d * e) / det, (b * e - a * f) / det];
}

/** The same map with every output scaled (CSS pixels to device pixels). */
export function scaleAffine(m: Affine, s: number): Affine {
  return [m[0] * s, m[1] * s, m[2] * s, m[3] * s, m[4] * s, m[5] * s];
}

function clamp01(v: number): number {
  return Number.isFinite(v) ? Math.min(1, Math.max(0, v)) : 0;
}

/**
 * Magnification relative to the whole image fitting the viewport (1 = fitted), from the
 * image-to-canvas map, the pixel spacing (mm) and the viewport size (CSS px). Cornerstone's
 * own getZoom() means this on WebGL but is the raw canvas scale on its CPU path.
 */
export function zoomRelativeToFit(m: Affine, columns: number, rows: number, mmPerColumn: number, mmPerRow: number, width: number, height: number): number {
  const screenPerMm = Math.hypot(m[0], m[1]) / mmPerColumn;
  const fitPerMm = Math.min(width / (columns * mmPerColumn), height / (rows * mmPerRow));
  return fitPerMm > 0 ? screenPerMm / fitPerMm : 1;
}
