/**
 * Quorum loss is known from the cores' liveness heartbeats (acp:alive:core:<n>), not from the vote
 * deadline: when three of five cores stop beating, CALI ends the turn as no_quorum after their
 * heartbeats expire and before the turn's deadline. Order is checked, not a wall-clock bound.
 */
import Redis from 'ioredis';
import { ConsumerLiveness, createAcp, startTextTurn, TurnEvent } from '../../../../services/acp';
import { caliRole, collectVerdicts } from '../../../../services/workers/cali/role';
import type { Job } from '../../../../services/workers/runtime';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { testRedis, uniquePrefix, deletePrefix } from '../../../support/vault';
import { waitUntil, workerConfig } from '../../acp/helpers';

const prefix = uniquePrefix('ql');
let redis: Redis;
let cali: WorkerRuntime;
let caliRedis: Redis;
const timers: NodeJS.Timeout[] = [];

beforeAll(async () => {
  redis = testRedis();
  cali = new WorkerRuntime(caliRole, {
    redis: (caliRedis = testRedis()),
    keyPrefix: prefix,
    http: false,
    worker: workerConfig({ podName: 'cali-0' }),
    env: { CALI_LIVENESS_CHECK_MS: '20', CALI_CORES: '5' },
  });
  await cali.start();
});

afterAll(async () => {
  timers.forEach(clearInterval);
  await cali.stop();
  await caliRedis.quit();
  await deletePrefix(redis, prefix);
  await redis.quit();
});

const TTL = 300;

test('three of five cores stop beating: the turn ends no_quorum after their heartbeats expire and before its deadline', async () => {
  const acp = createAcp(redis, { prefix });
  const liveness = new ConsumerLiveness(redis, acp.keys);
  for (let n = 0; n < 5; n++) await liveness.beat(`core:${n}`, `core4-${n}`, TTL);
  // Cores 0 and 1 keep beating; 2, 3 and 4 were killed right after their last beat.
  timers.push(
    setInterval(() => {
      for (const n of [0, 1]) void liveness.beat(`core:${n}`, `core4-${n}`, TTL);
    }, TTL / 3),
  );
  const expiries = await Promise.all([2, 3, 4].map((n) => redis.zscore(acp.keys.alive(`core:${n}`), `core4-${n}`)));
  const lastExpiry = Math.max(...expiries.map(Number));

  // No core consumes: without the heartbeats CALI would wait for the vote deadline (~16 s away).
  const t = await startTextTurn(acp.bus, acp.events, { session: 'ql-1', text: 'hello there', cores: 5, quorum: 3, timeoutMs: 20_000 });
  const end = await acp.events.waitFor('ql-1', t.seq, (e) => e.type === 'turn.end', { timeoutMs: 25_000 });
  const events = await acp.events.read('ql-1', t.seq - 1);
  const nq = events.find((e) => e.type === 'turn.no_quorum') as TurnEvent<{ reason: string; received: number }>;
  expect(end?.data).toEqual({ outcome: 'no_quorum' });
  expect(nq.data).toMatchObject({ reason: 'cores_down', received: 0, quorum: 3, cores: 5 });
  // After the killed cores' heartbeats expired, before the turn's deadline.
  expect(nq.ts).toBeGreaterThanOrEqual(lastExpiry);
  expect(end!.ts).toBeLessThan(t.deadlineMs);
  await acp.close();
}, 40_000);

test('with every core beating and none answering, the vote still waits for its deadline', async () => {
  const acp = createAcp(redis, { prefix });
  const liveness = new ConsumerLiveness(redis, acp.keys);
  timers.push(
    setInterval(() => {
      for (let n = 0; n < 5; n++) void liveness.beat(`core:${n}`, `core4-${n}`, TTL);
    }, TTL / 3),
  );
  await waitUntil('all five alive', async () => (await liveness.status([0, 1, 2, 3, 4].map((n) => `core:${n}`))).every((s) => s === true));
  const t = await startTextTurn(acp.bus, acp.events, { session: 'ql-2', text: 'hello there', cores: 5, quorum: 3, timeoutMs: 1500 });
  const end = await acp.events.waitFor('ql-2', t.seq, (e) => e.type === 'turn.end', { timeoutMs: 10_000 });
  const nq = (await acp.events.read('ql-2', t.seq - 1)).find((e) => e.type === 'turn.no_quorum') as TurnEvent<{ reason: string }>;
  expect(end?.data).toEqual({ outcome: 'no_quorum' });
  expect(nq.data.reason).toBe('deadline');
  await acp.close();
}, 20_000);

test('the vote closing while a liveness check is in flight does not wait out the next check period', async () => {
  const acp = createAcp(redis, { prefix });
  const session = 'ql-3';
  for (let core = 0; core < 5; core++) {
    await acp.events.append(session, { type: 'verdict', turn: 't3', data: { label: 'greeting', confidence: 0.9, core } });
  }
  // The check is still in flight when the tail has every verdict: it answers only after the tail closed.
  let tailClosed!: () => void;
  const closed = new Promise<void>((r) => {
    tailClosed = r;
  });
  const events = {
    async *tail(...args: Parameters<typeof acp.events.tail>) {
      try {
        yield* acp.events.tail(...args);
      } finally {
        tailClosed();
      }
    },
  } as unknown as typeof acp.events;
  const job = { envelope: { session, turn: 't3', seq: 0 }, signal: new AbortController().signal } as unknown as Job;
  const spec = { text: 'hi', cores: 5, speak: false, vote_deadline_ms: Date.now() + 60_000 };
  // A check period far beyond the test's timeout: waiting one out fails the test.
  const r = await collectVerdicts(events, job, spec, 3, 150, {
    check: async () => {
      await closed;
      return true;
    },
    everyMs: 600_000,
  });
  expect(r.verdicts.map((v) => v.core)).toEqual([0, 1, 2, 3, 4]);
  expect(r.quorumLost).toBe(false);
  await acp.close();
}, 20_000);
