import { describe, expect, it } from 'vitest';
import type { Instance, Series, SliceInfo, StudyDetail } from './api';
import { defaultSeries, openingSlice, stackOrder, startIndex } from './stack';

const inst = (sop: string, n: number): Instance =>
  ({ id: n, sop_instance_uid: sop, instance_number: n, slice_location: n * 4, image_url: `/api/instances/${n}/dicom/` }) as Instance;
const slice = (series: string, sop: string, head: number[]): SliceInfo =>
  ({
    sop_instance_uid: sop,
    series_instance_uid: series,
    instance_number: null,
    hips: head.map((a, k) => ({ side: k ? 'left' : 'right', proportion: 0, grade: 'none', head_area_mm2: a, necrosis_area_mm2: 0, flags: [] })),
  }) as unknown as SliceInfo;
const series = (uid: string, instances: Instance[], plane?: string): Series =>
  ({ id: instances.length, series_instance_uid: uid, description: '', instances, plane, analysis: null }) as unknown as Series;

describe('stack', () => {
  const axial = series('1.2.1', [inst('a', 3), inst('b', 1), inst('c', 2), inst('d', 4)]);
  const coronal = series('1.2.2', [inst('x', 1)], 'coronal');
  const detail = {
    series: [coronal, axial],
    hips: [{ series_instance_uid: '1.2.1' }],
    slices: [slice('1.2.1', 'c', [100]), slice('1.2.1', 'a', [300, 250]), slice('1.2.1', 'b', [50])],
  } as unknown as StudyDetail;

  it('opens the axial series with results', () => {
    expect(defaultSeries(detail)?.series_instance_uid).toBe('1.2.1');
    expect(defaultSeries({ ...detail, hips: [] } as unknown as StudyDetail)?.series_instance_uid).toBe('1.2.1');
  });

  it('orders the slices as the analysis did, then the rest by instance number', () => {
    const { stack, slices } = stackOrder(detail, axial);
    expect(stack.map((i) => i.sop_instance_uid)).toEqual(['c', 'a', 'b', 'd']);
    expect(slices[3]).toBeNull();
  });

  it('starts on the slice with the most femoral head, else the middle', () => {
    const { slices } = stackOrder(detail, axial);
    expect(startIndex(slices)).toBe(1);
    expect(startIndex([null, null, null, null, null])).toBe(2);
    const opening = openingSlice(detail);
    expect(opening?.stack[opening.index]?.image_url).toBe('/api/instances/3/dicom/');
  });
});
