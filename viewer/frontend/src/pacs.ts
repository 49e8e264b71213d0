// The study page's PACS panel: the patient's prior studies on the site's PACS nodes
// (C-FIND through /api/pacs/nodes/{id}/studies/, fetch with .../retrieve/), and sending
// a series' results (SEG, SR, summary image) back, with each send's state.
// Rendered only when the page lists nodes for this user (never for a student).
import { apiFetch, type StudyDetail } from './api';
import { byId, clear, h, readConfig, toast } from './dom';
import { describeSend, sendIsActive, type PacsSend } from './pacs-format';

interface PacsConfig {
  studyId: number;
  nodes: { id: number; name: string }[];
}

interface FoundStudy {
  study_instance_uid: string;
  patient_id: string;
  study_date: string;
  study_description: string;
  modalities: string[];
  number_of_series: number | null;
  already_here: boolean;
}

const config = readConfig<PacsConfig>('pacs-config');

function nodeId(): number {
  return Number(byId<HTMLSelectElement>('pacs-node').value);
}

function date(value: string): string {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : value || '—';
}

async function search(patientId: string): Promise<FoundStudy[]> {
  const out = byId('pacs-results');
  clear(out);
  out.append(h('p', { class: 'muted small' }, 'Asking the PACS…'));
  let found: FoundStudy[];
  try {
    found = await apiFetch<FoundStudy[]>(
      `/api/pacs/nodes/${nodeId()}/studies/?PatientID=${encodeURIComponent(patientId)}`,
    );
  } catch (err) {
    clear(out);
    out.append(h('p', { class: 'form-error' }, (err as Error).message));
    return [];
  }
  clear(out);
  if (!found.length) {
    out.append(h('p', { class: 'muted small' }, `No study of ${patientId} on this PACS.`));
    return found;
  }
  const rows = found.map((s) =>
    h(
      'tr',
      {},
      h('td', {}, date(s.study_date)),
      h('td', {}, s.study_description || '—', h('div', { class: 'muted small' }, `${s.modalities.join(', ') || '?'} · ${s.number_of_series ?? '?'} series`)),
      h(
        'td',
        {},
        s.already_here
          ? h('span', { class: 'muted small' }, 'in the portal')
          : h('button', { type: 'button', class: 'btn small', onclick: () => void retrieve(s, patientId) }, 'Fetch'),
      ),
    ),
  );
  out.append(h('table', { class: 'pacs-table' }, h('tbody', {}, ...rows)));
  return found;
}

async function retrieve(s: FoundStudy, patientId: string): Promise<void> {
  try {
    await apiFetch(`/api/pacs/nodes/${nodeId()}/retrieve/`, { method: 'POST', json: { study_instance_uid: s.study_instance_uid } });
    toast(`Fetching the study of ${date(s.study_date)}: it will appear in the worklist and be analysed.`, 'ok', 6000);
    void watchArrival(s.study_instance_uid, patientId, 24);
  } catch (err) {
    toast((err as Error).message, 'error');
  }
}

/** Ask the PACS again every 5 s (at most ``tries`` times) until the study is here. */
async function watchArrival(uid: string, patientId: string, tries: number): Promise<void> {
  await new Promise((resolve) => window.setTimeout(resolve, 5000));
  const found = await search(patientId);
  if (tries > 1 && !found.some((s) => s.study_instance_uid === uid && s.already_here)) {
    void watchArrival(uid, patientId, tries - 1);
  }
}

async function refreshSends(seriesId: number, into: HTMLElement): Promise<void> {
  const sends = await apiFetch<PacsSend[]>(`/api/series/${seriesId}/sends/`);
  clear(into);
  for (const send of sends.slice(0, 5)) {
    into.append(h('li', { class: `pacs-send state-${send.state}` }, describeSend(send)));
  }
  if (!sends.length) into.append(h('li', { class: 'muted small empty-state' }, 'Not sent yet: the button sends this series’ results to the PACS.'));
  if (sends.some(sendIsActive)) window.setTimeout(() => void refreshSends(seriesId, into), 3000);
}

async function send(seriesId: number, into: HTMLElement): Promise<void> {
  try {
    await apiFetch(`/api/series/${seriesId}/send/`, { method: 'POST', json: { node: nodeId(), objects: ['seg', 'sr', 'summary'] } });
    await refreshSends(seriesId, into);
  } catch (err) {
    toast((err as Error).message, 'error');
  }
}

async function main(): Promise<void> {
  const select = byId<HTMLSelectElement>('pacs-node');
  for (const node of config.nodes) select.append(h('option', { value: node.id }, node.name));
  const study = await apiFetch<StudyDetail>(`/api/studies/${config.studyId}/`);
  const patientId = study.patient_id;
  const button = byId<HTMLButtonElement>('pacs-search');
  button.textContent = `Find studies of ${patientId || 'this patient'}`;
  button.addEventListener('click', () => void search(patientId));
  button.disabled = !patientId; // enabled only now that it works

  const sends = byId('pacs-sends');
  clear(sends);
  for (const series of study.series) {
    if (series.analysis?.status !== 'done') continue;
    const list = h('ul', { class: 'pacs-send-list' });
    sends.append(
      h(
        'div',
        { class: 'pacs-series' },
        h('div', { class: 'small' }, series.description || 'Series'),
        h('button', { type: 'button', class: 'btn small', onclick: () => void send(series.id, list) }, 'Send SEG, SR and summary'),
        list,
      ),
    );
    void refreshSends(series.id, list);
  }
  if (!sends.childElementCount) sends.append(h('p', { class: 'muted small' }, 'Nothing to send before the analysis is done.'));
}

void main();
