/**
 * The app icons of the installable client, drawn at build time (no binary in git, no download):
 * the ORB sphere of orb.css as RGBA PNGs. `maskable` fills the square with the page background and
 * keeps the sphere inside the central safe circle (radius 40 %) that launchers may crop to.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** A PNG (8-bit RGBA, no interlace) of `rgba`, row by row, `size` x `size`. */
export function encodePng(rgba: Uint8Array, size: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type 6 (RGBA), deflate, filter 0, no interlace
  const raw = Buffer.alloc(size * (size * 4 + 1));
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0; // filter: none
    raw.set(rgba.subarray(y * size * 4, (y + 1) * size * 4), y * (size * 4 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

type Rgb = readonly [number, number, number];
const BACKGROUND: Rgb = [0x0d, 0x10, 0x17];
// The gradient of .orb in orb.css: highlight at 35 %/35 %, #bfe6ff -> #2a6fb0 (60 %) -> #0b2540.
const STOPS: ReadonlyArray<readonly [number, Rgb]> = [
  [0, [0xbf, 0xe6, 0xff]],
  [0.6, [0x2a, 0x6f, 0xb0]],
  [1, [0x0b, 0x25, 0x40]],
];

function gradient(t: number): Rgb {
  const x = Math.min(1, Math.max(0, t));
  for (let i = 1; i < STOPS.length; i++) {
    const [p1, c1] = STOPS[i];
    const [p0, c0] = STOPS[i - 1];
    if (x <= p1) {
      const f = (x - p0) / (p1 - p0);
      return [0, 1, 2].map((k) => c0[k] + (c1[k] - c0[k]) * f) as unknown as Rgb;
    }
  }
  return STOPS[STOPS.length - 1][1];
}

/** RGBA pixels of the ORB icon; 4x4 supersampling smooths the sphere's edge. */
export function drawOrbIcon(size: number, maskable = false): Uint8Array {
  const out = new Uint8Array(size * size * 4);
  const r = size * (maskable ? 0.3 : 0.46);
  const c = size / 2;
  const hx = c - r * 0.3;
  const hy = c - r * 0.3;
  const SS = 4;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let cov = 0;
      let acc = [0, 0, 0];
      for (let sy = 0; sy < SS; sy++) {
        for (let sx = 0; sx < SS; sx++) {
          const px = x + (sx + 0.5) / SS;
          const py = y + (sy + 0.5) / SS;
          if ((px - c) ** 2 + (py - c) ** 2 > r * r) continue;
          cov++;
          const col = gradient(Math.hypot(px - hx, py - hy) / (r * 1.3));
          acc = acc.map((v, k) => v + col[k]);
        }
      }
      const a = cov / (SS * SS);
      const i = (y * size + x) * 4;
      const sphere = cov ? acc.map((v) => v / cov) : [0, 0, 0];
      if (maskable) {
        // Opaque: the sphere over the page background.
        for (let k = 0; k < 3; k++) out[i + k] = Math.round(sphere[k] * a + BACKGROUND[k] * (1 - a));
        out[i + 3] = 255;
      } else {
        for (let k = 0; k < 3; k++) out[i + k] = Math.round(sphere[k]);
        out[i + 3] = Math.round(a * 255);
      }
    }
  }
  return out;
}

/** File name -> PNG bytes of every icon the manifest lists. */
export function orbIcons(): Record<string, Buffer> {
  return {
    'icon-192.png': encodePng(drawOrbIcon(192), 192),
    'icon-512.png': encodePng(drawOrbIcon(512), 512),
    'icon-maskable-512.png': encodePng(drawOrbIcon(512, true), 512),
  };
}
