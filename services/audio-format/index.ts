/**
 * The audio and caption formats the services write, defined once: PCM16LE samples, the WAV file
 * around them, and SRT/WebVTT captions. The CLI (services/cli/wav.ts), the workers
 * (services/workers/audio/pcm.ts) and the gateway's OpenAI routes (services/orb/plugins) all write
 * through here, so a WAV from any of them has the same bytes. Decoding (with each side's own
 * validation and error codes) stays with its reader.
 */

/** Float samples in [-1, 1] to PCM16 (asymmetric scale: -1 → -32768, +1 → 32767), clipped. */
export function floatToInt16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = Math.max(-1, Math.min(1, samples[i]));
    out[i] = s < 0 ? Math.round(s * 32768) : Math.round(s * 32767);
  }
  return out;
}

/** Raw little-endian PCM16 — what `response_format: pcm` returns and what WebSocket audio frames carry. */
export function encodePcm16(samples: Float32Array): Buffer {
  const ints = floatToInt16(samples);
  const buf = Buffer.alloc(ints.length * 2);
  for (let i = 0; i < ints.length; i++) buf.writeInt16LE(ints[i], i * 2);
  return buf;
}

/** The 44-byte header of a PCM16 mono WAV file whose data chunk holds `dataBytes` bytes. */
export function wavHeader(dataBytes: number, sampleRate: number): Buffer {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(sampleRate, 24);
  h.writeUInt32LE(sampleRate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

/** Wraps PCM16LE mono bytes into a WAV file (a trailing odd byte, half a sample, is dropped). */
export function pcm16ToWav(pcm: Uint8Array, sampleRate: number): Buffer {
  const data = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength - (pcm.byteLength % 2));
  return Buffer.concat([wavHeader(data.length, sampleRate), data]);
}

/** Mono float samples to a PCM16 WAV file. */
export function encodeWav(pcm: { readonly samples: Float32Array; readonly sampleRate: number }): Buffer {
  return pcm16ToWav(encodePcm16(pcm.samples), pcm.sampleRate);
}

/** Resamples PCM16LE mono linearly (speech band is far below the Nyquist of any rate used here). */
export function resamplePcm16(pcm: Buffer, from: number, to: number): Buffer {
  if (from === to || pcm.length < 4) return pcm;
  const n = pcm.length / 2;
  const m = Math.max(1, Math.round((n * to) / from));
  const out = Buffer.alloc(m * 2);
  for (let j = 0; j < m; j++) {
    const x = (j * from) / to;
    const i = Math.min(n - 1, Math.floor(x));
    const k = Math.min(n - 1, i + 1);
    const f = x - i;
    out.writeInt16LE(Math.round(pcm.readInt16LE(i * 2) * (1 - f) + pcm.readInt16LE(k * 2) * f), j * 2);
  }
  return out;
}

/** One caption: seconds from the start of the audio, and its text. */
export interface CaptionSegment {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

function timestamp(s: number, sep: ',' | '.'): string {
  const ms = Math.round(s * 1000);
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(h)}:${pad(m)}:${pad(sec)}${sep}${pad(ms % 1000, 3)}`;
}

/** SubRip captions: numbered cues, `HH:MM:SS,mmm` times. */
export function toSrt(segments: readonly CaptionSegment[]): string {
  return segments.map((s, i) => `${i + 1}\n${timestamp(s.start, ',')} --> ${timestamp(s.end, ',')}\n${s.text.trim()}\n`).join('\n');
}

/** WebVTT captions: the `WEBVTT` header, `HH:MM:SS.mmm` times. */
export function toVtt(segments: readonly CaptionSegment[]): string {
  return `WEBVTT\n\n${segments.map((s) => `${timestamp(s.start, '.')} --> ${timestamp(s.end, '.')}\n${s.text.trim()}\n`).join('\n')}`;
}
