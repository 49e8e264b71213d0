// Window/level presets for MR, where Hounsfield presets mean nothing: each preset is a
// fraction of the series' stored-value range, so it fits any scanner's scaling.

export interface WindowLevel {
  center: number;
  width: number;
}

export interface Preset {
  key: '1' | '2' | '3' | '4';
  name: string;
  /** null: the image's own default (DICOM window or computed). */
  compute: ((min: number, max: number) => WindowLevel) | null;
}

const frac = (lo: number, hi: number) => (min: number, max: number): WindowLevel => {
  const span = Math.max(1, max - min);
  const a = min + lo * span;
  const b = min + hi * span;
  return { center: (a + b) / 2, width: Math.max(1, b - a) };
};

export const PRESETS: readonly Preset[] = [
  { key: '1', name: 'Auto', compute: null },
  { key: '2', name: 'T1 marrow', compute: frac(0.05, 0.75) },
  { key: '3', name: 'High contrast', compute: frac(0.2, 0.6) },
  { key: '4', name: 'Full range', compute: frac(0, 1) },
];

export function voiRangeFromWindow(wl: WindowLevel): { lower: number; upper: number } {
  return { lower: wl.center - wl.width / 2, upper: wl.center + wl.width / 2 };
}

export function windowFromVoiRange(range: { lower: number; upper: number }): WindowLevel {
  return { center: (range.lower + range.upper) / 2, width: range.upper - range.lower };
}
