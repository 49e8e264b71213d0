import { describe, expect, it } from 'vitest';
import { describeSend, sendIsActive, type PacsSend } from './pacs-format';

const base: PacsSend = {
  id: 1,
  node: { id: 2, name: 'Orthanc' },
  objects: ['seg', 'sr', 'summary'],
  state: 'done',
  attempts: 1,
  error: '',
  trigger: 'user',
  requested_by: 'clin',
  created: '',
  updated: '',
};

describe('PACS send state', () => {
  it('describes a finished send', () => {
    expect(describeSend(base)).toBe('SEG + SR + SUMMARY → Orthanc: sent');
    expect(sendIsActive(base)).toBe(false);
  });
  it('shows retries, the reason and the trigger', () => {
    const retrying = { ...base, state: 'retrying' as const, attempts: 2, error: 'refused', trigger: 'confirmation' };
    expect(describeSend(retrying)).toBe('SEG + SR + SUMMARY → Orthanc: will retry, 2 attempts (on grade confirmation): refused');
    expect(sendIsActive(retrying)).toBe(true);
  });
});
