/**
 * Input audio, parsed by its spec: the pipeline takes PCM16LE, 16 kHz, mono. A WAV (RIFF or RIFX,
 * plain PCM or WAVE_FORMAT_EXTENSIBLE with the PCM subformat) or raw PCM that says what it is gets
 * decoded exactly; a header that lies about its sizes is ORB_ERR_AUDIO_MALFORMED (400), a valid file
 * in another format ORB_ERR_AUDIO_FORMAT (415). Nothing is guessed.
 */
import { ORB_ERR_AUDIO_FORMAT, ORB_ERR_AUDIO_MALFORMED } from './errors';

export const SAMPLE_RATE = 16_000;
export const PCM_CONTENT_TYPE = 'audio/pcm;rate=16000';

const WAVE_FORMAT_PCM = 0x0001;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;
/** Bytes 8..15 of KSDATAFORMAT_SUBTYPE_PCM ({00000001-0000-0010-8000-00AA00389B71}): the same in either byte order. */
const KSDATAFORMAT_TAIL = Buffer.from([0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71]);

/** What a WAV header says, checked against itself and against the bytes that follow it. */
export interface WavInfo {
  readonly byteOrder: 'LE' | 'BE';
  /** The effective format tag (the subformat's for WAVE_FORMAT_EXTENSIBLE). */
  readonly formatTag: number;
  readonly extensible: boolean;
  readonly channels: number;
  readonly sampleRate: number;
  readonly bitsPerSample: number;
  readonly validBitsPerSample: number;
  readonly blockAlign: number;
  /** The data chunk's bytes, in the file's byte order. */
  readonly data: Buffer;
}

interface Reader {
  u16(o: number): number;
  u32(o: number): number;
}

const readerOf = (buf: Buffer, order: 'LE' | 'BE'): Reader =>
  order === 'LE'
    ? { u16: (o) => buf.readUInt16LE(o), u32: (o) => buf.readUInt32LE(o) }
    : { u16: (o) => buf.readUInt16BE(o), u32: (o) => buf.readUInt32BE(o) };

/** Parses a RIFF/RIFX WAVE container; throws ORB_ERR_AUDIO_MALFORMED when sizes or fields disagree. */
export function parseWav(buf: Buffer): WavInfo {
  if (buf.length === 0) throw new ORB_ERR_AUDIO_FORMAT('empty audio');
  const magic = buf.subarray(0, 4).toString('latin1');
  if (magic !== 'RIFF' && magic !== 'RIFX')
    throw new ORB_ERR_AUDIO_FORMAT(magic === 'RF64' ? 'RF64 WAV' : 'not a WAV file (no RIFF header)');
  if (buf.length < 12 || buf.subarray(8, 12).toString('latin1') !== 'WAVE')
    throw new ORB_ERR_AUDIO_FORMAT('RIFF file of another form than WAVE');
  const byteOrder = magic === 'RIFF' ? 'LE' : 'BE';
  const r = readerOf(buf, byteOrder);
  const riffEnd = 8 + r.u32(4);
  // The RIFF size counts every byte after it; one trailing pad byte is allowed, anything else is a lie.
  if (riffEnd > buf.length) throw new ORB_ERR_AUDIO_MALFORMED(`RIFF size declares ${riffEnd} bytes, the file has ${buf.length}`);
  if (buf.length - riffEnd > 1) throw new ORB_ERR_AUDIO_MALFORMED(`${buf.length - riffEnd} bytes after the RIFF size of ${riffEnd}`);
  let fmt: Omit<WavInfo, 'data' | 'byteOrder'> | null = null;
  let data: Buffer | null = null;
  for (let at = 12; at < riffEnd;) {
    if (at + 8 > riffEnd) throw new ORB_ERR_AUDIO_MALFORMED(`chunk header at byte ${at} runs past the RIFF size`);
    const id = buf.subarray(at, at + 4).toString('latin1');
    const size = r.u32(at + 4);
    const body = at + 8;
    if (body + size > riffEnd)
      throw new ORB_ERR_AUDIO_MALFORMED(`'${printable(id)}' chunk declares ${size} bytes, ${riffEnd - body} remain`);
    if (id === 'fmt ') {
      if (fmt) throw new ORB_ERR_AUDIO_MALFORMED('two fmt chunks');
      fmt = parseFmt(buf, r, body, size);
    } else if (id === 'data') {
      if (!fmt) throw new ORB_ERR_AUDIO_MALFORMED('data chunk before the fmt chunk');
      if (data) throw new ORB_ERR_AUDIO_MALFORMED('two data chunks');
      data = buf.subarray(body, body + size);
    }
    at = body + size + (size % 2); // chunks are word-aligned
  }
  if (!fmt) throw new ORB_ERR_AUDIO_MALFORMED('no fmt chunk');
  if (!data) throw new ORB_ERR_AUDIO_MALFORMED('no data chunk');
  if (data.length % fmt.blockAlign !== 0)
    throw new ORB_ERR_AUDIO_MALFORMED(`data size ${data.length} is not whole frames of ${fmt.blockAlign} bytes`);
  return { byteOrder, ...fmt, data };
}

function parseFmt(buf: Buffer, r: Reader, at: number, size: number): Omit<WavInfo, 'data' | 'byteOrder'> {
  if (size < 16) throw new ORB_ERR_AUDIO_MALFORMED(`fmt chunk of ${size} bytes (at least 16)`);
  const tag = r.u16(at);
  const channels = r.u16(at + 2);
  const sampleRate = r.u32(at + 4);
  const byteRate = r.u32(at + 8);
  const blockAlign = r.u16(at + 12);
  const bitsPerSample = r.u16(at + 14);
  if (channels === 0 || sampleRate === 0 || bitsPerSample === 0)
    throw new ORB_ERR_AUDIO_MALFORMED(`fmt says ${channels} channels, ${sampleRate} Hz, ${bitsPerSample} bits`);
  if (blockAlign !== channels * Math.ceil(bitsPerSample / 8)) {
    throw new ORB_ERR_AUDIO_MALFORMED(`block align ${blockAlign} does not match ${channels} channel(s) of ${bitsPerSample} bits`);
  }
  if (byteRate !== sampleRate * blockAlign)
    throw new ORB_ERR_AUDIO_MALFORMED(`byte rate ${byteRate} is not ${sampleRate} Hz x ${blockAlign} bytes`);
  let formatTag = tag;
  let validBitsPerSample = bitsPerSample;
  const extensible = tag === WAVE_FORMAT_EXTENSIBLE;
  if (extensible) {
    // WAVEFORMATEXTENSIBLE: cbSize 22, then valid bits, channel mask and the subformat GUID.
    if (size < 40 || r.u16(at + 16) < 22) throw new ORB_ERR_AUDIO_MALFORMED('WAVE_FORMAT_EXTENSIBLE fmt chunk shorter than 40 bytes');
    validBitsPerSample = r.u16(at + 18);
    const mask = r.u32(at + 20);
    if (validBitsPerSample === 0 || validBitsPerSample > bitsPerSample)
      throw new ORB_ERR_AUDIO_MALFORMED(`${validBitsPerSample} valid bits in ${bitsPerSample}-bit samples`);
    if (mask !== 0 && popcount(mask) !== channels)
      throw new ORB_ERR_AUDIO_MALFORMED(`channel mask 0x${mask.toString(16)} names ${popcount(mask)} channels, fmt says ${channels}`);
    const d1 = r.u32(at + 24);
    const guidOk =
      d1 <= 0xffff && r.u16(at + 28) === 0x0000 && r.u16(at + 30) === 0x0010 && buf.subarray(at + 32, at + 40).equals(KSDATAFORMAT_TAIL);
    if (!guidOk) throw new ORB_ERR_AUDIO_FORMAT('WAVE_FORMAT_EXTENSIBLE with a subformat that is not a KSDATAFORMAT_SUBTYPE');
    formatTag = d1;
  }
  return { formatTag, extensible, channels, sampleRate, bitsPerSample, validBitsPerSample, blockAlign };
}

/** PCM16LE samples from a WAV file (RIFX byte-swapped), or a 4xx naming what is wrong. */
export function pcmFromWav(buf: Buffer): Buffer {
  const w = parseWav(buf);
  if (w.formatTag !== WAVE_FORMAT_PCM) throw new ORB_ERR_AUDIO_FORMAT(`WAV audio format ${w.formatTag} is not integer PCM`);
  if (w.bitsPerSample !== 16 || w.validBitsPerSample !== 16)
    throw new ORB_ERR_AUDIO_FORMAT(`${w.validBitsPerSample}-bit samples in ${w.bitsPerSample}-bit containers`);
  if (w.channels !== 1) throw new ORB_ERR_AUDIO_FORMAT(`${w.channels} channels`);
  if (w.sampleRate !== SAMPLE_RATE) throw new ORB_ERR_AUDIO_FORMAT(`sample rate ${w.sampleRate} Hz`);
  if (w.data.length === 0) throw new ORB_ERR_AUDIO_FORMAT('empty audio');
  return w.byteOrder === 'LE' ? Buffer.from(w.data) : Buffer.from(w.data).swap16();
}

/** `type/subtype; k=v; …` → lower-cased type and parameters (quoted values unquoted), or 415 when malformed. */
export function parseMediaType(contentType: string): { type: string; params: Map<string, string> } {
  const [type, ...rest] = contentType.split(';');
  const params = new Map<string, string>();
  for (const p of rest) {
    if (!p.trim()) continue;
    const m = /^\s*([A-Za-z0-9!#$&^_.+-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s";]*)\s*$/.exec(p);
    if (!m) throw new ORB_ERR_AUDIO_FORMAT(`malformed media type parameter '${printable(p.trim()).slice(0, 40)}'`);
    const key = m[1].toLowerCase();
    if (params.has(key)) throw new ORB_ERR_AUDIO_FORMAT(`media type parameter '${key}' given twice`);
    params.set(key, m[2].startsWith('"') ? m[2].slice(1, -1).replace(/\\(.)/g, '$1') : m[2]);
  }
  return { type: type.trim().toLowerCase(), params };
}

const PCM_ENCODINGS = new Set(['pcm16le', 's16le', 'signed-integer']);

/**
 * Raw PCM16 from `audio/pcm` or `audio/L16` (RFC 2586: network byte order, `rate` required). A declared
 * rate, channel count or encoding is honoured: the gateway's own format is accepted, anything else
 * refused with 415. Returns PCM16LE.
 */
export function checkRawPcm(contentType: string, buf: Buffer): Buffer {
  const { type, params } = parseMediaType(contentType);
  const l16 = type === 'audio/l16';
  for (const k of params.keys()) {
    if (!['rate', 'channels', 'encoding'].includes(k))
      throw new ORB_ERR_AUDIO_FORMAT(`unknown ${type} parameter '${printable(k).slice(0, 40)}'`);
  }
  const rate = params.get('rate');
  if (rate === undefined && l16) throw new ORB_ERR_AUDIO_FORMAT('audio/L16 needs a rate parameter (RFC 2586)');
  if (rate !== undefined && (!/^\d{1,6}$/.test(rate) || Number(rate) !== SAMPLE_RATE))
    throw new ORB_ERR_AUDIO_FORMAT(`sample rate ${printable(rate).slice(0, 20)} Hz`);
  const channels = params.get('channels');
  if (channels !== undefined && channels !== '1') throw new ORB_ERR_AUDIO_FORMAT(`${printable(channels).slice(0, 20)} channels`);
  const enc = params.get('encoding')?.toLowerCase();
  if (enc !== undefined && (l16 || !PCM_ENCODINGS.has(enc))) throw new ORB_ERR_AUDIO_FORMAT(`encoding ${printable(enc).slice(0, 20)}`);
  checkPcmFrame(buf);
  return l16 ? Buffer.from(buf).swap16() : buf;
}

/** Rates a raw PCM upload may declare for the transcription route (the ASR worker resamples them). */
const UPLOAD_RATES = { min: 8000, max: 48_000 };

/**
 * A raw PCM upload (`audio/pcm`, `audio/L16`) as the ASR worker must read it: the declared rate is
 * honoured (carried to the worker) or refused, L16's network byte order is swapped to little-endian.
 * Undefined for anything else (WAV and other containers are the worker's to decode).
 */
export function rawPcmUpload(contentType: string, buf: Buffer): { bytes: Buffer; contentType: string } | undefined {
  const { type, params } = parseMediaType(contentType);
  if (type !== 'audio/pcm' && type !== 'audio/l16') return undefined;
  const l16 = type === 'audio/l16';
  for (const k of params.keys()) {
    if (!['rate', 'channels', 'encoding'].includes(k))
      throw new ORB_ERR_AUDIO_FORMAT(`unknown ${type} parameter '${printable(k).slice(0, 40)}'`);
  }
  const rawRate = params.get('rate');
  if (rawRate === undefined && l16) throw new ORB_ERR_AUDIO_FORMAT('audio/L16 needs a rate parameter (RFC 2586)');
  const rate = rawRate === undefined ? SAMPLE_RATE : /^\d{1,6}$/.test(rawRate) ? Number(rawRate) : NaN;
  if (!(rate >= UPLOAD_RATES.min && rate <= UPLOAD_RATES.max)) {
    throw new ORB_ERR_AUDIO_FORMAT(
      `sample rate ${printable(rawRate ?? '').slice(0, 20)} Hz (${UPLOAD_RATES.min}..${UPLOAD_RATES.max} for raw PCM)`,
    );
  }
  const channels = params.get('channels');
  if (channels !== undefined && channels !== '1') throw new ORB_ERR_AUDIO_FORMAT(`${printable(channels).slice(0, 20)} channels`);
  const enc = params.get('encoding')?.toLowerCase();
  if (enc !== undefined && (l16 || !PCM_ENCODINGS.has(enc))) throw new ORB_ERR_AUDIO_FORMAT(`encoding ${printable(enc).slice(0, 20)}`);
  checkPcmFrame(buf);
  return { bytes: l16 ? Buffer.from(buf).swap16() : buf, contentType: `audio/pcm;rate=${rate}` };
}

/** A PCM16 chunk is whole samples: an odd length means the client is not sending PCM16. */
export function checkPcmFrame(buf: Buffer): void {
  if (buf.length === 0) throw new ORB_ERR_AUDIO_FORMAT('empty audio');
  if (buf.length % 2 !== 0) throw new ORB_ERR_AUDIO_FORMAT(`odd byte length ${buf.length} is not whole 16-bit samples`);
}

function popcount(n: number): number {
  let c = 0;
  for (let v = n >>> 0; v; v >>>= 1) c += v & 1;
  return c;
}

const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '?');
