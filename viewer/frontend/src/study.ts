// The study viewer page: Cornerstone stack with head/necrosis overlays, per-hip panel,
// proportion chart, grade revisions, mask editing and the live audit trail.
import './perf';
import { apiFetch, ApiError, type AuditEvent, type Hip, type Instance, type Series, type SliceInfo, type StudyDetail } from './api';
import { renderChartSvg, sliceAtX, type ChartSeries } from './chart';
import { initCornerstone, StackViewer, type ActiveTool } from './cornerstone';
import { append, byId, clear, h, readConfig, toast } from './dom';
import {
  flagTitle,
  formatDateTime,
  formatPatientName,
  formatProportion,
  formatStudyDate,
  formatVolume,
  gradeClass,
  gradeLabel,
  gradeRange,
  GRADES,
  parseFlag,
  sideLabel,
  statusLabel,
} from './format';
import { formatGradeProbabilities, formatInterval, formatMethods } from './uncertainty';
import { actionForKey, isTypingTarget, SHORTCUTS } from './keyboard';
import { runViewerAction } from './viewer-keys';
import { bytesToBase64, decodeLabelPng, encodeGrayPng } from './png';
import { StudySocket } from './socket';
import { extentLabel, JIC_TYPES, jicLabel, kerboulLabel, seriesLabel, sourceLabel, stageLabel } from './classification';
import { defaultSeries, stackOrder, startIndex } from './stack';
import type { EarlyStudyWindow } from './study-prefetch';
import { PRESETS } from './windowing';
import { mark } from './perf';

interface PageConfig {
  studyId: number;
  username: string;
}

/** One slice's label map as decoded from the portal's PNG. */
interface LabelSlice {
  columns: number;
  rows: number;
  data: Uint8Array;
}

const SIDE_COLOURS: Record<string, string> = { right: '#4fc3f7', left: '#ffb74d', unknown: '#ce93d8' };
const sideOrder = (s: string): number => (s === 'right' ? 0 : s === 'left' ? 1 : 2);

class StudyPage {
  detail: StudyDetail | null = null;
  series: Series | null = null;
  /** Instances of the shown series in stack order, and their per-slice results. */
  stack: Instance[] = [];
  stackSlices: (SliceInfo | null)[] = [];
  viewer: StackViewer | null = null;
  audit = new Map<number, AuditEvent>();
  ready = false;
  private busy = false;
  private overlaysReady = false;
  private stackGeneration = 0;
  private firstImageShown: () => void = () => {};
  private readonly firstImage = new Promise<void>((resolve) => (this.firstImageShown = resolve));

  constructor(private readonly config: PageConfig) {}

  async start(): Promise<void> {
    this.buildHelp();
    this.bindToolbar();
    document.addEventListener('keydown', this.onKey);
    const socket = new StudySocket('/ws/studies/', (state) => {
      const el = byId('socket-state');
      el.dataset.state = state;
      el.title = state === 'open' ? 'Live updates connected' : state === 'connecting' ? 'Connecting live updates…' : 'Live updates disconnected, retrying';
    }).start();
    socket.on((m) => {
      if (m.study_id !== this.config.studyId) return;
      if (m.type === 'study.audit') this.addAudit(m.event, true);
      else if (m.type === 'study.status') void this.onStatus(m.status, m.progress, m.stalled ?? null, m.error, m.failure_reason ?? null);
    });
    try {
      const [detail] = await Promise.all([this.firstDetail(), initCornerstone()]);
      mark('viewer:detail');
      this.detail = detail;
      this.renderHeader();
      this.pickSeries(defaultSeries(detail));
      // The audit trail waits for the first image (or 3 s), which it would otherwise slow down.
      void Promise.race([this.firstImage, new Promise((r) => window.setTimeout(r, 3000))]).then(() => this.loadAudit());
    } catch (err) {
      this.fatal(err);
    }
  }

  private fetchDetail(): Promise<StudyDetail> {
    return apiFetch<StudyDetail>(`/api/studies/${this.config.studyId}/`);
  }

  /** The first load uses the request the page started before this bundle was parsed. */
  private async firstDetail(): Promise<StudyDetail> {
    const w = window as unknown as EarlyStudyWindow;
    const json = w.onfhStudyDetailJson;
    delete w.onfhStudyDetailJson;
    const fromEarlyScript = json ? await json : null;
    if (fromEarlyScript) return fromEarlyScript;
    const early = w.onfhStudyDetail;
    delete w.onfhStudyDetail;
    if (early) {
      try {
        const response = await early;
        if (response.ok) return (await response.json()) as StudyDetail;
      } catch {
        // fall through to a fresh request, which reports the error properly
      }
    }
    return this.fetchDetail();
  }

  private fatal(err: unknown): void {
    console.error(err);
    const msg = err instanceof Error ? err.message : String(err);
    const el = byId('viewer-message');
    el.textContent = `Could not open the study: ${msg}`;
    el.hidden = false;
    el.classList.add('error');
  }

  // --- header and series ----------------------------------------------------------------

  private renderHeader(): void {
    const d = this.detail;
    if (!d) return;
    byId('patient-name').textContent = formatPatientName(d.patient_name);
    byId('patient-id').textContent = d.patient_id || '—';
    byId('study-date').textContent = formatStudyDate(d.study_date);
    byId('site-name').textContent = d.site?.name ?? '—';
    document.title = `${formatPatientName(d.patient_name)} · ONFH viewer`;
    this.renderStatus(d.status, d.progress, d.error, d.stalled ?? null, d.failure_reason);
    const picker = byId<HTMLSelectElement>('series-picker');
    clear(picker);
    for (const s of d.series) {
      picker.appendChild(h('option', { value: s.id, selected: this.series?.id === s.id, title: s.not_graded_reason ?? '' }, seriesLabel(s)));
    }
    picker.disabled = d.series.length < 2;
    byId('series-picker-wrap').hidden = d.series.length < 2;
  }

  private renderStatus(
    status: string,
    progress: { done: number; total: number } | null,
    error: string | null,
    stalled: string | null = null,
    reason: string | null = null,
  ): void {
    const el = byId('study-status');
    el.textContent = statusLabel(status, progress, stalled);
    el.className = `status status-${status}`;
    el.title = error ?? '';
    const msg = byId('viewer-message');
    if (status === 'queued' || status === 'running') {
      msg.hidden = false;
      msg.classList.remove('error');
      msg.textContent = stalled
        ? `Analysis stalled: ${stalled} is running. It resumes when a worker starts.`
        : `Analysis ${statusLabel(status, progress).toLowerCase()}: overlays and proportions appear when it finishes.`;
    } else if (status === 'failed') {
      msg.hidden = false;
      msg.classList.add('error');
      // The clinician's sentence; the technical error stays in the tooltip for operators.
      msg.textContent = `Analysis failed. ${reason ?? 'The analysis stopped with an unexpected error.'}`;
      msg.title = error ?? '';
    } else if (!msg.classList.contains('error') || status === 'done') {
      msg.hidden = true;
    }
  }

  private async onStatus(
    status: string,
    progress: { done: number; total: number } | null,
    stalled: string | null,
    error: string | null = null,
    reason: string | null = null,
  ): Promise<void> {
    const prev = this.detail?.status;
    this.renderStatus(status, progress, error, stalled, reason);
    if (status === 'done' && prev !== 'done') {
      this.detail = await this.fetchDetail();
      this.renderHeader();
      const id = this.series?.id;
      this.pickSeries(this.detail.series.find((s) => s.id === id) ?? defaultSeries(this.detail));
    }
  }

  private pickSeries(s: Series | null): void {
    if (!s || !this.detail) {
      this.fatal(new Error('the study has no images'));
      return;
    }
    if (this.viewer?.dirty.size && !window.confirm('Discard unsaved mask edits?')) return;
    this.series = s;
    // The picker shows the series on screen (the header is drawn before one is picked).
    byId<HTMLSelectElement>('series-picker').value = String(s.id);
    const { stack, slices } = stackOrder(this.detail, s);
    this.stack = stack;
    this.stackSlices = slices;
    void this.openStack();
  }

  private async openStack(): Promise<void> {
    const element = byId<HTMLDivElement>('viewport');
    if (!this.viewer) {
      this.viewer = new StackViewer(element);
      this.viewer.onNewImage(() => this.onSlice());
      this.viewer.onVoiModified(() => this.renderViewportText());
      this.viewer.onStroke = () => {
        this.renderEditState();
        this.renderSlice();
      };
      new ResizeObserver(() => this.viewer?.resize()).observe(element);
      const firstRender = (): void => {
        mark('viewer:first-image');
        this.firstImageShown();
        element.removeEventListener('CORNERSTONE_IMAGE_RENDERED', firstRender);
      };
      element.addEventListener('CORNERSTONE_IMAGE_RENDERED', firstRender);
    }
    const viewer = this.viewer;
    // A newer call (another series picked meanwhile) owns the viewer from then on.
    const generation = ++this.stackGeneration;
    const current = (): boolean => generation === this.stackGeneration;
    this.overlaysReady = false;
    this.ready = false;
    document.body.dataset.viewerReady = 'false';
    const origin = window.location.origin;
    const imageIds = this.stack.map((inst) => `wadouri:${new URL(inst.image_url, origin).href}`);
    // The opening slice alone first: nothing else is requested until it is on screen. Its
    // file may be on its way already (study-prefetch.ts).
    const start = startIndex(this.stackSlices);
    const w = window as unknown as EarlyStudyWindow;
    const opening = w.onfhOpeningSlice;
    delete w.onfhOpeningSlice;
    const prefetched = opening ? await opening : null;
    if (prefetched && imageIds[start] === `wadouri:${prefetched.url}`) await viewer.provideFile(prefetched.url, prefetched.bytes);
    await viewer.setStack(imageIds, start);
    if (!current()) return;
    document.body.dataset.renderPath = viewer.renderPath;
    this.renderPanel();
    this.onSlice();
    const loading = byId('viewer-loading');
    loading.hidden = false;
    loading.textContent = 'Loading masks…';
    // Then the masks (small PNGs, drawn by the viewer over any loaded slice), and after them
    // the rest of the stack for scrolling and the tools package for the mouse: the server
    // would otherwise answer the masks between 19 DICOM files and the 1.1 MB package.
    const labelmaps = this.fetchLabelmaps('current');
    const afterMasks = labelmaps.catch(() => null);
    const toolsReady = afterMasks.then(() => viewer.enableTools()).then(() => mark('viewer:tools'));
    const slices = afterMasks
      .then(() =>
        viewer.loadAll((done, total) => {
          if (this.overlaysReady) loading.textContent = `Loading slices ${done}/${total}`;
        }),
      )
      .then(() => mark('viewer:all-slices'));
    try {
      const maps = await labelmaps;
      if (!current()) return;
      viewer.setLabelmaps(maps);
      this.overlaysReady = true;
      mark('viewer:overlays');
      this.applyControls();
      this.renderEditState();
      this.renderSlice();
    } catch (err) {
      console.error(err);
      toast(`Overlays could not be loaded: ${err instanceof Error ? err.message : err}`, 'error', 8000);
    }
    try {
      await Promise.all([slices, toolsReady]);
    } catch (err) {
      console.error(err);
      toast(`The viewer could not load everything: ${err instanceof Error ? err.message : err}`, 'error', 8000);
    }
    if (!current()) return;
    loading.hidden = true;
    this.applyControls();
    this.renderEditState();
    this.renderSlice();
    this.ready = true;
    document.body.dataset.viewerReady = 'true';
  }

  private async fetchLabelmaps(version: 'current' | 'ai'): Promise<(LabelSlice | null)[]> {
    const analysed = this.detail?.status === 'done' || this.stackSlices.some((s) => s !== null);
    if (!analysed) return this.stack.map(() => null);
    return Promise.all(
      this.stack.map(async (inst) => {
        const url = version === 'ai' ? inst.ai_labelmap_url : inst.labelmap_url;
        if (!url) return null;
        const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
        if (!response.ok) return null;
        const image = await decodeLabelPng(new Uint8Array(await response.arrayBuffer()));
        return { columns: image.width, rows: image.height, data: image.data };
      }),
    );
  }

  // --- per-slice display ------------------------------------------------------------------

  private onSlice(): void {
    this.renderSlice();
    this.renderChart();
    this.renderViewportText();
  }

  private currentSlice(): SliceInfo | null {
    return this.viewer ? (this.stackSlices[this.viewer.sliceIndex] ?? null) : null;
  }

  private renderViewportText(): void {
    const v = this.viewer;
    if (!v) return;
    const i = v.sliceIndex;
    const inst = this.stack[i];
    const wl = v.windowLevel();
    byId('ov-tl').textContent = `${this.series?.description || 'Series'}\nImage ${i + 1} / ${v.sliceCount}${inst?.instance_number != null ? `  (#${inst.instance_number})` : ''}${inst?.slice_location != null ? `\nLoc ${inst.slice_location.toFixed(1)} mm` : ''}`;
    byId('ov-bl').textContent = wl ? `W ${Math.round(wl.width)}  L ${Math.round(wl.center)}\nZoom ${v.zoomPercent()} %` : '';
    byId('slice-index').textContent = `${i + 1} / ${v.sliceCount}`;
  }

  private renderSlice(): void {
    const sl = this.currentSlice();
    const v = this.viewer;
    const i = v?.sliceIndex ?? 0;
    const edited = v?.dirty.has(i) ?? false;
    for (const card of document.querySelectorAll<HTMLElement>('.hip-card')) {
      const side = card.dataset.side ?? '';
      const hip = sl?.hips.find((hp) => hp.side === side) ?? null;
      const value = card.querySelector<HTMLElement>('.slice-proportion');
      const grade = card.querySelector<HTMLElement>('.slice-grade');
      const area = card.querySelector<HTMLElement>('.slice-area');
      if (value) value.textContent = hip ? formatProportion(hip.proportion) : 'not on this slice';
      const interval = card.querySelector<HTMLElement>('.slice-interval');
      const range = hip ? formatInterval(hip.proportion_interval) : '';
      if (interval) interval.textContent = range ? `85 %: ${range}` : '';
      if (grade) {
        grade.textContent = hip ? gradeLabel(hip.grade) : '';
        grade.className = `badge slice-grade ${hip ? gradeClass(hip.grade) : 'hidden'}`;
      }
      if (area) area.textContent = hip ? `head ${Math.round(hip.head_area_mm2 ?? 0)} mm² · necrosis ${Math.round(hip.necrosis_area_mm2 ?? 0)} mm²` : '';
      card.classList.toggle('slice-edited', edited);
    }
    // The overlay corners repeat the slice's proportions on the image itself.
    const parts = (sl?.hips ?? [])
      .slice()
      .sort((a, b) => sideOrder(a.side) - sideOrder(b.side))
      .map((hp) => `${hp.side === 'right' ? 'R' : hp.side === 'left' ? 'L' : '?'} ${formatProportion(hp.proportion)} ${gradeLabel(hp.grade)}`);
    let text = parts.length ? parts.join('\n') : this.detail?.status === 'done' ? 'No femoral head on this slice' : '';
    if (edited && v) {
      const c = v.countsOnSlice(i);
      text += `\nEdited (unsaved): ${c.head ? formatProportion(c.necrosis / c.head) : '0 %'} of ${c.head} px`;
    }
    byId('ov-tr').textContent = text;
    byId('ov-tr').dataset.sliceIndex = String(i);
  }

  private renderChart(): void {
    const host = byId('chart');
    const v = this.viewer;
    const count = this.stack.length;
    const sides = [...new Set(this.stackSlices.flatMap((s) => s?.hips.map((hp) => hp.side) ?? []))].sort((a, b) => sideOrder(a) - sideOrder(b));
    const series: ChartSeries[] = sides.map((side) => ({
      key: side,
      label: sideLabel(side),
      colour: SIDE_COLOURS[side] ?? '#ccc',
      values: this.stackSlices.map((s) => s?.hips.find((hp) => hp.side === side)?.proportion ?? null),
    }));
    host.innerHTML = renderChartSvg(series, count, v?.sliceIndex ?? 0);
    const legend = byId('chart-legend');
    clear(legend);
    for (const s of series) append(legend, h('span', { class: 'legend-item' }, h('i', { style: `background:${s.colour}` }), s.label));
    if (!series.length) append(legend, h('span', { class: 'muted' }, this.detail?.status === 'done' ? 'No femoral head found' : 'Available after analysis'));
  }

  private onChartClick = (e: MouseEvent): void => {
    const svg = byId('chart').querySelector('svg');
    if (!svg || !this.viewer) return;
    const rect = svg.getBoundingClientRect();
    const viewBoxWidth = svg.viewBox.baseVal.width || rect.width;
    const x = ((e.clientX - rect.left) / rect.width) * viewBoxWidth;
    void this.viewer.scrollTo(sliceAtX(x, this.stack.length));
  };

  // --- hip panel ------------------------------------------------------------------------

  private hipsOfSeries(): Hip[] {
    const uid = this.series?.series_instance_uid;
    return (this.detail?.hips ?? []).filter((hp) => hp.series_instance_uid === uid).sort((a, b) => sideOrder(a.side) - sideOrder(b.side));
  }

  private renderPanel(): void {
    const host = byId('hips');
    clear(host);
    const hips = this.hipsOfSeries();
    if (this.series?.graded === false) {
      host.appendChild(
        h('p', { class: 'not-graded' }, h('strong', {}, 'Not graded. '), this.series.not_graded_reason ?? ''),
      );
    } else if (!hips.length) {
      host.appendChild(
        h('p', { class: 'muted' }, this.detail?.status === 'done' ? 'No femoral head was found in this series.' : 'Per-hip results appear when the analysis has finished.'),
      );
    }
    for (const hip of hips) host.appendChild(this.hipCard(hip));
    this.renderSlice();
    this.renderChart();
    this.renderEditState();
  }

  private hipCard(hip: Hip): HTMLElement {
    const changed = hip.grade !== hip.ai_grade;
    const flags = h('ul', { class: 'flags' });
    for (const f of hip.flags) {
      const { code, reason } = parseFlag(f);
      flags.appendChild(h('li', { class: `flag flag-${code}` }, h('strong', {}, flagTitle(code)), reason ? `: ${reason}` : ''));
    }
    const select = h('select', { name: 'grade', required: true, 'aria-label': 'New grade' });
    for (const g of GRADES) select.appendChild(h('option', { value: g, selected: g === hip.grade }, `${gradeLabel(g)} (${gradeRange(g)})`));
    const reason = h('textarea', { name: 'reason', rows: 2, required: true, placeholder: 'Reason (required)', 'aria-label': 'Reason for the grade' });
    const error = h('p', { class: 'form-error', hidden: true });
    const form = h(
      'form',
      { class: 'grade-form', 'data-side': hip.side },
      h('div', { class: 'row' }, select, h('button', { type: 'submit', class: 'btn primary' }, 'Save grade')),
      reason,
      error,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.saveGrade(hip, select.value, reason.value, error, form);
    });
    const revisions = h('ol', { class: 'revisions' });
    for (const r of [...hip.revisions].reverse()) {
      revisions.appendChild(
        h('li', {}, h('span', { class: `badge ${gradeClass(r.grade)}` }, gradeLabel(r.grade)), ' ', h('span', { class: 'who' }, r.author), ' ', h('time', {}, formatDateTime(r.time)), h('div', { class: 'why' }, r.reason)),
      );
    }
    return h(
      'article',
      { class: 'hip-card', 'data-side': hip.side },
      h('header', {}, h('h3', {}, h('i', { class: 'side-dot', style: `background:${SIDE_COLOURS[hip.side] ?? '#ccc'}` }), sideLabel(hip.side)), hip.flags.length ? h('span', { class: 'flag-count', title: 'Flags' }, `⚑ ${hip.flags.length}`) : null),
      h(
        'dl',
        { class: 'metrics' },
        h('dt', {}, 'This slice'),
        h('dd', {}, h('span', { class: 'slice-proportion value' }, '—'), ' ', h('span', { class: 'slice-interval muted', title: '85 % interval of the AI proportion on this slice' }), ' ', h('span', { class: 'badge slice-grade hidden' }), h('div', { class: 'slice-area muted' })),
        h('dt', {}, 'Volume'),
        h(
          'dd',
          {},
          h('span', { class: 'volume-proportion value' }, formatProportion(hip.proportion)),
          ...this.uncertaintyParts(hip),
          h('div', { class: 'muted' }, `head ${formatVolume(hip.head_volume_mm3)} · necrosis ${formatVolume(hip.necrosis_volume_mm3)}`),
        ),
      ),
      h(
        'div',
        { class: 'grades' },
        h('div', { class: 'grade-box' }, h('span', { class: 'caption' }, 'AI grade'), h('span', { class: `badge big ai-grade ${gradeClass(hip.ai_grade)}` }, gradeLabel(hip.ai_grade))),
        h('div', { class: `grade-box${changed ? ' changed' : ''}` }, h('span', { class: 'caption' }, changed ? 'Current grade (revised)' : 'Current grade'), h('span', { class: `badge big current-grade ${gradeClass(hip.grade)}` }, gradeLabel(hip.grade))),
      ),
      this.classificationBlock(hip),
      hip.ai_changed_since_review
        ? h(
            'p',
            { class: 'ai-changed', role: 'status' },
            h('strong', {}, 'AI changed since your review'),
            `: the series was analysed again; the AI grade was ${gradeLabel(hip.ai_grade_at_review)} and is now ${gradeLabel(hip.ai_grade)}. Your grade and masks were kept. Set the grade again to confirm it.`,
          )
        : null,
      hip.flags.length ? flags : null,
      h('details', { class: 'change-grade' }, h('summary', {}, 'Change grade'), form),
      this.classificationForm(hip),
      hip.revisions.length ? h('details', { class: 'revision-list' }, h('summary', {}, `Revisions (${hip.revisions.length})`), revisions) : null,
    );
  }

  private classificationBlock(hip: Hip): HTMLElement {
    return h(
      'dl',
      { class: 'metrics classifications' },
      h('dt', {}, 'Extent'),
      h('dd', { class: 'extent' }, extentLabel(hip.extent)),
      h('dt', {}, 'JIC type'),
      h('dd', { class: 'jic-type' }, jicLabel(hip.jic_type), sourceLabel(hip.jic_source)),
      h('dt', {}, 'Kerboul angle'),
      h('dd', { class: 'kerboul' }, kerboulLabel(hip.kerboul_angle_deg, hip.kerboul_partial), sourceLabel(hip.kerboul_source)),
      h('dt', {}, 'Stage'),
      h('dd', { class: 'stage' }, stageLabel({ stage: hip.stage ?? '', stage_source: hip.stage_source ?? 'mri' })),
    );
  }

  private classificationForm(hip: Hip): HTMLElement {
    const jic = h('select', { name: 'jic_type', 'aria-label': 'JIC type' });
    jic.appendChild(h('option', { value: '', selected: !hip.jic_type }, 'JIC type: not set'));
    for (const t of JIC_TYPES) jic.appendChild(h('option', { value: t, selected: hip.jic_type === t }, jicLabel(t)));
    const angle = h('input', { type: 'number', name: 'kerboul', min: 0, max: 720, step: 'any', placeholder: 'Kerboul angle (°)', value: hip.kerboul_angle_deg ?? '', 'aria-label': 'Kerboul combined angle in degrees' });
    const partial = h('input', { type: 'checkbox', name: 'kerboul_partial', checked: !!hip.kerboul_partial });
    const check = (name: string, label: string) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name }), ` ${label}`);
    const collapse = h('input', { type: 'number', name: 'collapse_mm', min: 0, max: 30, step: 0.5, value: 0, 'aria-label': 'Collapse depth in mm' });
    const findings = h(
      'fieldset',
      { class: 'findings' },
      h('legend', {}, h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'findings_entered', checked: hip.stage_source === 'clinician' }), ' Radiograph/CT findings (gives the stage)')),
      check('radiograph_abnormal', 'sclerosis or cysts'),
      check('crescent_sign', 'crescent sign'),
      h('label', {}, 'Collapse (mm) ', collapse),
      check('joint_space_narrowed', 'joint space narrowed'),
      check('acetabular_changes', 'acetabular changes'),
    );
    const reason = h('textarea', { name: 'reason', rows: 2, required: true, placeholder: 'Reason (required)', 'aria-label': 'Reason for the change' });
    const error = h('p', { class: 'classification-error', hidden: true });
    const form = h(
      'form',
      { class: 'classification-form', 'data-side': hip.side },
      jic,
      h('div', { class: 'row' }, angle, h('label', { class: 'check' }, partial, ' one plane only')),
      findings,
      reason,
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'btn primary' }, 'Save classification')),
      error,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const field = (name: string) => form.querySelector<HTMLInputElement>(`[name="${name}"]`);
      const entered = field('findings_entered')?.checked ?? false;
      // Only what the person changed: the form starts from the shown values, which may be
      // the AI's (from the coronal and sagittal T1), and an untouched AI value must not
      // become a clinician's.
      const changed: Record<string, unknown> = {};
      if (jic.value !== (hip.jic_type ?? '')) changed.jic_type = jic.value;
      if (angle.value !== String(angle.defaultValue) || partial.checked !== partial.defaultChecked) {
        changed.kerboul_angle_deg = angle.value === '' ? null : Number(angle.value);
        changed.kerboul_partial = angle.value === '' ? null : partial.checked;
      }
      const body = {
        series_instance_uid: hip.series_instance_uid,
        side: hip.side,
        reason: reason.value.trim(),
        ...changed,
        findings: entered
          ? {
              radiograph_abnormal: field('radiograph_abnormal')?.checked ?? false,
              crescent_sign: field('crescent_sign')?.checked ?? false,
              collapse_mm: Number(collapse.value || 0),
              joint_space_narrowed: field('joint_space_narrowed')?.checked ?? false,
              acetabular_changes: field('acetabular_changes')?.checked ?? false,
            }
          : null,
      };
      void this.saveClassification(hip, body, error, form);
    });
    return h('details', { class: 'change-classification' }, h('summary', {}, 'Change classification'), form);
  }

  private async saveClassification(hip: Hip, body: Record<string, unknown>, error: HTMLElement, form: HTMLFormElement): Promise<void> {
    error.hidden = true;
    if (!String(body.reason ?? '').trim()) {
      error.textContent = 'A reason is required.';
      error.hidden = false;
      return;
    }
    const button = form.querySelector('button');
    if (button) button.disabled = true;
    try {
      await apiFetch(`/api/studies/${this.config.studyId}/classifications/`, { method: 'POST', json: body });
      toast(`${sideLabel(hip.side)}: classification saved`, 'ok');
      await this.refreshDetail();
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 403 ? 'Your role may not change classifications.' : err instanceof Error ? err.message : String(err);
      error.hidden = false;
    } finally {
      if (button) button.disabled = false;
    }
  }

  /** The AI's 85 % interval beside the proportion, its grade odds and both methods'
   *  proportions on one muted line each, when the engine gave them. */
  private uncertaintyParts(hip: Hip): (HTMLElement | string)[] {
    const parts: (HTMLElement | string)[] = [];
    const range = formatInterval(hip.proportion_interval);
    if (range) parts.push(' ', h('span', { class: 'proportion-interval muted', title: '85 % interval of the AI proportion' }, `85 %: ${range}`));
    const odds = formatGradeProbabilities(hip.grade_probabilities);
    if (odds) parts.push(h('div', { class: 'grade-probabilities muted', title: 'Probability of each grade (AI)' }, `Grade probability: ${odds}`));
    const methods = formatMethods(hip.method_proportions);
    if (methods) parts.push(h('div', { class: 'method-proportions muted' }, methods));
    return parts;
  }

  private async saveGrade(hip: Hip, grade: string, reason: string, error: HTMLElement, form: HTMLFormElement): Promise<void> {
    error.hidden = true;
    if (!reason.trim()) {
      error.textContent = 'A reason is required.';
      error.hidden = false;
      return;
    }
    const button = form.querySelector('button');
    if (button) button.disabled = true;
    try {
      await apiFetch(`/api/studies/${this.config.studyId}/grades/`, {
        method: 'POST',
        json: { series_instance_uid: hip.series_instance_uid, side: hip.side, grade, reason: reason.trim() },
      });
      toast(`${sideLabel(hip.side)}: grade set to ${gradeLabel(grade)}`, 'ok');
      await this.refreshDetail();
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 403 ? 'Your role may not change grades.' : err instanceof Error ? err.message : String(err);
      error.hidden = false;
    } finally {
      if (button) button.disabled = false;
    }
  }

  private async refreshDetail(detail?: StudyDetail): Promise<void> {
    this.detail = detail ?? (await this.fetchDetail());
    const s = this.detail.series.find((x) => x.id === this.series?.id);
    if (s) {
      this.series = s;
      const { stack, slices } = stackOrder(this.detail, s);
      // Usually only the results change on a refresh; late slices (the series analysed
      // again) change the stack itself: it is opened again unless a mask edit is unsaved.
      if (stack.length === this.stack.length) {
        this.stack = stack;
        this.stackSlices = slices;
      } else if (!this.viewer?.dirty.size) {
        this.pickSeries(s);
      }
    }
    this.renderHeader();
    this.renderPanel();
  }

  // --- audit ----------------------------------------------------------------------------

  private async loadAudit(): Promise<void> {
    try {
      const events = await apiFetch<AuditEvent[] | { results: AuditEvent[] }>(`/api/studies/${this.config.studyId}/audit/`);
      const list = Array.isArray(events) ? events : events.results;
      for (const e of list) this.addAudit(e, false);
      this.renderAudit();
    } catch (err) {
      byId('audit').replaceChildren(h('li', { class: 'muted' }, `Audit trail unavailable: ${err instanceof Error ? err.message : err}`));
    }
  }

  private addAudit(e: AuditEvent, live: boolean): void {
    const isNew = !this.audit.has(e.id);
    this.audit.set(e.id, e);
    if (live) {
      this.renderAudit(isNew ? e.id : null);
      // Someone else's grade change or mask edit changes the panel too.
      if (isNew && e.action === 'hip.ai_changed') toast('AI changed since your review: the series was analysed again. Your grade and masks were kept.', 'info', 10000);
      if (isNew && !this.busy && /grade|labelmap|mask|revert|ai_changed|review_kept/i.test(e.action)) void this.refreshDetail();
    }
  }

  private renderAudit(flashId: number | null = null): void {
    const host = byId('audit');
    clear(host);
    const events = [...this.audit.values()].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : b.id - a.id));
    byId('audit-count').textContent = String(events.length);
    if (!events.length) host.appendChild(h('li', { class: 'muted' }, 'No events yet.'));
    for (const e of events) {
      host.appendChild(
        h(
          'li',
          { class: `audit-event${e.id === flashId ? ' flash' : ''}`, 'data-id': e.id, 'data-action': e.action },
          h('div', { class: 'audit-head' }, h('strong', { class: 'audit-action' }, e.action.replace(/[._]/g, ' ')), h('time', {}, formatDateTime(e.time))),
          h('div', { class: 'audit-who' }, e.actor ?? 'system', e.object_type ? ` · ${e.object_type}${e.object_id != null ? ` ${e.object_id}` : ''}` : ''),
          describeChange(e.before, e.after),
          e.reason ? h('div', { class: 'audit-why' }, `“${e.reason}”`) : null,
        ),
      );
    }
  }

  // --- mask editing -----------------------------------------------------------------------

  private renderEditState(): void {
    const v = this.viewer;
    const dirty = v?.dirty.size ?? 0;
    const save = byId<HTMLButtonElement>('save-mask');
    save.disabled = dirty === 0 || !this.overlaysReady;
    save.textContent = dirty ? `Save mask (${dirty} slice${dirty === 1 ? '' : 's'})` : 'Save mask';
    byId<HTMLButtonElement>('undo').disabled = !v?.history.canUndo;
    byId<HTMLButtonElement>('redo').disabled = !v?.history.canRedo;
    const edited = this.stack.some((i) => i.labelmap_edited);
    const revert = byId<HTMLButtonElement>('revert-mask');
    revert.disabled = !this.overlaysReady || (!edited && dirty === 0);
    byId('edit-state').textContent = dirty ? 'Unsaved mask edits' : edited ? 'Mask edited by a reader' : 'AI mask';
    byId('edit-state').dataset.state = dirty ? 'dirty' : edited ? 'edited' : 'ai';
  }

  private async saveMask(): Promise<void> {
    const v = this.viewer;
    if (!v || !this.series || v.dirty.size === 0) return;
    const reason = await askReason('Save edited mask', `${v.dirty.size} edited slice(s) will be stored as a new mask version; the AI mask is kept. Areas, proportions and grades are recomputed.`);
    if (reason === null) return;
    this.busy = true;
    try {
      const labelmaps = await Promise.all(
        [...v.dirty].sort((a, b) => a - b).map(async (i) => {
          const size = v.sliceSize(i);
          const data = v.sliceData(i);
          const inst = this.stack[i];
          if (!size || !data || !inst) throw new Error(`slice ${i + 1} has no label map`);
          const png = await encodeGrayPng({ width: size.columns, height: size.rows, data: data.slice() });
          return { sop_instance_uid: inst.sop_instance_uid, frame_number: inst.frame_number ?? null, png_base64: bytesToBase64(png) };
        }),
      );
      const detail = await apiFetch<StudyDetail>(`/api/series/${this.series.id}/labelmaps/`, { method: 'POST', json: { reason, labelmaps } });
      v.dirty.clear();
      v.history.clear();
      await this.refreshDetail(detail && 'series' in detail ? detail : undefined);
      // Show what the server stored, so what is on screen is what was saved.
      v.replaceLabelmaps(await this.fetchLabelmaps('current'));
      toast('Mask saved; proportions and grades recomputed.', 'ok');
    } catch (err) {
      toast(`Saving the mask failed: ${err instanceof Error ? err.message : err}`, 'error', 8000);
    } finally {
      this.busy = false;
      this.renderEditState();
      this.renderSlice();
    }
  }

  private async revertMask(): Promise<void> {
    const v = this.viewer;
    if (!v || !this.series) return;
    const reason = await askReason('Revert to the AI mask', 'Every edited slice of this series goes back to the AI mask; proportions and grades are recomputed.');
    if (reason === null) return;
    this.busy = true;
    try {
      const detail = await apiFetch<StudyDetail>(`/api/series/${this.series.id}/labelmaps/revert/`, { method: 'POST', json: { reason } });
      await this.refreshDetail(detail && 'series' in detail ? detail : undefined);
      v.replaceLabelmaps(await this.fetchLabelmaps('current'));
      toast('Reverted to the AI mask.', 'ok');
    } catch (err) {
      toast(`Revert failed: ${err instanceof Error ? err.message : err}`, 'error', 8000);
    } finally {
      this.busy = false;
      this.renderEditState();
      this.renderSlice();
    }
  }

  // --- toolbar and keys ---------------------------------------------------------------------

  private bindToolbar(): void {
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tool]')) {
      b.addEventListener('click', () => this.setTool(b.dataset.tool as ActiveTool));
    }
    for (const r of document.querySelectorAll<HTMLInputElement>('input[name="edit-label"]')) {
      r.addEventListener('change', () => this.setLabel(r.value === '2' ? 2 : 1));
    }
    const presets = byId<HTMLSelectElement>('wl-preset');
    PRESETS.forEach((p, i) => presets.appendChild(h('option', { value: i }, `${p.key} · ${p.name}`)));
    presets.addEventListener('change', () => this.viewer?.applyPreset(Number(presets.value)));
    byId('invert').addEventListener('click', () => this.viewer?.invert());
    byId('reset').addEventListener('click', () => this.viewer?.reset());
    byId('show-head').addEventListener('change', () => this.applyControls());
    byId('show-necrosis').addEventListener('change', () => this.applyControls());
    byId('opacity').addEventListener('input', () => this.applyControls());
    byId('brush-size').addEventListener('input', () => this.applyControls());
    byId('undo').addEventListener('click', () => void this.undoRedo('undo'));
    byId('redo').addEventListener('click', () => void this.undoRedo('redo'));
    byId('save-mask').addEventListener('click', () => void this.saveMask());
    byId('revert-mask').addEventListener('click', () => void this.revertMask());
    byId('chart').addEventListener('click', this.onChartClick);
    byId('series-picker').addEventListener('change', (e) => {
      const id = Number((e.target as HTMLSelectElement).value);
      const s = this.detail?.series.find((x) => x.id === id);
      if (s) this.pickSeries(s);
    });
    window.addEventListener('beforeunload', (e) => {
      if (this.viewer?.dirty.size) e.preventDefault();
    });
  }

  private applyControls(): void {
    const v = this.viewer;
    if (!v) return;
    const opacity = Number(byId<HTMLInputElement>('opacity').value) / 100;
    byId('opacity-value').textContent = `${Math.round(opacity * 100)} %`;
    const size = Number(byId<HTMLInputElement>('brush-size').value);
    byId('brush-size-value').textContent = `${size} mm`;
    if (!this.overlaysReady) return;
    v.setOpacity(opacity);
    v.setLabelVisible(1, byId<HTMLInputElement>('show-head').checked);
    v.setLabelVisible(2, byId<HTMLInputElement>('show-necrosis').checked);
    v.setBrushSize(size);
  }

  private setTool(tool: ActiveTool): void {
    if (!this.viewer) return;
    if ((tool === 'brush' || tool === 'eraser') && !this.overlaysReady) {
      toast('Masks are not loaded yet.', 'info');
      return;
    }
    this.viewer.setTool(tool);
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tool]')) b.classList.toggle('active', b.dataset.tool === tool);
    byId('viewport-wrap').dataset.tool = tool;
  }

  private setLabel(label: 1 | 2): void {
    this.viewer?.setEditLabel(label);
    for (const r of document.querySelectorAll<HTMLInputElement>('input[name="edit-label"]')) r.checked = r.value === String(label);
  }

  private async undoRedo(which: 'undo' | 'redo'): Promise<void> {
    if (!this.viewer) return;
    const i = await this.viewer.undoRedo(which);
    if (i === null) toast(which === 'undo' ? 'Nothing to undo' : 'Nothing to redo');
    this.renderEditState();
    this.renderSlice();
  }

  private buildHelp(): void {
    const body = byId('help-table');
    for (const s of SHORTCUTS) body.appendChild(h('tr', {}, h('td', {}, h('kbd', {}, s.keys)), h('td', {}, s.description)));
    body.appendChild(h('tr', {}, h('td', {}, h('kbd', {}, 'Wheel')), h('td', {}, 'Scroll slices')));
    body.appendChild(h('tr', {}, h('td', {}, h('kbd', {}, 'Middle / right drag')), h('td', {}, 'Pan / zoom (any tool)')));
  }

  private onKey = (e: KeyboardEvent): void => {
    const action = actionForKey(e);
    if (!action) return;
    if (isTypingTarget(e.target) && action !== 'close') return;
    if (document.querySelector('dialog[open]')) return;
    e.preventDefault();
    runViewerAction(action, {
      viewer: this.viewer,
      sliceCount: this.stack.length,
      setTool: (tool) => this.setTool(tool),
      showPreset: (index) => { byId<HTMLSelectElement>('wl-preset').value = String(index); },
      toggleCheckbox: (id) => this.toggleCheckbox(id),
      stepRange: (id, delta) => this.stepRange(id, delta),
      undoRedo: (which) => this.undoRedo(which),
      setLabel: (label) => this.setLabel(label),
    });
  };

  private toggleCheckbox(id: string): void {
    const c = byId<HTMLInputElement>(id);
    c.checked = !c.checked;
    this.applyControls();
  }

  private stepRange(id: string, delta: number): void {
    const r = byId<HTMLInputElement>(id);
    r.value = String(Number(r.value) + delta);
    this.applyControls();
  }
}

function summarise(value: unknown): string {
  if (value === null || value === undefined) return '—';
  if (typeof value !== 'object') return String(value);
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null && typeof v !== 'object');
  if (!entries.length) return '…';
  return entries
    .slice(0, 4)
    .map(([k, v]) => `${k}: ${typeof v === 'number' && k.includes('proportion') ? formatProportion(v) : String(v)}`)
    .join(', ');
}

function describeChange(before: unknown, after: unknown): HTMLElement | null {
  if ((before === null || before === undefined) && (after === null || after === undefined)) return null;
  return h('div', { class: 'audit-change' }, h('span', { class: 'before' }, summarise(before)), ' → ', h('span', { class: 'after' }, summarise(after)));
}

/** A modal that asks for a reason; resolves to null on cancel. */
function askReason(title: string, text: string): Promise<string | null> {
  const dialog = byId<HTMLDialogElement>('reason-dialog');
  byId('reason-title').textContent = title;
  byId('reason-text').textContent = text;
  const input = byId<HTMLTextAreaElement>('reason-input');
  const error = byId('reason-error');
  input.value = '';
  error.hidden = true;
  dialog.showModal();
  input.focus();
  return new Promise((resolve) => {
    const form = byId<HTMLFormElement>('reason-form');
    const done = (value: string | null): void => {
      form.removeEventListener('submit', onSubmit);
      byId('reason-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      dialog.close();
      resolve(value);
    };
    const onSubmit = (e: Event): void => {
      e.preventDefault();
      if (!input.value.trim()) {
        error.hidden = false;
        return;
      }
      done(input.value.trim());
    };
    const onCancel = (e: Event): void => {
      e.preventDefault();
      done(null);
    };
    form.addEventListener('submit', onSubmit);
    byId('reason-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
  });
}

const page = new StudyPage(readConfig<PageConfig>('study-config'));
(window as unknown as { onfhViewer: StudyPage }).onfhViewer = page;
void page.start();
