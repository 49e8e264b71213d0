// Which of Cornerstone's rendering paths the viewer uses.
// WebGL on a software rasterizer (SwiftShader, llvmpipe: browsers on machines without a GPU)
// redraws the whole viewport on the CPU through the GPU pipeline, a few hundred ms per
// slice on the lab machines; Cornerstone's CPU path draws the same slice in ~20 ms.
// With a real GPU the WebGL path is kept (a frame or two per slice, any image size).

export type RenderPath = 'cpu' | 'gpu';

export interface RenderingCapabilities {
  webgl: boolean;
  softwareRasterizer: boolean;
}

/** `requested`: the page's `?render=` value ('cpu' or 'gpu'; anything else means automatic). */
export function chooseRenderPath(caps: RenderingCapabilities, requested: string | null = null): RenderPath {
  if (!caps.webgl) return 'cpu';
  if (requested === 'gpu' || requested === 'cpu') return requested;
  return caps.softwareRasterizer ? 'cpu' : 'gpu';
}
