/**
 * Delivery after replication on a real primary + replica pair: an event appended while the
 * replica is frozen (SIGSTOP) reaches no reader that has a fence (the gateway's EventHub, the
 * stream's read/tail) until the replica has it; then it is delivered exactly once. The same
 * reads without a fence deliver it at once (so the check can fail).
 */
import Redis from 'ioredis';
import { TurnEventStream, vaultKeys, type TurnEvent } from '../../../services/acp';
import { loadOrbFunctions } from '../../../services/acp/functions';
import { DeliveryFence, ReplicationLagError } from '../../../services/acp/replication';
import { EventHub } from '../../../services/orb/event-hub';
import { aclRules } from '../../../infra/vault-acl';
import { toOrbError } from '../../../services/orb/errors';
import { BlockingReadStuckError } from '../../../services/acp/blocking';
import { startRedisServer, type RedisServerHandle } from '../../../tools/redis/redis-server';
import { hasTool } from '../../support/system-tools';
import { uniquePrefix } from '../../support/vault';
import { waitUntil } from './helpers';

jest.setTimeout(60_000);
const run = hasTool('redis-server', 'redis-server', 'delivery fence on a primary + replica pair') ? describe : describe.skip;

run('delivery fence: nothing reaches a client before a replica has it', () => {
  let primary: RedisServerHandle;
  let replica: RedisServerHandle;
  let redis: Redis;
  const prefix = uniquePrefix('fence');
  const keys = vaultKeys(prefix);
  const stopped = () => {
    replica.process.kill('SIGSTOP');
  };
  const resumed = () => {
    replica.process.kill('SIGCONT');
  };

  beforeAll(async () => {
    primary = await startRedisServer();
    replica = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    redis = new Redis(primary.url, { maxRetriesPerRequest: 2 });
    await loadOrbFunctions(redis);
    await waitUntil('the replica is linked', async () => /slave0:.*state=online/.test(String(await redis.info('replication'))));
  });

  afterAll(async () => {
    resumed();
    redis?.disconnect();
    await replica?.stop({ removeDir: true, signal: 'SIGKILL' });
    await primary?.stop({ removeDir: true, signal: 'SIGKILL' });
  });

  test('held-back events answer an HTTP client 503 ORB_ERR_VAULT_UNAVAILABLE, not 500', () => {
    const err = toOrbError(new ReplicationLagError(0, 1, 100));
    expect(err.statusCode).toBe(503);
    expect(err.code).toBe('ORB_ERR_VAULT_UNAVAILABLE');
    expect(err.message).toMatch(/held back/);
    expect(toOrbError(new BlockingReadStuckError(100)).statusCode).toBe(503);
  });

  test('the fence refuses bad settings', () => {
    expect(() => new DeliveryFence({ key: 'k', replicas: 1, timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new DeliveryFence({ key: 'k', replicas: -1, timeoutMs: 10 })).toThrow(/replicas/);
    expect(new DeliveryFence({ key: 'k', replicas: 0, timeoutMs: 10 }).enabled).toBe(false);
  });

  test('EventHub: an event written while the replica is frozen is delivered only after it resumes, once', async () => {
    const fence = new DeliveryFence({ key: keys.orbFence('hub'), replicas: 1, timeoutMs: 200 });
    const events = new TurnEventStream(redis, keys, { fence });
    const plainEvents = new TurnEventStream(redis, keys);
    const errors: unknown[] = [];
    const hub = new EventHub(redis, keys, events, { blockMs: 100, fence, onError: (e) => errors.push(e) });
    const plain = new EventHub(redis, keys, plainEvents, { blockMs: 100, onError: () => undefined });
    const got: TurnEvent[] = [];
    const gotPlain: TurnEvent[] = [];
    try {
      await events.append('s1', { type: 'transcript', turn: 't1', data: { text: 'before' } });
      const sub = await hub.subscribe('s1', 0, (evs) => got.push(...evs));
      const subPlain = await plain.subscribe('s1', 0, (evs) => gotPlain.push(...evs));
      await waitUntil('the replicated event arrives', () => got.length === 1 && gotPlain.length === 1);

      stopped();
      const { seq } = await events.append('s1', { type: 'reply', turn: 't1', data: { text: 'while frozen' } });
      await waitUntil('the unfenced hub delivers it (control)', () => gotPlain.length === 2);
      // Several fence rounds have failed on this event: it stays held back.
      const rounds = fence.rounds;
      await waitUntil(
        'three fence rounds time out',
        () => errors.filter((e) => e instanceof ReplicationLagError).length >= 3 && fence.rounds >= rounds + 3,
        20_000,
      );
      expect(got.map((e) => e.seq)).toEqual([1]);

      resumed();
      await waitUntil('delivered once the replica has it', () => got.length === 2, 20_000);
      expect(got.map((e) => e.seq)).toEqual([1, seq]);
      // A few more tail rounds: never delivered twice.
      await events.append('s1', { type: 'turn.end', turn: 't1', data: { outcome: 'ok' } });
      await waitUntil('the next event', () => got.length === 3);
      expect(got.map((e) => e.seq)).toEqual([1, seq, seq + 1]);
      sub.close();
      subPlain.close();
    } finally {
      resumed();
      await hub.close();
      await plain.close();
      await events.close();
      await plainEvents.close();
    }
  });

  test('a socket that subscribes while the replica is frozen gets its catch-up only after it resumes', async () => {
    const fence = new DeliveryFence({ key: keys.orbFence('catchup'), replicas: 1, timeoutMs: 200 });
    const events = new TurnEventStream(redis, keys, { fence });
    const errors: unknown[] = [];
    const hub = new EventHub(redis, keys, events, { blockMs: 100, fence, onError: (e) => errors.push(e) });
    const got: TurnEvent[] = [];
    try {
      stopped();
      await events.append('s2', { type: 'transcript', turn: 't1', data: { text: 'unreplicated' } });
      let subscribed = false;
      const pending = hub
        .subscribe('s2', 0, (evs) => got.push(...evs))
        .then((s) => {
          subscribed = true;
          return s;
        });
      await waitUntil('the catch-up read is held back', () => errors.some((e) => e instanceof ReplicationLagError), 20_000);
      expect(subscribed).toBe(false);
      expect(got).toEqual([]);
      resumed();
      const sub = await pending;
      expect(got.map((e) => e.seq)).toEqual([1]);
      sub.close();
    } finally {
      resumed();
      await hub.close();
      await events.close();
    }
  });

  test('read / waitFor (the HTTP turn result path): held back while frozen, returned after', async () => {
    const fence = new DeliveryFence({ key: keys.orbFence('http'), replicas: 1, timeoutMs: 150 });
    const events = new TurnEventStream(redis, keys, { fence });
    try {
      stopped();
      await events.append('s3', { type: 'reply', turn: 't1', data: { text: 'x' } });
      await expect(events.read('s3', 0)).rejects.toBeInstanceOf(ReplicationLagError);
      expect(await events.waitFor('s3', 0, () => true, { timeoutMs: 600 })).toBeUndefined();
      // Without a fence the same read sees it (control).
      expect((await new TurnEventStream(redis, keys).read('s3', 0)).length).toBe(1);
      resumed();
      expect((await events.read('s3', 0)).map((e) => e.type)).toEqual(['reply']);
      expect((await events.waitFor('s3', 0, () => true, { timeoutMs: 5000 }))?.type).toBe('reply');
    } finally {
      resumed();
      await events.close();
    }
  });

  test("the fence runs as the gateway's ACL user (the rendered orb rules grant SET on orb:* and WAIT)", async () => {
    const rules = aclRules('orb', prefix).match(/\([^)]*\)|\S+/g) ?? [];
    await redis.call('ACL', 'SETUSER', 'orb', 'reset', 'on', '>orb-fence-pw', ...rules.filter((r) => r !== 'reset'));
    await redis.call('ACL', 'LOG', 'RESET');
    const asOrb = new Redis(primary.url, { username: 'orb', password: 'orb-fence-pw', maxRetriesPerRequest: 2 });
    const fence = new DeliveryFence({ key: keys.orbFence('acl'), replicas: 1, timeoutMs: 2000 });
    const events = new TurnEventStream(asOrb, keys, { fence });
    try {
      await events.append('s5', { type: 'reply', turn: 't1', data: {} });
      expect((await events.read('s5', 0)).length).toBe(1);
      expect((await events.waitFor('s5', 0, () => true, { timeoutMs: 5000 }))?.type).toBe('reply');
      expect(await redis.call('ACL', 'LOG')).toEqual([]);
      // Control: the same rules without +wait cannot fence.
      await redis.call('ACL', 'SETUSER', 'orbnowait', 'reset', 'on', '>pw2', ...rules.filter((r) => r !== 'reset' && r !== '+wait'));
      const noWait = new Redis(primary.url, { username: 'orbnowait', password: 'pw2', maxRetriesPerRequest: 2 });
      await expect(fence.sync(noWait)).rejects.toThrow(/NOPERM/);
      noWait.disconnect();
    } finally {
      await events.close();
      asOrb.disconnect();
    }
  });

  test('with two replicas it waits for both: the one Sentinel promotes may be the one behind', async () => {
    const second = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    const online = async () => (String(await redis.info('replication')).match(/^slave\d+:.*state=online/gm) ?? []).length;
    const fence = new DeliveryFence({ key: keys.orbFence('two'), replicas: 1, timeoutMs: 150, replicasRefreshMs: 0 });
    const events = new TurnEventStream(redis, keys, { fence });
    try {
      await waitUntil('both replicas online', async () => (await online()) === 2);
      second.process.kill('SIGSTOP');
      await events.append('s6', { type: 'reply', turn: 't1', data: {} });
      // The first replica has it (WAIT 1 would pass); the frozen second does not.
      expect(await redis.call('WAIT', 1, 1000)).toBe(1);
      await expect(events.read('s6', 0)).rejects.toMatchObject({ name: 'ReplicationLagError', wanted: 2, acked: 1 });
      second.process.kill('SIGCONT');
      expect((await events.read('s6', 0)).map((e) => e.type)).toEqual(['reply']);
    } finally {
      second.process.kill('SIGCONT');
      await events.close();
      await second.stop({ removeDir: true, signal: 'SIGKILL' });
    }
    // The primary counts the stopped replica out once its link is gone; the fence waits for one again.
    await waitUntil('one replica online', async () => (await online()) === 1, 30_000);
    const fence1 = new DeliveryFence({ key: keys.orbFence('one'), replicas: 1, timeoutMs: 1000, replicasRefreshMs: 0 });
    const ev1 = new TurnEventStream(redis, keys, { fence: fence1 });
    expect((await ev1.read('s6', 0)).length).toBe(1);
    await ev1.close();
  });

  test('a replica that leaves is waited for until fewer have been seen for the grace period (a resumed old primary may still count one Sentinel is moving)', async () => {
    const second = await startRedisServer({ args: ['--replicaof', '127.0.0.1', String(primary.port)] });
    const online = async () => (String(await redis.info('replication')).match(/^slave\d+:.*state=online/gm) ?? []).length;
    const fence = new DeliveryFence({
      key: keys.orbFence('grace'),
      replicas: 1,
      timeoutMs: 150,
      replicasRefreshMs: 0,
      replicaGraceMs: 1500,
    });
    const events = new TurnEventStream(redis, keys, { fence });
    try {
      await waitUntil('both replicas online', async () => (await online()) === 2);
      await events.append('s8', { type: 'reply', turn: 't1', data: {} });
      expect((await events.read('s8', 0)).length).toBe(1); // the fence has seen two
      await second.stop({ removeDir: true, signal: 'SIGKILL' });
      await waitUntil('one replica online', async () => (await online()) === 1, 30_000);
      // The one left acknowledges everything (WAIT 1 passes), yet the fence still wants two...
      expect(await redis.call('WAIT', 1, 1000)).toBe(1);
      await expect(events.read('s8', 0)).rejects.toMatchObject({ name: 'ReplicationLagError', wanted: 2, acked: 1 });
      await new Promise((r) => setTimeout(r, 800));
      await expect(events.read('s8', 0)).rejects.toMatchObject({ name: 'ReplicationLagError', wanted: 2 });
      // ...until fewer have been seen for the grace period; then it delivers with the one left.
      await new Promise((r) => setTimeout(r, 900));
      expect((await events.read('s8', 0)).length).toBe(1);
    } finally {
      await events.close();
      await second.stop({ removeDir: true, signal: 'SIGKILL' }).catch(() => undefined);
    }
  });

  test('a connection that dropped between the read and the fence vouches for nothing (its commands could run on another server)', async () => {
    const fence = new DeliveryFence({ key: keys.orbFence('epoch'), replicas: 1, timeoutMs: 1000 });
    const conn = new Redis(primary.url, { maxRetriesPerRequest: null });
    try {
      await conn.ping();
      const before = fence.mark(conn);
      conn.disconnect(true); // reconnect, as ioredis does after a failover
      await waitUntil('reconnected', () => conn.status === 'ready');
      await expect(fence.sync(conn, before)).rejects.toThrow(/re-established/);
      expect(before).toBeDefined();
      await fence.sync(conn, fence.mark(conn)); // a fresh mark on the same connection passes
    } finally {
      conn.disconnect();
    }
  });

  test('a primary that refuses writes without a replica (min-replicas-to-write) refuses delivery too', async () => {
    const fence = new DeliveryFence({ key: keys.orbFence('noreplicas'), replicas: 1, timeoutMs: 100 });
    const events = new TurnEventStream(redis, keys, { fence });
    await events.append('s4', { type: 'reply', turn: 't1', data: {} });
    await redis.config('SET', 'min-replicas-to-write', '2');
    try {
      await expect(events.read('s4', 0)).rejects.toBeInstanceOf(ReplicationLagError);
    } finally {
      await redis.config('SET', 'min-replicas-to-write', '0');
      await events.close();
    }
    expect((await new TurnEventStream(redis, keys).read('s4', 0)).length).toBe(1);
  });
});
