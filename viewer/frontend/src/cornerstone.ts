// Cornerstone3D wiring: one stack viewport and its navigation tools. The head (1) and
// necrosis (2) label maps decoded from the portal's PNGs are kept here, drawn over each
// render by the viewer (overlay.ts) and edited by its own brush (brush.ts), so that they
// work on Cornerstone's CPU rendering path as well as on WebGL (see rendering.ts).
// Facts this relies on are in shared/VIEWER-NOTES.md (init order).
import * as core from '@cornerstonejs/core';
import type * as ToolsModule from '@cornerstonejs/tools';
// The loader's imageLoader entry: its main index also bundles every codec's decoder for the
// main thread, which the page never uses (decoding runs in the loader's worker).
import dicomImageLoader from '@cornerstonejs/dicom-image-loader/imageLoader';
import { utilities as metadataUtilities } from '@cornerstonejs/metadata';
import { stampDisc, stampSegment, type BrushShape } from './brush';
import { applyStrokeRules, countLabels, EditHistory, sameLabels, type EditLabel, type EditTool } from './labels';
import { applyAffine, imageToCanvasAffine, invertAffine, labelmapToRgba, scaleAffine, zoomRelativeToFit, type Affine, type OverlayStyle, type Rgba } from './overlay';
import { chooseRenderPath, type RenderPath } from './rendering';
import { PRESETS, voiRangeFromWindow, windowFromVoiRange, type WindowLevel } from './windowing';

const { RenderingEngine, Enums: CoreEnums, imageLoader, utilities: coreUtils } = core;
// The tools package (1.1 MB of JavaScript) is loaded after the first image is drawn so
// that the image appears sooner. The viewer uses it for window/level, pan, zoom and
// wheel scrolling only.
type Tools = typeof ToolsModule;
let toolsModule: Promise<Tools> | null = null;

function loadTools(): Promise<Tools> {
  if (!toolsModule) {
    toolsModule = import('@cornerstonejs/tools').then((tools) => {
      tools.init();
      for (const T of [tools.WindowLevelTool, tools.PanTool, tools.ZoomTool, tools.StackScrollTool]) tools.addTool(T);
      return tools;
    });
  }
  return toolsModule;
}

export const HEAD_COLOUR: [number, number, number, number] = [46, 204, 113, 255];
export const NECROSIS_COLOUR: [number, number, number, number] = [255, 64, 64, 255];

export type NavTool = 'wl' | 'pan' | 'zoom';
export type ActiveTool = NavTool | EditTool;

const TOOL_GROUP_ID = 'onfh-tools';
const OVERLAY_CACHE_SLICES = 24;

let initialised: Promise<void> | null = null;
let renderPath: RenderPath = 'gpu';

export function initCornerstone(): Promise<void> {
  if (!initialised) {
    initialised = (async () => {
      // One WebGL context is all a single viewport uses (the default creates 7 up front).
      const defaults = core.getConfiguration();
      core.init({ ...defaults, rendering: { ...defaults.rendering, webGlContextCount: 1 } });
      // init() has probed WebGL already; a software rasterizer means the CPU path.
      renderPath = chooseRenderPath(core.getRenderingCapabilities(), new URLSearchParams(window.location.search).get('render'));
      if (renderPath === 'cpu') core.setUseCPURendering(true, false);
      // Two cores on the lab machines: one decode worker is enough and leaves room.
      dicomImageLoader.init({ maxWebWorkers: Math.max(1, Math.min(2, Math.floor((navigator.hardwareConcurrency || 2) / 2))) });
    })();
  }
  return initialised;
}

export interface StrokeResult {
  sliceIndex: number;
  corrected: number;
}

/** One slice's label map: values 0/1/2, row-major, `columns` x `rows`. */
interface SliceLabels {
  columns: number;
  rows: number;
  data: Uint8Array;
  /** The slice's overlay as drawn last, rebuilt when `drawnVersion` falls behind. */
  overlay: HTMLCanvasElement | null;
  version: number;
  drawnVersion: number;
}

interface Stroke {
  sliceIndex: number;
  before: Uint8Array;
  last: [number, number];
  tool: EditTool;
  label: EditLabel;
}

/** Everything the page needs from Cornerstone, behind a small surface. */
export class StackViewer {
  readonly engine: core.RenderingEngine;
  readonly viewportId = 'onfh-stack';
  readonly history = new EditHistory();
  /** Slices whose label map differs from what the server has. */
  readonly dirty = new Set<number>();
  imageIds: string[] = [];
  activeTool: ActiveTool = 'wl';
  editLabel: EditLabel = 1;
  brushSizeMm = 6;
  private labels: (SliceLabels | null)[] = [];
  private hasLabels = false;
  private styleVersion = 0;
  /** Slices whose overlay canvas is kept, oldest first. */
  private overlayCache: SliceLabels[] = [];
  private stroke: Stroke | null = null;
  private pointer: [number, number] | null = null;
  private readonly cursor: HTMLDivElement;
  private storedRange: { min: number; max: number } | null = null;
  private defaultVoi: { lower: number; upper: number } | null = null;
  private t: Tools | null = null;
  private toolGroup: ToolsModule.Types.IToolGroup | null = null;
  private opacity = 0.45;
  private visible = { head: true, necrosis: true };
  private extraColours: Readonly<Record<number, Rgba>> = {};
  private colours: { head: readonly [number, number, number, number]; necrosis: readonly [number, number, number, number] } = { head: HEAD_COLOUR, necrosis: NECROSIS_COLOUR };
  onStroke: (r: StrokeResult) => void = () => {};

  constructor(readonly element: HTMLDivElement) {
    this.engine = new RenderingEngine('onfh-engine');
    this.engine.enableElement({
      viewportId: this.viewportId,
      type: CoreEnums.ViewportType.STACK,
      element,
      defaultOptions: { background: [0, 0, 0] },
    });
    // Drawn after every render, before the browser paints: the overlay is part of the frame.
    element.addEventListener(CoreEnums.Events.IMAGE_RENDERED, this.drawOverlay);
    element.addEventListener('contextmenu', (e) => e.preventDefault());
    element.addEventListener('mousedown', this.onMouseDown, true);
    element.addEventListener('mousemove', this.onHover);
    element.addEventListener('mouseleave', this.onLeave);
    window.addEventListener('mousemove', this.onMouseMove, true);
    window.addEventListener('mouseup', this.onMouseUp, true);
    this.cursor = document.createElement('div');
    this.cursor.className = 'brush-cursor';
    this.cursor.hidden = true;
    element.appendChild(this.cursor);
  }

  /** 'cpu' or 'gpu' (see rendering.ts). */
  get renderPath(): RenderPath {
    return renderPath;
  }

  /** Load the tools package and bind the mouse (after the first image is on screen). */
  async enableTools(): Promise<void> {
    if (this.t) return;
    const t = await loadTools();
    // The element was enabled before the tools package was there, so the tools missed its
    // ELEMENT_ENABLED event: register it now (mouse listeners and the SVG layer).
    t.store.addEnabledElement({
      detail: { element: this.element, viewportId: this.viewportId, renderingEngineId: this.engine.id },
    } as unknown as Parameters<typeof t.store.addEnabledElement>[0]);
    t.ToolGroupManager.destroyToolGroup(TOOL_GROUP_ID);
    const group = t.ToolGroupManager.createToolGroup(TOOL_GROUP_ID);
    if (!group) throw new Error('could not create the tool group');
    group.addTool(t.WindowLevelTool.toolName);
    group.addTool(t.PanTool.toolName);
    group.addTool(t.ZoomTool.toolName);
    group.addTool(t.StackScrollTool.toolName);
    group.addViewport(this.viewportId, this.engine.id);
    this.t = t;
    this.toolGroup = group;
    this.setTool(this.activeTool);
  }

  get viewport(): core.Types.IStackViewport {
    return this.engine.getViewport(this.viewportId) as core.Types.IStackViewport;
  }

  get sliceIndex(): number {
    return this.viewport.getCurrentImageIdIndex();
  }

  get sliceCount(): number {
    return this.imageIds.length;
  }

  /** Show the stack; resolves when the first image is on screen. */
  async setStack(imageIds: string[], startIndex: number): Promise<void> {
    this.imageIds = imageIds;
    this.labels = [];
    this.overlayCache = [];
    this.hasLabels = false;
    this.history.clear();
    this.dirty.clear();
    await this.viewport.setStack(imageIds, Math.min(Math.max(0, startIndex), imageIds.length - 1));
    this.viewport.render();
    const props = this.viewport.getProperties();
    this.defaultVoi = props.voiRange ? { ...props.voiRange } : null;
  }

  /**
   * Hand the image loader a DICOM file fetched already (the opening slice, see
   * study-prefetch.ts): the `wadouri:` image of this URL is then read from these bytes (the
   * loader's naturalized-metadata cache, where it would put the file itself) instead of
   * being requested again.
   */
  async provideFile(url: string, bytes: ArrayBuffer): Promise<void> {
    try {
      await metadataUtilities.addDicomPart10Instance(`wadouri:${url}`, bytes);
    } catch (err) {
      // Not a file the loader can read: it requests the URL itself and reports the error.
      console.warn('prefetched DICOM file not used', err);
    }
  }

  /** Load every slice ahead of scrolling and note the stored-value range (for the presets). */
  async loadAll(onProgress?: (done: number, total: number) => void): Promise<void> {
    let done = 0;
    let min = Infinity;
    let max = -Infinity;
    await Promise.all(
      this.imageIds.map(async (id) => {
        const image = await imageLoader.loadAndCacheImage(id);
        min = Math.min(min, image.minPixelValue);
        max = Math.max(max, image.maxPixelValue);
        onProgress?.(++done, this.imageIds.length);
      }),
    );
    if (Number.isFinite(min) && Number.isFinite(max)) this.storedRange = { min, max };
  }

  /** Set every slice's label map; `labelmaps[i]` fills slice i (null: none, shown empty). */
  setLabelmaps(labelmaps: ({ columns: number; rows: number; data: Uint8Array } | null)[]): void {
    this.overlayCache = [];
    this.labels = this.imageIds.map((_, i) => {
      const lm = labelmaps[i];
      if (!lm || lm.data.length !== lm.columns * lm.rows) return null;
      return { columns: lm.columns, rows: lm.rows, data: lm.data.slice(), overlay: null, version: 0, drawnVersion: -1 };
    });
    this.hasLabels = true;
    this.history.clear();
    this.dirty.clear();
    this.viewport.render();
  }

  /** Whether label maps are loaded (overlays and editing are available). */
  get overlaysLoaded(): boolean {
    return this.hasLabels;
  }

  /** Replace every slice's values (after a revert or a reload from the server). */
  replaceLabelmaps(labelmaps: ({ columns: number; rows: number; data: Uint8Array } | null)[]): void {
    labelmaps.forEach((lm, i) => {
      const slice = this.slice(i);
      if (!slice) return;
      if (lm && lm.data.length === slice.data.length) slice.data.set(lm.data);
      else slice.data.fill(0);
      slice.version++;
    });
    this.history.clear();
    this.dirty.clear();
    this.viewport.render();
  }

  /** The live label values of slice i (the viewer's own array: copy before keeping). */
  sliceData(i: number): Uint8Array | null {
    return this.slice(i)?.data ?? null;
  }

  sliceSize(i: number): { rows: number; columns: number } | null {
    const s = this.slice(i);
    return s ? { rows: s.rows, columns: s.columns } : null;
  }

  /** Slice i's label map, created empty at the image's size when the server had none. */
  private slice(i: number): SliceLabels | null {
    if (!this.hasLabels || i < 0 || i >= this.imageIds.length) return null;
    let s = this.labels[i] ?? null;
    if (!s) {
      const id = this.imageIds[i];
      const plane = id ? (core.metaData.get('imagePlaneModule', id) as { rows?: number; columns?: number } | undefined) : undefined;
      if (!plane?.rows || !plane.columns) return null;
      s = { columns: plane.columns, rows: plane.rows, data: new Uint8Array(plane.columns * plane.rows), overlay: null, version: 0, drawnVersion: -1 };
      this.labels[i] = s;
    }
    return s;
  }

  private writeSlice(i: number, values: Uint8Array): void {
    const s = this.slice(i);
    if (!s) return;
    if (values.length === s.data.length) s.data.set(values);
    else s.data.fill(0);
    this.modified(i);
  }

  private modified(i: number): void {
    const s = this.labels[i];
    if (s) s.version++;
    if (i === this.sliceIndex) this.viewport.render();
  }

  countsOnSlice(i: number): { head: number; necrosis: number } {
    const data = this.sliceData(i);
    return data ? countLabels(data) : { head: 0, necrosis: 0 };
  }

  // --- overlay ------------------------------------------------------------------------

  /** Image (column, row) to canvas CSS pixels on the current slice; null before an image is shown. */
  private imageToCanvas(): Affine | null {
    const id = this.imageIds[this.sliceIndex];
    const s = this.labels[this.sliceIndex];
    const plane = id ? (core.metaData.get('imagePlaneModule', id) as { rows?: number; columns?: number } | undefined) : undefined;
    const columns = s?.columns ?? plane?.columns;
    const rows = s?.rows ?? plane?.rows;
    if (!id || !columns || !rows) return null;
    try {
      const at = (c: number, r: number): [number, number] => {
        const p = this.viewport.worldToCanvas(coreUtils.imageToWorldCoords(id, [c, r]) as core.Types.Point3);
        return [p[0], p[1]];
      };
      return imageToCanvasAffine(at(0, 0), at(columns, 0), at(0, rows), columns, rows);
    } catch {
      return null;
    }
  }

  private style(): OverlayStyle {
    return {
      headColour: this.colours.head,
      necrosisColour: this.colours.necrosis,
      fillAlpha: this.opacity,
      outlineAlpha: 0.9,
      showHead: this.visible.head,
      showNecrosis: this.visible.necrosis,
      extraColours: this.extraColours,
    };
  }

  private overlayCanvas(s: SliceLabels): HTMLCanvasElement {
    const version = s.version * 65536 + this.styleVersion;
    if (s.overlay && s.drawnVersion === version) return s.overlay;
    let canvas = s.overlay;
    if (!canvas) {
      // Keep only the last slices' overlays built: a long series of large images
      // would otherwise hold an RGBA copy of every slice.
      this.overlayCache.push(s);
      while (this.overlayCache.length > OVERLAY_CACHE_SLICES) {
        const old = this.overlayCache.shift();
        if (old && old !== s) {
          canvas = old.overlay;
          old.overlay = null;
          old.drawnVersion = -1;
        }
      }
      canvas ??= document.createElement('canvas');
    }
    canvas.width = s.columns;
    canvas.height = s.rows;
    const ctx = canvas.getContext('2d');
    if (ctx) {
      const img = ctx.createImageData(s.columns, s.rows);
      labelmapToRgba(s.data, s.columns, s.rows, this.style(), img.data);
      ctx.putImageData(img, 0, 0);
    }
    s.overlay = canvas;
    s.drawnVersion = version;
    return canvas;
  }

  private drawOverlay = (): void => {
    if (!this.hasLabels) return;
    const s = this.labels[this.sliceIndex];
    const canvas = this.viewport.canvas;
    if (!s || !canvas.clientWidth) return;
    const m = this.imageToCanvas();
    const ctx = canvas.getContext('2d');
    if (!m || !ctx) return;
    const overlay = this.overlayCanvas(s);
    ctx.save();
    ctx.setTransform(...scaleAffine(m, canvas.width / canvas.clientWidth));
    // Label pixels stay square at any zoom, as a labelmap does.
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(overlay, 0, 0);
    ctx.restore();
  };

  // --- navigation -------------------------------------------------------------------

  async scrollTo(index: number): Promise<void> {
    const n = this.sliceCount;
    if (n === 0) return;
    const i = Math.min(n - 1, Math.max(0, index));
    if (i !== this.sliceIndex) await this.viewport.setImageIdIndex(i);
  }

  scrollBy(delta: number): Promise<void> {
    return this.scrollTo(this.sliceIndex + delta);
  }

  reset(): void {
    this.viewport.resetCamera();
    this.viewport.resetProperties();
    if (this.defaultVoi) this.viewport.setProperties({ voiRange: { ...this.defaultVoi } });
    this.viewport.render();
  }

  invert(): void {
    const props = this.viewport.getProperties();
    this.viewport.setProperties({ invert: !props.invert });
    this.viewport.render();
  }

  applyPreset(index: number): void {
    const preset = PRESETS[index];
    if (!preset) return;
    if (!preset.compute || !this.storedRange) {
      if (this.defaultVoi) this.viewport.setProperties({ voiRange: { ...this.defaultVoi } });
    } else {
      const wl = preset.compute(this.storedRange.min, this.storedRange.max);
      this.viewport.setProperties({ voiRange: voiRangeFromWindow(wl) });
    }
    this.viewport.render();
  }

  windowLevel(): WindowLevel | null {
    const range = this.viewport.getProperties().voiRange;
    return range ? windowFromVoiRange(range) : null;
  }

  /** Magnification in % of the image fitting the viewport, the same on both rendering paths. */
  zoomPercent(): number {
    const m = this.imageToCanvas();
    const id = this.imageIds[this.sliceIndex];
    const plane = id ? (core.metaData.get('imagePlaneModule', id) as { rows?: number; columns?: number } | undefined) : undefined;
    const spacing = this.pixelSpacing();
    if (!m || !plane?.rows || !plane.columns || !spacing) return 100;
    const zoom = zoomRelativeToFit(m, plane.columns, plane.rows, spacing.mmPerColumn, spacing.mmPerRow, this.element.clientWidth, this.element.clientHeight);
    return Math.round(zoom * 100);
  }

  // --- tools ------------------------------------------------------------------------

  private bindNavigation(primary: NavTool | null): void {
    const g = this.toolGroup;
    const t = this.t;
    if (!g || !t) return;
    const { MouseBindings } = t.Enums;
    const names: Record<NavTool, string> = { wl: t.WindowLevelTool.toolName, pan: t.PanTool.toolName, zoom: t.ZoomTool.toolName };
    // Middle drag pans and right drag zooms whatever the left button does, as in OHIF.
    const bindings: Record<NavTool, { mouseButton: number }[]> = {
      wl: [],
      pan: [{ mouseButton: MouseBindings.Auxiliary }],
      zoom: [{ mouseButton: MouseBindings.Secondary }],
    };
    if (primary) bindings[primary].push({ mouseButton: MouseBindings.Primary });
    for (const key of ['wl', 'pan', 'zoom'] as NavTool[]) {
      if (bindings[key].length) g.setToolActive(names[key], { bindings: bindings[key] });
      else g.setToolPassive(names[key]);
    }
    g.setToolActive(t.StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  }

  setTool(tool: ActiveTool): void {
    this.activeTool = tool;
    // The brush and eraser take the left button; navigation keeps the others.
    this.bindNavigation(tool === 'wl' || tool === 'pan' || tool === 'zoom' ? tool : null);
    this.updateCursor();
  }

  setEditLabel(label: EditLabel): void {
    this.editLabel = label;
  }

  setBrushSize(mm: number): void {
    this.brushSizeMm = Math.min(40, Math.max(1, mm));
    this.updateCursor();
  }

  // --- overlay style ------------------------------------------------------------------

  setOpacity(alpha: number): void {
    const opacity = Math.min(1, Math.max(0, alpha));
    if (opacity === this.opacity) return;
    this.opacity = opacity;
    this.restyle();
  }

  setLabelVisible(label: EditLabel, visible: boolean): void {
    const key = label === 1 ? 'head' : 'necrosis';
    if (this.visible[key] === visible) return;
    this.visible[key] = visible;
    this.restyle();
  }

  /** The necrosis colour (the teaching pages draw a student's own marking in another) and
   *  the colours of display-only values above 2 (their comparison). */
  setNecrosisColour(colour: readonly [number, number, number, number], extra: Readonly<Record<number, Rgba>> = {}): void {
    this.colours = { ...this.colours, necrosis: colour };
    this.extraColours = extra;
    this.restyle();
  }

  private restyle(): void {
    this.styleVersion = (this.styleVersion + 1) % 65536;
    if (this.hasLabels) this.viewport.render();
  }

  // --- editing ------------------------------------------------------------------------

  private isEditing(): boolean {
    return this.activeTool === 'brush' || this.activeTool === 'eraser';
  }

  /** Pixel size (mm) of the current slice along a row and along a column. */
  private pixelSpacing(): { mmPerColumn: number; mmPerRow: number } | null {
    const id = this.imageIds[this.sliceIndex];
    if (!id) return null;
    try {
      const world = (c: number, r: number): number[] => coreUtils.imageToWorldCoords(id, [c, r]) ?? [0, 0, 0];
      const origin = world(0, 0);
      const dist = (p: number[]): number => Math.hypot(p[0]! - origin[0]!, p[1]! - origin[1]!, p[2]! - origin[2]!);
      return { mmPerColumn: dist(world(1, 0)) || 1, mmPerRow: dist(world(0, 1)) || 1 };
    } catch {
      return null;
    }
  }

  /** Brush radii in pixels of the current slice, and the slice's size. */
  private brushShape(s: SliceLabels): BrushShape | null {
    const spacing = this.pixelSpacing();
    if (!spacing) return null;
    return { columns: s.columns, rows: s.rows, radiusX: this.brushSizeMm / spacing.mmPerColumn, radiusY: this.brushSizeMm / spacing.mmPerRow };
  }

  /** The image point (column, row) under a mouse event, on the current slice. */
  private eventToImage(e: MouseEvent): [number, number] | null {
    const m = this.imageToCanvas();
    const inv = m ? invertAffine(m) : null;
    if (!inv) return null;
    const rect = this.element.getBoundingClientRect();
    return applyAffine(inv, e.clientX - rect.left, e.clientY - rect.top);
  }

  private onMouseDown = (e: MouseEvent): void => {
    if (!this.isEditing() || e.button !== 0 || !this.hasLabels) return;
    const i = this.sliceIndex;
    const s = this.slice(i);
    const p = this.eventToImage(e);
    const shape = s ? this.brushShape(s) : null;
    if (!s || !p || !shape) return;
    e.preventDefault();
    const tool: EditTool = this.activeTool === 'eraser' ? 'eraser' : 'brush';
    this.stroke = { sliceIndex: i, before: s.data.slice(), last: p, tool, label: this.editLabel };
    if (stampDisc(s.data, this.stroke.before, shape, p[0], p[1], tool, this.editLabel)) this.modified(i);
  };

  private onMouseMove = (e: MouseEvent): void => {
    const stroke = this.stroke;
    if (!stroke) return;
    if (stroke.sliceIndex !== this.sliceIndex) return;
    const s = this.slice(stroke.sliceIndex);
    const p = this.eventToImage(e);
    const shape = s ? this.brushShape(s) : null;
    if (!s || !p || !shape) return;
    if (stampSegment(s.data, stroke.before, shape, stroke.last, p, stroke.tool, stroke.label)) this.modified(stroke.sliceIndex);
    stroke.last = p;
  };

  private onMouseUp = (): void => {
    const stroke = this.stroke;
    if (!stroke) return;
    this.stroke = null;
    this.finishStroke(stroke);
  };

  private finishStroke(stroke: Stroke): void {
    const live = this.sliceData(stroke.sliceIndex);
    if (!live) return;
    const after = live.slice();
    // The brush already paints by these rules; this is the guard before anything is kept.
    const corrected = applyStrokeRules(stroke.before, after, stroke.tool, stroke.label);
    if (corrected > 0) {
      live.set(after);
      this.modified(stroke.sliceIndex);
    }
    if (sameLabels(stroke.before, after)) return;
    this.history.push({ sliceIndex: stroke.sliceIndex, before: stroke.before, after });
    this.dirty.add(stroke.sliceIndex);
    this.onStroke({ sliceIndex: stroke.sliceIndex, corrected });
  }

  // The brush outline follows the mouse (a DOM circle: no re-render on hover).
  private onHover = (e: MouseEvent): void => {
    const rect = this.element.getBoundingClientRect();
    this.pointer = [e.clientX - rect.left, e.clientY - rect.top];
    this.updateCursor();
  };

  private onLeave = (): void => {
    this.pointer = null;
    this.updateCursor();
  };

  private updateCursor(): void {
    const s = this.hasLabels ? this.slice(this.sliceIndex) : null;
    const shape = s ? this.brushShape(s) : null;
    const m = shape ? this.imageToCanvas() : null;
    if (!this.isEditing() || !this.pointer || !shape || !m) {
      this.cursor.hidden = true;
      return;
    }
    // Radii on screen: the image axes' lengths per pixel times the radii in pixels.
    const rx = Math.hypot(m[0], m[1]) * shape.radiusX;
    const ry = Math.hypot(m[2], m[3]) * shape.radiusY;
    const style = this.cursor.style;
    style.left = `${this.pointer[0] - rx}px`;
    style.top = `${this.pointer[1] - ry}px`;
    style.width = `${2 * rx}px`;
    style.height = `${2 * ry}px`;
    this.cursor.dataset.tool = this.activeTool;
    this.cursor.hidden = false;
  }

  /** Undo or redo one stroke; returns the slice it touched (the view jumps there). */
  async undoRedo(which: 'undo' | 'redo'): Promise<number | null> {
    const entry = which === 'undo' ? this.history.undo() : this.history.redo();
    if (!entry) return null;
    this.writeSlice(entry.sliceIndex, which === 'undo' ? entry.before : entry.after);
    this.dirty.add(entry.sliceIndex);
    await this.scrollTo(entry.sliceIndex);
    return entry.sliceIndex;
  }

  /** Test and screenshot hook: canvas pixel (CSS px) of image column/row on the current slice. */
  imagePointToCanvas(column: number, row: number): [number, number] | null {
    const id = this.imageIds[this.sliceIndex];
    if (!id) return null;
    const world = coreUtils.imageToWorldCoords(id, [column, row]);
    if (!world) return null;
    const [x, y] = this.viewport.worldToCanvas(world);
    return [x, y];
  }

  resize(): void {
    this.engine.resize(true, true);
  }

  onNewImage(listener: (index: number) => void): void {
    this.element.addEventListener(CoreEnums.Events.STACK_NEW_IMAGE, ((evt: CustomEvent<{ imageIdIndex: number }>) => {
      listener(evt.detail.imageIdIndex);
    }) as EventListener);
  }

  onRendered(listener: () => void): void {
    this.element.addEventListener(CoreEnums.Events.IMAGE_RENDERED, listener);
  }

  onVoiModified(listener: () => void): void {
    this.element.addEventListener(CoreEnums.Events.VOI_MODIFIED, listener);
    this.element.addEventListener(CoreEnums.Events.CAMERA_MODIFIED, listener);
  }
}
