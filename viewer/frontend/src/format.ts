// Display formatting shared by the worklist, the viewer panel and the chart.

export const GRADES = ['none', 'mild', 'moderate', 'severe'] as const;
export type Grade = (typeof GRADES)[number];

const GRADE_LABELS: Record<Grade, string> = {
  none: 'None',
  mild: 'Mild',
  moderate: 'Moderate',
  severe: 'Severe',
};

const GRADE_RANGES: Record<Grade, string> = {
  none: '< 0.1 %',
  mild: '0.1–15 %',
  moderate: '15–30 %',
  severe: '> 30 %',
};

export function isGrade(value: unknown): value is Grade {
  return typeof value === 'string' && (GRADES as readonly string[]).includes(value);
}

export function gradeLabel(grade: string | null | undefined): string {
  return isGrade(grade) ? GRADE_LABELS[grade] : '—';
}

export function gradeRange(grade: Grade): string {
  return GRADE_RANGES[grade];
}

/** CSS class of a grade badge: grade-none ... grade-severe, grade-unknown. */
export function gradeClass(grade: string | null | undefined): string {
  return isGrade(grade) ? `grade-${grade}` : 'grade-unknown';
}

export function gradeRank(grade: string | null | undefined): number {
  return isGrade(grade) ? GRADES.indexOf(grade) : -1;
}

/** The Steinberg edges of grading/engine/grading_rules.py (a preview only: the server grades). */
export function gradeFromProportion(p: number): Grade {
  if (!Number.isFinite(p) || p < 0 || p > 1) throw new RangeError(`proportion must be in [0, 1], got ${p}`);
  if (p < 0.001) return 'none';
  if (p < 0.15) return 'mild';
  if (p <= 0.3) return 'moderate';
  return 'severe';
}

/** 0.1234 -> "12.3 %"; tiny non-zero values keep two decimals so "0.0 %" never hides necrosis. */
export function formatProportion(p: number | null | undefined): string {
  if (p === null || p === undefined || !Number.isFinite(p)) return '—';
  const pct = p * 100;
  if (pct === 0) return '0 %';
  if (pct < 0.1) return `${pct.toFixed(2)} %`;
  return `${pct.toFixed(1)} %`;
}

export function formatArea(mm2: number | null | undefined): string {
  if (mm2 === null || mm2 === undefined || !Number.isFinite(mm2)) return '—';
  return `${mm2.toFixed(0)} mm²`;
}

export function formatVolume(mm3: number | null | undefined): string {
  if (mm3 === null || mm3 === undefined || !Number.isFinite(mm3)) return '—';
  if (mm3 >= 1000) return `${(mm3 / 1000).toFixed(2)} cm³`;
  return `${mm3.toFixed(0)} mm³`;
}

export function sideLabel(side: string): string {
  if (side === 'left') return 'Left hip';
  if (side === 'right') return 'Right hip';
  return 'Hip (side unknown)';
}

/** "small_head: head smaller than 80 mm²" -> { code, reason }. */
export function parseFlag(flag: string): { code: string; reason: string } {
  const i = flag.indexOf(':');
  if (i < 0) return { code: flag.trim(), reason: '' };
  return { code: flag.slice(0, i).trim(), reason: flag.slice(i + 1).trim() };
}

export function flagTitle(code: string): string {
  const titles: Record<string, string> = {
    small_head: 'Small head',
    partial_head: 'Partial head',
    low_confidence: 'Low confidence',
    not_bimodal: 'Not bimodal',
    not_counted: 'Found, not counted',
    continued: 'Continued from the slice below',
    neighbour_lesion: 'Supported by a neighbouring slice',
    one_side_only: 'One side only',
    methods_disagree: 'Methods disagree',
    uncertain_grade: 'Uncertain grade',
    edited: 'Edited',
  };
  return titles[code] ?? code.replace(/_/g, ' ');
}

/** DICOM DA "20240131" or ISO "2024-01-31" -> "2024-01-31"; anything else unchanged. */
export function formatStudyDate(value: string | null | undefined): string {
  if (!value) return '—';
  const m = /^(\d{4})-?(\d{2})-?(\d{2})/.exec(value);
  return m ? `${m[1]}-${m[2]}-${m[3]}` : value;
}

/** "DOE^JANE" -> "DOE, JANE". */
export function formatPatientName(value: string | null | undefined): string {
  if (!value) return '—';
  const parts = value.split('^').filter((p) => p.length > 0);
  if (parts.length <= 1) return parts[0] ?? value;
  return `${parts[0]}, ${parts.slice(1).join(' ')}`;
}

const pad = (n: number): string => String(n).padStart(2, '0');

/** ISO time -> "2024-01-31 14:05:09" in the browser's zone. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function statusLabel(
  status: string,
  progress?: { done: number; total: number } | null,
  stalled?: string | null,
): string {
  // Waiting with no worker alive: say so, not "Running 87 %" for ever.
  if (stalled && (status === 'queued' || status === 'running')) return `Stalled: ${stalled}`;
  const base: Record<string, string> = { queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed' };
  const label = base[status] ?? status;
  if (status === 'running' && progress && progress.total > 0) {
    return `${label} ${Math.round((100 * progress.done) / progress.total)} %`;
  }
  return label;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}
