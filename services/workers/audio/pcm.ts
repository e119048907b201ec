import { WaveFile } from 'wavefile';
import { AudioErrors } from './errors';

// The writers (PCM16, WAV) are shared with the gateway and the CLI.
export { encodePcm16, encodeWav, floatToInt16 } from '../../audio-format';

/** Mono float samples in [-1, 1] at a known rate: the one in-memory audio shape the workers pass around. */
export interface Pcm {
  samples: Float32Array;
  sampleRate: number;
}

export type InputAudioFormat = 'wav' | 'pcm16';

export interface DecodeOptions {
  /** Format of the bytes; `auto` sniffs the RIFF header and otherwise refuses. @default 'auto' */
  format?: InputAudioFormat | 'auto';
  /** Sample rate of raw PCM16LE input. @default 16000 */
  pcmSampleRate?: number;
  /** Longest accepted audio in seconds, checked from the header before decoding. @default 600 */
  maxDurationS?: number;
}

export const ASR_SAMPLE_RATE = 16000;
const MIN_RATE = 4000;
const MAX_RATE = 384000;
const MAX_CHANNELS = 8;
/** Data sizes at or above this are the placeholders streaming WAV writers use (0x7FFFF000, 0xFFFFFFFF). */
const STREAMING_SIZE = 0x7ffff000;

interface WavFmt {
  audioFormat: number;
  numChannels: number;
  sampleRate: number;
  bitsPerSample: number;
  validBitsPerSample?: number;
  subformat?: number[];
}
interface WavData {
  chunkSize: number;
  samples: Uint8Array;
}

function readWaveFile(bytes: Uint8Array): WaveFile {
  if (bytes.length === 0) throw new AudioErrors.ORB_ERR_AUDIO_EMPTY('the upload is zero bytes');
  const tag = Buffer.from(bytes.subarray(0, 4)).toString('latin1');
  if (bytes.length < 44 && (tag === 'RIFF' || tag === 'RIFX' || tag === 'RF64')) {
    throw new AudioErrors.ORB_ERR_AUDIO_TRUNCATED(`WAV header needs at least 44 bytes, got ${bytes.length}`);
  }
  if (tag !== 'RIFF' && tag !== 'RIFX' && tag !== 'RF64') {
    throw new AudioErrors.ORB_ERR_AUDIO_FORMAT('not a WAV file (no RIFF header); send WAV or raw PCM16LE');
  }
  const wav = new WaveFile();
  try {
    wav.fromBuffer(bytes);
  } catch (err) {
    // wavefile throws plain Errors/RangeErrors while walking chunks: a chunk that runs past the buffer is truncation.
    const msg = (err as Error).message;
    if (err instanceof RangeError || /offset|out of range|bounds/i.test(msg)) {
      throw new AudioErrors.ORB_ERR_AUDIO_TRUNCATED(`WAV chunks end early (${msg})`);
    }
    throw new AudioErrors.ORB_ERR_AUDIO_FORMAT(`unreadable WAV (${msg})`);
  }
  return wav;
}

/** The codec check that runs on the header alone, before any sample is converted. */
function checkWavHeader(wav: WaveFile, maxDurationS: number): { fmt: WavFmt; data: WavData } {
  const fmt = wav.fmt as WavFmt;
  const data = wav.data as WavData;
  if (!fmt || !fmt.numChannels) throw new AudioErrors.ORB_ERR_AUDIO_TRUNCATED('WAV has no fmt chunk');
  // 1 = integer PCM, 3 = IEEE float, 0xFFFE = extensible (its subformat's first word says which).
  const format = fmt.audioFormat === 0xfffe && fmt.subformat ? fmt.subformat[0] : fmt.audioFormat;
  const bits = fmt.bitsPerSample;
  const pcmOk = format === 1 && [8, 16, 24, 32].includes(bits);
  const floatOk = format === 3 && (bits === 32 || bits === 64);
  if (!pcmOk && !floatOk) {
    throw new AudioErrors.ORB_ERR_AUDIO_FORMAT(
      `WAV codec ${fmt.audioFormat} with ${bits}-bit samples; use PCM 8/16/24/32-bit or float 32/64-bit`,
    );
  }
  if (fmt.numChannels < 1 || fmt.numChannels > MAX_CHANNELS) {
    throw new AudioErrors.ORB_ERR_AUDIO_FORMAT(`${fmt.numChannels} channels; 1 to ${MAX_CHANNELS} supported`);
  }
  if (fmt.sampleRate < MIN_RATE || fmt.sampleRate > MAX_RATE) {
    throw new AudioErrors.ORB_ERR_AUDIO_FORMAT(`sample rate ${fmt.sampleRate} Hz outside ${MIN_RATE}..${MAX_RATE}`);
  }
  if (!data || data.chunkSize === undefined) throw new AudioErrors.ORB_ERR_AUDIO_TRUNCATED('WAV has no data chunk');
  const frameBytes = (bits / 8) * fmt.numChannels;
  if (data.chunkSize >= STREAMING_SIZE) {
    // Streaming writers (espeak-ng --stdout, ffmpeg to a pipe) cannot know the length and write a maximal
    // placeholder: the data runs to the end of the file.
    data.chunkSize = data.samples.length - (data.samples.length % frameBytes);
    data.samples = data.samples.subarray(0, data.chunkSize);
  }
  const declaredS = data.chunkSize / frameBytes / fmt.sampleRate;
  if (declaredS > maxDurationS) {
    throw new AudioErrors.ORB_ERR_AUDIO_TOO_LONG(`header declares ${declaredS.toFixed(1)} s, limit is ${maxDurationS} s`);
  }
  if (data.samples.length < data.chunkSize) {
    throw new AudioErrors.ORB_ERR_AUDIO_TRUNCATED(`data chunk declares ${data.chunkSize} bytes, ${data.samples.length} present`);
  }
  if (data.samples.length < frameBytes) throw new AudioErrors.ORB_ERR_AUDIO_EMPTY('WAV data chunk holds no complete frame');
  return { fmt, data };
}

function checkFinite(samples: Float32Array | Float64Array): void {
  for (let i = 0; i < samples.length; i++) {
    if (!Number.isFinite(samples[i])) throw new AudioErrors.ORB_ERR_AUDIO_SAMPLES(`sample ${i} is ${samples[i]}`);
  }
}

function downmix(wav: WaveFile, channels: number): Float32Array {
  const raw = wav.getSamples(false, Float64Array) as unknown as Float64Array | Float64Array[];
  const chans = channels === 1 ? [raw as Float64Array] : (raw as Float64Array[]);
  const out = new Float32Array(chans[0].length);
  for (const ch of chans) {
    checkFinite(ch);
    for (let i = 0; i < out.length; i++) out[i] += ch[i] / channels;
  }
  return out;
}

/** Decode WAV (any common PCM/float layout, mono or multi-channel) or raw PCM16LE into mono float PCM. */
export function decodeAudio(bytes: Uint8Array, opts: DecodeOptions = {}): Pcm {
  const format = opts.format ?? 'auto';
  const maxDurationS = opts.maxDurationS ?? 600;
  if (bytes.length === 0) throw new AudioErrors.ORB_ERR_AUDIO_EMPTY('the upload is zero bytes');
  if (format === 'pcm16') return decodePcm16(bytes, opts.pcmSampleRate ?? ASR_SAMPLE_RATE, maxDurationS);
  const wav = readWaveFile(bytes);
  const { fmt } = checkWavHeader(wav, maxDurationS);
  // toBitDepth rebuilds wav.fmt, so keep what we need first.
  const { numChannels, sampleRate, audioFormat, bitsPerSample } = fmt;
  // wavefile scales every integer/float layout to float in [-1, 1] for us.
  if (!(audioFormat === 3 && bitsPerSample === 32)) wav.toBitDepth('32f');
  return { samples: downmix(wav, numChannels), sampleRate };
}

export function decodePcm16(bytes: Uint8Array, sampleRate: number, maxDurationS = 600): Pcm {
  if (bytes.length === 0) throw new AudioErrors.ORB_ERR_AUDIO_EMPTY('the upload is zero bytes');
  if (bytes.length % 2 !== 0) throw new AudioErrors.ORB_ERR_AUDIO_TRUNCATED(`raw PCM16LE needs an even byte count, got ${bytes.length}`);
  if (sampleRate < MIN_RATE || sampleRate > MAX_RATE) {
    throw new AudioErrors.ORB_ERR_AUDIO_FORMAT(`sample rate ${sampleRate} Hz outside ${MIN_RATE}..${MAX_RATE}`);
  }
  const n = bytes.length / 2;
  if (n / sampleRate > maxDurationS) {
    throw new AudioErrors.ORB_ERR_AUDIO_TOO_LONG(`${(n / sampleRate).toFixed(1)} s of PCM, limit is ${maxDurationS} s`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const samples = new Float32Array(n);
  for (let i = 0; i < n; i++) samples[i] = view.getInt16(i * 2, true) / 32768;
  return { samples, sampleRate };
}

/** Resample mono PCM (wavefile's windowed-sinc with its anti-alias low-pass) — a no-op at the target rate. */
export function resample(pcm: Pcm, targetRate: number = ASR_SAMPLE_RATE): Pcm {
  if (pcm.sampleRate === targetRate) return pcm;
  const wav = new WaveFile();
  wav.fromScratch(1, pcm.sampleRate, '32f', pcm.samples);
  wav.toSampleRate(targetRate, { method: 'sinc', LPF: true });
  const out = Float32Array.from(wav.getSamples(false, Float64Array) as unknown as Float64Array);
  return { samples: out, sampleRate: targetRate };
}

/** Decode anything accepted and bring it to Whisper/Silero's 16 kHz mono. */
export function decodeForAsr(bytes: Uint8Array, opts: DecodeOptions = {}): Pcm {
  return resample(decodeAudio(bytes, opts), ASR_SAMPLE_RATE);
}
