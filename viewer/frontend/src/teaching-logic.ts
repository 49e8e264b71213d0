// Pure rules of the teaching case and attempt pages (teaching.ts wires them to the shared
// viewer): what the page config may hold, which overlays a page may show, how a student's
// marking becomes a label map and back. The server decides what a student may see (no
// reference URL before the first attempt); these rules only keep the page from showing
// more than it was given.
import { BACKGROUND, FEMORAL_HEAD, NECROSIS, type EditLabel, type EditTool } from './labels';

/** answer: a student grades and marks; view: the teacher looks; result: an attempt's answer. */
export type TeachingMode = 'answer' | 'view' | 'result';

/** The overlays of the teaching pages: the reference label map, the student's marking, and
 *  both on one overlay (compare). */
export type OverlayView = 'reference' | 'marking' | 'compare';

/** Display-only values of the comparison overlay, above the label map's 0/1/2. */
export const MARKED_ONLY = 3;
export const MARKED_AND_REFERENCE = 4;

export interface TeachingImage {
  id: number;
  index: number;
  rows: number;
  columns: number;
  dicom_url: string;
  /** The reference label map (0/1/2); null while the answer is hidden. */
  reference_url: string | null;
  /** The student's marking on this slice in the attempt shown (0/1); null where none. */
  mask_url: string | null;
}

export interface TeachingConfig {
  mode: TeachingMode;
  images: TeachingImage[];
}

const MODES: readonly TeachingMode[] = ['answer', 'view', 'result'];

function isUrl(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith('/');
}

/** Check the page config the server wrote; a clear error for anything else. */
export function parseTeachingConfig(raw: unknown): TeachingConfig {
  if (!raw || typeof raw !== 'object') throw new Error('the teaching page has no viewer config');
  const r = raw as Record<string, unknown>;
  const mode = r.mode as TeachingMode;
  if (!MODES.includes(mode)) throw new Error(`unknown teaching page mode ${String(r.mode)}`);
  if (!Array.isArray(r.images) || r.images.length === 0) throw new Error('the case has no images');
  const images = r.images.map((item: unknown, k: number): TeachingImage => {
    const i = (item ?? {}) as Record<string, unknown>;
    const { id, index, rows, columns } = i;
    if (typeof id !== 'number' || typeof index !== 'number' || typeof rows !== 'number' || typeof columns !== 'number' || rows < 1 || columns < 1) {
      throw new Error(`image ${k + 1} of the case is incomplete`);
    }
    if (!isUrl(i.dicom_url)) throw new Error(`image ${k + 1} of the case has no DICOM URL`);
    return {
      id,
      index,
      rows,
      columns,
      dicom_url: i.dicom_url,
      reference_url: isUrl(i.reference_url) ? i.reference_url : null,
      mask_url: isUrl(i.mask_url) ? i.mask_url : null,
    };
  });
  // While answering, nothing of the answer is shown, whatever the config holds.
  if (mode === 'answer') for (const im of images) im.reference_url = null;
  return { mode, images: images.sort((a, b) => a.index - b.index) };
}

/** The overlays a page offers, the first one shown first. */
export function overlayViews(config: TeachingConfig): OverlayView[] {
  const hasReference = config.images.some((i) => i.reference_url !== null);
  switch (config.mode) {
    case 'answer':
      return ['marking'];
    case 'view':
      return hasReference ? ['reference'] : [];
    case 'result':
      return hasReference ? ['reference', 'marking', 'compare'] : ['marking'];
  }
}

/**
 * The label a stroke uses on a student's marking (values 0/2 only): the brush paints
 * necrosis; the eraser uses the head eraser's rule, which clears a pixel to background
 * (the necrosis eraser would leave a viable-head pixel the student never drew).
 */
export function markingEditLabel(tool: EditTool): EditLabel {
  return tool === 'eraser' ? FEMORAL_HEAD : NECROSIS;
}

/** A marking PNG (non-zero = necrosis) as a label map the viewer draws (necrosis = 2). */
export function markingToLabels(mask: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] ? NECROSIS : BACKGROUND;
  return out;
}

/** The necrosis of a label map as a 0/1 mask; null when the slice has none. */
export function necrosisMask(labels: ArrayLike<number>): Uint8Array | null {
  const out = new Uint8Array(labels.length);
  let any = false;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] === NECROSIS) {
      out[i] = 1;
      any = true;
    }
  }
  return any ? out : null;
}

export interface MarkedSlice {
  imageId: number;
  rows: number;
  columns: number;
  mask: Uint8Array;
}

/**
 * The slices a student marked, to go with the answer: one 0/1 mask per slice that holds
 * necrosis. `labels(i)` is the viewer's label map of slice i (null where it has none).
 */
export function markedSlices(images: readonly TeachingImage[], labels: (i: number) => ArrayLike<number> | null): MarkedSlice[] {
  const out: MarkedSlice[] = [];
  images.forEach((image, i) => {
    const data = labels(i);
    if (!data) return;
    if (data.length !== image.rows * image.columns) throw new Error(`slice ${i + 1}: the marking has the wrong size`);
    const mask = necrosisMask(data);
    if (mask) out.push({ imageId: image.id, rows: image.rows, columns: image.columns, mask });
  });
  return out;
}

/**
 * The slice to open an answer on: the one with the most necrosis in the overlay shown
 * (the middle slice where none has any, as when answering).
 */
export function openingSlice(labels: readonly (ArrayLike<number> | null)[], count: number): number {
  let best = Math.floor(count / 2);
  let most = 0;
  labels.forEach((data, i) => {
    if (!data || i >= count) return;
    let n = 0;
    for (let k = 0; k < data.length; k++) if (data[k] === NECROSIS) n++;
    if (n > most) {
      most = n;
      best = i;
    }
  });
  return best;
}

/**
 * The reference and a marking on one overlay: reference head 1, reference necrosis the
 * marking missed 2, necrosis marked outside the reference's `MARKED_ONLY`, marked and in
 * the reference's necrosis `MARKED_AND_REFERENCE` (what the Dice counts twice).
 * Either may be null (a slice with no reference or nothing marked).
 */
export function compareLabels(reference: ArrayLike<number> | null, marking: ArrayLike<number> | null, size: number): Uint8Array {
  if ((reference && reference.length !== size) || (marking && marking.length !== size)) throw new Error('the reference and the marking differ in size');
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) {
    const ref = reference ? reference[i]! : BACKGROUND;
    const marked = marking ? marking[i] === NECROSIS : false;
    if (marked) out[i] = ref === NECROSIS ? MARKED_AND_REFERENCE : MARKED_ONLY;
    else out[i] = ref === NECROSIS || ref === FEMORAL_HEAD ? ref : BACKGROUND;
  }
  return out;
}

/** The viewport's corner text: slice position and what the overlay shows. */
export function overlayCaption(view: OverlayView | null, mode: TeachingMode): string {
  if (view === 'reference') return 'Reference: head green, necrosis red';
  if (view === 'marking') return mode === 'answer' ? 'Your marking: necrosis blue' : 'Marking of this attempt: necrosis blue';
  if (view === 'compare') return 'Both: yellow marked and reference,\nblue marked only, red reference only';
  return mode === 'view' ? 'No reference mask' : '';
}
