// A small SVG chart of necrotic proportion along the slices, one line per hip, the
// current slice marked, and the x position of a click mapped back to a slice.

export interface LinearScale {
  (value: number): number;
  invert(pixel: number): number;
  domain: readonly [number, number];
  range: readonly [number, number];
}

export function linearScale(domain: readonly [number, number], range: readonly [number, number]): LinearScale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const f = ((v: number) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0))) as LinearScale;
  f.invert = (px: number) => (r1 === r0 ? d0 : d0 + ((px - r0) / (r1 - r0)) * span);
  f.domain = domain;
  f.range = range;
  return f;
}

/** Up to `count` + 1 round tick values covering [0, max] (for percentages). */
export function niceTicks(max: number, count = 4): number[] {
  if (!(max > 0)) return [0];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const ticks: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
  if (ticks[ticks.length - 1]! < max) ticks.push(Number((ticks[ticks.length - 1]! + step).toFixed(10)));
  return ticks;
}

export interface ChartSeries {
  key: string;
  label: string;
  colour: string;
  /** Proportion 0..1 per slice, null where the hip is not on that slice. */
  values: (number | null)[];
}

export interface ChartLayout {
  width: number;
  height: number;
  margin: { top: number; right: number; bottom: number; left: number };
}

export const DEFAULT_LAYOUT: ChartLayout = {
  width: 320,
  height: 150,
  margin: { top: 10, right: 10, bottom: 24, left: 40 },
};

export function chartScales(sliceCount: number, maxProportion: number, layout: ChartLayout = DEFAULT_LAYOUT) {
  const { width, height, margin } = layout;
  // At least 10 % on the y axis, and the grade edges (15 %, 30 %) in view when reached.
  const yMax = Math.max(0.1, maxProportion);
  const ticks = niceTicks(yMax * 100).map((t) => t / 100);
  const top = ticks[ticks.length - 1] ?? yMax;
  const x = linearScale([0, Math.max(0, sliceCount - 1)], [margin.left, width - margin.right]);
  const y = linearScale([0, top], [height - margin.bottom, margin.top]);
  return { x, y, ticks };
}

/** The slice nearest to pixel x (clamped to the stack). */
export function sliceAtX(px: number, sliceCount: number, layout: ChartLayout = DEFAULT_LAYOUT): number {
  if (sliceCount <= 1) return 0;
  const { x } = chartScales(sliceCount, 0.1, layout);
  return Math.min(sliceCount - 1, Math.max(0, Math.round(x.invert(px))));
}

/** Path "M x y L x y ..." with a gap (new M) wherever a value is null. */
export function linePath(values: (number | null)[], x: (i: number) => number, y: (v: number) => number): string {
  const parts: string[] = [];
  let pen = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      pen = false;
      return;
    }
    parts.push(`${pen ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)}`);
    pen = true;
  });
  return parts.join(' ');
}

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

export function renderChartSvg(series: ChartSeries[], sliceCount: number, current: number, layout: ChartLayout = DEFAULT_LAYOUT): string {
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  const { x, y, ticks } = chartScales(sliceCount, max, layout);
  const { width, height, margin } = layout;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="100%" role="img" aria-label="Necrotic proportion along the slices">`);
  for (const t of ticks) {
    const ty = y(t).toFixed(1);
    out.push(`<line class="grid" x1="${margin.left}" x2="${width - margin.right}" y1="${ty}" y2="${ty}"/>`);
    out.push(`<text class="tick" x="${margin.left - 4}" y="${ty}" text-anchor="end" dominant-baseline="middle">${Math.round(t * 100)}%</text>`);
  }
  // Grade edges at 15 % and 30 %, where they are inside the axis.
  for (const edge of [0.15, 0.3]) {
    if (edge <= (ticks[ticks.length - 1] ?? 0)) {
      const ey = y(edge).toFixed(1);
      out.push(`<line class="edge" x1="${margin.left}" x2="${width - margin.right}" y1="${ey}" y2="${ey}"/>`);
    }
  }
  const xTickStep = Math.max(1, Math.ceil(sliceCount / 8));
  for (let i = 0; i < sliceCount; i += xTickStep) {
    out.push(`<text class="tick" x="${x(i).toFixed(1)}" y="${height - margin.bottom + 14}" text-anchor="middle">${i + 1}</text>`);
  }
  if (sliceCount > 0) {
    const cx = x(Math.min(Math.max(current, 0), sliceCount - 1)).toFixed(1);
    out.push(`<line class="current" x1="${cx}" x2="${cx}" y1="${margin.top}" y2="${height - margin.bottom}"/>`);
  }
  for (const s of series) {
    out.push(`<path class="series" data-key="${esc(s.key)}" d="${linePath(s.values, x, y)}" stroke="${esc(s.colour)}" fill="none"/>`);
    s.values.forEach((v, i) => {
      if (v !== null && Number.isFinite(v)) {
        out.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="${i === current ? 3.5 : 2}" fill="${esc(s.colour)}"/>`);
      }
    });
  }
  out.push(`<rect class="hit" x="${margin.left}" y="${margin.top}" width="${width - margin.left - margin.right}" height="${height - margin.top - margin.bottom}" fill="transparent"/>`);
  out.push('</svg>');
  return out.join('');
}
