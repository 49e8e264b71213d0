import { describe, expect, it } from 'vitest';
import { stampDisc, stampSegment, strokeValue, type BrushShape } from './brush';
import { applyStrokeRules } from './labels';

const shape = (r: number, size = 9): BrushShape => ({ columns: size, rows: size, radiusX: r, radiusY: r });
const painted = (a: Uint8Array) => Array.from(a).filter((v) => v !== 0).length;

describe('strokeValue follows the stroke rules', () => {
  it('agrees with applyStrokeRules for every tool, label and starting value', () => {
    for (const tool of ['brush', 'eraser'] as const) {
      for (const label of [1, 2] as const) {
        const before = new Uint8Array([0, 1, 2]);
        const after = before.map((b) => strokeValue(b, tool, label));
        expect(applyStrokeRules(before, after.slice(), tool, label)).toBe(0);
        // and a raw Cornerstone-style stroke is corrected to the same values
        const raw = new Uint8Array(3).fill(tool === 'brush' ? label : 0);
        applyStrokeRules(before, raw, tool, label);
        expect(Array.from(raw)).toEqual(Array.from(after));
      }
    }
  });
});

describe('stampDisc', () => {
  it('paints the pixels whose centres lie in the disc', () => {
    const target = new Uint8Array(81);
    expect(stampDisc(target, target.slice(), shape(1.5), 4.5, 4.5, 'brush', 1)).toBe(9);
    expect(target[4 * 9 + 4]).toBe(1);
    expect(target[3 * 9 + 3]).toBe(1);
    expect(target[2 * 9 + 4]).toBe(0);
  });

  it('paints necrosis inside and outside the head alike', () => {
    const before = new Uint8Array(81);
    before[4 * 9 + 4] = 1;
    const target = before.slice();
    expect(stampDisc(target, before, shape(1.5), 4.5, 4.5, 'brush', 2)).toBe(9);
    expect(target[4 * 9 + 4]).toBe(2);
    expect(target[3 * 9 + 3]).toBe(2);
    expect(painted(target)).toBe(9);
  });

  it('paints necrosis on a slice with no head at all (a student marking a case)', () => {
    const target = new Uint8Array(81);
    stampDisc(target, target.slice(), shape(1), 4.5, 4.5, 'brush', 2);
    expect(Array.from(target).filter((v) => v === 2).length).toBe(5);
  });

  it('clips to the image and uses separate radii per axis', () => {
    const target = new Uint8Array(81);
    stampDisc(target, target.slice(), shape(3), 0, 0, 'brush', 1);
    expect(target[0]).toBe(1);
    const wide = new Uint8Array(81);
    stampDisc(wide, wide.slice(), { columns: 9, rows: 9, radiusX: 3, radiusY: 0.5 }, 4.5, 4.5, 'brush', 1);
    expect(painted(wide)).toBe(7);
  });

  it('erases the head and necrosis, or only the necrosis', () => {
    const before = new Uint8Array(81).fill(2);
    const all = before.slice();
    stampDisc(all, before, shape(1), 4.5, 4.5, 'eraser', 1);
    expect(all[40]).toBe(0);
    const necrosisOnly = before.slice();
    stampDisc(necrosisOnly, before, shape(1), 4.5, 4.5, 'eraser', 2);
    expect(necrosisOnly[40]).toBe(1);
  });
});

describe('stampSegment', () => {
  it('leaves no gap along a fast move', () => {
    const target = new Uint8Array(81);
    stampSegment(target, target.slice(), shape(0.5), [0.5, 4.5], [8.5, 4.5], 'brush', 1);
    for (let x = 0; x < 9; x++) expect(target[4 * 9 + x]).toBe(1);
    expect(painted(target)).toBe(9);
  });
});
