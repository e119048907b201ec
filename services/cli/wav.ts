/** WAV in and out for the CLI: any PCM WAV in, PCM16LE 16 kHz mono to the gateway; reply audio out. */
import { WaveFile } from 'wavefile';

export const ORB_SAMPLE_RATE = 16_000;

/** Decodes a WAV file and returns PCM16LE mono at 16 kHz (resampled and down-mixed when needed). */
export function wavToPcm16k(buf: Uint8Array): Buffer {
  let wav: WaveFile;
  try {
    wav = new WaveFile(buf);
  } catch (err) {
    throw new Error(`not a WAV file: ${(err as Error).message}`);
  }
  const fmt = wav.fmt as { sampleRate: number };
  // wavefile's toSampleRate resamples with an anti-aliasing filter; channels are averaged by hand.
  if (fmt.sampleRate !== ORB_SAMPLE_RATE) wav.toSampleRate(ORB_SAMPLE_RATE);
  wav.toBitDepth('16');
  const raw = wav.getSamples(false, Int16Array) as unknown;
  // Multi-channel files come back as one array per channel (wavefile's de-interleaved form).
  const channels = Array.isArray(raw) ? (raw as Int16Array[]) : [raw as Int16Array];
  const n = channels[0].length;
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (const ch of channels) sum += ch[i];
    out[i] = Math.round(sum / channels.length);
  }
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** Wraps PCM16LE mono samples into a WAV file. */
export function pcm16ToWav(pcm: Uint8Array, sampleRate: number): Buffer {
  const samples = new Int16Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength - (pcm.byteLength % 2)));
  const wav = new WaveFile();
  wav.fromScratch(1, sampleRate, '16', samples);
  return Buffer.from(wav.toBuffer());
}
