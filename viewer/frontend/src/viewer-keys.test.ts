import { describe, expect, it } from 'vitest';
import type { Action } from './keyboard';
import { runViewerAction, type ViewerKeyPage } from './viewer-keys';

function recordingPage(withLabels: boolean): { page: ViewerKeyPage; calls: string[] } {
  const calls: string[] = [];
  const page: ViewerKeyPage = {
    viewer: {
      scrollBy: (d) => calls.push(`scrollBy ${d}`),
      scrollTo: (i) => calls.push(`scrollTo ${i}`),
      applyPreset: (i) => void calls.push(`preset ${i}`),
      reset: () => void calls.push('reset'),
      invert: () => void calls.push('invert'),
    },
    sliceCount: 20,
    setTool: (t) => void calls.push(`tool ${t}`),
    showPreset: (i) => void calls.push(`menu ${i}`),
    toggleCheckbox: (id) => void calls.push(`toggle ${id}`),
    stepRange: (id, d) => void calls.push(`step ${id} ${d}`),
    undoRedo: (w) => calls.push(w),
  };
  if (withLabels) page.setLabel = (l) => void calls.push(`label ${l}`);
  return { page, calls };
}

describe('runViewerAction', () => {
  it('scrolls, jumps to the ends and applies presets to the viewer and its menu', () => {
    const { page, calls } = recordingPage(true);
    for (const a of ['nextSlice', 'prevPage', 'firstSlice', 'lastSlice', 'preset3'] as Action[]) {
      expect(runViewerAction(a, page)).toBe(true);
    }
    expect(calls).toEqual(['scrollBy 1', 'scrollBy -5', 'scrollTo 0', 'scrollTo 19', 'preset 2', 'menu 2']);
  });

  it('chooses tools and drives the overlay and brush controls', () => {
    const { page, calls } = recordingPage(true);
    for (const a of ['toolPan', 'toolEraser', 'toggleNecrosis', 'brushSmaller', 'redo', 'invert'] as Action[]) {
      runViewerAction(a, page);
    }
    expect(calls).toEqual(['tool pan', 'tool eraser', 'toggle show-necrosis', 'step brush-size -1', 'redo', 'invert']);
  });

  it('leaves label keys to pages with labels, and the ? overlay keys to help.ts', () => {
    const labelled = recordingPage(true);
    expect(runViewerAction('labelNecrosis', labelled.page)).toBe(true);
    expect(labelled.calls).toEqual(['label 2']);
    const marking = recordingPage(false);
    expect(runViewerAction('labelHead', marking.page)).toBe(false);
    expect(runViewerAction('help', marking.page)).toBe(false);
    expect(runViewerAction('close', marking.page)).toBe(false);
    expect(marking.calls).toEqual([]);
  });

  it('does nothing to a viewer that is not there yet', () => {
    const { page, calls } = recordingPage(true);
    page.viewer = null;
    expect(runViewerAction('nextSlice', page)).toBe(true);
    expect(calls).toEqual([]);
  });
});
