/**
 * vad-batch: Silero VAD throughput in windows/s for N streams advancing in lockstep (every stream
 * has one window pending at a time, as in the gateway), through the service's VadStream with the
 * batched scheduler (one onnxruntime run per tick) vs per-stream runs (one run per window; the N
 * runs of a tick go to onnxruntime concurrently, as N sockets' frames do). Same model file, same
 * session options (1 intra-op, 1 inter-op thread); rounds alternate between the arms. A pure
 * compute figure: no sockets, no vault, so the 2-core machine's noise matters less than in `ws`.
 */
import { interleave } from './harness/interleave';
import { figure, type Benchmark, type Figure } from './harness/result';
import { median } from './harness/stats';
import { subject } from './harness/subject';
import { syntheticAudio } from './vad';

export const vadBatch: Benchmark = {
  name: 'vad-batch',
  title: 'Silero VAD windows/s for N lockstep streams: batched scheduler vs per-stream runs',
  async run({ quick, log }) {
    const mod = await subject('services/inference/vad.ts (SileroVad)', () => import('../services/inference/vad'));
    const single = await mod.SileroVad.load({ intraOpThreads: 1, interOpThreads: 1 });
    const batched = await mod.SileroVad.load({ intraOpThreads: 1, interOpThreads: 1, batch: { maxBatch: 64 } });
    try {
      const audio = syntheticAudio(4);
      const perWindow = mod.VAD_WINDOW;
      const windowsInAudio = Math.floor(audio.length / perWindow);
      const ns = quick ? [1, 16, 64] : [1, 8, 32, 64, 128, 256];
      const budget = quick ? 1500 : 4000; // windows per round and arm
      const rounds = quick ? 2 : 4;
      const figures: Figure[] = [];
      const details: Record<string, unknown> = {};
      for (const n of ns) {
        const arm = (vad: typeof single) => async () => {
          const streams = Array.from({ length: n }, () => vad.stream());
          const steps = Math.max(4, Math.round(budget / n));
          const t0 = performance.now();
          for (let i = 0; i < steps; i++) {
            // Streams start at different offsets so a batch mixes speech-like and quiet rows.
            await Promise.all(
              streams.map((s, k) => {
                const w = ((i + k * 7) % windowsInAudio) * perWindow;
                return s.probability(audio.subarray(w, w + perWindow));
              }),
            );
          }
          return (n * steps) / ((performance.now() - t0) / 1000);
        };
        await arm(single)(); // warm-up: ORT arenas sized for this N
        await arm(batched)();
        const before = { ...batched.scheduler!.stats };
        const r = await interleave(rounds, [
          { name: 'single', round: arm(single) },
          { name: 'batched', round: arm(batched) },
        ]);
        const s = median(r.single);
        const b = median(r.batched);
        const st = batched.scheduler!.stats;
        const meanBatch = (st.windows - before.windows) / Math.max(1, st.runs - before.runs);
        log(
          `N=${n}: batched ${b.toFixed(0)} windows/s (mean batch ${meanBatch.toFixed(1)}), per-stream ${s.toFixed(0)} windows/s, ${(b / s).toFixed(2)}x`,
        );
        details[`n${n}`] = { batched: r.batched, single: r.single, meanBatch };
        figures.push(
          figure({
            metric: `VAD windows/s, ${n} stream${n === 1 ? '' : 's'}`,
            unit: 'windows/s',
            better: 'higher',
            subjectLabel: 'batched scheduler',
            subject: b,
            baselineLabel: 'per-stream runs',
            baseline: s,
          }),
        );
      }
      // Streams one core of VAD compute could serve in real time (31.25 windows/s each), at the largest N.
      const top = figures[figures.length - 1];
      figures.push(
        figure({
          metric: `real-time streams the VAD alone sustains at N=${ns[ns.length - 1]} (windows/s / 31.25)`,
          unit: 'streams',
          better: 'higher',
          subjectLabel: 'batched scheduler',
          subject: top.subject / 31.25,
          baselineLabel: 'per-stream runs',
          baseline: top.baseline / 31.25,
        }),
      );
      return { figures, details: { ...details, maxBatch: batched.scheduler!.maxBatch, threads: { intraOp: 1, interOp: 1 } } };
    } finally {
      await batched.dispose();
      await single.dispose();
    }
  },
};
