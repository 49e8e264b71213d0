import { describe, expect, it } from 'vitest';
import { applyStrokeRules, countLabels, EditHistory, sanitiseLabelmap, sameLabels } from './labels';

const u8 = (...v: number[]) => new Uint8Array(v);

describe('stroke rules', () => {
  it('keeps a necrosis stroke wherever it painted, outside the head too', () => {
    const before = u8(0, 1, 1, 2, 0);
    const after = u8(2, 2, 2, 2, 0);
    expect(applyStrokeRules(before, after, 'brush', 2)).toBe(0);
    expect(Array.from(after)).toEqual([2, 2, 2, 2, 0]);
    // and the necrosis painted outside the head counts as head (necrosis is part of it)
    expect(countLabels(after)).toEqual({ head: 4, necrosis: 4 });
  });

  it('a head stroke adds head but keeps necrosis', () => {
    const before = u8(0, 2, 1, 0);
    const after = u8(1, 1, 1, 1);
    applyStrokeRules(before, after, 'brush', 1);
    expect(Array.from(after)).toEqual([1, 2, 1, 1]);
  });

  it('the necrosis eraser turns necrosis back into head and keeps the head', () => {
    const before = u8(2, 2, 1, 0);
    const after = u8(0, 0, 0, 0);
    applyStrokeRules(before, after, 'eraser', 2);
    expect(Array.from(after)).toEqual([1, 1, 1, 0]);
  });

  it('the head eraser removes head and necrosis', () => {
    const before = u8(2, 1, 1);
    const after = u8(0, 0, 1);
    expect(applyStrokeRules(before, after, 'eraser', 1)).toBe(0);
    expect(Array.from(after)).toEqual([0, 0, 1]);
  });

  it('refuses slices of different sizes', () => {
    expect(() => applyStrokeRules(u8(0), u8(0, 0), 'brush', 1)).toThrow();
  });
});

describe('label helpers', () => {
  it('counts necrosis as part of the head', () => {
    expect(countLabels(u8(0, 1, 1, 2, 2, 0))).toEqual({ head: 4, necrosis: 2 });
  });

  it('sanitises unknown values to background', () => {
    const m = u8(0, 1, 2, 3, 255);
    expect(sanitiseLabelmap(m)).toBe(2);
    expect(Array.from(m)).toEqual([0, 1, 2, 0, 0]);
  });

  it('compares label maps', () => {
    expect(sameLabels(u8(1, 2), u8(1, 2))).toBe(true);
    expect(sameLabels(u8(1, 2), u8(1, 1))).toBe(false);
    expect(sameLabels(u8(1), u8(1, 1))).toBe(false);
  });
});

describe('edit history', () => {
  it('undoes and redoes in order, and a new edit clears redo', () => {
    const h = new EditHistory();
    const e1 = { sliceIndex: 0, before: u8(0), after: u8(1) };
    const e2 = { sliceIndex: 3, before: u8(1), after: u8(2) };
    h.push(e1);
    h.push(e2);
    expect(h.undo()).toBe(e2);
    expect(h.canRedo).toBe(true);
    expect(h.redo()).toBe(e2);
    expect(h.undo()).toBe(e2);
    expect(h.undo()).toBe(e1);
    expect(h.undo()).toBeUndefined();
    h.push(e1);
    expect(h.canRedo).toBe(false);
  });

  it('keeps at most `limit` entries', () => {
    const h = new EditHistory(2);
    for (let i = 0; i < 5; i++) h.push({ sliceIndex: i, before: u8(0), after: u8(1) });
    expect(h.size).toBe(2);
    expect(h.undo()?.sliceIndex).toBe(4);
  });
});
