// Words for the sequence/plane decision and the per-hip classifications (JIC type, Kerboul
// angle, extent, stage): pure, shared by the study page and its tests.
import type { Hip, Series } from './api';

export const JIC_TYPES = ['A', 'B', 'C1', 'C2'] as const;

const JIC_WORDS: Record<string, string> = {
  A: 'A: medial third of the weight-bearing portion',
  B: 'B: medial two thirds',
  C1: 'C1: beyond two thirds, inside the acetabular edge',
  C2: 'C2: past the acetabular edge',
};

export function jicLabel(type: string | null | undefined): string {
  return type ? (JIC_WORDS[type] ?? type) : 'not set';
}

/** Ha et al. 2006 groups of the combined necrotic angle. */
export function kerboulLabel(angle: number | null | undefined, partial: boolean | null | undefined): string {
  if (angle == null) return 'not set';
  const deg = `${Math.round(angle)}°`;
  if (partial) return `${deg} (one plane only)`;
  const group = angle < 200 ? 'small' : angle < 250 ? 'medium' : angle < 300 ? 'large' : 'extensive';
  return `${deg} (${group})`;
}

/** Who gave a classification value: shown after it so a machine value is never taken for a person's. */
export function sourceLabel(source: string | null | undefined): string {
  if (source === 'ai') return ' (AI, from the mid-coronal/sagittal T1)';
  if (source === 'clinician') return ' (set by a clinician)';
  return '';
}

export function extentLabel(extent: string | null | undefined): string {
  if (!extent) return 'no necrosis';
  return { A: 'A (< 15 %)', B: 'B (15–30 %)', C: 'C (> 30 %)' }[extent] ?? extent;
}

export function stageLabel(hip: Pick<Hip, 'stage' | 'stage_source'>): string {
  if (!hip.stage) return '—';
  return hip.stage_source === 'clinician' ? `${hip.stage} (from radiograph/CT findings)` : hip.stage;
}

const WEIGHTING_WORDS: Record<string, string> = {
  T1: 'T1',
  T2: 'T2',
  PD: 'PD',
  STIR: 'STIR',
  fat_saturated: 'fat-sat',
  post_contrast: 'post-contrast',
  unknown: 'weighting unknown',
};

/** The series picker's line: description, images, weighting and plane, and whether graded. */
export function seriesLabel(s: Series): string {
  const parts = [s.description || 'Series', `${s.instances.length} images`];
  const kind = [s.weighting ? (WEIGHTING_WORDS[s.weighting] ?? s.weighting) : '', s.plane && s.plane !== 'unknown' ? s.plane : ''].filter(Boolean).join(' ');
  if (kind) parts.push(kind);
  if (s.graded === false) parts.push('not graded');
  else if (s.analysis) parts.push(s.analysis.status);
  return parts.join(' · ');
}

/** The key of one slice: a SOP Instance UID, with the frame for a multi-frame file. */
export function sliceKey(x: { sop_instance_uid: string; frame_number?: number | null }): string {
  return x.frame_number == null ? x.sop_instance_uid : `${x.sop_instance_uid}:${x.frame_number}`;
}
