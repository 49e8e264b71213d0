import { describe, expect, it } from 'vitest';
import { PRESETS, voiRangeFromWindow, windowFromVoiRange } from './windowing';

describe('window/level presets', () => {
  it('has four presets on keys 1-4, the first the image default', () => {
    expect(PRESETS.map((p) => p.key)).toEqual(['1', '2', '3', '4']);
    expect(PRESETS[0]!.compute).toBeNull();
  });

  it('scales with the stored-value range', () => {
    const full = PRESETS[3]!.compute!(0, 1000);
    expect(full).toEqual({ center: 500, width: 1000 });
    const t1 = PRESETS[1]!.compute!(100, 1100);
    expect(t1.center).toBeCloseTo(500);
    expect(t1.width).toBeCloseTo(700);
  });

  it('converts between window and VOI range', () => {
    const r = voiRangeFromWindow({ center: 400, width: 200 });
    expect(r).toEqual({ lower: 300, upper: 500 });
    expect(windowFromVoiRange(r)).toEqual({ center: 400, width: 200 });
  });
});
