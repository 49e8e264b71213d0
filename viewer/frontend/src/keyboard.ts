// Keyboard shortcuts, close to OHIF's defaults. Pure: maps a key event to an action.

export type Action =
  | 'nextSlice'
  | 'prevSlice'
  | 'nextPage'
  | 'prevPage'
  | 'firstSlice'
  | 'lastSlice'
  | 'preset1'
  | 'preset2'
  | 'preset3'
  | 'preset4'
  | 'reset'
  | 'invert'
  | 'toolWindowLevel'
  | 'toolPan'
  | 'toolZoom'
  | 'toolBrush'
  | 'toolEraser'
  | 'labelHead'
  | 'labelNecrosis'
  | 'toggleHead'
  | 'toggleNecrosis'
  | 'brushBigger'
  | 'brushSmaller'
  | 'undo'
  | 'redo'
  | 'help'
  | 'close';

export interface KeyLike {
  key: string;
  ctrlKey?: boolean;
  metaKey?: boolean;
  shiftKey?: boolean;
  altKey?: boolean;
}

export interface Shortcut {
  keys: string;
  action: Action;
  description: string;
}

/** Shown in the help overlay, in this order. */
export const SHORTCUTS: readonly Shortcut[] = [
  { keys: '↓ / →', action: 'nextSlice', description: 'Next slice' },
  { keys: '↑ / ←', action: 'prevSlice', description: 'Previous slice' },
  { keys: 'Page Down', action: 'nextPage', description: 'Forward 5 slices' },
  { keys: 'Page Up', action: 'prevPage', description: 'Back 5 slices' },
  { keys: 'Home / End', action: 'firstSlice', description: 'First / last slice' },
  { keys: '1 – 4', action: 'preset1', description: 'Window/level presets (Auto, T1, Soft, Wide)' },
  { keys: 'R', action: 'reset', description: 'Reset view' },
  { keys: 'I', action: 'invert', description: 'Invert greyscale' },
  { keys: 'W', action: 'toolWindowLevel', description: 'Window/level tool (left drag)' },
  { keys: 'P', action: 'toolPan', description: 'Pan tool' },
  { keys: 'Z', action: 'toolZoom', description: 'Zoom tool' },
  { keys: 'B', action: 'toolBrush', description: 'Brush' },
  { keys: 'E', action: 'toolEraser', description: 'Eraser' },
  { keys: 'H / N', action: 'labelHead', description: 'Edit femoral head / necrosis label' },
  { keys: 'Shift+H / Shift+N', action: 'toggleHead', description: 'Show or hide head / necrosis overlay' },
  { keys: '[ / ]', action: 'brushSmaller', description: 'Brush smaller / bigger' },
  { keys: 'Ctrl+Z', action: 'undo', description: 'Undo mask edit' },
  { keys: 'Ctrl+Y / Ctrl+Shift+Z', action: 'redo', description: 'Redo mask edit' },
  { keys: '?', action: 'help', description: 'This help' },
  { keys: 'Esc', action: 'close', description: 'Close help or dialog' },
];

export function actionForKey(e: KeyLike): Action | null {
  const mod = Boolean(e.ctrlKey || e.metaKey);
  const key = e.key;
  if (mod) {
    const k = key.toLowerCase();
    if (k === 'z') return e.shiftKey ? 'redo' : 'undo';
    if (k === 'y') return 'redo';
    return null;
  }
  if (e.altKey) return null;
  switch (key) {
    case 'ArrowDown':
    case 'ArrowRight':
      return 'nextSlice';
    case 'ArrowUp':
    case 'ArrowLeft':
      return 'prevSlice';
    case 'PageDown':
      return 'nextPage';
    case 'PageUp':
      return 'prevPage';
    case 'Home':
      return 'firstSlice';
    case 'End':
      return 'lastSlice';
    case '1':
      return 'preset1';
    case '2':
      return 'preset2';
    case '3':
      return 'preset3';
    case '4':
      return 'preset4';
    case '?':
      return 'help';
    case 'Escape':
      return 'close';
    case '[':
      return 'brushSmaller';
    case ']':
      return 'brushBigger';
    case 'H':
      return 'toggleHead';
    case 'N':
      return 'toggleNecrosis';
    default:
      break;
  }
  if (e.shiftKey) return null;
  switch (key.toLowerCase()) {
    case 'r':
      return 'reset';
    case 'i':
      return 'invert';
    case 'w':
      return 'toolWindowLevel';
    case 'p':
      return 'toolPan';
    case 'z':
      return 'toolZoom';
    case 'b':
      return 'toolBrush';
    case 'e':
      return 'toolEraser';
    case 'h':
      return 'labelHead';
    case 'n':
      return 'labelNecrosis';
    default:
      return null;
  }
}

/** Events from form fields are typing, not shortcuts (Escape still closes). */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (!target || typeof (target as HTMLElement).tagName !== 'string') return false;
  const el = target as HTMLElement;
  const tag = el.tagName.toLowerCase();
  if (tag === 'textarea' || tag === 'select') return true;
  if (tag === 'input') {
    const type = ((el as HTMLInputElement).type || 'text').toLowerCase();
    return !['checkbox', 'radio', 'range', 'button', 'submit'].includes(type);
  }
  return Boolean(el.isContentEditable);
}
