/** Hand-built WAV files whose every header field a test can set, true or lying (RIFF and RIFX). */
export interface WavSpec {
  order?: 'LE' | 'BE';
  tag?: number;
  channels?: number;
  rate?: number;
  bits?: number;
  byteRate?: number;
  blockAlign?: number;
  /** Overrides the RIFF size field. */
  riffSize?: number;
  /** Overrides the data chunk's size field. */
  dataSize?: number;
  /** fmt chunk size (16 plain, 40 extensible); extra bytes are zero. */
  fmtSize?: number;
  extensible?: { validBits?: number; mask?: number; subTag?: number; guidTail?: number[]; cbSize?: number };
  /** Chunks before fmt (e.g. LIST), as [id, bytes]. */
  before?: [string, Buffer][];
  omitFmt?: boolean;
  omitData?: boolean;
  dataFirst?: boolean;
  /** Samples as PCM16 values (written in `order`), or raw data bytes. */
  samples?: number[];
  data?: Buffer;
  magic?: string;
  form?: string;
  trailing?: Buffer;
}

export const KSDATAFORMAT_TAIL = [0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];

export function buildWav(s: WavSpec = {}): Buffer {
  const be = s.order === 'BE';
  const u16 = (v: number) => {
    const b = Buffer.alloc(2);
    be ? b.writeUInt16BE(v) : b.writeUInt16LE(v);
    return b;
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    be ? b.writeUInt32BE(v >>> 0) : b.writeUInt32LE(v >>> 0);
    return b;
  };
  const channels = s.channels ?? 1;
  const rate = s.rate ?? 16000;
  const bits = s.bits ?? 16;
  const blockAlign = s.blockAlign ?? channels * Math.ceil(bits / 8);
  const tag = s.tag ?? (s.extensible ? 0xfffe : 1);
  let fmt = Buffer.concat([u16(tag), u16(channels), u32(rate), u32(s.byteRate ?? rate * blockAlign), u16(blockAlign), u16(bits)]);
  if (s.extensible) {
    const x = s.extensible;
    const guid = Buffer.concat([u32(x.subTag ?? 1), u16(0), u16(0x0010), Buffer.from(x.guidTail ?? KSDATAFORMAT_TAIL)]);
    fmt = Buffer.concat([fmt, u16(x.cbSize ?? 22), u16(x.validBits ?? bits), u32(x.mask ?? 0x4), guid]);
  }
  if (s.fmtSize !== undefined)
    fmt = s.fmtSize <= fmt.length ? fmt.subarray(0, s.fmtSize) : Buffer.concat([fmt, Buffer.alloc(s.fmtSize - fmt.length)]);
  const data =
    s.data ??
    Buffer.concat(
      (s.samples ?? Array.from({ length: 320 }, (_, i) => Math.round(3000 * Math.sin(i / 5)))).map((v) => {
        const b = Buffer.alloc(2);
        be ? b.writeInt16BE(v) : b.writeInt16LE(v);
        return b;
      }),
    );
  const chunk = (id: string, body: Buffer, size = body.length) =>
    Buffer.concat([Buffer.from(id, 'latin1'), u32(size), body, body.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
  const parts: Buffer[] = (s.before ?? []).map(([id, b]) => chunk(id, b));
  const fmtChunk = s.omitFmt ? [] : [chunk('fmt ', fmt)];
  const dataChunk = s.omitData ? [] : [chunk('data', data, s.dataSize ?? data.length)];
  parts.push(...(s.dataFirst ? [...dataChunk, ...fmtChunk] : [...fmtChunk, ...dataChunk]));
  const body = Buffer.concat([Buffer.from(s.form ?? 'WAVE', 'latin1'), ...parts]);
  return Buffer.concat([
    Buffer.from(s.magic ?? (be ? 'RIFX' : 'RIFF'), 'latin1'),
    u32(s.riffSize ?? body.length),
    body,
    s.trailing ?? Buffer.alloc(0),
  ]);
}

/** The samples `buildWav` writes by default, as the PCM16LE the gateway must store. */
export function defaultPcm16le(): Buffer {
  return Buffer.concat(
    Array.from({ length: 320 }, (_, i) => {
      const b = Buffer.alloc(2);
      b.writeInt16LE(Math.round(3000 * Math.sin(i / 5)));
      return b;
    }),
  );
}
