import { describe, expect, it } from 'vitest';
import { formatGradeProbabilities, formatInterval, formatMethods } from './uncertainty';

describe('the engine uncertainty, formatted', () => {
  it.each([
    [[0.123, 0.198], '12–20 %'],
    [[0.004, 0.031], '0.4–3.1 %'],
    [[0, 0.0003], '0–0.03 %'],
    [[0.3, 0.45], '30–45 %'],
    [null, ''],
    [undefined, ''],
    [[0.2], ''],
    [[0.3, 0.2], ''],
    [[Number.NaN, 0.2], ''],
  ])('interval %j -> %s', (interval, text) => {
    expect(formatInterval(interval as number[] | null | undefined)).toBe(text);
  });

  it('lists the likely grades first and leaves out those under 1 %', () => {
    expect(formatGradeProbabilities({ none: 0, mild: 0.15, moderate: 0.8, severe: 0.05 })).toBe('Moderate 80 % · Mild 15 % · Severe 5 %');
    expect(formatGradeProbabilities({ none: 0.995, mild: 0.005, moderate: 0, severe: 0 })).toBe('None 100 %');
    expect(formatGradeProbabilities(null)).toBe('');
  });

  it('shows both necrosis methods only when both ran', () => {
    expect(formatMethods({ threshold: 0.21, learned: 0.19 })).toBe('threshold 21.0 % · learned 19.0 %');
    expect(formatMethods({ threshold: 0.21 })).toBe('');
    expect(formatMethods(undefined)).toBe('');
  });
});
