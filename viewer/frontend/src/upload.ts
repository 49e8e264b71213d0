// Upload page: drag and drop (files or folders), one multipart request with per-file
// progress read from XHR upload events, per-file errors from the answer's `rejected`.
import { csrfToken, errorMessage, type UploadAnswer } from './api';
import { append, byId, clear, h } from './dom';
import { formatBytes } from './format';
import { matchRejections, perFileProgress } from './upload-progress';

interface Row {
  file: File;
  name: string;
  bar: HTMLProgressElement;
  state: HTMLElement;
  el: HTMLElement;
}

let rows: Row[] = [];
let uploading = false;

const drop = byId('drop-zone');
const input = byId<HTMLInputElement>('file-input');
const folderInput = byId<HTMLInputElement>('folder-input');
const list = byId('file-list');
const startButton = byId<HTMLButtonElement>('start-upload');
const clearButton = byId<HTMLButtonElement>('clear-files');
const summary = byId('upload-summary');
const siteSelect = document.getElementById('site-select') as HTMLSelectElement | null;

function addFiles(files: Iterable<File>): void {
  if (uploading) return;
  for (const file of files) {
    const name = (file as File & { webkitRelativePath?: string }).webkitRelativePath || file.name;
    if (rows.some((r) => r.name === name && r.file.size === file.size)) continue;
    const bar = h('progress', { max: 1, value: 0 });
    const state = h('span', { class: 'file-state' }, 'ready');
    const el = h('li', { class: 'file-row', 'data-name': name }, h('span', { class: 'file-name', title: name }, name), h('span', { class: 'file-size' }, formatBytes(file.size)), bar, state);
    rows.push({ file, name, bar, state, el });
    list.appendChild(el);
  }
  render();
}

function render(): void {
  const total = rows.reduce((n, r) => n + r.file.size, 0);
  startButton.disabled = uploading || rows.length === 0;
  clearButton.disabled = uploading || rows.length === 0;
  byId('file-count').textContent = rows.length ? `${rows.length} file${rows.length === 1 ? '' : 's'} · ${formatBytes(total)}` : 'No files chosen';
}

async function entriesToFiles(items: DataTransferItemList): Promise<File[]> {
  const files: File[] = [];
  const walk = async (entry: FileSystemEntry, path: string): Promise<void> => {
    if (entry.isFile) {
      const file = await new Promise<File>((res, rej) => (entry as FileSystemFileEntry).file(res, rej));
      files.push(new File([file], `${path}${file.name}`, { type: file.type }));
    } else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const e of batch) await walk(e, `${path}${entry.name}/`);
      }
    }
  };
  const entries = [...items].map((i) => i.webkitGetAsEntry?.()).filter((e): e is FileSystemEntry => Boolean(e));
  for (const e of entries) await walk(e, '');
  return files;
}

drop.addEventListener('dragover', (e) => {
  e.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  const dt = e.dataTransfer;
  if (!dt) return;
  const hasEntries = [...dt.items].some((i) => typeof i.webkitGetAsEntry === 'function');
  if (hasEntries) void entriesToFiles(dt.items).then(addFiles);
  else addFiles(dt.files);
});
drop.addEventListener('click', (e) => {
  if ((e.target as HTMLElement).closest('button, label, input')) return;
  input.click();
});
drop.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    input.click();
  }
});
input.addEventListener('change', () => {
  addFiles(input.files ?? []);
  input.value = '';
});
folderInput.addEventListener('change', () => {
  addFiles(folderInput.files ?? []);
  folderInput.value = '';
});
clearButton.addEventListener('click', () => {
  rows = [];
  clear(list);
  clear(summary);
  render();
});
startButton.addEventListener('click', () => void upload());

function upload(): Promise<void> {
  if (!rows.length || uploading) return Promise.resolve();
  uploading = true;
  render();
  clear(summary);
  const form = new FormData();
  for (const r of rows) form.append('files', r.file, r.name);
  if (siteSelect?.value) form.append('site', siteSelect.value);
  for (const r of rows) {
    r.state.textContent = 'uploading';
    r.el.className = 'file-row uploading';
  }
  const xhr = new XMLHttpRequest();
  xhr.open('POST', '/api/uploads/');
  xhr.setRequestHeader('X-CSRFToken', csrfToken());
  xhr.setRequestHeader('Accept', 'application/json');
  xhr.upload.addEventListener('progress', (e) => {
    if (!e.lengthComputable) return;
    const fractions = perFileProgress(rows.map((r) => ({ name: r.name, size: r.file.size })), e.loaded, e.total);
    rows.forEach((r, i) => {
      r.bar.value = fractions[i] ?? 0;
      if ((fractions[i] ?? 0) >= 1) r.state.textContent = 'sent';
    });
    byId('overall').textContent = `${Math.round((100 * e.loaded) / e.total)} % of ${formatBytes(e.total)}`;
  });
  xhr.upload.addEventListener('load', () => {
    byId('overall').textContent = 'Sent; the portal is reading the files…';
  });
  return new Promise((resolve) => {
    xhr.addEventListener('loadend', () => {
      uploading = false;
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = xhr.responseText;
      }
      finish(xhr.status, body);
      render();
      resolve();
    });
    xhr.send(form);
  });
}

function finish(status: number, body: unknown): void {
  const answer = body && typeof body === 'object' && 'rejected' in body ? (body as UploadAnswer) : null;
  if (status === 0) {
    summary.append(h('p', { class: 'error' }, 'The upload was interrupted (network error).'));
    for (const r of rows) markRow(r, 'error', 'not sent');
    return;
  }
  if (status === 413) {
    summary.append(h('p', { class: 'error' }, 'The upload is larger than the portal accepts. Send fewer files at a time.'));
    for (const r of rows) markRow(r, 'error', 'too large');
    return;
  }
  if (!answer) {
    summary.append(h('p', { class: 'error' }, `Upload failed: ${errorMessage(body, `HTTP ${status}`)}`));
    for (const r of rows) markRow(r, 'error', 'failed');
    return;
  }
  const byName = matchRejections(rows.map((r) => r.name), answer.rejected);
  for (const r of rows) {
    const reasons = byName.get(r.name);
    if (reasons?.length) markRow(r, 'error', reasons.join('; '));
    else markRow(r, 'ok', 'accepted');
  }
  const unmatched = byName.get('') ?? [];
  const p = h('p', { class: answer.accepted ? 'ok' : 'error' }, `${answer.accepted} file${answer.accepted === 1 ? '' : 's'} accepted, ${answer.rejected.length} rejected.`);
  summary.append(p);
  if (unmatched.length) summary.append(h('ul', { class: 'error' }, ...unmatched.map((u) => h('li', {}, u))));
  if (answer.studies.length) {
    const ul = h('ul', { class: 'study-links' });
    for (const s of answer.studies) append(ul, h('li', {}, h('a', { href: `/studies/${s.id}/` }, `Open study ${s.id}`), h('span', { class: 'muted' }, ` ${s.study_instance_uid}`)));
    summary.append(h('p', {}, 'Analysis has been queued. Follow it on the ', h('a', { href: '/' }, 'worklist'), ':'), ul);
  }
}

function markRow(r: Row, kind: 'ok' | 'error', text: string): void {
  r.el.className = `file-row ${kind}`;
  r.state.textContent = text;
  r.state.title = text;
  if (kind === 'ok') r.bar.value = 1;
}

render();
