import { describe, expect, it } from 'vitest';
import { stampDisc } from './brush';
import { applyStrokeRules } from './labels';
import { compareLabels, MARKED_AND_REFERENCE, MARKED_ONLY, markedSlices, markingEditLabel, markingToLabels, necrosisMask, openingSlice, overlayCaption, overlayViews, parseTeachingConfig, type TeachingConfig } from './teaching-logic';

const image = (id: number, index: number, extra: Record<string, unknown> = {}) => ({
  id,
  index,
  rows: 3,
  columns: 4,
  dicom_url: `/api/teaching/images/${id}/dicom/`,
  png_url: `/api/teaching/images/${id}/image.png`,
  reference_url: null,
  ...extra,
});

describe('parseTeachingConfig', () => {
  it('keeps the images in stack order with their URLs', () => {
    const config = parseTeachingConfig({ mode: 'result', images: [image(8, 1, { mask_url: '/m/8.png' }), image(7, 0, { reference_url: '/r/7.png' })] });
    expect(config.images.map((i) => i.id)).toEqual([7, 8]);
    expect(config.images[0]!.reference_url).toBe('/r/7.png');
    expect(config.images[0]!.mask_url).toBeNull();
    expect(config.images[1]!.mask_url).toBe('/m/8.png');
  });

  it('drops any reference while a student answers', () => {
    const config = parseTeachingConfig({ mode: 'answer', images: [image(1, 0, { reference_url: '/api/teaching/images/1/reference.png' })] });
    expect(config.images[0]!.reference_url).toBeNull();
    expect(overlayViews(config)).toEqual(['marking']);
  });

  it('refuses a config it cannot show, with a clear message', () => {
    expect(() => parseTeachingConfig(null)).toThrow(/no viewer config/);
    expect(() => parseTeachingConfig({ mode: 'grade', images: [image(1, 0)] })).toThrow(/unknown teaching page mode grade/);
    expect(() => parseTeachingConfig({ mode: 'answer', images: [] })).toThrow(/no images/);
    expect(() => parseTeachingConfig({ mode: 'answer', images: [{ ...image(1, 0), rows: 0 }] })).toThrow(/image 1 of the case is incomplete/);
    expect(() => parseTeachingConfig({ mode: 'answer', images: [{ ...image(1, 0), dicom_url: 'http://elsewhere/x.dcm' }] })).toThrow(/no DICOM URL/);
  });
});

describe('overlayViews', () => {
  const config = (mode: TeachingConfig['mode'], reference: boolean): TeachingConfig =>
    parseTeachingConfig({ mode, images: [image(1, 0, { reference_url: reference ? '/r/1.png' : null })] });

  it('shows the answer only where the server revealed it', () => {
    expect(overlayViews(config('answer', false))).toEqual(['marking']);
    expect(overlayViews(config('view', true))).toEqual(['reference']);
    expect(overlayViews(config('view', false))).toEqual([]);
    expect(overlayViews(config('result', true))).toEqual(['reference', 'marking', 'compare']);
    expect(overlayViews(config('result', false))).toEqual(['marking']);
  });

  it('names what each overlay shows', () => {
    expect(overlayCaption('reference', 'result')).toMatch(/Reference/);
    expect(overlayCaption('marking', 'answer')).toMatch(/Your marking/);
    expect(overlayCaption(null, 'view')).toBe('No reference mask');
  });
});

describe("a student's marking", () => {
  const shape = { columns: 5, rows: 5, radiusX: 1, radiusY: 1 };

  it('is painted with the necrosis brush on an empty slice and erased back to background', () => {
    const labels = new Uint8Array(25);
    const before = labels.slice();
    stampDisc(labels, before, shape, 2.5, 2.5, 'brush', markingEditLabel('brush'));
    expect(applyStrokeRules(before, labels, 'brush', markingEditLabel('brush'))).toBe(0);
    expect(Array.from(labels).filter((v) => v === 2).length).toBe(5);
    const painted = labels.slice();
    stampDisc(labels, painted, shape, 2.5, 2.5, 'eraser', markingEditLabel('eraser'));
    // No viable-head pixel is left behind: a student never draws the head.
    expect(Array.from(labels).every((v) => v === 0)).toBe(true);
  });

  it('goes with the answer as one 0/1 mask per marked slice', () => {
    const images = parseTeachingConfig({ mode: 'answer', images: [image(11, 0), image(12, 1), image(13, 2)] }).images;
    const slices = [new Uint8Array(12), null, new Uint8Array(12)];
    slices[2]![5] = 2;
    slices[2]![6] = 2;
    const marked = markedSlices(images, (i) => slices[i] ?? null);
    expect(marked).toHaveLength(1);
    expect(marked[0]!.imageId).toBe(13);
    expect([marked[0]!.rows, marked[0]!.columns]).toEqual([3, 4]);
    expect(Array.from(marked[0]!.mask).filter(Boolean)).toEqual([1, 1]);
    expect(() => markedSlices(images, () => new Uint8Array(7))).toThrow(/wrong size/);
  });

  it('is read back from its PNG as necrosis labels', () => {
    const labels = markingToLabels([0, 1, 255, 0]);
    expect(Array.from(labels)).toEqual([0, 2, 2, 0]);
    expect(Array.from(necrosisMask(labels)!)).toEqual([0, 1, 1, 0]);
    expect(necrosisMask(new Uint8Array([0, 1, 1]))).toBeNull();
  });
});

describe('openingSlice', () => {
  it('opens an answer on the slice with the most necrosis, else the middle one', () => {
    expect(openingSlice([new Uint8Array([2, 0]), null, new Uint8Array([2, 2, 1])], 3)).toBe(2);
    expect(openingSlice([null, new Uint8Array([1, 1]), null, null], 4)).toBe(2);
    expect(openingSlice([], 5)).toBe(2);
  });
});

describe('compareLabels', () => {
  it('tells agreement, marked only and reference only apart', () => {
    const reference = new Uint8Array([0, 1, 2, 2, 1, 0]);
    const marking = new Uint8Array([0, 0, 2, 0, 2, 2]);
    expect(Array.from(compareLabels(reference, marking, 6))).toEqual([0, 1, MARKED_AND_REFERENCE, 2, MARKED_ONLY, MARKED_ONLY]);
    expect(Array.from(compareLabels(null, marking, 6))).toEqual([0, 0, MARKED_ONLY, 0, MARKED_ONLY, MARKED_ONLY]);
    expect(Array.from(compareLabels(reference, null, 6))).toEqual([0, 1, 2, 2, 1, 0]);
    expect(() => compareLabels(reference, new Uint8Array(5), 6)).toThrow(/differ in size/);
  });
});
