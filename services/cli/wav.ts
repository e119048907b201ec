/** WAV in and out for the CLI: any PCM WAV in, PCM16LE 16 kHz mono to the gateway; reply audio out. */
import { WaveFile } from 'wavefile';

// Reply audio is written by the shared writer, the same bytes the gateway and workers produce.
export { pcm16ToWav } from '../audio-format';

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
