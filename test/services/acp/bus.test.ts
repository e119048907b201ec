/**
 * Job streams: group created before any worker, backpressure instead of lossy MAXLEN, trimming
 * that keeps every unacknowledged job, dead letters (malformed at once, poison after N
 * deliveries) with the worker still going, expired deadlines dropped and counted.
 */
import Redis from 'ioredis';
import { AcpError, ACP_GROUP, createAcp, createEnvelope, textPart } from '../../../services/acp';
import { WorkerRuntime } from '../../../services/workers/runtime';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { echoRole } from '../workers/runtime/fixtures/echo-role';
import { waitUntil, workerConfig } from './helpers';

const prefix = uniquePrefix('bus');
let redis: Redis;

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

const job = (queue: string, i: number, over: Partial<Parameters<typeof createEnvelope>[0]> = {}) =>
  createEnvelope({
    id: `${queue}-${i}`,
    kind: 'echo',
    session: `s-${queue}`,
    turn: `t${i}`,
    timeoutMs: 60_000,
    parts: [textPart(`n${i}`)],
    ...over,
  });

describe('publishing', () => {
  test('a job published before any worker exists is kept for the group (created at id 0)', async () => {
    const acp = createAcp(redis, { prefix });
    await acp.bus.publish('early', job('early', 1));
    const res = (await redis.xreadgroup('GROUP', ACP_GROUP, 'c1', 'COUNT', 10, 'STREAMS', acp.keys.jobs('early'), '>')) as [
      string,
      [string, string[]][],
    ][];
    expect(res[0][1]).toHaveLength(1);
    expect(JSON.parse(res[0][1][0][1][1])).toMatchObject({ id: 'early-1', protocol: 'acp/1.0' });
  });

  test('publish validates the envelope', async () => {
    const acp = createAcp(redis, { prefix });
    await expect(acp.bus.publish('x', { ...job('x', 1), protocol: 'acp/2.0' })).rejects.toMatchObject({ code: 'ACP_ERR_PROTOCOL' });
  });

  test('a full queue refuses new jobs with ACP_ERR_BACKLOG instead of trimming unacknowledged ones', async () => {
    const acp = createAcp(redis, { prefix, maxBacklog: 5 });
    for (let i = 0; i < 5; i++) await acp.bus.publish('full', job('full', i));
    const err = await acp.bus.publish('full', job('full', 5)).catch((e) => e);
    expect(err).toBeInstanceOf(AcpError);
    expect(err.code).toBe('ACP_ERR_BACKLOG');
    expect(await redis.xlen(acp.keys.jobs('full'))).toBe(5);
  });
});

describe('trimming', () => {
  test('XTRIM MINID ~ below the oldest unacknowledged job removes finished jobs only', async () => {
    const acp = createAcp(redis, { prefix, maxBacklog: 100_000 });
    const stream = acp.keys.jobs('trim');
    for (let i = 0; i < 600; i++) await acp.bus.publish('trim', job('trim', i));
    const res = (await redis.xreadgroup('GROUP', ACP_GROUP, 'c1', 'COUNT', 300, 'STREAMS', stream, '>')) as [
      string,
      [string, string[]][],
    ][];
    const delivered = res[0][1].map((e) => e[0]);
    const keepUnacked = [delivered[150], delivered[299]];
    await redis.xack(stream, ACP_GROUP, ...delivered.filter((id) => !keepUnacked.includes(id)));
    const all = ((await redis.xrange(stream, '-', '+')) as [string, string[]][]).map((e) => e[0]);

    const removed = await acp.bus.trim('trim');
    expect(removed).toBeGreaterThan(0); // whole 100-entry nodes below entry 150 went
    const left = new Set(((await redis.xrange(stream, '-', '+')) as [string, string[]][]).map((e) => e[0]));
    for (const id of keepUnacked) expect(left.has(id)).toBe(true);
    for (const id of all.slice(300)) expect(left.has(id)).toBe(true); // never delivered
    expect(left.size).toBe(600 - removed);
    expect(removed).toBeLessThanOrEqual(150);

    // With nothing pending the floor is the last delivered id: undelivered jobs all stay.
    await redis.xack(stream, ACP_GROUP, ...keepUnacked);
    await acp.bus.trim('trim');
    const after = new Set(((await redis.xrange(stream, '-', '+')) as [string, string[]][]).map((e) => e[0]));
    for (const id of all.slice(300)) expect(after.has(id)).toBe(true);
    expect(after.size).toBeLessThan(left.size);
  });

  test('a stream nobody has read is not trimmed', async () => {
    const acp = createAcp(redis, { prefix });
    for (let i = 0; i < 250; i++) await acp.bus.publish('unread', job('unread', i));
    expect(await acp.bus.trim('unread')).toBe(0);
    expect(await redis.xlen(acp.keys.jobs('unread'))).toBe(250);
  });
});

describe('worker runtime on the bus', () => {
  let rt: WorkerRuntime;
  let client: Redis;
  const seen: string[] = [];

  beforeAll(async () => {
    client = testRedis();
    rt = new WorkerRuntime(echoRole({ ECHO_QUEUE: 'dlq' }, seen), {
      redis: client,
      keyPrefix: prefix,
      http: false,
      worker: workerConfig({ podName: 'echo-dlq', reclaimIdleMs: 150, maxDeliveries: 3 }),
    });
    await rt.start();
  });
  afterAll(async () => {
    await rt.stop();
    await client.quit();
  });

  test('malformed and unknown-major envelopes go to the DLQ at once; a poison job after N deliveries; the worker keeps going', async () => {
    const acp = createAcp(redis, { prefix });
    await acp.bus.publish('dlq', job('dlq', 1));
    await acp.bus.publishRaw('dlq', { env: '{"protocol":"acp/1.0", "id": ' });
    await acp.bus.publishRaw('dlq', { env: JSON.stringify({ ...job('dlq', 2), protocol: 'acp/2.0' }) });
    await acp.bus.publishRaw('dlq', { something: 'else' });
    await acp.bus.publish('dlq', job('dlq', 3, { parts: [textPart('poison')] }));
    await acp.bus.publish('dlq', job('dlq', 4));

    await waitUntil('4 dead letters', async () => (await acp.bus.dlqSize('dlq')) === 4);
    const dead = await acp.bus.deadLetters('dlq');
    expect(dead.map((d) => d.code).sort()).toEqual(['ACP_ERR_DELIVERIES', 'ACP_ERR_ENVELOPE', 'ACP_ERR_ENVELOPE', 'ACP_ERR_PROTOCOL']);
    const poison = dead.find((d) => d.code === 'ACP_ERR_DELIVERIES')!;
    expect(poison).toMatchObject({ jobId: 'dlq-3', deliveries: 4 });
    expect(poison.error).toMatch(/gave up after 3 deliveries: poison pill/);
    expect(seen.filter((t) => t === 'poison')).toHaveLength(3);
    expect(dead.find((d) => d.code === 'ACP_ERR_PROTOCOL')!.error).toMatch(/acp\/2\.0/);
    // The poison job's turn hears about it (malformed ones have no trustworthy session to tell).
    const errors = (await acp.events.read('s-dlq', 0)).filter((e) => e.type === 'turn.error');
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ turn: 't3', job: 'dlq-3', data: { code: 'ACP_ERR_DELIVERIES', kind: 'echo', job: 'dlq-3' } });
    // Not a core's job, so the turn cannot finish: it is ended, once, right after the error.
    const ends = (await acp.events.read('s-dlq', 0)).filter((e) => e.type === 'turn.end' && e.turn === 't3');
    expect(ends).toHaveLength(1);
    expect(ends[0]).toMatchObject({ job: 'dlq-3', data: { outcome: 'error', code: 'ACP_ERR_DELIVERIES' } });
    expect(ends[0].seq).toBe(errors[0].seq + 1);

    // Still consuming after all that.
    await acp.bus.publish('dlq', job('dlq', 5));
    const echoes = async () => (await acp.events.read('s-dlq', 0)).filter((e) => e.type === 'echo');
    await waitUntil('echoes of the good jobs', async () => (await echoes()).length === 3);
    expect((await echoes()).map((e) => (e.data as { text: string }).text)).toEqual(['n1', 'n4', 'n5']);
    await waitUntil('nothing pending', async () => ((await redis.xpending(acp.keys.jobs('dlq'), ACP_GROUP)) as [number])[0] === 0);
    expect(await rt.count('malformed')).toBe(3);
    expect(await rt.count('dead_letter')).toBe(1);
    expect(await rt.count('error')).toBe(3);
    expect(await rt.count('ok')).toBe(3);
    expect(await rt.metrics.getSingleMetricAsString('acp_dlq_size')).toMatch(/acp_dlq_size\{queue="dlq"\} 4/);
  });

  test('jobs past their deadline are dropped (never handled), acknowledged and counted', async () => {
    const acp = createAcp(redis, { prefix });
    const before = seen.length;
    for (let i = 10; i < 15; i++) await acp.bus.publish('dlq', job('dlq', i, { session: 's-late', deadlineMs: Date.now() - 1000 }));
    await acp.bus.publish('dlq', job('dlq', 15, { session: 's-late' }));
    await waitUntil('the live job done', async () => (await acp.events.read('s-late', 0)).length === 1);
    await waitUntil('5 expired', async () => (await rt.count('expired')) === 5);
    expect(seen.slice(before)).toEqual(['n15']);
    expect(((await redis.xpending(acp.keys.jobs('dlq'), ACP_GROUP)) as [number])[0]).toBe(0);
    expect(await redis.hget(acp.keys.done('dlq-12'), 'done')).toBe('expired');
  });

  test('a job stream deleted under a running worker is recreated and the next job still runs', async () => {
    const acp = createAcp(redis, { prefix });
    await redis.del(acp.keys.jobs('dlq'));
    // Plain XADD (no group creation): only the worker's NOGROUP recovery can make this run.
    await redis.xadd(acp.keys.jobs('dlq'), '*', 'env', JSON.stringify(job('dlq', 20, { session: 's-recreated' })));
    await waitUntil('the job after the stream was recreated', async () => (await acp.events.read('s-recreated', 0)).length === 1);
  });
});

test('a job that runs longer than the reclaim idle time is not taken over while its worker is alive (heartbeat)', async () => {
  const seen: string[] = [];
  const clientsLong = [testRedis(), testRedis()];
  const rts = clientsLong.map(
    (c, i) =>
      new WorkerRuntime(echoRole({ ECHO_QUEUE: 'long', ECHO_HOLD_MS: '1500' }, seen), {
        redis: c,
        keyPrefix: prefix,
        http: false,
        worker: workerConfig({ podName: `long-${i}`, reclaimIdleMs: 300 }),
      }),
  );
  try {
    await Promise.all(rts.map((r) => r.start()));
    const acp = createAcp(redis, { prefix });
    await acp.bus.publish('long', job('long', 1, { session: 's-long' }));
    // Sample the pending entry while it runs: a takeover or reclaim would bump its delivery count.
    const owners = new Set<string>();
    let maxDeliveries = 0;
    await waitUntil('the long job acknowledged', async () => {
      const rows = (await redis.xpending(acp.keys.jobs('long'), ACP_GROUP, '-', '+', 10)) as [string, string, number, number][];
      for (const [, owner, , count] of rows) {
        owners.add(owner);
        maxDeliveries = Math.max(maxDeliveries, count);
      }
      return (await redis.hget(acp.keys.done('long-1'), 'done')) === 'ok' && rows.length === 0;
    });
    expect(maxDeliveries).toBe(1);
    expect(owners.size).toBe(1);
    expect(seen).toEqual(['n1']); // handled once, by one worker, although it ran 5x the idle time
    const redeliveries = await Promise.all(rts.map(async (r) => (await r.m.redeliveries.get()).values.reduce((a, v) => a + v.value, 0)));
    expect(redeliveries).toEqual([0, 0]);
    expect(await acp.events.read('s-long', 0)).toHaveLength(1);
  } finally {
    await Promise.all(rts.map((r) => r.stop()));
    await Promise.all(clientsLong.map((c) => c.quit()));
  }
}, 30_000);
