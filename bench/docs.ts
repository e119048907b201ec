/** docs/performance.md from bench/results/latest.json: the table, the machine, how to reproduce. */
import type { ResultsFile } from './harness/report';
import { table } from './harness/report';

const METHOD: Record<string, string> = {
  synth:
    "Wall time of `tsx charts/main.ts` (all environments, what `npm run synth` runs) vs the same app through `cdk8s synth` with the init template's `app: npx ts-node charts/main.ts` (ts-node type-checks on every run), and vs a one-Deployment cdk8s app on the same runner (one ApiObject Deployment, what the init template's generated KubeDeployment is). Runs in a scratch copy, never touching dist/.",
  gateway:
    'autocannon, 10 connections, bounded requests and seconds, against one orb-core replica (own redis-server, LOG_LEVEL=warn, rate limit raised so the limiter never answers 429, under-pressure shedding off so a stall of this shared machine shows as latency rather than 503s); `GET /v1/sessions/:id` (an authenticated, rate-limited vault read of a session without turns) is compared with its floor, bench/fixtures/session-read-floor.ts: a Fastify 5 route with a bearer-token string compare and one auto-pipelined HGETALL + XREVRANGE COUNT 1 on ioredis, logging off, reading the same session from the same vault; `GET /readyz` is compared with a bare Fastify hello-world. Every server in its own process. Latencies are per response in float ms.',
  memory:
    'N idle sessions (`/v1/session`, `session.ready` each, then nothing) on one orb-core replica vs a bare @fastify/websocket server, one after the other in one run, both started with --expose-gc and bench/harness/gc-probe.cjs, which runs full GCs and reports process.memoryUsage() before and after the sockets open: per-session RSS, V8 heap, and heap + external (ArrayBuffer) memory, i.e. live memory rather than garbage. BENCH_HEAP_SNAPSHOTS=<dir> also writes heap snapshots at both points.',
  ws: '1,000 idle sessions (`/v1/session`, `session.ready` each) on one replica vs a bare @fastify/websocket server: RSS from /proc. Real-time streams: N sockets each sending 20 ms PCM16 frames (a 220 Hz tone the VAD scores as non-speech, so each window costs VAD compute and nothing else) on a shared clock, an in-order `ping` every 250 ms; searched on orb-core with batched VAD (the default), on a second orb-core with per-stream VAD (`ORB_VAD_BATCH=false`) and on the bare server; a probe keeps up when pong p95 <= 150 ms, the pong after the last frame <= 250 ms and the sender stays within 100 ms of schedule. Bounded search (doubling from 4, then bisection; a probe is abandoned once a ping is a second late; a failing probe is tried once more and fails only if both attempts do); the label says whether the server or this load generator set the limit.',
  bus: "Sequential round trips: `AcpBus.publish` -> worker runtime (`runWorker`, no-op handler) -> `job.emit` -> the caller's `TurnEventStream.tail`, vs a POST to a Fastify server over one kept-alive node:http socket.",
  vad: 'Per 512-sample window: `VadStream.pushWindow` (the service path) vs a raw `InferenceSession.run` loop on the same silero_vad_v5.onnx with the same session options (1 intra-op and 1 inter-op thread) and preallocated tensors.',
  'vad-batch':
    'N streams advancing in lockstep (one window pending per stream at a time, as on the gateway) through `VadStream.probability` with the batched `VadScheduler` (one onnxruntime run of up to 64 windows per tick) vs per-stream runs (N concurrent single-window runs per step, as N sockets make them), same silero_vad_v5.onnx and session options (1 intra-op, 1 inter-op thread); windows/s, median of interleaved rounds. The last row divides by 31.25 windows/s per real-time stream: VAD compute only, no sockets or vault.',
  review:
    'Wall and CPU time (user+sys of the command and its children, /usr/bin/time) of `npm run review <ref>` with a fresh cache folder (cold: the base is rendered in a git worktree) and a filled one (warm), vs `npm run synth`, `npm run policy prod` and `npm run diff <ref>` run one after the other; ref HEAD~3. review also runs the policy on dev. On a loaded 2-core machine wall time mostly measures the neighbours; CPU time approaches the idle-machine wall time of these single-threaded commands.',
  turn: 'The dev stack (`startDevStack` from scripts/dev.ts: vault, seed, one orb-core, 5 cores, CALI, whisperx and xtts on CPU with the tiny models). `POST /v1/turns` text (`speak: false`) and audio (test/fixtures/speech-16k.wav, `speak=true`) turns; stages from the event timestamps (one machine, one clock). Stage ratios are shares of the turn total. Turn deadline 15 s, load shedding off. If the spoken reply does not come back, audio turns are measured with a text reply and the row says so.',
  batching:
    'HARNESS CHECK on the tiny models the tests build, not a model figure. ASR: 8 x 3 s chunks through `WhisperModel` as 8 runs of batch 1 vs one batch of 8. TTS: 8 sentences through `PiperVoice` one after another vs 8 at once. On a GPU machine: `EXECUTION_PROVIDER=cuda BENCH_WHISPER_DIR=… BENCH_PIPER_DIR=… npm run bench batching`.',
};

/** The machine line and the table of a results file: docs/performance.md and the README's block. */
export function latestRun(file: ResultsFile): string {
  const m = file.machine;
  return [
    `Latest run: ${m.date}${file.quick ? ' (QUICK mode: fewer rounds)' : ''} — ${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}${m.load1 !== undefined ? `, 1-min load average at start ${m.load1}` : ''}.`,
    '',
    table(file.results),
  ].join('\n');
}

export const README_BEGIN = '<!-- bench:latest (npm run bench -- --docs rewrites this block) -->';
export const README_END = '<!-- /bench:latest -->';

/** The README with its Performance block replaced by the latest run; an error when the markers are missing. */
export function readmeWithLatest(readme: string, file: ResultsFile): string {
  const a = readme.indexOf(README_BEGIN);
  const b = readme.indexOf(README_END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${README_BEGIN} … ${README_END} block`);
  return `${readme.slice(0, a + README_BEGIN.length)}\n\n${latestRun(file)}\n\n${readme.slice(b)}`;
}

export function performanceDoc(file: ResultsFile): string {
  const lines = [
    '# Performance',
    '',
    'Every figure is a ratio against a baseline measured in the same run, rounds interleaved',
    '(A B, B A, …) so drift on a shared machine hits both sides; absolute numbers are given for',
    'context. `ratio` = subject / baseline: below 1 is better for times, above 1 for throughput.',
    'No test asserts a time; these numbers come only from `npm run bench`.',
    '',
    latestRun(file),
    '',
    '## Reproduce',
    '',
    '```sh',
    'npm run bench                  # everything (< 10 min on 2 cores), writes bench/results/latest.json',
    'npm run bench gateway ws       # some benchmarks; their rows in latest.json are replaced, others kept',
    'npm run bench -- --quick       # short rounds for development (numbers are rougher)',
    'npm run bench -- --docs        # also rewrites docs/performance.md from latest.json',
    '```',
    '',
    'Needs redis-server on PATH (as the tests do). Load is generated only on 127.0.0.1, bounded in requests and time.',
    'A benchmark whose subject is missing prints `not available: <reason>` instead of a number.',
    '',
    '## What each benchmark measures',
    '',
    ...file.results.flatMap((r) => [`- **${r.name}** — ${METHOD[r.name] ?? r.title} (${r.seconds.toFixed(0)} s, ${r.ranAt})`]),
    '',
  ];
  return lines.join('\n');
}
