import { describe, expect, it } from 'vitest';
import { chartScales, DEFAULT_LAYOUT, linearScale, linePath, niceTicks, renderChartSvg, sliceAtX } from './chart';

describe('chart scales', () => {
  it('maps and inverts linearly', () => {
    const s = linearScale([0, 10], [100, 200]);
    expect(s(0)).toBe(100);
    expect(s(5)).toBe(150);
    expect(s.invert(175)).toBe(7.5);
    const flipped = linearScale([0, 1], [140, 10]);
    expect(flipped(1)).toBe(10);
    expect(flipped.invert(140)).toBe(0);
  });

  it('handles an empty domain', () => {
    expect(linearScale([3, 3], [0, 100])(3)).toBe(50);
  });

  it('makes round ticks that cover the maximum', () => {
    expect(niceTicks(10)).toEqual([0, 2.5, 5, 7.5, 10]);
    expect(niceTicks(37)).toEqual([0, 10, 20, 30, 40]);
    expect(niceTicks(0)).toEqual([0]);
  });

  it('keeps at least 10 % on the y axis', () => {
    const { ticks } = chartScales(20, 0.01);
    expect(ticks[ticks.length - 1]).toBeCloseTo(0.1);
  });

  it('maps a click back to the nearest slice, clamped', () => {
    const { x } = chartScales(20, 0.2);
    expect(sliceAtX(x(7) + 2, 20)).toBe(7);
    expect(sliceAtX(0, 20)).toBe(0);
    expect(sliceAtX(DEFAULT_LAYOUT.width + 50, 20)).toBe(19);
    expect(sliceAtX(123, 1)).toBe(0);
  });
});

describe('chart drawing', () => {
  it('breaks the line where a hip is absent', () => {
    const d = linePath([0.1, null, 0.2, 0.3], (i) => i * 10, (v) => v * 100);
    expect(d).toBe('M0.0 10.0 M20.0 20.0 L30.0 30.0');
  });

  it('renders one path per hip and marks the current slice', () => {
    const svg = renderChartSvg(
      [
        { key: 'left', label: 'Left', colour: '#4fc3f7', values: [0, 0.1, 0.2] },
        { key: 'right', label: 'Right', colour: '#ffb74d', values: [null, 0.05, 0.4] },
      ],
      3,
      1,
    );
    expect(svg.match(/class="series"/g)).toHaveLength(2);
    expect(svg).toContain('class="current"');
    expect(svg).toContain('class="edge"');
    expect(svg.startsWith('<svg')).toBe(true);
  });
});
