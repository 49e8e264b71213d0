// The ? overlay of every page (templates/help_overlay.html): `?` or a ? button opens it,
// Esc closes it, focus stays inside while it is open and goes back where it was after.
import { helpAction, trappedFocus } from './help-keys';

const overlay = document.getElementById('help-overlay');
const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), [tabindex]:not([tabindex="-1"])';
let returnTo: HTMLElement | null = null;

function focusables(): HTMLElement[] {
  return overlay ? [...overlay.querySelectorAll<HTMLElement>(FOCUSABLE)] : [];
}

function open(): void {
  if (!overlay || !overlay.hidden) return;
  returnTo = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  overlay.hidden = false;
  document.body.dataset.helpOpen = 'true';
  (document.getElementById('help-close') ?? focusables()[0])?.focus();
}

function close(): void {
  if (!overlay || overlay.hidden) return;
  overlay.hidden = true;
  delete document.body.dataset.helpOpen;
  returnTo?.focus();
  returnTo = null;
}

if (overlay) {
  // Capture: the overlay has these keys before any page's own shortcuts (the study
  // viewer's arrows must not scroll the slices behind an open overlay).
  window.addEventListener(
    'keydown',
    (e) => {
      const isOpen = !overlay.hidden;
      const action = helpAction(e, isOpen);
      if (action === null) {
        if (isOpen && !overlay.contains(e.target as Node)) e.stopPropagation();
        return;
      }
      e.preventDefault();
      e.stopPropagation();
      if (action === 'open') open();
      else if (action === 'close') close();
      else {
        const items = focusables();
        const index = items.indexOf(document.activeElement as HTMLElement);
        items[trappedFocus(index, items.length, action === 'focusPrevious')]?.focus();
      }
    },
    true,
  );
  for (const button of document.querySelectorAll<HTMLElement>('#help-open, [data-help-open]')) {
    button.addEventListener('click', () => (overlay.hidden ? open() : close()));
  }
  document.getElementById('help-close')?.addEventListener('click', close);
  overlay.addEventListener('click', (e) => {
    if (e.target === overlay) close(); // a click on the backdrop
  });
  document.documentElement.dataset.helpReady = 'true';
}
