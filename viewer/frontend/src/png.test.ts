import { describe, expect, it } from 'vitest';
import { deflateSync } from 'node:zlib';
import { base64ToBytes, bytesToBase64, crc32, decodeLabelPng, encodeGrayPng } from './png';

function labelmap(width: number, height: number): Uint8Array {
  const data = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const r = Math.hypot(x - width / 2, y - height / 2);
      data[y * width + x] = r < 4 ? 2 : r < 9 ? 1 : 0;
    }
  }
  return data;
}

/** A PNG written the way other encoders do: every row with its own filter type. */
function pngWithFilters(width: number, height: number, data: Uint8Array, colourType: number, bpp: number): Uint8Array {
  const stride = width * bpp;
  const raw = new Uint8Array((stride + 1) * height);
  const row = (y: number) => {
    const r = new Uint8Array(stride);
    for (let x = 0; x < width; x++) for (let c = 0; c < bpp; c++) r[x * bpp + c] = c === 0 ? data[y * width + x]! : 200;
    return r;
  };
  let prev = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const cur = row(y);
    const filter = y % 5;
    raw[y * (stride + 1)] = filter;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? cur[x - bpp]! : 0;
      const b = prev[x]!;
      const c = x >= bpp ? prev[x - bpp]! : 0;
      const p = a + b - c;
      const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      const pred = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter]!;
      raw[y * (stride + 1) + 1 + x] = (cur[x]! - pred) & 0xff;
    }
    prev = cur;
  }
  const chunk = (type: string, payload: Uint8Array) => {
    const out = new Uint8Array(12 + payload.length);
    const v = new DataView(out.buffer);
    v.setUint32(0, payload.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(payload, 8);
    v.setUint32(8 + payload.length, crc32(out, 4, 8 + payload.length));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr[8] = 8;
  ihdr[9] = colourType;
  const idat = new Uint8Array(deflateSync(raw));
  // Split the image data over two IDAT chunks, as some encoders do.
  const half = Math.floor(idat.length / 2);
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', idat.subarray(0, half)),
    chunk('IDAT', idat.subarray(half)),
    chunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

describe('PNG label maps', () => {
  it('crc32 matches the PNG reference value', () => {
    expect(crc32(new TextEncoder().encode('IEND'))).toBe(0xae426082);
  });

  it('round-trips values 0/1/2 exactly', async () => {
    const data = labelmap(37, 23);
    const png = await encodeGrayPng({ width: 37, height: 23, data });
    expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const back = await decodeLabelPng(png);
    expect(back.width).toBe(37);
    expect(back.height).toBe(23);
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('writes a greyscale 8-bit IHDR', async () => {
    const png = await encodeGrayPng({ width: 3, height: 2, data: new Uint8Array(6) });
    const v = new DataView(png.buffer, png.byteOffset);
    expect(String.fromCharCode(...png.subarray(12, 16))).toBe('IHDR');
    expect(v.getUint32(16)).toBe(3);
    expect(v.getUint32(20)).toBe(2);
    expect(png[24]).toBe(8);
    expect(png[25]).toBe(0);
  });

  it.each([
    [0, 1],
    [2, 3],
    [4, 2],
    [6, 4],
  ])('decodes colour type %i with all five row filters', async (colourType, bpp) => {
    const data = labelmap(19, 16);
    const back = await decodeLabelPng(pngWithFilters(19, 16, data, colourType, bpp));
    expect(Array.from(back.data)).toEqual(Array.from(data));
  });

  it('rejects a wrong pixel count and a non-PNG', async () => {
    await expect(encodeGrayPng({ width: 4, height: 4, data: new Uint8Array(15) })).rejects.toThrow(/pixel count/);
    await expect(decodeLabelPng(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]))).rejects.toThrow(/not a PNG/);
  });

  it('base64 round-trips binary data longer than one chunk', () => {
    const bytes = new Uint8Array(70000).map((_, i) => (i * 31) & 0xff);
    const text = bytesToBase64(bytes);
    expect(text).toBe(Buffer.from(bytes).toString('base64'));
    expect(Array.from(base64ToBytes(text))).toEqual(Array.from(bytes));
  });
});
