// Label-map rules the editor enforces on the client (the server measures whatever it is
// sent). Values: 0 background, 1 viable femoral head, 2 necrosis (necrosis is part of the
// head: the measured head area counts both).
//
// The necrosis brush paints anywhere in the image. A reader marks necrosis where they see
// it: a clinician where the AI's head label stops short of the lesion, a student who has
// no head label at all (the reference stays hidden until the first attempt). Since a
// necrosis pixel is a head pixel, painting necrosis outside the head also grows the head
// there, which is what the reader asserts. To take such a stroke back, undo it or use the
// head eraser; the necrosis eraser only turns necrosis back into viable head. The server
// stores a clinician's mask exactly as painted: nothing a reader painted is dropped.

export const BACKGROUND = 0;
export const FEMORAL_HEAD = 1;
export const NECROSIS = 2;

export type EditLabel = typeof FEMORAL_HEAD | typeof NECROSIS;
export type EditTool = 'brush' | 'eraser';

/**
 * Correct one brush or eraser stroke in place, given the slice before the stroke.
 *  - necrosis brush: necrosis wherever it painted, inside the head or not;
 *  - head brush: adds head, never turns necrosis back into viable head;
 *  - necrosis eraser: necrosis becomes viable head, the head itself is kept;
 *  - head eraser: removes head and any necrosis inside it (what Cornerstone does).
 * Returns the number of pixels the rules changed back.
 */
export function applyStrokeRules(before: Uint8Array, after: Uint8Array, tool: EditTool, label: EditLabel): number {
  if (before.length !== after.length) throw new Error('slices differ in size');
  let corrected = 0;
  for (let i = 0; i < after.length; i++) {
    const b = before[i]!;
    const a = after[i]!;
    if (a === b) continue;
    let fixed = a;
    if (tool === 'brush' && label === NECROSIS) {
      fixed = NECROSIS;
    } else if (tool === 'brush' && label === FEMORAL_HEAD) {
      if (b === NECROSIS) fixed = NECROSIS;
    } else if (tool === 'eraser' && label === NECROSIS) {
      if (b === NECROSIS) fixed = FEMORAL_HEAD;
      else if (b === FEMORAL_HEAD) fixed = FEMORAL_HEAD;
    }
    if (fixed !== a) {
      after[i] = fixed;
      corrected++;
    }
  }
  return corrected;
}

/** Any value other than 0/1/2 becomes background; returns how many were fixed. */
export function sanitiseLabelmap(labelmap: Uint8Array): number {
  let fixed = 0;
  for (let i = 0; i < labelmap.length; i++) {
    if (labelmap[i]! > NECROSIS) {
      labelmap[i] = BACKGROUND;
      fixed++;
    }
  }
  return fixed;
}

export interface LabelCounts {
  /** Femoral head pixels, necrosis included. */
  head: number;
  necrosis: number;
}

export function countLabels(labelmap: ArrayLike<number>): LabelCounts {
  let head = 0;
  let necrosis = 0;
  for (let i = 0; i < labelmap.length; i++) {
    const v = labelmap[i]!;
    if (v === FEMORAL_HEAD) head++;
    else if (v === NECROSIS) {
      head++;
      necrosis++;
    }
  }
  return { head, necrosis };
}

export function sameLabels(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Undo/redo of label-map edits, one entry per stroke, each a before/after copy of one slice. */
export interface EditEntry {
  sliceIndex: number;
  before: Uint8Array;
  after: Uint8Array;
}

export class EditHistory {
  private readonly undoStack: EditEntry[] = [];
  private readonly redoStack: EditEntry[] = [];

  constructor(private readonly limit = 100) {}

  push(entry: EditEntry): void {
    this.undoStack.push(entry);
    if (this.undoStack.length > this.limit) this.undoStack.shift();
    this.redoStack.length = 0;
  }

  /** The entry whose `before` should be written back, or undefined. */
  undo(): EditEntry | undefined {
    const e = this.undoStack.pop();
    if (e) this.redoStack.push(e);
    return e;
  }

  /** The entry whose `after` should be written back, or undefined. */
  redo(): EditEntry | undefined {
    const e = this.redoStack.pop();
    if (e) this.undoStack.push(e);
    return e;
  }

  clear(): void {
    this.undoStack.length = 0;
    this.redoStack.length = 0;
  }

  get canUndo(): boolean {
    return this.undoStack.length > 0;
  }

  get canRedo(): boolean {
    return this.redoStack.length > 0;
  }

  get size(): number {
    return this.undoStack.length;
  }
}
