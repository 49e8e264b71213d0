import { describe, expect, it } from 'vitest';
import {
  flagTitle,
  formatDateTime,
  formatPatientName,
  formatProportion,
  formatStudyDate,
  formatVolume,
  gradeClass,
  gradeFromProportion,
  gradeLabel,
  gradeRank,
  parseFlag,
  sideLabel,
  statusLabel,
} from './format';

describe('proportion and grade display', () => {
  it.each([
    [null, '—'],
    [undefined, '—'],
    [Number.NaN, '—'],
    [0, '0 %'],
    [0.0004, '0.04 %'],
    [0.001, '0.1 %'],
    [0.1234, '12.3 %'],
    [0.3, '30.0 %'],
    [1, '100.0 %'],
  ])('formatProportion(%s) = %s', (p, text) => {
    expect(formatProportion(p)).toBe(text);
  });

  it('follows the Steinberg edges of the engine', () => {
    expect(gradeFromProportion(0)).toBe('none');
    expect(gradeFromProportion(0.000999)).toBe('none');
    expect(gradeFromProportion(0.001)).toBe('mild');
    expect(gradeFromProportion(0.1499)).toBe('mild');
    expect(gradeFromProportion(0.15)).toBe('moderate');
    expect(gradeFromProportion(0.3)).toBe('moderate');
    expect(gradeFromProportion(0.3001)).toBe('severe');
    expect(() => gradeFromProportion(1.2)).toThrow(RangeError);
  });

  it('labels, classes and ranks grades', () => {
    expect(gradeLabel('moderate')).toBe('Moderate');
    expect(gradeLabel(null)).toBe('—');
    expect(gradeClass('severe')).toBe('grade-severe');
    expect(gradeClass('bogus')).toBe('grade-unknown');
    expect(gradeRank('none')).toBeLessThan(gradeRank('mild'));
    expect(gradeRank(null)).toBe(-1);
  });

  it('formats volumes', () => {
    expect(formatVolume(512)).toBe('512 mm³');
    expect(formatVolume(12500)).toBe('12.50 cm³');
  });
});

describe('other display helpers', () => {
  it('splits a flag into code and reason', () => {
    expect(parseFlag('small_head: head under 80 mm²')).toEqual({ code: 'small_head', reason: 'head under 80 mm²' });
    expect(parseFlag('edited')).toEqual({ code: 'edited', reason: '' });
    expect(flagTitle('low_confidence')).toBe('Low confidence');
    expect(flagTitle('continued')).toBe('Continued from the slice below');
    expect(flagTitle('neighbour_lesion')).toBe('Supported by a neighbouring slice');
    expect(flagTitle('not_counted')).toBe('Found, not counted');
    expect(flagTitle('new_code')).toBe('new code');
  });

  it('formats names, dates and sides', () => {
    expect(formatPatientName('DOE^JANE')).toBe('DOE, JANE');
    expect(formatPatientName('PHANTOM')).toBe('PHANTOM');
    expect(formatStudyDate('20240131')).toBe('2024-01-31');
    expect(formatStudyDate('2024-01-31')).toBe('2024-01-31');
    expect(formatStudyDate(null)).toBe('—');
    expect(formatDateTime('not a date')).toBe('not a date');
    expect(formatDateTime('2024-01-31T10:00:00Z')).toMatch(/^2024-01-3\d \d\d:\d\d:00$/);
    expect(sideLabel('left')).toBe('Left hip');
    expect(sideLabel('unknown')).toBe('Hip (side unknown)');
  });

  it('shows progress on running studies', () => {
    expect(statusLabel('running', { done: 5, total: 20 })).toBe('Running 25 %');
    expect(statusLabel('done', { done: 20, total: 20 })).toBe('Done');
    expect(statusLabel('queued')).toBe('Queued');
    expect(statusLabel('running', { done: 87, total: 100 }, 'no worker')).toBe('Stalled: no worker');
    expect(statusLabel('done', { done: 20, total: 20 }, 'no worker')).toBe('Done');
  });
});
