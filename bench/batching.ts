/**
 * batching: ASR and TTS at batch 1 vs batch 8 — a HARNESS CHECK on the tiny models the test suite
 * builds (tools/tiny-models), not a model figure. The same command runs unchanged on a GPU
 * machine with real models: BENCH_WHISPER_DIR (an optimum Whisper export), BENCH_PIPER_DIR (Piper
 * voices) and EXECUTION_PROVIDER=cuda.
 *   ASR: 8 speech chunks through WhisperModel — 8 runs of encode([c]) + decode vs one encode(8) + decode.
 *   TTS: 8 sentences through PiperVoice — one after another vs 8 at once (a worker micro-batch;
 *        Piper graphs take one utterance per run, so batch 8 is 8 concurrent runs).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WaveFile } from 'wavefile';
import { interleave } from './harness/interleave';
import { figure, type Benchmark, type Figure } from './harness/result';
import { median } from './harness/stats';
import { subject, timed } from './harness/subject';

const BATCH = 8;
const SENTENCES = [
  'Hello from the orb.',
  'The vault keeps every session.',
  'Five cores vote on each turn.',
  'A quorum of three decides.',
  'The reply is spoken in chunks.',
  'Any replica can resume a session.',
  'Deadlines travel with every job.',
  'Good night.',
];

function speechChunks(root: string, n: number, seconds: number): Float32Array[] {
  const wav = new WaveFile(readFileSync(join(root, 'test/fixtures/speech-16k.wav')));
  const ints = wav.getSamples(false, Int16Array) as unknown as Int16Array;
  const all = Float32Array.from(ints, (s) => s / 32768);
  const len = Math.min(all.length, seconds * 16000);
  // n windows spread over the file (overlapping when it is short): same audio for both arms.
  return Array.from({ length: n }, (_, i) =>
    all.slice(Math.floor(((all.length - len) * i) / Math.max(1, n - 1)), Math.floor(((all.length - len) * i) / Math.max(1, n - 1)) + len),
  );
}

export const batching: Benchmark = {
  name: 'batching',
  title: 'ASR and TTS batch 1 vs batch 8',
  label: 'harness check on tiny models, not a model figure',
  async run({ quick, root, log }) {
    const provider = process.env.EXECUTION_PROVIDER === 'cuda' ? 'cuda' : 'cpu';
    const scratch = mkdtempSync(join(tmpdir(), 'orb-bench-models-'));
    const figures: Figure[] = [];
    const details: Record<string, unknown> = { provider };
    try {
      const rounds = quick ? 2 : 3;
      // ---- ASR ------------------------------------------------------------------------------
      const asr = await subject('services/workers/asr/whisper.ts (WhisperModel)', () => import('../services/workers/asr/whisper'));
      let whisperDir = process.env.BENCH_WHISPER_DIR;
      if (!whisperDir) {
        const tiny = await subject('tools/tiny-models/whisper.ts', () => import('../tools/tiny-models/whisper'));
        whisperDir = tiny.writeTinyWhisper(join(scratch, 'whisper'));
      }
      details.whisperDir = process.env.BENCH_WHISPER_DIR ? whisperDir : 'tiny (tools/tiny-models)';
      const whisper = await asr.WhisperModel.load({ dir: whisperDir, executionProvider: provider });
      try {
        const chunks = speechChunks(root, BATCH, 3);
        const opts = { language: 'en', maxNewTokens: 32 };
        const one = async () => {
          for (const c of chunks) await whisper.decode(await whisper.encode([c]), opts);
        };
        const eight = async () => {
          await whisper.decode(await whisper.encode(chunks), opts);
        };
        await one();
        await eight(); // warm-up
        const r = await interleave(rounds, [
          { name: 'b1', round: () => timed(one) },
          { name: 'b8', round: () => timed(eight) },
        ]);
        log(
          `asr: batch 1 ${r.b1.map((x) => x.toFixed(0)).join('/')} ms, batch 8 ${r.b8.map((x) => x.toFixed(0)).join('/')} ms per ${BATCH} chunks`,
        );
        figures.push(
          figure({
            metric: `ASR time per chunk (${BATCH} x 3 s chunks)`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'batch 8',
            subject: median(r.b8) / BATCH,
            baselineLabel: 'batch 1',
            baseline: median(r.b1) / BATCH,
          }),
        );
        details.asr = { samplesMsPer8: r };
      } finally {
        await whisper.dispose();
      }
      // ---- TTS ------------------------------------------------------------------------------
      const tts = await subject('services/workers/tts/voices.ts (PiperVoice)', () => import('../services/workers/tts/voices'));
      let piperDir = process.env.BENCH_PIPER_DIR;
      if (!piperDir) {
        const tiny = await subject('tools/tiny-models/piper.ts', () => import('../tools/tiny-models/piper'));
        piperDir = tiny.writeTinyPiperVoices(join(scratch, 'piper'));
      }
      details.piperDir = process.env.BENCH_PIPER_DIR ? piperDir : 'tiny (tools/tiny-models)';
      const info = tts.listVoices(piperDir)[0];
      if (!info) throw new Error(`no Piper voice in ${piperDir}`);
      const voice = await tts.PiperVoice.load(info, { executionProvider: provider });
      try {
        const seq = async () => {
          for (const s of SENTENCES) await voice.synthesize(s);
        };
        const par = async () => {
          await Promise.all(SENTENCES.map((s) => voice.synthesize(s)));
        };
        await seq();
        await par();
        const r = await interleave(rounds, [
          { name: 'b1', round: () => timed(seq) },
          { name: 'b8', round: () => timed(par) },
        ]);
        log(
          `tts: batch 1 ${r.b1.map((x) => x.toFixed(0)).join('/')} ms, batch 8 ${r.b8.map((x) => x.toFixed(0)).join('/')} ms per ${BATCH} sentences`,
        );
        figures.push(
          figure({
            metric: `TTS time per sentence (${BATCH} sentences, voice ${info.name})`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'batch 8 (concurrent)',
            subject: median(r.b8) / BATCH,
            baselineLabel: 'batch 1',
            baseline: median(r.b1) / BATCH,
          }),
        );
        details.tts = { voice: info.name, samplesMsPer8: r };
      } finally {
        await voice.dispose();
      }
      return { figures, details };
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  },
};
