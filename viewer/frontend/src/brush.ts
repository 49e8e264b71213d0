// Brush and eraser on one slice's label map (values 0/1/2, see labels.ts). The viewer paints
// the label map itself rather than through Cornerstone's BrushTool, because the BrushTool
// needs a Cornerstone labelmap segmentation on the viewport, which Cornerstone 5.14 cannot
// show on a CPU-rendered stack (what the viewer uses when WebGL runs in software).
// Each painted pixel takes the value the stroke rules of labels.ts give it, computed from
// the slice as it was when the stroke began, so a stroke never turns necrosis back into
// viable head even while the mouse is still down.
import { BACKGROUND, FEMORAL_HEAD, NECROSIS, type EditLabel, type EditTool } from './labels';

/** The value a stroke leaves on a pixel that held `before` when the stroke began. */
export function strokeValue(before: number, tool: EditTool, label: EditLabel): number {
  if (tool === 'brush') {
    // Necrosis is painted wherever the reader sees it (labels.ts says why).
    if (label === NECROSIS) return NECROSIS;
    return before === NECROSIS ? NECROSIS : FEMORAL_HEAD;
  }
  if (label === NECROSIS) return before === BACKGROUND ? BACKGROUND : FEMORAL_HEAD;
  return BACKGROUND;
}

export interface BrushShape {
  columns: number;
  rows: number;
  /** Brush radius in pixels along a row (mm / column spacing) and along a column. */
  radiusX: number;
  radiusY: number;
}

/**
 * Paint one disc centred at image point (x, y) (pixel (i, j) covers [i, i+1) x [j, j+1);
 * a pixel is painted when its centre lies inside the ellipse of the brush's radii).
 * `target` is the live slice, `before` the slice when the stroke began.
 * Returns the number of pixels whose value changed.
 */
export function stampDisc(target: Uint8Array, before: Uint8Array, shape: BrushShape, x: number, y: number, tool: EditTool, label: EditLabel): number {
  const { columns, rows } = shape;
  const rx = Math.max(0.5, shape.radiusX);
  const ry = Math.max(0.5, shape.radiusY);
  const y0 = Math.max(0, Math.floor(y - ry));
  const y1 = Math.min(rows - 1, Math.ceil(y + ry));
  const x0 = Math.max(0, Math.floor(x - rx));
  const x1 = Math.min(columns - 1, Math.ceil(x + rx));
  let changed = 0;
  for (let j = y0; j <= y1; j++) {
    const dy = (j + 0.5 - y) / ry;
    const dy2 = dy * dy;
    if (dy2 > 1) continue;
    for (let i = x0; i <= x1; i++) {
      const dx = (i + 0.5 - x) / rx;
      if (dx * dx + dy2 > 1) continue;
      const k = j * columns + i;
      const v = strokeValue(before[k]!, tool, label);
      if (target[k] !== v) {
        target[k] = v;
        changed++;
      }
    }
  }
  return changed;
}

/** Paint discs along the segment from one mouse position to the next (no gaps on fast moves). */
export function stampSegment(
  target: Uint8Array,
  before: Uint8Array,
  shape: BrushShape,
  from: readonly [number, number],
  to: readonly [number, number],
  tool: EditTool,
  label: EditLabel,
): number {
  const dx = to[0] - from[0];
  const dy = to[1] - from[1];
  // Steps of at most half the smaller radius (and at most one pixel for small brushes).
  const stepLength = Math.max(0.5, Math.min(1, Math.min(shape.radiusX, shape.radiusY) / 2));
  const steps = Math.max(1, Math.ceil(Math.hypot(dx, dy) / stepLength));
  let changed = 0;
  for (let s = 1; s <= steps; s++) {
    const t = s / steps;
    changed += stampDisc(target, before, shape, from[0] + dx * t, from[1] + dy * t, tool, label);
  }
  return changed;
}
