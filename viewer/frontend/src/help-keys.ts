// The ? overlay's keyboard logic, pure (help.ts wires it to the page).
import { isTypingTarget } from './keyboard';

export interface HelpKey {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  altKey?: boolean;
  shiftKey?: boolean;
  target?: EventTarget | null;
}

export type HelpAction = 'open' | 'close' | 'focusNext' | 'focusPrevious' | null;

/** What a key does to the overlay: `?` opens it (not while typing in a field) and closes
 *  it; Esc closes it; Tab and Shift+Tab stay inside it while it is open. */
export function helpAction(e: HelpKey, open: boolean): HelpAction {
  if (e.ctrlKey || e.metaKey || e.altKey) return null;
  if (open) {
    if (e.key === 'Escape' || e.key === '?') return 'close';
    if (e.key === 'Tab') return e.shiftKey ? 'focusPrevious' : 'focusNext';
    return null;
  }
  if (e.key === '?' && !isTypingTarget(e.target ?? null)) return 'open';
  return null;
}

/** The index focus moves to among `count` focusable elements, wrapping at both ends;
 *  from outside them (-1) it goes to the first (or, backwards, the last). */
export function trappedFocus(current: number, count: number, backwards: boolean): number {
  if (count <= 0) return -1;
  if (current < 0 || current >= count) return backwards ? count - 1 : 0;
  return (current + (backwards ? count - 1 : 1)) % count;
}
