import { describe, expect, it } from 'vitest';
import { actionForKey, isTypingTarget, SHORTCUTS } from './keyboard';

describe('keyboard map', () => {
  it.each([
    [{ key: 'ArrowDown' }, 'nextSlice'],
    [{ key: 'ArrowRight' }, 'nextSlice'],
    [{ key: 'ArrowUp' }, 'prevSlice'],
    [{ key: 'PageDown' }, 'nextPage'],
    [{ key: 'PageUp' }, 'prevPage'],
    [{ key: 'Home' }, 'firstSlice'],
    [{ key: 'End' }, 'lastSlice'],
    [{ key: '1' }, 'preset1'],
    [{ key: '4' }, 'preset4'],
    [{ key: 'r' }, 'reset'],
    [{ key: 'R' , shiftKey: true }, null],
    [{ key: 'i' }, 'invert'],
    [{ key: 'b' }, 'toolBrush'],
    [{ key: 'e' }, 'toolEraser'],
    [{ key: 'w' }, 'toolWindowLevel'],
    [{ key: 'h' }, 'labelHead'],
    [{ key: 'n' }, 'labelNecrosis'],
    [{ key: 'H', shiftKey: true }, 'toggleHead'],
    [{ key: 'N', shiftKey: true }, 'toggleNecrosis'],
    [{ key: 'z', ctrlKey: true }, 'undo'],
    [{ key: 'Z', ctrlKey: true, shiftKey: true }, 'redo'],
    [{ key: 'y', ctrlKey: true }, 'redo'],
    [{ key: 'z', metaKey: true }, 'undo'],
    [{ key: 'c', ctrlKey: true }, null],
    [{ key: '?', shiftKey: true }, 'help'],
    [{ key: 'Escape' }, 'close'],
    [{ key: 'x' }, null],
    [{ key: 'b', altKey: true }, null],
  ])('%o -> %s', (event, action) => {
    expect(actionForKey(event)).toBe(action);
  });

  it('documents every action it lists once', () => {
    const actions = SHORTCUTS.map((s) => s.action);
    expect(new Set(actions).size).toBe(actions.length);
    for (const s of SHORTCUTS) expect(s.description.length).toBeGreaterThan(3);
  });

  it('treats text fields as typing and checkboxes as not', () => {
    expect(isTypingTarget({ tagName: 'TEXTAREA' } as unknown as EventTarget)).toBe(true);
    expect(isTypingTarget({ tagName: 'INPUT', type: 'text' } as unknown as EventTarget)).toBe(true);
    expect(isTypingTarget({ tagName: 'INPUT', type: 'range' } as unknown as EventTarget)).toBe(false);
    expect(isTypingTarget({ tagName: 'DIV', isContentEditable: false } as unknown as EventTarget)).toBe(false);
    expect(isTypingTarget(null)).toBe(false);
  });
});
