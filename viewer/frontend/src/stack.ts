// Which series the viewer opens, its slices in stack order and the slice it opens on. Pure,
// shared by the page (study.ts) and the small early script (study-prefetch.ts) that asks for
// the opening slice while the viewer bundle is still being parsed.
import type { Instance, Series, SliceInfo, StudyDetail } from './api';
import { sliceKey } from './classification';

/** The first graded series with results, else the first graded (or undecided) axial one. */
export function defaultSeries(d: StudyDetail): Series | null {
  const usable = d.series.filter(
    (s) => s.instances.length > 0 && s.graded !== false && (!s.plane || s.plane === 'axial' || s.plane === 'unknown'),
  );
  const withHips = usable.filter((s) => d.hips.some((hp) => hp.series_instance_uid === s.series_instance_uid));
  return withHips[0] ?? usable[0] ?? d.series[0] ?? null;
}

/** The series' instances in the analysis' slice order, then any it has not covered. */
export function stackOrder(d: StudyDetail, s: Series): { stack: Instance[]; slices: (SliceInfo | null)[] } {
  const bySop = new Map(s.instances.map((i) => [sliceKey(i), i]));
  const stack: Instance[] = [];
  const slices: (SliceInfo | null)[] = [];
  for (const sl of d.slices) {
    if (sl.series_instance_uid !== s.series_instance_uid) continue;
    const inst = bySop.get(sliceKey(sl));
    if (!inst) continue;
    stack.push(inst);
    slices.push(sl);
    bySop.delete(sliceKey(sl));
  }
  // Slices the analysis has not covered (yet): by instance number, then location.
  const rest = [...bySop.values()].sort(
    (a, b) => (a.instance_number ?? 0) - (b.instance_number ?? 0) || (a.slice_location ?? 0) - (b.slice_location ?? 0),
  );
  for (const inst of rest) {
    stack.push(inst);
    slices.push(null);
  }
  return { stack, slices };
}

/** Open on the slice with the most femoral head (where a reader starts looking), else the middle. */
export function startIndex(slices: readonly (SliceInfo | null)[]): number {
  let best = Math.floor(slices.length / 2);
  let bestArea = 0;
  slices.forEach((sl, i) => {
    const area = (sl?.hips ?? []).reduce((a, hp) => a + (hp.head_area_mm2 ?? 0), 0);
    if (area > bestArea) {
      bestArea = area;
      best = i;
    }
  });
  return best;
}

/** The image the viewer opens the study on: its series, stack and index. */
export function openingSlice(d: StudyDetail): { series: Series; stack: Instance[]; slices: (SliceInfo | null)[]; index: number } | null {
  const series = defaultSeries(d);
  if (!series) return null;
  const { stack, slices } = stackOrder(d, series);
  if (!stack.length) return null;
  return { series, stack, slices, index: startIndex(slices) };
}
