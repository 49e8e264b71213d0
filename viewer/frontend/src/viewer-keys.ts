// The viewer shortcuts that both viewer pages (the study page and the teaching pages)
// carry out the same way: an action from keyboard.ts applied to a page's viewer and
// toolbar. Pure apart from the page object it is given, so it is tested without a browser.

import type { Action } from './keyboard';

export type ViewerTool = 'wl' | 'pan' | 'zoom' | 'brush' | 'eraser';

/** What a page offers the shortcuts; the page keeps its own rules (who may edit, ...). */
export interface ViewerKeyPage {
  viewer: {
    scrollBy(delta: number): unknown;
    scrollTo(index: number): unknown;
    applyPreset(index: number): void;
    reset(): void;
    invert(): void;
  } | null;
  sliceCount: number;
  setTool(tool: ViewerTool): void;
  /** Show the preset chosen by key in the page's preset menu. */
  showPreset(index: number): void;
  toggleCheckbox(id: string): void;
  stepRange(id: string, delta: number): void;
  undoRedo(which: 'undo' | 'redo'): unknown;
  /** The brush's label keys; a page without labels (a student's marking) leaves it out. */
  setLabel?: (label: 1 | 2) => void;
}

const TOOLS: Partial<Record<Action, ViewerTool>> = {
  toolWindowLevel: 'wl',
  toolPan: 'pan',
  toolZoom: 'zoom',
  toolBrush: 'brush',
  toolEraser: 'eraser',
};

const SCROLL: Partial<Record<Action, number>> = { nextSlice: 1, prevSlice: -1, nextPage: 5, prevPage: -5 };

/** Carry out ``action`` on ``page``; false when this page has nothing for it (the ``?``
 *  overlay's own keys, or a label key on a page without labels). */
export function runViewerAction(action: Action, page: ViewerKeyPage): boolean {
  const v = page.viewer;
  const tool = TOOLS[action];
  if (tool) {
    page.setTool(tool);
    return true;
  }
  const delta = SCROLL[action];
  if (delta !== undefined) {
    void v?.scrollBy(delta);
    return true;
  }
  switch (action) {
    case 'firstSlice': void v?.scrollTo(0); return true;
    case 'lastSlice': void v?.scrollTo(page.sliceCount - 1); return true;
    case 'preset1': case 'preset2': case 'preset3': case 'preset4': {
      const index = Number(action.slice(-1)) - 1;
      v?.applyPreset(index);
      page.showPreset(index);
      return true;
    }
    case 'reset': v?.reset(); return true;
    case 'invert': v?.invert(); return true;
    case 'toggleHead': page.toggleCheckbox('show-head'); return true;
    case 'toggleNecrosis': page.toggleCheckbox('show-necrosis'); return true;
    case 'brushBigger': page.stepRange('brush-size', 1); return true;
    case 'brushSmaller': page.stepRange('brush-size', -1); return true;
    case 'undo': case 'redo': void page.undoRedo(action); return true;
    case 'labelHead': case 'labelNecrosis':
      if (!page.setLabel) return false;
      page.setLabel(action === 'labelHead' ? 1 : 2);
      return true;
    default: return false; // 'help' and 'close': the page's ? overlay (help.ts) has them
  }
}
