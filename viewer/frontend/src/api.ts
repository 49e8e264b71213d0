// Types of the portal's REST API (docs/architecture.md) and small fetch helpers.

export interface SiteRef {
  id: number;
  name: string;
}

export interface StudySummary {
  id: number;
  study_instance_uid: string;
  patient_name: string;
  patient_id: string;
  study_date: string | null;
  site: SiteRef;
  status: string;
  ai_grade: string | null;
  grade: string | null;
  flags: string[];
  /** Why the analysis failed, in a clinician's words (null unless failed). */
  failure_reason: string | null;
  /** A hip a person reviewed was analysed again and the AI's answer changed. */
  ai_changed_since_review: boolean;
  created: string;
  stalled?: string | null;
}

export interface Instance {
  id: number;
  sop_instance_uid: string;
  /** 1-based frame of a multi-frame (Enhanced MR) file; null for a single-frame file. */
  frame_number?: number | null;
  instance_number: number | null;
  slice_location: number | null;
  image_url: string;
  labelmap_url: string;
  ai_labelmap_url: string;
  labelmap_edited: boolean;
}

export interface Analysis {
  id: number;
  status: string;
  model_version: string;
  error: string | null;
  failure_reason: string | null;
  started: string | null;
  finished: string | null;
}

export interface Series {
  id: number;
  series_instance_uid: string;
  description: string;
  instance_count: number;
  plane?: string;
  weighting?: string;
  /** null: not decided yet; false: kept viewable, not graded (see not_graded_reason). */
  graded?: boolean | null;
  not_graded_reason?: string | null;
  analysis: Analysis | null;
  instances: Instance[];
}

export interface Revision {
  grade: string;
  reason: string;
  author: string;
  time: string;
}

export interface Hip {
  series_instance_uid: string;
  side: string;
  proportion: number | null;
  head_volume_mm3: number | null;
  necrosis_volume_mm3: number | null;
  ai_grade: string | null;
  grade: string | null;
  flags: string[];
  /** Analysed again after a person's review, and the AI's answer changed (their grade and masks were kept). */
  ai_changed_since_review: boolean;
  /** The AI grade the person saw at their review. */
  ai_grade_at_review: string | null;
  revisions: Revision[];
  jic_type?: string | null;
  jic_source?: 'ai' | 'clinician' | null;
  kerboul_source?: 'ai' | 'clinician' | null;
  kerboul_angle_deg?: number | null;
  kerboul_partial?: boolean | null;
  extent?: string | null;
  stage?: string;
  stage_source?: string;
  // the engine's uncertainty (null for analyses before it, or once a mask is edited)
  ai_proportion: number | null;
  proportion_interval: [number, number] | null;
  grade_probabilities: Record<string, number> | null;
  method_proportions: Record<string, number>;
}

export interface SliceHip {
  side: string;
  proportion: number | null;
  grade: string | null;
  head_area_mm2: number | null;
  necrosis_area_mm2: number | null;
  flags: string[];
  proportion_interval?: [number, number] | null;
  grade_probabilities?: Record<string, number> | null;
}

export interface SliceInfo {
  sop_instance_uid: string;
  frame_number?: number | null;
  series_instance_uid: string;
  instance_number: number | null;
  hips: SliceHip[];
}

export interface StudyDetail extends StudySummary {
  progress: { done: number; total: number };
  error: string | null;
  series: Series[];
  hips: Hip[];
  slices: SliceInfo[];
}

export interface AuditEvent {
  id: number;
  time: string;
  actor: string | null;
  action: string;
  object_type: string;
  object_id: string | number | null;
  before: unknown;
  after: unknown;
  reason: string;
  client_address: string | null;
}

export interface UploadAnswer {
  studies: { id: number; study_instance_uid: string }[];
  accepted: number;
  rejected: { name: string; reason: string }[];
}

export type SocketMessage =
  | { type: 'study.status'; study_id: number; status: string; progress: { done: number; total: number } | null; error: string | null; failure_reason?: string | null; stalled?: string | null }
  | { type: 'study.audit'; study_id: number; event: AuditEvent };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

export function csrfToken(doc: Document = document): string {
  const meta = doc.querySelector<HTMLMetaElement>('meta[name="csrf-token"]');
  if (meta?.content) return meta.content;
  const m = /(?:^|;\s*)csrftoken=([^;]+)/.exec(doc.cookie);
  return m?.[1] ? decodeURIComponent(m[1]) : '';
}

/** The first human-readable message in a DRF error body. */
export function errorMessage(body: unknown, fallback: string): string {
  if (typeof body === 'string' && body.trim()) return body.slice(0, 300);
  if (Array.isArray(body)) {
    for (const item of body) {
      const m = errorMessage(item, '');
      if (m) return m;
    }
    return fallback;
  }
  if (body && typeof body === 'object') {
    const obj = body as Record<string, unknown>;
    if (typeof obj.detail === 'string') return obj.detail;
    for (const [key, value] of Object.entries(obj)) {
      const m = errorMessage(value, '');
      if (m) return key === 'non_field_errors' ? m : `${key}: ${m}`;
    }
  }
  return fallback;
}

export async function apiFetch<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set('Accept', 'application/json');
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const method = (init.method ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'HEAD') headers.set('X-CSRFToken', csrfToken());
  const response = await fetch(path, { ...init, body, headers, credentials: 'same-origin' });
  const text = await response.text();
  let parsed: unknown = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, errorMessage(parsed, `${response.status} ${response.statusText}`), parsed);
  }
  return parsed as T;
}

export function socketUrl(path: string, loc: { protocol: string; host: string } = window.location): string {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}${path}`;
}
