// Cornerstone3D wiring: one stack viewport, its tools, and a two-label labelmap
// segmentation (1 femoral head, 2 necrosis) decoded from the portal's PNGs.
// Facts this relies on are in shared/VIEWER-NOTES.md (init order, load before deriving
// labelmaps, BrushTool instances per strategy).
import * as core from '@cornerstonejs/core';
import type * as ToolsModule from '@cornerstonejs/tools';
import dicomImageLoader from '@cornerstonejs/dicom-image-loader';
import { applyStrokeRules, countLabels, EditHistory, sameLabels, type EditLabel, type EditTool } from './labels';
import { PRESETS, voiRangeFromWindow, windowFromVoiRange, type WindowLevel } from './windowing';

const { RenderingEngine, Enums: CoreEnums, imageLoader, cache, utilities: coreUtils } = core;
// The tools package is most of the bundle; it is loaded after the first image is drawn
// so that the image appears sooner.
type Tools = typeof ToolsModule;
let toolsModule: Promise<Tools> | null = null;

function loadTools(): Promise<Tools> {
  if (!toolsModule) {
    toolsModule = import('@cornerstonejs/tools').then((tools) => {
      tools.init();
      for (const T of [tools.WindowLevelTool, tools.PanTool, tools.ZoomTool, tools.StackScrollTool, tools.BrushTool]) tools.addTool(T);
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
const HEAD_BRUSH = 'HeadBrush';
const NECROSIS_BRUSH = 'NecrosisBrush';
const ERASER = 'Eraser';

let initialised: Promise<void> | null = null;

export function initCornerstone(): Promise<void> {
  if (!initialised) {
    initialised = (async () => {
      core.init();
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

/** Everything the page needs from Cornerstone, behind a small surface. */
export class StackViewer {
  readonly engine: core.RenderingEngine;
  readonly viewportId = 'onfh-stack';
  readonly history = new EditHistory();
  /** Slices whose label map differs from what the server has. */
  readonly dirty = new Set<number>();
  segmentationId: string | null = null;
  labelmapImageIds: string[] = [];
  imageIds: string[] = [];
  activeTool: ActiveTool = 'wl';
  editLabel: EditLabel = 1;
  brushSizeMm = 6;
  private strokeBefore: { sliceIndex: number; data: Uint8Array } | null = null;
  private storedRange: { min: number; max: number } | null = null;
  private defaultVoi: { lower: number; upper: number } | null = null;
  private t: Tools | null = null;
  private toolGroup: ToolsModule.Types.IToolGroup | null = null;
  private opacity = 0.45;
  private visible = { head: true, necrosis: true };
  onStroke: (r: StrokeResult) => void = () => {};

  constructor(readonly element: HTMLDivElement) {
    this.engine = new RenderingEngine('onfh-engine');
    this.engine.enableElement({
      viewportId: this.viewportId,
      type: CoreEnums.ViewportType.STACK,
      element,
      defaultOptions: { background: [0, 0, 0] },
    });
    element.addEventListener('contextmenu', (e) => e.preventDefault());
    element.addEventListener('mousedown', this.onStrokeStart, true);
    window.addEventListener('mouseup', this.onStrokeEnd, true);
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
    group.addToolInstance(HEAD_BRUSH, t.BrushTool.toolName, { activeStrategy: 'FILL_INSIDE_CIRCLE', brushSize: this.brushSizeMm });
    group.addToolInstance(NECROSIS_BRUSH, t.BrushTool.toolName, { activeStrategy: 'FILL_INSIDE_CIRCLE', brushSize: this.brushSizeMm });
    group.addToolInstance(ERASER, t.BrushTool.toolName, { activeStrategy: 'ERASE_INSIDE_CIRCLE', brushSize: this.brushSizeMm });
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
    this.history.clear();
    this.dirty.clear();
    await this.viewport.setStack(imageIds, Math.min(Math.max(0, startIndex), imageIds.length - 1));
    this.viewport.render();
    const props = this.viewport.getProperties();
    this.defaultVoi = props.voiRange ? { ...props.voiRange } : null;
  }

  /** Load every slice (needed before labelmaps can be derived) and note the stored-value range. */
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

  /** Create the segmentation; `labelmaps[i]` fills slice i (null: empty). */
  async setLabelmaps(labelmaps: (Uint8Array | null)[]): Promise<void> {
    await this.enableTools();
    const t = this.t;
    if (!t) return;
    const { segmentation } = t;
    const segId = `onfh-seg-${Date.now()}`;
    if (this.segmentationId) {
      segmentation.removeSegmentationRepresentations(this.viewportId, { segmentationId: this.segmentationId });
      segmentation.removeSegmentation(this.segmentationId);
    }
    const derived = imageLoader.createAndCacheDerivedLabelmapImages(this.imageIds);
    this.labelmapImageIds = derived.map((img) => img.imageId);
    derived.forEach((img, i) => {
      const values = labelmaps[i];
      if (values) this.writeSlice(i, values, false);
    });
    segmentation.addSegmentations([
      {
        segmentationId: segId,
        representation: {
          type: t.Enums.SegmentationRepresentations.Labelmap,
          data: { imageIds: this.labelmapImageIds },
        },
        config: {
          label: 'ONFH',
          segments: {
            1: { label: 'Femoral head', active: true },
            2: { label: 'Necrosis' },
          },
        },
      },
    ]);
    await segmentation.addLabelmapRepresentationToViewport(this.viewportId, [{ segmentationId: segId }]);
    this.segmentationId = segId;
    segmentation.config.color.setSegmentIndexColor(this.viewportId, segId, 1, HEAD_COLOUR);
    segmentation.config.color.setSegmentIndexColor(this.viewportId, segId, 2, NECROSIS_COLOUR);
    this.applyStyle();
    this.setEditLabel(this.editLabel);
    this.history.clear();
    this.dirty.clear();
    this.viewport.render();
  }

  /** Replace every slice's values (after a revert or a reload from the server). */
  replaceLabelmaps(labelmaps: (Uint8Array | null)[]): void {
    labelmaps.forEach((values, i) => this.writeSlice(i, values ?? new Uint8Array(this.sliceData(i)?.length ?? 0), false));
    this.history.clear();
    this.dirty.clear();
    this.modified();
  }

  /** The live label values of slice i (Cornerstone's own array: copy before keeping). */
  sliceData(i: number): Uint8Array | null {
    const id = this.labelmapImageIds[i];
    if (!id) return null;
    const image = cache.getImage(id);
    if (!image) return null;
    return image.voxelManager?.getScalarData() as Uint8Array;
  }

  sliceSize(i: number): { rows: number; columns: number } | null {
    const id = this.labelmapImageIds[i];
    const image = id ? cache.getImage(id) : undefined;
    return image ? { rows: image.rows, columns: image.columns } : null;
  }

  private writeSlice(i: number, values: Uint8Array, notify = true): void {
    const data = this.sliceData(i);
    if (!data) return;
    if (values.length === data.length) data.set(values);
    else data.fill(0);
    if (notify) this.modified([i]);
  }

  private modified(slices?: number[]): void {
    if (!this.segmentationId || !this.t) return;
    this.t.segmentation.triggerSegmentationEvents.triggerSegmentationDataModified(this.segmentationId, slices);
    this.viewport.render();
  }

  countsOnSlice(i: number): { head: number; necrosis: number } {
    const data = this.sliceData(i);
    return data ? countLabels(data) : { head: 0, necrosis: 0 };
  }

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

  zoomPercent(): number {
    try {
      return Math.round(this.viewport.getZoom() * 100);
    } catch {
      return 100;
    }
  }

  // --- tools ------------------------------------------------------------------------

  private bindNavigation(primary: NavTool | null): void {
    const g = this.toolGroup;
    const t = this.t;
    if (!g || !t) return;
    const { MouseBindings } = t.Enums;
    const names: Record<NavTool, string> = { wl: t.WindowLevelTool.toolName, pan: t.PanTool.toolName, zoom: t.ZoomTool.toolName };
    for (const name of [HEAD_BRUSH, NECROSIS_BRUSH, ERASER]) g.setToolDisabled(name);
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
    if (tool === 'wl' || tool === 'pan' || tool === 'zoom') {
      this.bindNavigation(tool);
      return;
    }
    this.bindNavigation(null);
    if (!this.toolGroup || !this.t) return;
    const name = tool === 'eraser' ? ERASER : this.editLabel === 2 ? NECROSIS_BRUSH : HEAD_BRUSH;
    this.toolGroup.setToolActive(name, { bindings: [{ mouseButton: this.t.Enums.MouseBindings.Primary }] });
    this.setEditLabel(this.editLabel);
    this.setBrushSize(this.brushSizeMm);
  }

  setEditLabel(label: EditLabel): void {
    this.editLabel = label;
    const t = this.t;
    if (!t) return;
    if (this.segmentationId) t.segmentation.segmentIndex.setActiveSegmentIndex(this.segmentationId, label);
    if (this.activeTool === 'brush' && this.toolGroup) {
      this.toolGroup.setToolDisabled(label === 2 ? HEAD_BRUSH : NECROSIS_BRUSH);
      this.toolGroup.setToolActive(label === 2 ? NECROSIS_BRUSH : HEAD_BRUSH, {
        bindings: [{ mouseButton: t.Enums.MouseBindings.Primary }],
      });
    }
  }

  setBrushSize(mm: number): void {
    this.brushSizeMm = Math.min(40, Math.max(1, mm));
    this.t?.utilities.segmentation.setBrushSizeForToolGroup(TOOL_GROUP_ID, this.brushSizeMm);
  }

  // --- overlay style ------------------------------------------------------------------

  setOpacity(alpha: number): void {
    this.opacity = Math.min(1, Math.max(0, alpha));
    this.applyStyle();
  }

  setLabelVisible(label: EditLabel, visible: boolean): void {
    if (label === 1) this.visible.head = visible;
    else this.visible.necrosis = visible;
    this.applyStyle();
  }

  private applyStyle(): void {
    const t = this.t;
    if (!this.segmentationId || !t) return;
    const { segmentation } = t;
    const type = t.Enums.SegmentationRepresentations.Labelmap;
    segmentation.config.style.setStyle(
      { type, viewportId: this.viewportId, segmentationId: this.segmentationId },
      { fillAlpha: this.opacity, fillAlphaInactive: this.opacity, outlineOpacity: 0.9, outlineWidth: 1, renderOutline: true },
    );
    const spec = { segmentationId: this.segmentationId, type };
    segmentation.config.visibility.setSegmentIndexVisibility(this.viewportId, spec, 1, this.visible.head);
    segmentation.config.visibility.setSegmentIndexVisibility(this.viewportId, spec, 2, this.visible.necrosis);
    this.viewport.render();
  }

  // --- editing ------------------------------------------------------------------------

  private isEditing(): boolean {
    return this.activeTool === 'brush' || this.activeTool === 'eraser';
  }

  private onStrokeStart = (e: MouseEvent): void => {
    if (!this.isEditing() || e.button !== 0) return;
    const i = this.sliceIndex;
    const data = this.sliceData(i);
    if (data) this.strokeBefore = { sliceIndex: i, data: data.slice() };
  };

  private onStrokeEnd = (): void => {
    const before = this.strokeBefore;
    if (!before) return;
    this.strokeBefore = null;
    // Let the brush finish its own mouse-up work first.
    window.setTimeout(() => this.finishStroke(before), 0);
  };

  private finishStroke(before: { sliceIndex: number; data: Uint8Array }): void {
    const live = this.sliceData(before.sliceIndex);
    if (!live) return;
    const after = live.slice();
    const tool: EditTool = this.activeTool === 'eraser' ? 'eraser' : 'brush';
    const corrected = applyStrokeRules(before.data, after, tool, this.editLabel);
    if (corrected > 0) {
      live.set(after);
      this.modified([before.sliceIndex]);
    }
    if (sameLabels(before.data, after)) return;
    this.history.push({ sliceIndex: before.sliceIndex, before: before.data, after });
    this.dirty.add(before.sliceIndex);
    this.onStroke({ sliceIndex: before.sliceIndex, corrected });
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
