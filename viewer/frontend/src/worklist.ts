// Worklist: the studies this user may see, filtered on the server, sorted here, with
// status updates pushed over the WebSocket (no reload).
import { apiFetch, type StudySummary } from './api';
import { append, byId, clear, h } from './dom';
import { flagTitle, formatDateTime, formatPatientName, formatStudyDate, gradeClass, gradeLabel, gradeRank, parseFlag, statusLabel } from './format';
import { StudySocket } from './socket';

interface Page {
  count: number;
  next: string | null;
  previous: string | null;
  results: StudySummary[];
}

type SortKey = 'patient' | 'date' | 'site' | 'status' | 'ai_grade' | 'grade' | 'flags' | 'created';

let studies: StudySummary[] = [];
let count = 0;
let page = 1;
let sortKey: SortKey = 'created';
let sortDir: 1 | -1 = -1;
const progress = new Map<number, { done: number; total: number } | null>();

const form = byId<HTMLFormElement>('filters');
const tbody = byId('worklist-body');

const STATUS_ORDER: Record<string, number> = { queued: 0, running: 1, failed: 2, done: 3 };

function sortValue(s: StudySummary, key: SortKey): string | number {
  switch (key) {
    case 'patient': return formatPatientName(s.patient_name).toLowerCase();
    case 'date': return s.study_date ?? '';
    case 'site': return s.site?.name ?? '';
    case 'status': return STATUS_ORDER[s.status] ?? 9;
    case 'ai_grade': return gradeRank(s.ai_grade);
    case 'grade': return gradeRank(s.grade);
    case 'flags': return s.flags.length;
    case 'created': return s.created;
  }
}

function query(): URLSearchParams {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (typeof v === 'string' && v.trim()) params.set(k, v.trim());
  if (page > 1) params.set('page', String(page));
  return params;
}

async function load(): Promise<void> {
  const params = query();
  history.replaceState(null, '', params.toString() ? `?${params}` : window.location.pathname);
  byId('worklist-state').textContent = 'Loading…';
  try {
    const answer = await apiFetch<Page | StudySummary[]>(`/api/studies/?${params}`);
    const data = Array.isArray(answer) ? { count: answer.length, next: null, previous: null, results: answer } : answer;
    studies = data.results;
    count = data.count;
    byId<HTMLButtonElement>('prev-page').disabled = !data.previous;
    byId<HTMLButtonElement>('next-page').disabled = !data.next;
    byId('worklist-state').textContent = '';
    render();
  } catch (err) {
    byId('worklist-state').textContent = `Could not load the worklist: ${err instanceof Error ? err.message : err}`;
  }
}

function badge(grade: string | null, cls: string): HTMLElement {
  return h('span', { class: `badge ${cls} ${gradeClass(grade)}` }, gradeLabel(grade));
}

function row(s: StudySummary): HTMLElement {
  const flags = h('span', { class: 'flags-cell' });
  for (const f of s.flags) {
    const { code, reason } = parseFlag(f);
    append(flags, h('span', { class: `flag-chip flag-${code}`, title: reason || code }, flagTitle(code)));
  }
  const href = `/studies/${s.id}/`;
  const tr = h(
    'tr',
    { 'data-study-id': s.id, tabindex: 0 },
    h('td', {}, h('a', { href, class: 'patient' }, formatPatientName(s.patient_name)), h('div', { class: 'muted small' }, s.patient_id)),
    h('td', {}, formatStudyDate(s.study_date)),
    h('td', {}, s.site?.name ?? '—'),
    h(
      'td',
      {},
      h('span', { class: `status status-${s.status}`, 'data-status': s.status, title: s.failure_reason ?? '' }, statusLabel(s.status, progress.get(s.id), s.stalled)),
      s.failure_reason ? h('div', { class: 'failure-reason small' }, s.failure_reason) : null,
    ),
    h('td', {}, badge(s.ai_grade, 'ai-grade')),
    h(
      'td',
      {},
      badge(s.grade, 'current-grade'),
      s.grade && s.ai_grade && s.grade !== s.ai_grade ? h('span', { class: 'revised', title: 'Changed by a reader' }, ' ✎') : null,
      s.ai_changed_since_review ? h('span', { class: 'ai-changed-chip', title: 'The series was analysed again after your review and the AI answer changed; your grade was kept' }, 'AI changed since your review') : null,
    ),
    h('td', {}, flags),
    h('td', { class: 'muted small' }, formatDateTime(s.created)),
  );
  tr.addEventListener('dblclick', () => window.location.assign(href));
  tr.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') window.location.assign(href);
  });
  return tr;
}

function render(): void {
  const sorted = [...studies].sort((a, b) => {
    const x = sortValue(a, sortKey);
    const y = sortValue(b, sortKey);
    return (x < y ? -1 : x > y ? 1 : 0) * sortDir || b.id - a.id;
  });
  clear(tbody);
  for (const s of sorted) tbody.appendChild(row(s));
  if (!sorted.length) {
    // Filtered to nothing, or nothing at all yet: say which, and what to do next.
    const filtered = [...query().keys()].some((k) => k !== 'page' && k !== 'ordering');
    const text = filtered
      ? ['No studies match these filters. ', h('button', { type: 'button', class: 'btn ghost small', onclick: () => byId('reset-filters').click() }, 'Clear the filters'), ' or ']
      : ['No studies yet. Studies appear here when they are uploaded or sent by a scanner or PACS: '];
    tbody.appendChild(h('tr', {}, h('td', { colspan: 8, class: 'empty' }, ...text, h('a', { href: '/upload/' }, 'upload a study'), '.')));
  }
  byId('worklist-count').textContent = `${count} stud${count === 1 ? 'y' : 'ies'}`;
  for (const th of document.querySelectorAll<HTMLElement>('th[data-sort]')) {
    const on = th.dataset.sort === sortKey;
    th.setAttribute('aria-sort', on ? (sortDir === 1 ? 'ascending' : 'descending') : 'none');
  }
}

let reloadTimer = 0;
function scheduleReload(): void {
  window.clearTimeout(reloadTimer);
  reloadTimer = window.setTimeout(() => void load(), 400);
}

for (const th of document.querySelectorAll<HTMLElement>('th[data-sort]')) {
  const activate = (): void => {
    const key = th.dataset.sort as SortKey;
    sortDir = key === sortKey ? (sortDir === 1 ? -1 : 1) : key === 'created' || key === 'date' ? -1 : 1;
    sortKey = key;
    render();
  };
  th.addEventListener('click', activate);
  th.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      activate();
    }
  });
}

form.addEventListener('submit', (e) => {
  e.preventDefault();
  page = 1;
  void load();
});
form.addEventListener('change', () => {
  page = 1;
  void load();
});
let searchTimer = 0;
form.querySelector('input[name="search"]')?.addEventListener('input', () => {
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(() => {
    page = 1;
    void load();
  }, 300);
});
byId('reset-filters').addEventListener('click', () => {
  form.reset();
  page = 1;
  void load();
});
byId('prev-page').addEventListener('click', () => {
  page = Math.max(1, page - 1);
  void load();
});
byId('next-page').addEventListener('click', () => {
  page += 1;
  void load();
});

// Restore the filters from the address bar.
const initial = new URLSearchParams(window.location.search);
for (const [k, v] of initial) {
  const field = form.elements.namedItem(k);
  if (field instanceof HTMLInputElement || field instanceof HTMLSelectElement) field.value = v;
  if (k === 'page') page = Math.max(1, Number(v) || 1);
}

const socket = new StudySocket('/ws/studies/', (state) => {
  const el = byId('socket-state');
  el.dataset.state = state;
  el.title = state === 'open' ? 'Live updates connected' : 'Live updates reconnecting';
}).start();
socket.on((m) => {
  if (m.type !== 'study.status') return;
  progress.set(m.study_id, m.progress);
  const s = studies.find((x) => x.id === m.study_id);
  if (!s) {
    scheduleReload();
    return;
  }
  const was = s.status;
  s.status = m.status;
  s.stalled = m.stalled ?? null;
  const cell = tbody.querySelector<HTMLElement>(`tr[data-study-id="${m.study_id}"] .status`);
  if (cell) {
    cell.className = `status status-${m.status}`;
    cell.dataset.status = m.status;
    cell.textContent = statusLabel(m.status, m.progress, m.stalled);
    cell.title = m.failure_reason ?? '';
  }
  // Grades and flags arrive with the finished analysis.
  if (m.status !== was && (m.status === 'done' || m.status === 'failed')) scheduleReload();
});

void load();
