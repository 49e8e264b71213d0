import { describe, expect, it } from 'vitest';
import { applyAffine, imageToCanvasAffine, invertAffine, labelmapToRgba, scaleAffine, zoomRelativeToFit, type OverlayStyle } from './overlay';

const style: OverlayStyle = {
  headColour: [0, 200, 0, 255],
  necrosisColour: [250, 0, 0, 255],
  fillAlpha: 0.5,
  outlineAlpha: 0.9,
  showHead: true,
  showNecrosis: true,
};

// 5 x 5: a 3 x 3 head block with necrosis at its centre.
const labels = new Uint8Array([
  0, 0, 0, 0, 0,
  0, 1, 1, 1, 0,
  0, 1, 2, 1, 0,
  0, 1, 1, 1, 0,
  0, 0, 0, 0, 0,
]);
const px = (out: Uint8ClampedArray, x: number, y: number) => Array.from(out.slice((y * 5 + x) * 4, (y * 5 + x) * 4 + 4));

describe('labelmapToRgba', () => {
  it('colours each label, leaves the background transparent, outlines region edges', () => {
    const out = new Uint8ClampedArray(25 * 4);
    expect(labelmapToRgba(labels, 5, 5, style, out)).toBe(9);
    expect(px(out, 0, 0)).toEqual([0, 0, 0, 0]);
    // Every head pixel here touches background or necrosis: outline opacity.
    expect(px(out, 1, 1)).toEqual([0, 200, 0, 230]);
    // The single necrosis pixel is its own region's edge too.
    expect(px(out, 2, 2)).toEqual([250, 0, 0, 230]);
  });

  it('fills the inside of a region at the fill opacity', () => {
    const big = new Uint8Array(49).fill(1);
    const out = new Uint8ClampedArray(49 * 4);
    labelmapToRgba(big, 7, 7, style, out);
    expect(Array.from(out.slice((3 * 7 + 3) * 4, (3 * 7 + 3) * 4 + 4))).toEqual([0, 200, 0, 128]);
    // The image border counts as an edge.
    expect(out[3]).toBe(230);
  });

  it('hides a label that is switched off, and keeps the outline at zero fill', () => {
    const out = new Uint8ClampedArray(25 * 4);
    expect(labelmapToRgba(labels, 5, 5, { ...style, showNecrosis: false }, out)).toBe(8);
    expect(px(out, 2, 2)).toEqual([0, 0, 0, 0]);
    const big = new Uint8Array(49).fill(2);
    const out2 = new Uint8ClampedArray(49 * 4);
    labelmapToRgba(big, 7, 7, { ...style, fillAlpha: 0 }, out2);
    expect(out2[(3 * 7 + 3) * 4 + 3]).toBe(0);
    expect(out2[3]).toBe(230);
  });

  it('refuses buffers of the wrong size', () => {
    expect(() => labelmapToRgba(labels, 4, 5, style, new Uint8ClampedArray(80))).toThrow();
    expect(() => labelmapToRgba(labels, 5, 5, style, new Uint8ClampedArray(10))).toThrow();
  });
});

describe('image to canvas map', () => {
  // A 256 x 256 image shown 2x larger, moved by (10, 20), flipped left-right.
  const m = imageToCanvasAffine([522, 20], [10, 20], [522, 532], 256, 256);

  it('maps the corners and the pixel centres', () => {
    expect(applyAffine(m, 0, 0)).toEqual([522, 20]);
    expect(applyAffine(m, 256, 256)).toEqual([10, 532]);
    expect(applyAffine(m, 0.5, 0.5)).toEqual([521, 21]);
  });

  it('inverts back to image coordinates', () => {
    const inv = invertAffine(m);
    expect(inv).not.toBeNull();
    const [x, y] = applyAffine(inv!, ...applyAffine(m, 100.25, 37.5));
    expect(x).toBeCloseTo(100.25, 9);
    expect(y).toBeCloseTo(37.5, 9);
    expect(invertAffine([1, 2, 2, 4, 0, 0])).toBeNull();
  });

  it('scales to device pixels', () => {
    expect(applyAffine(scaleAffine(m, 2), 0, 0)).toEqual([1044, 40]);
  });
});

describe('zoomRelativeToFit', () => {
  it('is 1 when the image just fits, whichever side limits it', () => {
    // 256 x 256 pixels of 1.5 mm in a 1010 x 627 viewport: the height limits.
    const fit = 627 / 256;
    expect(zoomRelativeToFit([fit, 0, 0, fit, 191, 0], 256, 256, 1.5, 1.5, 1010, 627)).toBeCloseTo(1, 9);
    expect(zoomRelativeToFit([2 * fit, 0, 0, 2 * fit, 0, 0], 256, 256, 1.5, 1.5, 1010, 627)).toBeCloseTo(2, 9);
  });

  it('accounts for rectangular pixels and flips', () => {
    // columns 0.5 mm, rows 1 mm: 200 x 100 pixels = 100 x 100 mm in a 400 x 400 viewport.
    expect(zoomRelativeToFit([-2, 0, 0, 4, 400, 0], 200, 100, 0.5, 1, 400, 400)).toBeCloseTo(1, 9);
  });
});

describe('labelmapToRgba with display-only values', () => {
  it('colours values above 2 from extraColours, with the necrosis, and leaves unknown ones out', () => {
    const out = new Uint8ClampedArray(4 * 4);
    const extra = { ...style, fillAlpha: 1, extraColours: { 3: [0, 0, 255, 255] as const } };
    expect(labelmapToRgba(new Uint8Array([3, 4, 2, 0]), 4, 1, extra, out)).toBe(2);
    expect(Array.from(out.slice(0, 4))).toEqual([0, 0, 255, 255]);
    expect(Array.from(out.slice(4, 8))).toEqual([0, 0, 0, 0]);
    labelmapToRgba(new Uint8Array([3, 4, 2, 0]), 4, 1, { ...extra, showNecrosis: false }, out);
    expect(out.every((v) => v === 0)).toBe(true);
  });
});
