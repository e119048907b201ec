/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * Batched VAD (one Silero run per tick for the windows of every stream) must decide like the
 * per-stream path: same speech/non-speech frames, same speech_start/speech_end events, on the
 * espeak fixtures, noise and silence, with many streams sharing each batch.
 *
 * Tolerance: batched float32 rows may differ from single runs in the last bits (different GEMM
 * shapes). Probabilities must agree within PROB_TOL; a frame's decision may differ only if both
 * probabilities lie within PROB_TOL of a threshold (0.5 opens speech, 0.35 may end it). On this
 * model and onnxruntime build the rows have come out bit-identical, so no frame has needed it.
 */
import { spawnSync } from 'child_process';
import { readFileSync } from 'fs';
import { join } from 'path';
import { decodeForAsr } from '../../../services/workers/audio/pcm';
import { SileroVad, VAD_WINDOW, VadScheduler, type VadEvent, type VadStream } from '../../../services/inference/vad';
import { hasTool } from '../../support/system-tools';

jest.setTimeout(180_000);
const PROB_TOL = 1e-3;
const THRESHOLD = 0.5;
const NEG_THRESHOLD = 0.35;

const fixture = decodeForAsr(readFileSync(join(__dirname, '../../fixtures/speech-16k.wav'))).samples;

function noise(n: number, amp: number, seed = 12345): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return ((s / 0x7fffffff) * 2 - 1) * amp;
  });
}

function mix(a: Float32Array, gain: number, b?: Float32Array): Float32Array {
  return Float32Array.from(a, (x, i) => x * gain + (b ? b[i % b.length] : 0));
}

function espeak(text: string, voice = 'en-us'): Float32Array | null {
  const out = spawnSync('espeak-ng', ['-v', voice, '--stdout', text], { maxBuffer: 16 << 20 });
  if (out.status !== 0) return null;
  const pcm = decodeForAsr(out.stdout).samples;
  const padded = new Float32Array(pcm.length + 16000);
  padded.set(pcm, 8000);
  return padded;
}

/** The signals compared: speech (committed fixture, fresh espeak), speech under noise, quiet speech, noise, silence. */
function signals(): Record<string, Float32Array> {
  const s: Record<string, Float32Array> = {
    fixture,
    'fixture + noise 0.02': mix(fixture, 1, noise(16000, 0.02, 7)),
    'fixture at 0.15 gain (frames near the threshold)': mix(fixture, 0.15),
    'white noise 0.3': noise(16000 * 3, 0.3),
    'quiet noise 0.003': noise(16000 * 3, 0.003, 99),
    silence: new Float32Array(16000 * 2),
  };
  if (hasTool('espeak-ng', 'espeak-ng', 'batched VAD on sentences spoken now')) {
    const a = espeak('Voice activity detection should find this sentence.');
    const b = espeak('Batched windows must decide exactly like single ones.', 'en-gb');
    if (a) s['espeak en-us now'] = a;
    if (b) s['espeak en-gb now'] = b;
  }
  return s;
}

const windowsOf = (x: Float32Array) => Math.ceil(x.length / VAD_WINDOW);
const windowAt = (x: Float32Array, i: number) => x.subarray(i * VAD_WINDOW, (i + 1) * VAD_WINDOW);

/** Per-window probabilities and events of every signal, the streams advancing in lockstep (so their windows share ticks). */
async function lockstep(
  vad: SileroVad,
  sigs: Record<string, Float32Array>,
): Promise<Record<string, { probs: number[]; events: VadEvent[] }>> {
  const names = Object.keys(sigs);
  const probe = new Map<string, VadStream>(names.map((n) => [n, vad.stream()]));
  const segm = new Map<string, VadStream>(names.map((n) => [n, vad.stream()]));
  const out = Object.fromEntries(names.map((n) => [n, { probs: [] as number[], events: [] as VadEvent[] }]));
  const longest = Math.max(...names.map((n) => windowsOf(sigs[n])));
  for (let i = 0; i < longest; i++) {
    const live = names.filter((n) => i < windowsOf(sigs[n]));
    await Promise.all(
      live.flatMap((n) => [
        probe
          .get(n)!
          .probability(windowAt(sigs[n], i))
          .then((p) => {
            out[n].probs.push(p);
          }),
        segm
          .get(n)!
          .pushWindow(windowAt(sigs[n], i))
          .then((ev) => {
            out[n].events.push(...ev);
          }),
      ]),
    );
  }
  for (const n of names) {
    const last = segm.get(n)!.flush(sigs[n].length);
    if (last) out[n].events.push({ type: 'speech_end', start: last.start, end: last.end });
  }
  return out;
}

const near = (p: number) => Math.abs(p - THRESHOLD) <= PROB_TOL || Math.abs(p - NEG_THRESHOLD) <= PROB_TOL;

describe('batched Silero VAD (VadScheduler) vs per-stream runs', () => {
  let single: SileroVad;
  let batched: SileroVad;
  let small: SileroVad;
  beforeAll(async () => {
    single = await SileroVad.load();
    batched = await SileroVad.load({ batch: { maxBatch: 64 } });
    small = await SileroVad.load({ batch: { maxBatch: 3, tickMs: 1 } });
  });
  afterAll(async () => {
    await single.dispose();
    await batched.dispose();
    await small.dispose();
  });

  it.each([
    ['maxBatch 64, next-turn tick', () => batched],
    ['maxBatch 3, 1 ms tick', () => small],
  ])('makes the same speech/non-speech decisions and events on every frame (%s)', async (_label, which) => {
    const sigs = signals();
    const vad = which();
    const before = { ...vad.scheduler!.stats };
    const a = await lockstep(single, sigs);
    const b = await lockstep(vad, sigs);
    let frames = 0;
    let maxDiff = 0;
    const mismatches: string[] = [];
    for (const name of Object.keys(sigs)) {
      expect(b[name].probs).toHaveLength(a[name].probs.length);
      for (const [i, p] of a[name].probs.entries()) {
        const q = b[name].probs[i];
        frames++;
        maxDiff = Math.max(maxDiff, Math.abs(p - q));
        if (p >= THRESHOLD !== q >= THRESHOLD || p < NEG_THRESHOLD !== q < NEG_THRESHOLD) {
          mismatches.push(`${name} window ${i}: ${p} vs ${q}`);
          expect(near(p) && near(q)).toBe(true);
        }
      }
      if (!mismatches.some((m) => m.startsWith(`${name} `))) expect(b[name].events).toEqual(a[name].events);
    }
    expect(maxDiff).toBeLessThanOrEqual(PROB_TOL);
    // The fixtures do hold speech and non-speech, so the comparison covers both decisions.
    expect(a.fixture.events[0]).toMatchObject({ type: 'speech_start' });
    expect(a['white noise 0.3'].events).toEqual([]);
    const runs = vad.scheduler!.stats.runs - before.runs;
    const windows = vad.scheduler!.stats.windows - before.windows;
    expect(windows).toBe(2 * Object.values(sigs).reduce((n, s) => n + windowsOf(s), 0));
    expect(runs).toBeLessThan(windows / 2); // windows of many streams really shared runs
    expect(vad.scheduler!.stats.largestBatch).toBeLessThanOrEqual(vad.scheduler!.maxBatch);
    console.log(
      `VAD agreement: ${frames} frames, ${mismatches.length} decision mismatches, max |dp| ${maxDiff}, ${windows} windows in ${runs} runs`,
    ); // eslint-disable-line no-console
  });

  it('falls back to single runs when only one stream has a window pending', async () => {
    const s = batched.stream();
    const before = { ...batched.scheduler!.stats };
    for (let i = 0; i < 20; i++) await s.probability(windowAt(fixture, i));
    expect(batched.scheduler!.stats.runs - before.runs).toBe(20);
    expect(batched.scheduler!.stats.singleRuns - before.singleRuns).toBe(20);
  });

  it("keeps each stream's state apart: a stream fed silence beside speech stays silent", async () => {
    const a = batched.stream({ minSilenceMs: 300 });
    const b = batched.stream();
    const events: VadEvent[] = [];
    const quiet: VadEvent[] = [];
    for (let i = 0; i < windowsOf(fixture); i++) {
      const [ea, eb] = await Promise.all([a.pushWindow(windowAt(fixture, i)), b.pushWindow(new Float32Array(VAD_WINDOW))]);
      events.push(...ea);
      quiet.push(...eb);
    }
    expect(events[0].type).toBe('speech_start');
    expect(quiet).toEqual([]);
  });

  it('bounds the batch: windows over maxBatch wait for the next run', async () => {
    const streams = Array.from({ length: 10 }, () => small.stream());
    const before = { ...small.scheduler!.stats };
    await Promise.all(streams.map((s, i) => s.probability(windowAt(fixture, 20 + i))));
    expect(small.scheduler!.stats.runs - before.runs).toBe(4); // 3 + 3 + 3 + 1
    expect(small.scheduler!.stats.largestBatch).toBeLessThanOrEqual(3);
  });

  it('checks its options and refuses windows once closed', async () => {
    expect(() => new VadScheduler(single.model, { maxBatch: 0 })).toThrow("'maxBatch' (0) must be a positive integer");
    expect(() => new VadScheduler(single.model, { tickMs: -1 })).toThrow("'tickMs' (-1) must be at least 0");
    const sch = new VadScheduler(single.model);
    await expect(sch.probability(new Float32Array(10), new Float32Array(256))).rejects.toThrow('float32[576]');
    const pending = sch.probability(new Float32Array(576), new Float32Array(256));
    sch.close();
    await expect(pending).rejects.toThrow('closed');
    await expect(sch.probability(new Float32Array(576), new Float32Array(256))).rejects.toThrow('closed');
  });
});
