import { describe, expect, it } from 'vitest';
import { helpAction, trappedFocus } from './help-keys';

const input = { tagName: 'INPUT', type: 'text' } as unknown as EventTarget;
const button = { tagName: 'BUTTON' } as unknown as EventTarget;

describe('helpAction', () => {
  it('opens on ? but not while typing in a field', () => {
    expect(helpAction({ key: '?', target: button }, false)).toBe('open');
    expect(helpAction({ key: '?', target: input }, false)).toBeNull();
    expect(helpAction({ key: '?', ctrlKey: true }, false)).toBeNull();
  });
  it('leaves Esc and Tab to the page while closed', () => {
    expect(helpAction({ key: 'Escape' }, false)).toBeNull();
    expect(helpAction({ key: 'Tab' }, false)).toBeNull();
  });
  it('closes on Esc or ?, and keeps Tab inside while open', () => {
    expect(helpAction({ key: 'Escape' }, true)).toBe('close');
    expect(helpAction({ key: '?' }, true)).toBe('close');
    expect(helpAction({ key: 'Tab' }, true)).toBe('focusNext');
    expect(helpAction({ key: 'Tab', shiftKey: true }, true)).toBe('focusPrevious');
    expect(helpAction({ key: 'a' }, true)).toBeNull();
  });
});

describe('trappedFocus', () => {
  it('wraps at both ends', () => {
    expect(trappedFocus(0, 2, false)).toBe(1);
    expect(trappedFocus(1, 2, false)).toBe(0);
    expect(trappedFocus(0, 2, true)).toBe(1);
    expect(trappedFocus(1, 2, true)).toBe(0);
  });
  it('comes in from outside at the first or the last', () => {
    expect(trappedFocus(-1, 3, false)).toBe(0);
    expect(trappedFocus(-1, 3, true)).toBe(2);
    expect(trappedFocus(0, 0, false)).toBe(-1);
  });
});
