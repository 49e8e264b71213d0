import { describe, expect, it } from 'vitest';
import { chooseRenderPath } from './rendering';

describe('chooseRenderPath', () => {
  it('uses the CPU path on a software rasterizer and without WebGL', () => {
    expect(chooseRenderPath({ webgl: true, softwareRasterizer: true })).toBe('cpu');
    expect(chooseRenderPath({ webgl: false, softwareRasterizer: false })).toBe('cpu');
  });

  it('keeps WebGL on a real GPU', () => {
    expect(chooseRenderPath({ webgl: true, softwareRasterizer: false })).toBe('gpu');
  });

  it('follows ?render= when WebGL is there', () => {
    expect(chooseRenderPath({ webgl: true, softwareRasterizer: true }, 'gpu')).toBe('gpu');
    expect(chooseRenderPath({ webgl: true, softwareRasterizer: false }, 'cpu')).toBe('cpu');
    expect(chooseRenderPath({ webgl: false, softwareRasterizer: false }, 'gpu')).toBe('cpu');
    expect(chooseRenderPath({ webgl: true, softwareRasterizer: false }, 'fast')).toBe('gpu');
  });
});
