import { describe, expect, it } from 'vitest';
import type { Series } from './api';
import { extentLabel, jicLabel, kerboulLabel, seriesLabel, sliceKey, sourceLabel, stageLabel } from './classification';

describe('classification words', () => {
  it('says whether a value is the AI or a clinician', () => {
    expect(sourceLabel('ai')).toContain('AI');
    expect(sourceLabel('clinician')).toContain('clinician');
    expect(sourceLabel(null)).toBe('');
  });
  it('names the JIC types and says when none is set', () => {
    expect(jicLabel('C2')).toContain('past the acetabular edge');
    expect(jicLabel(null)).toBe('not set');
  });
  it('puts the Kerboul angle in its group at the edges', () => {
    expect(kerboulLabel(199.6, false)).toBe('200° (small)');
    expect(kerboulLabel(200, false)).toBe('200° (medium)');
    expect(kerboulLabel(250, false)).toBe('250° (large)');
    expect(kerboulLabel(300, false)).toBe('300° (extensive)');
    expect(kerboulLabel(120, true)).toBe('120° (one plane only)');
    expect(kerboulLabel(null, null)).toBe('not set');
  });
  it('words extent and stage', () => {
    expect(extentLabel('B')).toBe('B (15–30 %)');
    expect(extentLabel(null)).toBe('no necrosis');
    expect(stageLabel({ stage: 'Steinberg IVB, ARCO IIIB', stage_source: 'clinician' })).toContain('radiograph');
  });
  it('labels a series that is not graded', () => {
    const s = { description: 'COR STIR', instances: [{}, {}], weighting: 'STIR', plane: 'coronal', graded: false, analysis: null } as unknown as Series;
    expect(seriesLabel(s)).toBe('COR STIR · 2 images · STIR coronal · not graded');
  });
  it('keys frames apart', () => {
    expect(sliceKey({ sop_instance_uid: '1.2', frame_number: 3 })).toBe('1.2:3');
    expect(sliceKey({ sop_instance_uid: '1.2', frame_number: null })).toBe('1.2');
    expect(sliceKey({ sop_instance_uid: '1.2' })).toBe('1.2');
  });
});
