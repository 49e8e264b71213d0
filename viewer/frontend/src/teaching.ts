// The teaching case and attempt pages on the study page's viewer (cornerstone.ts): the
// case's de-identified DICOM copies as a Cornerstone stack, the same window/level presets,
// pan, zoom and overlay controls, and the same brush, with which a student marks necrosis.
// Answering, the page shows only the student's own marking (the server gives no reference
// URL before the first attempt); the attempt page toggles between the reference label map
// and the attempt's marking. The marking goes with the answer form as one PNG per marked
// slice (0/1, non-zero = necrosis). Pure rules are in teaching-logic.ts.
import { initCornerstone, StackViewer, type ActiveTool } from './cornerstone';
import { byId, h, readConfig, toast } from './dom';
import { actionForKey, isTypingTarget, SHORTCUTS } from './keyboard';
import { runViewerAction } from './viewer-keys';
import type { EditTool } from './labels';
import { bytesToBase64, decodeLabelPng, encodeGrayPng } from './png';
import { compareLabels, MARKED_AND_REFERENCE, MARKED_ONLY, markedSlices, markingEditLabel, markingToLabels, openingSlice, overlayCaption, overlayViews, parseTeachingConfig, type OverlayView, type TeachingConfig } from './teaching-logic';
import { PRESETS } from './windowing';

interface LabelSlice {
  columns: number;
  rows: number;
  data: Uint8Array;
}

const MARKING_COLOUR: [number, number, number, number] = [74, 163, 255, 255];
const REFERENCE_NECROSIS_COLOUR: [number, number, number, number] = [255, 64, 64, 255];
const COMPARE_COLOURS = { [MARKED_ONLY]: MARKING_COLOUR, [MARKED_AND_REFERENCE]: [255, 214, 0, 255] as const };

class TeachingPage {
  viewer: StackViewer | null = null;
  ready = false;
  view: OverlayView | null = null;
  readonly views: OverlayView[];
  private readonly layers = new Map<OverlayView, (LabelSlice | null)[]>();
  private submitting = false;

  constructor(readonly config: TeachingConfig) {
    this.views = overlayViews(config);
  }

  get editable(): boolean {
    return this.config.mode === 'answer';
  }

  async start(): Promise<void> {
    this.bindToolbar();
    document.addEventListener('keydown', this.onKey);
    document.body.dataset.viewerReady = 'false';
    try {
      await initCornerstone();
      const element = byId<HTMLDivElement>('viewport');
      const viewer = new StackViewer(element);
      this.viewer = viewer;
      viewer.onNewImage(() => this.renderViewportText());
      viewer.onVoiModified(() => this.renderViewportText());
      viewer.onStroke = () => this.renderEditState();
      new ResizeObserver(() => viewer.resize()).observe(element);
      const origin = window.location.origin;
      const imageIds = this.config.images.map((im) => `wadouri:${new URL(im.dicom_url, origin).href}`);
      await viewer.setStack(imageIds, Math.floor(imageIds.length / 2));
      document.body.dataset.renderPath = viewer.renderPath;
      this.renderViewportText();
      const loading = byId('viewer-loading');
      loading.hidden = false;
      loading.textContent = 'Loading slices…';
      // Every slice before the overlays: a label map needs its slice's size.
      await viewer.loadAll((done, total) => (loading.textContent = `Loading slices ${done}/${total}`));
      await this.loadLayers();
      await viewer.enableTools();
      loading.hidden = true;
      this.showView(this.views[0] ?? null);
      const first = this.views[0];
      if (first && this.config.mode !== 'answer') {
        const labels = (this.layers.get(first) ?? []).map((l) => l?.data ?? null);
        await viewer.scrollTo(openingSlice(labels, imageIds.length));
      }
      this.applyControls();
      this.renderEditState();
      this.ready = true;
      document.body.dataset.viewerReady = 'true';
    } catch (err) {
      console.error(err);
      const el = byId('viewer-message');
      el.textContent = `Could not open the case's images: ${err instanceof Error ? err.message : String(err)}`;
      el.hidden = false;
      el.classList.add('error');
    }
  }

  /** The reference and marking label maps the page may show (none before the first attempt). */
  private async loadLayers(): Promise<void> {
    const fetchPng = async (url: string | null): Promise<LabelSlice | null> => {
      if (!url) return null;
      const response = await fetch(url, { credentials: 'same-origin', cache: 'no-store' });
      if (!response.ok) return null;
      const image = await decodeLabelPng(new Uint8Array(await response.arrayBuffer()));
      return { columns: image.width, rows: image.height, data: image.data };
    };
    for (const view of this.views) {
      if (view === 'reference') {
        this.layers.set(view, await Promise.all(this.config.images.map((im) => fetchPng(im.reference_url))));
      } else if (view === 'compare') {
        const reference = this.layers.get('reference') ?? [];
        const marking = this.layers.get('marking') ?? [];
        this.layers.set(
          view,
          this.config.images.map((im, i) => {
            const ref = reference[i] ?? null;
            const mine = marking[i] ?? null;
            if (!ref && !mine) return null;
            const size = im.rows * im.columns;
            const fits = (l: LabelSlice | null): Uint8Array | null => (l && l.data.length === size ? l.data : null);
            return { columns: im.columns, rows: im.rows, data: compareLabels(fits(ref), fits(mine), size) };
          }),
        );
      } else if (this.config.mode === 'result') {
        const masks = await Promise.all(this.config.images.map((im) => fetchPng(im.mask_url)));
        this.layers.set(
          view,
          masks.map((m) => (m ? { ...m, data: markingToLabels(m.data) } : null)),
        );
      } else {
        // The student's marking while answering starts empty, at each slice's size.
        this.layers.set(view, this.config.images.map(() => null));
      }
    }
  }

  /** Show one overlay (the toolbar's radio buttons); null: none. */
  showView(view: OverlayView | null): void {
    const v = this.viewer;
    if (!v || (view !== null && !this.views.includes(view))) return;
    this.view = view;
    if (view) {
      v.setNecrosisColour(view === 'marking' ? MARKING_COLOUR : REFERENCE_NECROSIS_COLOUR, view === 'compare' ? COMPARE_COLOURS : {});
      v.setLabelmaps(this.layers.get(view) ?? []);
    }
    for (const r of document.querySelectorAll<HTMLInputElement>('input[name="overlay-view"]')) r.checked = r.value === view;
    byId('ov-tr').textContent = overlayCaption(view, this.config.mode);
    this.renderViewportText();
  }

  private renderViewportText(): void {
    const v = this.viewer;
    if (!v) return;
    const i = v.sliceIndex;
    const wl = v.windowLevel();
    byId('ov-tl').textContent = `Image ${i + 1} / ${v.sliceCount}`;
    byId('ov-bl').textContent = wl ? `W ${Math.round(wl.width)}  L ${Math.round(wl.center)}\nZoom ${v.zoomPercent()} %` : '';
    byId('slice-index').textContent = `${i + 1} / ${v.sliceCount}`;
  }

  private renderEditState(): void {
    if (!this.editable) return;
    const v = this.viewer;
    const marked = this.marked().length;
    byId<HTMLButtonElement>('undo').disabled = !v?.history.canUndo;
    byId<HTMLButtonElement>('redo').disabled = !v?.history.canRedo;
    byId('edit-state').textContent = marked ? `Necrosis marked on ${marked} slice${marked === 1 ? '' : 's'}` : 'Nothing marked';
    byId('edit-state').dataset.state = marked ? 'dirty' : 'ai';
  }

  /** The slices the student marked (test hook too). */
  marked(): ReturnType<typeof markedSlices> {
    const v = this.viewer;
    if (!v || !this.ready || this.view !== 'marking') return [];
    // Slices never drawn on have no label map yet: nothing marked there.
    return markedSlices(this.config.images, (i) => (v.sliceSize(i) ? v.sliceData(i) : null));
  }

  // --- the answer form --------------------------------------------------------------

  private onSubmit = (e: SubmitEvent): void => {
    const form = e.target as HTMLFormElement;
    if (!this.editable) return;
    if (this.submitting) {
      e.preventDefault(); // sent already (or its marking is being encoded)
      return;
    }
    let marked: ReturnType<typeof markedSlices>;
    try {
      marked = this.marked();
    } catch (err) {
      e.preventDefault();
      toast(`Your marking could not be read: ${err instanceof Error ? err.message : err}`, 'error', 8000);
      return;
    }
    this.submitting = true;
    if (!marked.length) return; // the grades alone; the browser submits the form
    e.preventDefault();
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    if (button) button.disabled = true;
    void Promise.all(
      marked.map(async (m) => ({
        image_id: m.imageId,
        png_base64: bytesToBase64(await encodeGrayPng({ width: m.columns, height: m.rows, data: m.mask })),
      })),
    )
      .then((masks) => {
        byId<HTMLInputElement>('masks-json').value = JSON.stringify(masks);
        // form.submit() sends the form without another submit event.
        form.submit();
      })
      .catch((err: unknown) => {
        this.submitting = false;
        if (button) button.disabled = false;
        toast(`Your marking could not be sent: ${err instanceof Error ? err.message : err}`, 'error', 8000);
      });
  };

  // --- toolbar and keys -------------------------------------------------------------

  private bindToolbar(): void {
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tool]')) {
      b.addEventListener('click', () => this.setTool(b.dataset.tool as ActiveTool));
    }
    const presets = byId<HTMLSelectElement>('wl-preset');
    PRESETS.forEach((p, i) => presets.appendChild(h('option', { value: i }, `${p.key} · ${p.name}`)));
    presets.addEventListener('change', () => this.viewer?.applyPreset(Number(presets.value)));
    byId('invert').addEventListener('click', () => this.viewer?.invert());
    byId('reset').addEventListener('click', () => this.viewer?.reset());
    for (const r of document.querySelectorAll<HTMLInputElement>('input[name="overlay-view"]')) {
      r.addEventListener('change', () => this.showView(r.value as OverlayView));
    }
    for (const id of ['show-head', 'show-necrosis', 'opacity', 'brush-size']) {
      document.getElementById(id)?.addEventListener('input', () => this.applyControls());
      document.getElementById(id)?.addEventListener('change', () => this.applyControls());
    }
    document.getElementById('undo')?.addEventListener('click', () => void this.undoRedo('undo'));
    document.getElementById('redo')?.addEventListener('click', () => void this.undoRedo('redo'));
    const help = byId('help-table');
    // A student's marking has one label (no H / N); the read-only pages have no brush.
    const hidden = this.editable ? ['labelHead'] : ['labelHead', 'toolBrush', 'toolEraser', 'brushSmaller', 'undo', 'redo'];
    const keys = SHORTCUTS.filter((s) => !hidden.includes(s.action));
    for (const s of keys) help.appendChild(h('tr', {}, h('td', {}, h('kbd', {}, s.keys)), h('td', {}, s.description)));
    help.appendChild(h('tr', {}, h('td', {}, h('kbd', {}, 'Wheel')), h('td', {}, 'Scroll slices')));
    document.getElementById('answer-form')?.addEventListener('submit', this.onSubmit);
    window.addEventListener('beforeunload', (e) => {
      if (this.editable && !this.submitting && this.viewer?.history.canUndo) e.preventDefault();
    });
  }

  private applyControls(): void {
    const v = this.viewer;
    const opacityInput = document.getElementById('opacity') as HTMLInputElement | null;
    const opacity = opacityInput ? Number(opacityInput.value) / 100 : 0.45;
    const opacityText = document.getElementById('opacity-value');
    if (opacityText) opacityText.textContent = `${Math.round(opacity * 100)} %`;
    const sizeInput = document.getElementById('brush-size') as HTMLInputElement | null;
    const sizeText = document.getElementById('brush-size-value');
    if (sizeInput && sizeText) sizeText.textContent = `${sizeInput.value} mm`;
    if (!v || !v.overlaysLoaded) return;
    v.setOpacity(opacity);
    const head = document.getElementById('show-head') as HTMLInputElement | null;
    const necrosis = document.getElementById('show-necrosis') as HTMLInputElement | null;
    v.setLabelVisible(1, head ? head.checked : true);
    v.setLabelVisible(2, necrosis ? necrosis.checked : true);
    if (sizeInput) v.setBrushSize(Number(sizeInput.value));
  }

  private setTool(tool: ActiveTool): void {
    const v = this.viewer;
    if (!v) return;
    if (tool === 'brush' || tool === 'eraser') {
      if (!this.editable) return;
      if (!this.ready) {
        toast('The slices are still loading.', 'info');
        return;
      }
      v.setEditLabel(markingEditLabel(tool as EditTool));
    }
    v.setTool(tool);
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-tool]')) b.classList.toggle('active', b.dataset.tool === tool);
    byId('viewport-wrap').dataset.tool = tool;
  }

  private async undoRedo(which: 'undo' | 'redo'): Promise<void> {
    if (!this.viewer || !this.editable) return;
    const i = await this.viewer.undoRedo(which);
    if (i === null) toast(which === 'undo' ? 'Nothing to undo' : 'Nothing to redo');
    this.renderEditState();
  }

  private toggleCheckbox(id: string): void {
    const c = document.getElementById(id) as HTMLInputElement | null;
    if (!c) return;
    c.checked = !c.checked;
    this.applyControls();
  }

  private stepRange(id: string, delta: number): void {
    const r = document.getElementById(id) as HTMLInputElement | null;
    if (!r) return;
    r.value = String(Number(r.value) + delta);
    this.applyControls();
  }

  private onKey = (e: KeyboardEvent): void => {
    const action = actionForKey(e);
    if (!action) return;
    if (isTypingTarget(e.target) && action !== 'close') return;
    // The answer form's radio buttons keep their arrow keys.
    if (e.target instanceof Element && e.target.closest('#answer-form') && action !== 'close') return;
    const handled = runViewerAction(action, {
      viewer: this.viewer,
      sliceCount: this.config.images.length,
      setTool: (tool) => this.setTool(tool),
      showPreset: (index) => { byId<HTMLSelectElement>('wl-preset').value = String(index); },
      toggleCheckbox: (id) => this.toggleCheckbox(id),
      stepRange: (id, delta) => this.stepRange(id, delta),
      undoRedo: (which) => this.undoRedo(which),
      // no setLabel: a student's marking has only necrosis
    });
    if (handled) e.preventDefault();
  };
}

const page = new TeachingPage(parseTeachingConfig(readConfig<unknown>('teaching-config')));
(window as unknown as { onfhTeaching: TeachingPage }).onfhTeaching = page;
void page.start();
