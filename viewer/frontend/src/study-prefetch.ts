// A small early script of the study page: as soon as the study detail (requested by the
// page's inline script) arrives, it works out the slice the viewer opens on and asks for
// that DICOM file, while the viewer bundle (3 MB) is still being compiled. The viewer hands
// the bytes to the image loader instead of requesting the file again (study.ts).
import type { StudyDetail } from './api';
import { openingSlice } from './stack';

export interface EarlyStudyWindow {
  /** Set by the page's inline script. */
  onfhStudyDetail?: Promise<Response>;
  /** The same answer read as JSON (null when the request failed). */
  onfhStudyDetailJson?: Promise<StudyDetail | null>;
  /** The opening slice's DICOM file and its absolute URL (null when not fetched). */
  onfhOpeningSlice?: Promise<{ url: string; bytes: ArrayBuffer } | null>;
}

const w = window as unknown as EarlyStudyWindow;
const early = w.onfhStudyDetail;
if (early && !w.onfhStudyDetailJson) {
  delete w.onfhStudyDetail;
  const detail = early.then((r) => (r.ok ? (r.json() as Promise<StudyDetail>) : null)).catch(() => null);
  w.onfhStudyDetailJson = detail;
  w.onfhOpeningSlice = detail
    .then(async (d) => {
      const opening = d ? openingSlice(d) : null;
      const instance = opening?.stack[opening.index];
      if (!instance) return null;
      const url = new URL(instance.image_url, window.location.origin).href;
      const response = await fetch(url, { credentials: 'same-origin' });
      return response.ok ? { url, bytes: await response.arrayBuffer() } : null;
    })
    .catch(() => null);
}
