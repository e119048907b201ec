/**
 * speech: time to the first audio byte of POST /v1/audio/speech per response_format, on one orb-core process and
 * one xtts worker process (the tiny Piper voice, CPU) against one vault. Baseline in the same run: `wav`, which
 * needs the whole reply before its header can be written. `mp3` is encoded by ffmpeg as each sentence arrives;
 * `pcm` streams without an encoder. Rounds interleave the formats (ABBA). The input is ten sentences, so the
 * streaming formats can answer after the first one.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleave } from './harness/interleave';
import { figure, NotAvailable, type Benchmark } from './harness/result';
import { freePort, startGateway, startTs } from './harness/stack';
import { median } from './harness/stats';
import { writeTinyPiperVoices } from '../tools/tiny-models/piper';

const INPUT = Array.from({ length: 10 }, (_, i) => `This is sentence number ${i + 1} of the benchmark reply.`).join(' ');

interface Sample {
  ttfb: number;
  total: number;
  bytes: number;
}

export const speech: Benchmark = {
  name: 'speech',
  title: 'POST /v1/audio/speech time to first audio byte: mp3 (ffmpeg, streamed) and pcm vs wav (whole reply)',
  label: 'tiny Piper voice on CPU: synthesis is far cheaper than a real voice, so this mostly prices ffmpeg and the streaming path',
  async run({ quick, root, log }) {
    if (spawnSync('ffmpeg', ['-version']).status !== 0)
      throw new NotAvailable('ffmpeg missing (apt-get install ffmpeg): mp3 cannot be measured');
    const dir = mkdtempSync(join(tmpdir(), 'bench-speech-'));
    const gw = await startGateway(root);
    const cleanup: Array<() => Promise<unknown>> = [() => gw.stop()];
    try {
      writeTinyPiperVoices(join(dir, 'voices'));
      const port = await freePort();
      const worker = await startTs(
        root,
        'services/workers/main.ts',
        ['xtts'],
        {
          REDIS_URL: gw.vaultUrl,
          VAULT_KEY_PREFIX: gw.prefix,
          POD_NAME: 'bench-xtts-0',
          MODEL_DIR: join(dir, 'voices'),
          LOG_LEVEL: 'warn',
          ACP_TRIM_INTERVAL_MS: '0',
          EXECUTION_PROVIDER: 'cpu',
        },
        port,
        '/readyz',
        120_000,
      );
      cleanup.unshift(() => worker.stop());
      const auth = { authorization: `Bearer ${gw.apiKey}` };
      const once = async (format: string): Promise<Sample> => {
        const t0 = performance.now();
        const res = await fetch(`${gw.url}/v1/audio/speech`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'tts-1', voice: 'alloy', input: INPUT, response_format: format }),
        });
        if (res.status !== 200) throw new Error(`${format}: ${res.status} ${await res.text()}`);
        const reader = res.body!.getReader();
        let ttfb = NaN;
        let bytes = 0;
        for (;;) {
          const r = await reader.read();
          if (r.done) break;
          if (Number.isNaN(ttfb)) ttfb = performance.now() - t0;
          bytes += r.value.length;
        }
        return { ttfb, total: performance.now() - t0, bytes };
      };
      // Warm-up: the worker loads the voice lazily and ffmpeg's first start reads its libraries from disk.
      for (const f of ['wav', 'mp3', 'pcm']) await once(f);
      const rounds = quick ? 4 : 16;
      const r = await interleave<Sample>(rounds, [
        { name: 'wav', round: () => once('wav') },
        { name: 'mp3', round: () => once('mp3') },
        { name: 'pcm', round: () => once('pcm') },
      ]);
      const med = (xs: Sample[], k: keyof Sample) => median(xs.map((x) => x[k]));
      for (const [k, v] of Object.entries(r)) log(`${k}: ttfb ${v.map((x) => x.ttfb.toFixed(0)).join('/')} ms`);
      return {
        figures: [
          figure({
            metric: 'speech time to first audio byte, median',
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'mp3 (ffmpeg, streamed)',
            subject: med(r.mp3, 'ttfb'),
            baselineLabel: 'wav (whole reply)',
            baseline: med(r.wav, 'ttfb'),
          }),
          figure({
            metric: 'speech time to first audio byte, median',
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'pcm (streamed)',
            subject: med(r.pcm, 'ttfb'),
            baselineLabel: 'wav (whole reply)',
            baseline: med(r.wav, 'ttfb'),
          }),
          figure({
            metric: 'speech time to last audio byte, median',
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'mp3 (ffmpeg, streamed)',
            subject: med(r.mp3, 'total'),
            baselineLabel: 'wav (whole reply)',
            baseline: med(r.wav, 'total'),
          }),
        ],
        details: {
          rounds,
          sentences: 10,
          samples: r,
          bytes: { wav: med(r.wav, 'bytes'), mp3: med(r.mp3, 'bytes'), pcm: med(r.pcm, 'bytes') },
        },
      };
    } finally {
      for (const c of cleanup) await c().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
