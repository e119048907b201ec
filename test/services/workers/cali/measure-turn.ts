/**
 * Not a test: measures text turns end to end through the ACP API (startTextTurn → 5 cores →
 * CALI → turn.end), all in one process on a fresh redis-server. Prints p50/p95/p99.
 *   npx tsx test/services/workers/cali/measure-turn.ts [turns]
 */
import { join } from 'node:path';
import Redis from 'ioredis';
import { createAcp, startTextTurn } from '../../../../services/acp';
import { caliRole } from '../../../../services/workers/cali/role';
import { coreRole } from '../../../../services/workers/core/role';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { startRedisServer } from '../../../../tools/redis/redis-server';
import { REPO, workerConfig } from '../../acp/helpers';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 200);
  const server = await startRedisServer();
  const prefix = 'm:';
  const clients: Redis[] = [];
  const c = () => {
    const r = new Redis(server.url);
    clients.push(r);
    return r;
  };
  const rts = [
    ...Array.from(
      { length: 5 },
      (_, i) =>
        new WorkerRuntime(coreRole, {
          redis: c(),
          keyPrefix: prefix,
          http: false,
          worker: workerConfig({ podName: `core4-${i}` }),
          env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') },
        }),
    ),
    new WorkerRuntime(caliRole, { redis: c(), keyPrefix: prefix, http: false, worker: workerConfig({ podName: 'cali-0' }), env: {} }),
  ];
  await Promise.all(rts.map((r) => r.start()));
  const acp = createAcp(c(), { prefix });
  const texts = ['hello there', 'my name is Ana', 'turn on the lights', 'what is my name', 'tell me a joke', 'goodbye'];
  const ms: number[] = [];
  for (let i = 0; i < n + 20; i++) {
    const t0 = performance.now();
    const t = await startTextTurn(acp.bus, acp.events, { session: `s${i % 10}`, text: texts[i % texts.length] });
    const end = await acp.events.waitFor(`s${i % 10}`, t.seq, (e) => e.turn === t.turn && e.type === 'turn.end', { timeoutMs: 10_000 });
    if (!end) throw new Error('turn did not end');
    if (i >= 20) ms.push(performance.now() - t0); // first 20: warm-up
  }
  process.stdout.write(
    `text turn end to end (${ms.length} turns, 5 cores + CALI, one process): p50 ${pct(ms, 50).toFixed(2)} ms, ` +
      `p95 ${pct(ms, 95).toFixed(2)} ms, p99 ${pct(ms, 99).toFixed(2)} ms\n`,
  );
  await Promise.all(rts.map((r) => r.stop()));
  await acp.close();
  clients.forEach((r) => r.disconnect());
  await server.stop({ removeDir: true });
}

main().catch((err) => {
  process.stderr.write(`${err?.stack ?? err}\n`);
  process.exit(1);
});
