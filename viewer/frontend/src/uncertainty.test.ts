import { describe, expect, it } from 'vitest';
import { formatGradeProbabilities, formatInterval, formatMethods, gradeProbability, proportionWithInterval } from './uncertainty';

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

  it('gives the probability of the grade shown', () => {
    expect(gradeProbability({ none: 0, mild: 0.27, moderate: 0.73, severe: 0 }, 'moderate')).toBe('73 %');
    expect(gradeProbability(null, 'moderate')).toBe('');
    expect(gradeProbability({ none: 1, mild: 0, moderate: 0, severe: 0 }, null)).toBe('');
  });

  it('shows both necrosis methods only when both ran', () => {
    expect(formatMethods({ threshold: 0.21, learned: 0.19 })).toBe('threshold 21.0 % · learned 19.0 %');
    expect(formatMethods({ threshold: 0.21 })).toBe('');
    expect(formatMethods(undefined)).toBe('');
  });

  it('adds the interval to a proportion when there is one', () => {
    expect(proportionWithInterval('12.3 %', [0.1, 0.15])).toBe('12.3 % (90 %: 10–15 %)');
    expect(proportionWithInterval('12.3 %', null)).toBe('12.3 %');
  });
});
