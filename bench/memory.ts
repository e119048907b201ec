/**
 * memory: what one idle WebSocket session costs the server. N authenticated `/v1/session` sockets
 * (each waits for `session.ready`, then sends nothing) on one orb-core replica vs a bare
 * @fastify/websocket server (bench/fixtures/ws-bare.ts), side by side in one run, each in its
 * own process started with --expose-gc and bench/harness/gc-probe.cjs: before and after the
 * sockets open, the server runs full GCs and reports process.memoryUsage(), so the per-session
 * figures are live memory (RSS, V8 heap, and heap + external/ArrayBuffer memory), not garbage.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { figure, type Benchmark } from './harness/result';
import { freePort, startGateway, startTs } from './harness/stack';
import type { ServiceHandle } from './harness/proc';
import { openSessions } from './harness/sessions';

interface Mem {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  at: number;
}

interface Side {
  name: string;
  wsUrl: string;
  headers: Record<string, string>;
  proc: ServiceHandle;
  memFile: string;
}

async function snapshot(s: Side): Promise<Mem> {
  const since = Date.now();
  s.proc.child.kill('SIGWINCH');
  const deadline = since + 30_000;
  for (;;) {
    if (existsSync(s.memFile) && statSync(s.memFile).mtimeMs >= since - 5) {
      const m = JSON.parse(readFileSync(s.memFile, 'utf8')) as Mem;
      if (m.at >= since) return m;
    }
    if (Date.now() > deadline) throw new Error(`${s.name}: no memory snapshot within 30 s (is --expose-gc on?)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Memory with `n` idle sessions open minus memory before, both after full GCs. */
async function idleCost(s: Side, n: number): Promise<{ before: Mem; after: Mem }> {
  await settle(500);
  const before = await snapshot(s);
  const sockets = await openSessions(s, n);
  try {
    await settle(1000);
    return { before, after: await snapshot(s) };
  } finally {
    for (const ws of sockets) ws.terminate();
    await settle(300);
  }
}

export const memory: Benchmark = {
  name: 'memory',
  title: 'memory per idle WebSocket session (forced GC): orb-core vs bare @fastify/websocket',
  async run({ quick, root, log }) {
    const dir = mkdtempSync(join(tmpdir(), 'bench-mem-'));
    const nodeArgs = ['--expose-gc', '--require', join(root, 'bench', 'harness', 'gc-probe.cjs')];
    const gwFile = join(dir, 'orb.json');
    const bareFile = join(dir, 'bare.json');
    const gw = await startGateway(root, { BENCH_MEM_FILE: gwFile }, nodeArgs);
    let bare: ServiceHandle | undefined;
    try {
      const bport = await freePort();
      bare = await startTs(root, 'bench/fixtures/ws-bare.ts', [], { BENCH_MEM_FILE: bareFile }, bport, '/readyz', 60_000, nodeArgs);
      const orb: Side = {
        name: 'orb-core',
        wsUrl: `${gw.url.replace('http', 'ws')}/v1/session`,
        headers: { authorization: `Bearer ${gw.apiKey}` },
        proc: gw.proc,
        memFile: gwFile,
      };
      const base: Side = { name: 'bare ws', wsUrl: `ws://127.0.0.1:${bport}/v1/session`, headers: {}, proc: bare, memFile: bareFile };
      const n = quick ? 300 : 1000;
      // Warm-up: JIT, pools and lazily built module state are not per-session cost.
      for (const s of [base, orb]) for (const ws of await openSessions(s, 50)) ws.terminate();
      await settle(500);
      const b = await idleCost(base, n);
      const o = await idleCost(orb, n);
      const kib = (x: { before: Mem; after: Mem }, f: (m: Mem) => number) => (f(x.after) - f(x.before)) / n / 1024;
      const rss = (m: Mem) => m.rss;
      const heap = (m: Mem) => m.heapUsed;
      const all = (m: Mem) => m.heapUsed + m.external;
      log(
        `orb-core: rss ${kib(o, rss).toFixed(1)} heap ${kib(o, heap).toFixed(1)} heap+external ${kib(o, all).toFixed(1)} KiB/session; bare: rss ${kib(b, rss).toFixed(1)} heap ${kib(b, heap).toFixed(1)} heap+external ${kib(b, all).toFixed(1)} KiB/session`,
      );
      const row = (metric: string, f: (m: Mem) => number) =>
        figure({
          metric: `${metric} per idle session (${n} sessions, after forced GC)`,
          unit: 'KiB',
          better: 'lower',
          subjectLabel: 'orb-core',
          subject: kib(o, f),
          baselineLabel: 'bare @fastify/websocket',
          baseline: kib(b, f),
        });
      return {
        figures: [row('RSS added', rss), row('V8 heap used', heap), row('heap + external memory', all)],
        details: { sessions: n, orb: o, bare: b },
      };
    } finally {
      await bare?.stop();
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
