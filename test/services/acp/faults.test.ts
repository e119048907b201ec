/**
 * Fault classes of issue 13, each on a real redis-server of this file's own (AOF on, restartable on
 * the same port): a vault restart under a reading consumer, a worker killed with jobs in flight, a
 * handler that can no longer finish (the CALI outage that pinned the queue trim), and a gateway
 * killed between the steps of a turn. Plus the turn lifecycle functions: refusal before anything is
 * written, one turn.end however many writers race, and the sweeper's exactly-once across replicas.
 */
import Redis from 'ioredis';
import {
  AcpBus,
  AcpError,
  createAcp,
  createEnvelope,
  Job,
  JobConsumer,
  loadOrbFunctions,
  orbFunctionsVersion,
  startTextTurn,
  textPart,
  TurnEventStream,
  TurnSweeper,
  vaultKeys,
} from '../../../services/acp';
import { RedisServerHandle, startRedisServer } from '../../../tools/redis/redis-server';
import { waitUntil } from './helpers';

const AOF = ['--appendonly', 'yes', '--appendfsync', 'always'];
let server: RedisServerHandle;
const clients: Redis[] = [];
const stops: (() => Promise<void>)[] = [];
let n = 0;

function client(): Redis {
  const r = new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: 50, retryStrategy: () => 50 });
  r.on('error', () => undefined);
  clients.push(r);
  return r;
}

function job(session: string, id: string, deadlineMs = Date.now() + 10_000) {
  return createEnvelope({ id, kind: 'test.job', session, turn: `${id}-turn`, deadlineMs, parts: [textPart('x')] });
}

function consumer(
  bus: AcpBus,
  events: TurnEventStream,
  queue: string,
  name: string,
  handler: (j: Job) => Promise<void>,
  opts: Partial<ConstructorParameters<typeof JobConsumer>[2]> = {},
): JobConsumer {
  const c = new JobConsumer(
    bus,
    events,
    { queue, consumer: name, blockMs: 100, reclaimIdleMs: 150, trimIntervalMs: 0, ...opts },
    async (jobs) =>
      Promise.all(
        jobs.map((j) =>
          handler(j).then(
            () => undefined,
            (e: unknown) => e,
          ),
        ),
      ),
  );
  stops.push(() => c.stop(0));
  return c;
}

const prefix = () => `f${n++}:`;

beforeAll(async () => {
  server = await startRedisServer({ args: AOF });
  const admin = new Redis(server.url);
  await loadOrbFunctions(admin);
  await admin.quit();
});

afterEach(async () => {
  await Promise.all(stops.splice(0).map((s) => s().catch(() => undefined)));
});

afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server.stop({ removeDir: true, signal: 'SIGKILL' });
});

test('vault restart: a consumer blocked in XREADGROUP serves jobs again, and the FUNCTION library survives the restart', async () => {
  const redis = client();
  const acp = createAcp(redis, { prefix: prefix(), blockMs: 100 });
  const handled: string[] = [];
  const c = consumer(acp.bus, acp.events, 'q', 'w1', async (j) => {
    handled.push(j.envelope.id);
  });
  await c.start();
  await acp.bus.publish('q', job('s', 'before'));
  await waitUntil('the first job', () => handled.includes('before'));

  // SIGKILL while the reader is blocked, then the same port and data back.
  await server.stop({ signal: 'SIGKILL' });
  server = await startRedisServer({ port: server.port, dir: server.dir, args: AOF });
  expect(await orbFunctionsVersion(redis)).not.toBeNull(); // persisted in the AOF: no reload needed

  await acp.bus.publish('q', job('s', 'after'));
  await waitUntil('a job published after the restart', () => handled.includes('after'));
  await waitUntil('the consumer healthy again', () => c.health() === undefined);
  await acp.close();
});

test('worker killed with a job in flight: another consumer reclaims it, finishes it, and the trim floor moves past it', async () => {
  const p = prefix();
  const a = client();
  const acpA = createAcp(a, { prefix: p });
  const started: string[] = [];
  const dead = consumer(acpA.bus, acpA.events, 'q', 'w-dead', async (j) => {
    started.push(j.envelope.id);
    await new Promise(() => undefined);
  });
  await dead.start();
  await acpA.bus.publish('q', job('s', 'j1'));
  await waitUntil('the job to start on the doomed worker', () => started.includes('j1'));
  a.disconnect(); // SIGKILL: its connections go, its claim is never renewed again
  await dead.stop(0);

  const b = client();
  const acpB = createAcp(b, { prefix: p });
  const done: Job[] = [];
  const live = consumer(acpB.bus, acpB.events, 'q', 'w-live', async (j) => {
    done.push(j);
  });
  await live.start();
  await waitUntil('the reclaimed job', () => done.some((j) => j.envelope.id === 'j1'));
  expect(done.find((j) => j.envelope.id === 'j1')!.deliveries).toBe(2);
  await waitUntil('nothing pending', async () => (await acpB.bus.backlog('q')).pending === 0);
  await acpB.bus.publish('q', job('s', 'j2'));
  await waitUntil('the next job', () => done.some((j) => j.envelope.id === 'j2'));
  await waitUntil(
    'the trim to remove acknowledged jobs',
    async () => (await acpB.bus.trim('q')) >= 0 && (await b.xlen(acpB.keys.jobs('q'))) < 2,
  );
  await acpB.close();
});

test('a handler that can no longer finish is released past its deadline: acked as expired, the trim passes it and a full queue takes jobs again', async () => {
  const redis = client();
  const keys = vaultKeys(prefix());
  const bus = new AcpBus(redis, keys, { maxBacklog: 3 });
  const events = new TurnEventStream(redis, keys);
  const aborted: string[] = [];
  const outcomes: string[] = [];
  // The CALI outage: the handler ignores everything and never returns, while its consumer stays alive.
  const c = new JobConsumer(
    bus,
    events,
    { queue: 'cali', consumer: 'cali-0', blockMs: 100, reclaimIdleMs: 150, overrunMs: 100, trimIntervalMs: 50 },
    async (jobs) => {
      for (const j of jobs) j.signal.addEventListener('abort', () => aborted.push(j.envelope.id));
      return new Promise(() => undefined);
    },
    { onOutcome: (o) => outcomes.push(o) },
  );
  stops.push(() => c.stop(0));
  await c.start();
  for (let i = 0; i < 3; i++) await bus.publish('cali', job('s', `stuck${i}`, Date.now() + 200));
  await expect(bus.publish('cali', job('s', 'refused'))).rejects.toMatchObject({ code: 'ACP_ERR_BACKLOG' });
  await expect(bus.publish('cali', job('s', 'refused'))).rejects.toBeInstanceOf(AcpError);

  await waitUntil('the stuck jobs released', async () => (await bus.backlog('cali')).pending === 0);
  expect(aborted.sort()).toEqual(['stuck0', 'stuck1', 'stuck2']);
  expect(outcomes.filter((o) => o === 'expired')).toHaveLength(3);
  expect(await redis.hget(keys.done('stuck0'), 'done')).toBe('expired');
  // The trim is no longer pinned: the queue drains below its cap and takes the next job.
  await waitUntil('the queue trimmed below its cap', async () => (await redis.xlen(keys.jobs('cali'))) < 3);
  await bus.publish('cali', job('s', 'next'));
  await events.close();
});

describe('a turn is started and ended by the vault functions', () => {
  test('a refusal is decided before anything is written: no turn.start, no job, no deadline entry', async () => {
    const redis = client();
    const keys = vaultKeys(prefix());
    const bus = new AcpBus(redis, keys, { maxBacklog: 2 });
    const events = new TurnEventStream(redis, keys);
    for (let i = 0; i < 2; i++) await bus.publish('core:3', job('other', `fill${i}`));
    const caliBefore = await redis.xlen(keys.jobs('cali'));
    await expect(startTextTurn(bus, events, { session: 'half', turn: 'refused', text: 'hi', cores: 5 })).rejects.toMatchObject({
      code: 'ACP_ERR_BACKLOG',
    });
    expect(await events.lastSeq('half')).toBe(0);
    expect(await events.read('half')).toEqual([]);
    expect(await redis.exists(keys.turn('half', 'refused'))).toBe(0);
    expect(await redis.zscore(keys.turnDeadlines, 'half refused')).toBeNull();
    expect(await redis.xlen(keys.jobs('cali'))).toBe(caliBefore);
    await events.close();
  });

  test('turn.start, the transcript and every first job land together, each job pointing at the turn.start seq', async () => {
    const redis = client();
    const keys = vaultKeys(prefix());
    const acp = createAcp(redis, { prefix: keys.prefix });
    await acp.events.append('s1', { type: 'note', turn: 'x' }); // the seq is not simply 1
    const t = await startTextTurn(acp.bus, acp.events, { session: 's1', turn: 't1', text: 'hello', cores: 3, timeoutMs: 5000 });
    expect(t.seq).toBe(2);
    expect((await acp.events.read('s1', 1)).map((e) => e.type)).toEqual(['turn.start', 'transcript']);
    for (const q of ['cali', 'core:0', 'core:1', 'core:2']) {
      const [[, fields]] = (await redis.xrange(keys.jobs(q), '-', '+')) as [string, string[]][];
      expect(JSON.parse(fields[1])).toMatchObject({ seq: 2, session: 's1', turn: 't1' });
    }
    expect(await redis.hgetall(keys.turn('s1', 't1'))).toEqual({ start_seq: '2', deadline_ms: String(t.deadlineMs) });
    expect(Number(await redis.zscore(keys.turnDeadlines, 's1 t1'))).toBe(t.deadlineMs);
    // Orphans cannot pile up: the record and the stream expire on their own.
    expect(await redis.ttl(keys.turn('s1', 't1'))).toBeGreaterThan(0);
    expect(await redis.ttl(keys.turnEvents('s1'))).toBeGreaterThan(0);
    await acp.close();
  });

  test('one turn.end however many writers race to end the turn', async () => {
    const redis = client();
    const acp = createAcp(redis, { prefix: prefix() });
    const t = await startTextTurn(acp.bus, acp.events, { session: 's2', turn: 't2', text: 'hello', cores: 1 });
    const outcomes = ['ok', 'error', 'timeout', 'no_quorum'];
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => acp.events.append('s2', { type: 'turn.end', turn: 't2', data: { outcome: outcomes[i % 4] } })),
    );
    const ends = (await acp.events.read('s2', t.seq - 1)).filter((e) => e.type === 'turn.end');
    expect(ends).toHaveLength(1);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    expect(new Set(results.map((r) => r.seq))).toEqual(new Set([ends[0].seq]));
    expect(await redis.zcard(acp.keys.turnDeadlines)).toBe(0);
    await acp.close();
  });

  test('gateway killed right after turn.start: the sweepers of three replicas end its turn as timeout exactly once', async () => {
    const p = prefix();
    const gw = client();
    const acp = createAcp(gw, { prefix: p });
    const turns = 25;
    for (let i = 0; i < turns; i++)
      await startTextTurn(acp.bus, acp.events, { session: `k${i}`, turn: `t${i}`, text: 'hi', cores: 2, timeoutMs: 50 });
    gw.disconnect(); // nobody waits for these turns, and no worker runs
    const replicas = [client(), client(), client()].map((r) => {
      const a = createAcp(r, { prefix: p });
      return { a, sweeper: new TurnSweeper(r, a.keys, a.events, { graceMs: 0 }) };
    });
    await waitUntil('every deadline passed', async () => (await replicas[0].sweeper.overdue()) === turns);
    const ended = await Promise.all(replicas.map((r) => r.sweeper.sweep()));
    expect(ended.reduce((x, y) => x + y, 0)).toBe(turns);
    for (let i = 0; i < turns; i++) {
      const ends = (await replicas[0].a.events.read(`k${i}`)).filter((e) => e.type === 'turn.end');
      expect(ends.map((e) => e.data)).toEqual([{ outcome: 'timeout', code: 'ORB_ERR_TURN_TIMEOUT' }]);
    }
    expect(await replicas[0].sweeper.overdue()).toBe(0);
    await Promise.all(replicas.map((r) => r.a.close()));
  });
});
