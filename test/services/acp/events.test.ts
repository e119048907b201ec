import Redis from 'ioredis';
import { createAcp, Acp, startTextTurn, TurnEvent } from '../../../services/acp';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';

const prefix = uniquePrefix('events');
let redis: Redis;
let other: Redis;
let acp: Acp;

beforeAll(() => {
  redis = testRedis();
  other = testRedis();
  acp = createAcp(redis, { prefix, blockMs: 200 });
});
afterAll(async () => {
  await acp.close();
  await deletePrefix(redis, prefix);
  await redis.quit();
  await other.quit();
});

describe('turn event stream', () => {
  test('seq is per-session, monotonic and gap-free under concurrent writers on different connections', async () => {
    const acp2 = createAcp(other, { prefix });
    const writes = Array.from({ length: 200 }, (_, i) =>
      (i % 2 ? acp : acp2).events.append('s-conc', { type: 'audio', turn: 't', data: { i } }),
    );
    const seqs = (await Promise.all(writes)).map((r) => r.seq).sort((a, b) => a - b);
    expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    const evs = await acp.events.read('s-conc', 0);
    expect(evs.map((e) => e.seq)).toEqual(seqs);
    expect((await acp.events.append('s-other', { type: 'turn.start', turn: 'x' })).seq).toBe(1);
    expect(await acp.events.lastSeq('s-conc')).toBe(200);
    await acp2.close();
  });

  test('a writer with a shorter retention never cuts the life the longest one gave a session (gateway 7 d, worker 1 d)', async () => {
    const day = 86_400;
    const gateway = createAcp(other, { prefix, retentionS: 7 * day });
    const worker = createAcp(redis, { prefix, retentionS: day });
    const K = acp.keys;
    const ttls = async (sid: string, turn: string) =>
      Promise.all([redis.ttl(K.turnEvents(sid)), redis.ttl(K.turnSeq(sid)), redis.ttl(K.turn(sid, turn))]);
    try {
      // The gateway starts a turn, a worker appends its result and ends the turn.
      await startTextTurn(gateway.bus, gateway.events, { session: 's-ttl', turn: 't1', text: 'hello', cores: 1 });
      await worker.events.append('s-ttl', { type: 'reply', turn: 't1', data: { text: 'hi' } });
      await worker.events.endTurn('s-ttl', { turn: 't1', data: { outcome: 'ok' } });
      for (const ttl of await ttls('s-ttl', 't1')) expect(ttl).toBeGreaterThan(6 * day);
      // A session only a worker ever wrote gets the worker's retention (a fresh key gets a TTL at all).
      await worker.events.append('s-ttl-worker', { type: 'reply', turn: 't2' });
      const [events, seq] = await ttls('s-ttl-worker', 't2');
      expect(events).toBeGreaterThan(day - 60);
      expect(events).toBeLessThanOrEqual(day);
      expect(seq).toBeLessThanOrEqual(day);
      // and a later gateway append raises it to the gateway's.
      await gateway.events.append('s-ttl-worker', { type: 'turn.start', turn: 't3' });
      expect(await redis.ttl(K.turnEvents('s-ttl-worker'))).toBeGreaterThan(6 * day);
    } finally {
      await gateway.close();
      await worker.close();
    }
  });

  test('read returns only events after the given seq (resume)', async () => {
    for (let i = 1; i <= 5; i++) await acp.events.append('s-resume', { type: 'transcript', turn: 't1', data: { i }, job: 'j' });
    const after3 = await acp.events.read('s-resume', 3);
    expect(after3.map((e) => e.seq)).toEqual([4, 5]);
    expect(after3[0]).toMatchObject({ type: 'transcript', session: 's-resume', turn: 't1', job: 'j', data: { i: 4 } });
  });

  test('dedupe: the same (job, field) appends once and returns the original seq', async () => {
    const dedupe = { key: acp.keys.done('job-x'), field: 'e0', ttlS: 60 };
    const first = await acp.events.append('s-dedupe', { type: 'reply', turn: 't', data: 'a' }, { dedupe });
    const again = await acp.events.append('s-dedupe', { type: 'reply', turn: 't', data: 'b' }, { dedupe });
    expect(first).toEqual({ seq: 1, duplicate: false });
    expect(again).toEqual({ seq: 1, duplicate: true });
    expect(await acp.events.read('s-dedupe', 0)).toHaveLength(1);
  });

  test('tail follows new events from another writer and stops promptly on abort', async () => {
    await acp.events.append('s-tail', { type: 'turn.start', turn: 't' });
    const ac = new AbortController();
    const got: TurnEvent[] = [];
    const done = (async () => {
      for await (const ev of acp.events.tail('s-tail', 1, { signal: ac.signal })) {
        got.push(ev);
        if (got.length === 3) ac.abort();
      }
    })();
    const writer = createAcp(other, { prefix });
    for (const type of ['verdict', 'reply', 'turn.end']) await writer.events.append('s-tail', { type, turn: 't' });
    await done;
    expect(got.map((e) => [e.seq, e.type])).toEqual([
      [2, 'verdict'],
      [3, 'reply'],
      [4, 'turn.end'],
    ]);
    await writer.close();
  });

  test('an aborted tail with nothing to read returns without waiting for its BLOCK', async () => {
    const ac = new AbortController();
    const it = acp.events.tail('s-idle', 0, { signal: ac.signal, blockMs: 60_000 });
    const next = it.next();
    setImmediate(() => ac.abort());
    await expect(next).resolves.toEqual({ value: undefined, done: true });
  });

  test('waitFor returns the matching event, or undefined at its timeout', async () => {
    const pending = acp.events.waitFor('s-wait', 0, (e) => e.type === 'turn.end', { timeoutMs: 10_000 });
    await acp.events.append('s-wait', { type: 'reply', turn: 't' });
    await acp.events.append('s-wait', { type: 'turn.end', turn: 't', data: { outcome: 'ok' } });
    expect(await pending).toMatchObject({ seq: 2, type: 'turn.end', data: { outcome: 'ok' } });
    expect(await acp.events.waitFor('s-wait', 2, () => true, { timeoutMs: 100 })).toBeUndefined();
  });
});
