/**
 * Property: every started turn ends exactly once, whatever single process dies at whatever point.
 *
 * A whole turn pipeline runs in-process on a real redis-server of its own (AOF, fsync always):
 * two gateway replicas (each sweeping turn deadlines), five cores and CALI as worker runtimes with
 * fast timeouts. Each iteration starts one text turn and kills one random process (a gateway, a
 * core, CALI, or the vault itself: SIGKILL + restart on the same port and data) at one random
 * stage of that turn; killed workers restart (a core under the same pod name, CALI as a new pod).
 * Afterwards the invariant is checked from the vault alone: every session's event stream holds,
 * for each turn with a turn.start, exactly one turn.end, and no turn.end without a start.
 *
 * ORB_PROPERTY_SEED and ORB_PROPERTY_ITERATIONS replay or lengthen a run; the seed is printed.
 */
import Redis from 'ioredis';
import { createAcp, Acp, startTextTurn, TurnSweeper, loadOrbFunctions, TurnEvent } from '../../../services/acp';
import { caliRole } from '../../../services/workers/cali/role';
import { RoleFactory, WorkerRuntime } from '../../../services/workers/runtime';
import { prng } from '../../../scripts/train-core';
import { RedisServerHandle, startRedisServer } from '../../../tools/redis/redis-server';
import { waitUntil, workerConfig } from './helpers';

const STAGES = ['before_start', 'after_start', 'core_running', 'after_verdict', 'cali_collecting', 'after_reply'] as const;
const TARGETS = ['gateway', 'core', 'cali', 'vault'] as const;
type Stage = (typeof STAGES)[number];
type Target = (typeof TARGETS)[number];

const SEED = Number(process.env.ORB_PROPERTY_SEED ?? Date.now() % 2 ** 31);
const ITERATIONS = Number(process.env.ORB_PROPERTY_ITERATIONS ?? 200);
const PREFIX = 'prop:';
const TURN_MS = 500;
const CORES = 5;

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
let server: RedisServerHandle;
let port = 0;
let dir = '';

const client = () => {
  const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 50, retryStrategy: () => 20 });
  r.on('error', () => undefined);
  return r;
};

/** One iteration's plan; the hooks kill `target` when the turn reaches `stage`. */
interface Plan {
  stage: Stage;
  target: Target;
  killed: boolean;
  core: number;
}
let plan: Plan | null = null;
let kill: (p: Plan, where?: { core?: number }) => Promise<void> = async () => undefined;

async function at(stage: Stage, where: { core?: number } = {}): Promise<void> {
  const p = plan;
  if (!p || p.killed || p.stage !== stage) return;
  p.killed = true;
  await kill(p, where);
}

const stubCore =
  (n: number): RoleFactory =>
  () => ({
    name: 'core',
    queue: `core:${n}`,
    async load() {},
    async handle(job) {
      await at('core_running', { core: n });
      await job.emit('verdict', { label: 'greeting', confidence: 0.9, core: n });
      await at('after_verdict', { core: n });
    },
    async dispose() {},
  });

const hookedCali: RoleFactory = async (ctx) => {
  const role = await caliRole(ctx);
  return {
    ...role,
    async handle(job) {
      await at('cali_collecting');
      const emit = job.emit;
      return role.handle!({
        ...job,
        async emit(type, data) {
          const seq = await emit(type, data);
          if (type === 'reply') await at('after_reply');
          return seq;
        },
      });
    },
  };
};

const worker = (pod: string) =>
  workerConfig({
    podName: pod,
    blockMs: 50,
    reclaimIdleMs: 150,
    overrunMs: 200,
    aliveTtlMs: 300,
    trimIntervalMs: 100,
    drainTimeoutMs: 0,
  });
const CALI_ENV = { CALI_QUORUM_GRACE_MS: '20', CALI_LIVENESS_CHECK_MS: '20', CALI_CORES: String(CORES) };

interface Proc {
  runtime: WorkerRuntime;
  redis: Redis;
}
interface Gateway {
  redis: Redis;
  acp: Acp;
  sweeping: boolean;
  loop: Promise<void>;
}

async function startWorker(factory: RoleFactory, pod: string, env: NodeJS.ProcessEnv = {}): Promise<Proc> {
  const redis = client();
  const runtime = new WorkerRuntime(factory, { redis, keyPrefix: PREFIX, http: false, worker: worker(pod), env });
  await runtime.start();
  return { runtime, redis };
}

/** SIGKILL in-process: the connections drop first, so nothing more reaches the vault from it. */
async function crash(p: Proc): Promise<void> {
  p.redis.disconnect();
  await p.runtime.stop().catch(() => undefined);
}

function startGateway(): Gateway {
  const redis = client();
  const acp = createAcp(redis, { prefix: PREFIX, blockMs: 50 });
  const sweeper = new TurnSweeper(redis, acp.keys, acp.events, { graceMs: 100 });
  const g: Gateway = { redis, acp, sweeping: true, loop: Promise.resolve() };
  g.loop = (async () => {
    while (g.sweeping) {
      await sweeper.sweep().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 30));
    }
  })();
  return g;
}

async function crashGateway(g: Gateway): Promise<void> {
  g.sweeping = false;
  g.redis.disconnect();
  await g.acp.close();
  await g.loop;
}

beforeAll(async () => {
  server = await startRedisServer({ args: AOF });
  port = server.port;
  dir = server.dir;
  const admin = client();
  await loadOrbFunctions(admin);
  admin.disconnect();
});

afterAll(async () => {
  await server.stop({ removeDir: true, signal: 'SIGKILL' });
});

test(`every started turn ends exactly once under random kills (>= 200 iterations)`, async () => {
  const rnd = prng(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const cores: Proc[] = [];
  for (let n = 0; n < CORES; n++) cores.push(await startWorker(stubCore(n), `core4-${n}`));
  let cali = await startWorker(hookedCali, 'cali-0', CALI_ENV);
  let caliPods = 1;
  const gateways = [startGateway(), startGateway()];
  const restarts: Promise<void>[] = [];

  kill = async (p, where) => {
    if (p.target === 'gateway') {
      // The replica that started the turn dies; a new one takes its place. The other keeps sweeping.
      const old = gateways[0];
      gateways[0] = startGateway();
      await crashGateway(old);
    } else if (p.target === 'core') {
      const n = where?.core ?? p.core;
      const old = cores[n];
      await crash(old);
      // A StatefulSet pod comes back under its own name, after a random pause.
      const delay = Math.floor(rnd() * 200);
      restarts.push(
        new Promise((r) => setTimeout(r, delay)).then(async () => {
          cores[n] = await startWorker(stubCore(n), `core4-${n}`);
        }),
      );
    } else if (p.target === 'cali') {
      const old = cali;
      await crash(old);
      const pod = `cali-${caliPods++}`;
      const delay = Math.floor(rnd() * 200);
      restarts.push(
        new Promise((r) => setTimeout(r, delay)).then(async () => {
          cali = await startWorker(hookedCali, pod, CALI_ENV);
        }),
      );
    } else {
      await server.stop({ signal: 'SIGKILL' });
      server = await startRedisServer({ port, dir, args: AOF });
    }
  };

  const hits: Record<string, number> = {};
  const sessions: string[] = [];
  const checker = client();
  const keys = createAcp(checker, { prefix: PREFIX }).keys;
  let started = 0;
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < ITERATIONS; i++) {
    const p: Plan = { stage: pick(STAGES), target: pick(TARGETS), killed: false, core: Math.floor(rnd() * CORES) };
    plan = p;
    const session = `prop-${SEED}-${i}`;
    const turn = `t${i}`;
    sessions.push(session);
    await at('before_start');
    const gw = gateways[0];
    try {
      await startTextTurn(gw.acp.bus, gw.acp.events, { session, turn, text: 'hello there', cores: CORES, timeoutMs: TURN_MS });
    } catch {
      // The vault restarted under the call: whether it was applied is read from the vault below.
    }
    await at('after_start');
    const isStarted = await waitUntil(
      'the turn record readable',
      async () => [await checker.hexists(keys.turn(session, turn), 'start_seq')],
      30_000,
    );
    if (isStarted[0]) {
      started++;
      await waitUntil(
        `turn ${turn} (kill ${p.target} at ${p.stage}) to end`,
        async () => (await checker.hget(keys.turn(session, turn), 'end_seq')) !== null,
        30_000,
        10,
      );
      const outcome = String(await checker.hget(keys.turn(session, turn), 'outcome'));
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    plan = null;
    if (p.killed) hits[`${p.target}@${p.stage}`] = (hits[`${p.target}@${p.stage}`] ?? 0) + 1;
    await Promise.all(restarts.splice(0));
  }

  // Nothing is left for a sweeper, and every stream holds one end per started turn.
  await waitUntil('the deadline index to empty', async () => (await checker.zcard(keys.turnDeadlines)) === 0, 30_000);
  const problems: string[] = [];
  let ends = 0;
  for (const session of sessions) {
    const raw = (await checker.xrange(keys.turnEvents(session), '-', '+')) as [string, string[]][];
    const evs = raw.map(
      ([id, f]) =>
        ({ seq: Number(id.split('-')[0]), type: f[f.indexOf('type') + 1], turn: f[f.indexOf('turn') + 1] }) as Pick<
          TurnEvent,
          'seq' | 'type' | 'turn'
        >,
    );
    const startsN = evs.filter((e) => e.type === 'turn.start').length;
    const endsN = evs.filter((e) => e.type === 'turn.end').length;
    ends += endsN;
    if (startsN > 1 || endsN !== startsN) problems.push(`${session}: ${startsN} turn.start, ${endsN} turn.end`);
    const end = evs.findIndex((e) => e.type === 'turn.end');
    if (end >= 0 && evs.slice(end + 1).some((e) => e.type === 'turn.end')) problems.push(`${session}: an event after turn.end`);
  }

  const byStage = Object.fromEntries(STAGES.map((s) => [s, TARGETS.reduce((n, t) => n + (hits[`${t}@${s}`] ?? 0), 0)]));
  const byTarget = Object.fromEntries(TARGETS.map((t) => [t, STAGES.reduce((n, s) => n + (hits[`${t}@${s}`] ?? 0), 0)]));
  // eslint-disable-next-line no-console
  console.log(
    `every-turn-ends: seed ${SEED}, ${ITERATIONS} iterations, ${started} turns started, ${ends} turn.end\n` +
      `  outcomes: ${JSON.stringify(outcomes)}\n  kills by stage: ${JSON.stringify(byStage)}\n  kills by process: ${JSON.stringify(byTarget)}\n  kills by process@stage: ${JSON.stringify(hits)}`,
  );

  for (const g of gateways) await crashGateway(g);
  await Promise.all(
    [...cores, cali].map((p) =>
      p.runtime
        .stop()
        .then(() => p.redis.quit())
        .catch(() => p.redis.disconnect()),
    ),
  );
  checker.disconnect();

  expect(problems).toEqual([]);
  expect(ITERATIONS).toBeGreaterThanOrEqual(200);
  for (const s of STAGES) expect({ stage: s, hit: byStage[s] > 0 }).toEqual({ stage: s, hit: true });
  for (const t of TARGETS) expect({ process: t, hit: byTarget[t] > 0 }).toEqual({ process: t, hit: true });
}, 240_000);
