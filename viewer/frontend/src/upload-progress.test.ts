import { describe, expect, it } from 'vitest';
import { matchRejections, perFileProgress } from './upload-progress';

describe('per-file upload progress', () => {
  const files = [
    { name: 'a.dcm', size: 100 },
    { name: 'b.dcm', size: 300 },
  ];

  it('fills files in order', () => {
    expect(perFileProgress(files, 0, 440)).toEqual([0, 0]);
    const mid = perFileProgress(files, 120, 440);
    expect(mid[0]).toBe(1);
    expect(mid[1]).toBe(0);
    const later = perFileProgress(files, 280, 440);
    expect(later[1]).toBeCloseTo(0.5);
    expect(perFileProgress(files, 440, 440)).toEqual([1, 1]);
  });

  it('copes with an unknown total', () => {
    expect(perFileProgress(files, 0, 0)).toEqual([0, 0]);
  });
});

describe('rejections', () => {
  it('matches by name, by folder path and keeps the unmatched', () => {
    const m = matchRejections(['a.dcm', 'scan.zip', 'c.txt'], [
      { name: 'a.dcm', reason: 'not DICOM' },
      { name: 'scan.zip/IMG0003', reason: 'not MR' },
      { name: 'elsewhere.dcm', reason: 'odd' },
    ]);
    expect(m.get('a.dcm')).toEqual(['not DICOM']);
    expect(m.get('scan.zip')).toEqual(['scan.zip/IMG0003: not MR']);
    expect(m.get('')).toEqual(['odd']);
    expect(m.has('c.txt')).toBe(false);
  });
});
