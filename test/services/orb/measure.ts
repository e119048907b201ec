/**
 * Gateway measurements (a script, not a test: `npx tsx test/services/orb/measure.ts [--quick]`).
 * - RSS of one orb-core replica (compiled JS, VAD loaded, as in the image) idle and holding 1,000
 *   open WebSocket sessions.
 * - req/s of GET /v1/sessions/:id (auth, rate limit on the Redis store, vault read) next to a bare
 *   Fastify hello-world, both as child processes, interleaved rounds in the same run (autocannon).
 * Needs redis-server (or REDIS_URL). Prints one JSON object.
 */
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { readFileSync, symlinkSync, existsSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import WebSocket from 'ws';
import { freePort, startRedisServer, RedisServerHandle } from '../../../tools/redis/redis-server';
import { waitUntil } from '../../support/wait';

const ROOT = join(__dirname, '..', '..', '..');
const QUICK = process.argv.includes('--quick');
const KEY = 'bench-key-0123456789abcdef';
const SOCKETS = 1000;

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

async function ok(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).status === 200;
  } catch {
    return false;
  }
}

function build(): string {
  const out = join(tmpdir(), 'orb-measure-build');
  try {
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', out],
      { stdio: ['ignore', 2, 2] },
    );
  } catch (err) {
    // Type errors elsewhere in a tree under construction still emit JS; only a missing entry is fatal.
    if (!existsSync(join(out, 'services/orb/main.js'))) throw err;
  }
  if (!existsSync(join(out, 'node_modules'))) symlinkSync(join(ROOT, 'node_modules'), join(out, 'node_modules'));
  return out;
}

function child(args: string[], env: Record<string, string>): ChildProcess {
  const c = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return c;
}

async function cannon(
  url: string,
  headers: Record<string, string>,
  seconds: number,
): Promise<{ rps: number; p50: number; p99: number; non2xx: number; statuses: unknown }> {
  const probe = await fetch(url, { headers });
  if (probe.status !== 200) throw new Error(`${url} answers ${probe.status}: ${await probe.text()}`);
  const r = await autocannon({ url, headers, connections: 50, duration: seconds, pipelining: 1 });
  return {
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    statuses: (r as unknown as { statusCodeStats?: unknown }).statusCodeStats,
  };
}

async function main(): Promise<void> {
  let redis: RedisServerHandle | null = null;
  const redisUrl = process.env.REDIS_URL ?? (redis = await startRedisServer()).url;
  const out = build();
  const orbPort = await freePort();
  const helloPort = await freePort();
  const orb = child([join(out, 'services/orb/main.js')], {
    REDIS_URL: redisUrl,
    VAULT_KEY_PREFIX: 'measure:',
    PORT: String(orbPort),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    ORB_API_KEYS: `bench:${KEY}`,
    ORB_MAX_SOCKETS_PER_KEY: String(SOCKETS + 10),
    ORB_RATE_LIMIT_MAX: '1000000000',
    ORB_VAD: 'true',
  });
  const helloFile = join(tmpdir(), 'orb-measure-hello.js');
  writeFileSync(
    helloFile,
    `const app = require(${JSON.stringify(join(ROOT, 'node_modules/fastify'))})();
app.get('/', async () => ({ hello: 'world' }));
app.listen({ port: ${helloPort}, host: '127.0.0.1' });`,
  );
  const hello = child([helloFile], {});
  const children = [orb, hello];
  try {
    // Identity so the replica is ready.
    const { default: Redis } = await import('ioredis');
    const r = new Redis(redisUrl);
    await r.set('measure:identity:seed', '{"name":"CaleonGenesis"}');
    await r.set('measure:identity:version', '1.12');
    await waitUntil('orb ready', () => ok(`http://127.0.0.1:${orbPort}/readyz`), 60_000);
    await waitUntil('hello ready', () => ok(`http://127.0.0.1:${helloPort}/`), 60_000);
    const auth = { authorization: `Bearer ${KEY}` };
    const createdRes = await fetch(`http://127.0.0.1:${orbPort}/v1/sessions`, { method: 'POST', headers: auth });
    const created = (await createdRes.json()) as { id: string };
    if (createdRes.status !== 201) throw new Error(`POST /v1/sessions: ${createdRes.status} ${JSON.stringify(created)}`);
    // A session with a realistic history: one text turn's worth of events.
    for (const type of ['turn.start', 'transcript', 'verdict', 'verdict', 'verdict', 'verdict', 'verdict', 'reply', 'turn.end']) {
      const seq = await r.incr(`measure:turn:${created.id}:seq`);
      await r.xadd(
        `measure:turn:${created.id}:events`,
        `${seq}-0`,
        'type',
        type,
        'turn',
        't1',
        'data',
        '{"text":"hello there"}',
        'ts',
        String(Date.now()),
        'job',
        '',
      );
    }

    await new Promise((res) => setTimeout(res, 3000));
    const idle = rssMiB(orb.pid!);

    const sockets: WebSocket[] = [];
    let readyCount = 0;
    for (let i = 0; i < SOCKETS; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${orbPort}/v1/session`, { headers: auth });
      ws.on('message', (d) => {
        if (String(d).includes('"session.ready"')) readyCount++;
      });
      ws.on('error', (e) => {
        throw e;
      });
      sockets.push(ws);
      if (i % 100 === 99) await waitUntil(`${i + 1} sessions ready`, () => readyCount >= i + 1, 60_000);
    }
    await waitUntil('all sessions ready', () => readyCount >= SOCKETS, 60_000);
    await new Promise((res) => setTimeout(res, 3000));
    const withSockets = rssMiB(orb.pid!);
    const replicas = await (await fetch(`http://127.0.0.1:${orbPort}/v1/replicas`, { headers: auth })).json();
    for (const ws of sockets) ws.terminate();

    const seconds = QUICK ? 3 : 8;
    const rounds = QUICK ? 1 : 2;
    const runs: { hello: Awaited<ReturnType<typeof cannon>>[]; session: Awaited<ReturnType<typeof cannon>>[] } = { hello: [], session: [] };
    for (let i = 0; i < rounds; i++) {
      // ABBA order cancels drift between the two subjects.
      const order = i % 2 === 0 ? (['hello', 'session'] as const) : (['session', 'hello'] as const);
      for (const which of order) {
        runs[which].push(
          which === 'hello'
            ? await cannon(`http://127.0.0.1:${helloPort}/`, {}, seconds)
            : await cannon(`http://127.0.0.1:${orbPort}/v1/sessions/${created.id}`, auth, seconds),
        );
      }
    }
    const avg = (xs: { rps: number }[]) => Math.round(xs.reduce((s, x) => s + x.rps, 0) / xs.length);
    await r.quit();
    console.log(
      JSON.stringify(
        {
          machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, date: new Date().toISOString() },
          rss_mib: {
            idle,
            with_1000_sockets: withSockets,
            per_socket_kib: Math.round((((withSockets - idle) * 1024) / SOCKETS) * 10) / 10,
          },
          replica_heartbeat: (replicas as { replicas: unknown[] }).replicas[0],
          req_per_s: {
            hello_world: avg(runs.hello),
            get_session: avg(runs.session),
            ratio: Math.round((avg(runs.session) / avg(runs.hello)) * 1000) / 1000,
          },
          runs,
        },
        null,
        2,
      ),
    );
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await redis?.stop({ removeDir: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
