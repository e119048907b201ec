/**
 * Every turn ends, on every transport, with no worker running: the gateway replicas' deadline
 * sweeper sends WebSocket clients their turn.end timeout when nobody waits over HTTP; a turn refused
 * for backlog leaves nothing in the session and /readyz says why; orb-core starts (and says not
 * ready) while its vault does not answer yet, and becomes ready once it does.
 */
import type { FastifyInstance } from 'fastify';
import Redis from 'ioredis';
import { loadOrbFunctions, vaultKeys } from '../../../services/acp';
import { freePort, RedisServerHandle, startRedisServer } from '../../../tools/redis/redis-server';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, Client, http, listen, makeApp, seedIdentity, waitFor } from './support';

const prefix = uniquePrefix('te');
const FAST = { ORB_TURN_DEADLINE_MS: '300', ORB_SWEEP_INTERVAL_MS: '50', ORB_SWEEP_GRACE_MS: '50' };
let redis: Redis;
const apps: FastifyInstance[] = [];

beforeAll(async () => {
  redis = testRedis();
  await seedIdentity(redis, prefix);
});

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

async function gateway(pod: string, extra: Record<string, string> = {}, p = prefix): Promise<string> {
  const app = await makeApp(p, pod, { ...FAST, ...extra });
  apps.push(app);
  return listen(app);
}

test('a WebSocket turn nobody answers gets turn.end timeout from the sweeper, once', async () => {
  const hp = await gateway('te-a');
  const ws = new Client(hp, '/v1/session', auth('alice'));
  await ws.opened;
  const ready = await ws.next((m) => m.type === 'session.ready', 'session.ready');
  ws.send({ type: 'text', text: 'is anyone there?' });
  const accepted = await ws.next((m) => m.type === 'turn.accepted', 'turn.accepted');
  const end = await ws.next((m) => m.type === 'turn.end' && m.turn === accepted.turn, 'turn.end');
  expect(end.data).toEqual({ outcome: 'timeout', code: 'ORB_ERR_TURN_TIMEOUT' });
  await ws.close();
  const history = await http(hp, { url: `/v1/sessions/${ready.session}`, headers: auth('alice') });
  expect(history.json().events.filter((e: { type: string }) => e.type === 'turn.end')).toHaveLength(1);
  expect(history.json().turns).toEqual([
    expect.objectContaining({ turn: accepted.turn, outcome: 'timeout', transcript: 'is anyone there?' }),
  ]);
});

test('an HTTP turn nobody answers is 504 ORB_ERR_TURN_TIMEOUT, and its session holds exactly one turn.end', async () => {
  const hp = await gateway('te-b');
  const session = (await http(hp, { method: 'POST', url: '/v1/sessions', headers: auth('alice'), payload: {} })).json().id;
  const res = await http(hp, { method: 'POST', url: '/v1/turns', headers: auth('alice'), payload: { session, text: 'hello?' } });
  expect({ s: res.statusCode, c: res.json().code }).toEqual({ s: 504, c: 'ORB_ERR_TURN_TIMEOUT' });
  const history = await http(hp, { url: `/v1/sessions/${session}`, headers: auth('alice') });
  expect(history.json().events.map((e: { type: string }) => e.type)).toEqual(['turn.start', 'transcript', 'turn.end']);
});

test('a turn refused for backlog writes nothing; /readyz is not ready with the reason until the queue drains', async () => {
  const p = uniquePrefix('tb');
  await seedIdentity(redis, p);
  const keys = vaultKeys(p);
  // CALI's queue at the cap (10 000 unacknowledged jobs): every turn would be refused.
  const pipe = redis.pipeline();
  for (let i = 0; i < 10_000; i++) pipe.xadd(keys.jobs('cali'), '*', 'env', '{}');
  await pipe.exec();
  const hp = await gateway('te-c', {}, p);
  const session = (await http(hp, { method: 'POST', url: '/v1/sessions', headers: auth('alice'), payload: {} })).json().id;
  const res = await http(hp, { method: 'POST', url: '/v1/turns', headers: auth('alice'), payload: { session, text: 'hello' } });
  expect({ s: res.statusCode, c: res.json().code }).toEqual({ s: 503, c: 'ORB_ERR_BUS_BACKLOG' });
  const history = await http(hp, { url: `/v1/sessions/${session}`, headers: auth('alice') });
  expect({ last_seq: history.json().last_seq, turns: history.json().turns, events: history.json().events }).toEqual({
    last_seq: 0,
    turns: [],
    events: [],
  });
  expect(await redis.zcard(keys.turnDeadlines)).toBe(0);

  const notReady = await waitFor(async () => {
    const r = await http(hp, { url: '/readyz' });
    return r.statusCode === 503 && /backlog/.test(r.json().reason ?? '') ? r : null;
  }, '/readyz to report the backlog');
  expect(notReady.json()).toMatchObject({ status: 'not_ready', checks: { vault: true, identity: true, turns: false } });
  expect(notReady.json().reason).toContain(keys.jobs('cali').replace(p, '').replace('acp:jobs:', ''));

  await redis.del(keys.jobs('cali'));
  await waitFor(async () => (await http(hp, { url: '/readyz' })).statusCode === 200, '/readyz ready again once the queue drained');
  await deletePrefix(redis, p);
});

test('vault restart: the same gateway and WebSocket go on; a turn started after it still gets its turn.end', async () => {
  const vault = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  try {
    const admin = new Redis(vault.url, { maxRetriesPerRequest: 2 });
    await loadOrbFunctions(admin);
    await seedIdentity(admin, prefix);
    await admin.quit();
    const hp = await gateway('te-f', { REDIS_URL: vault.url });
    await waitFor(async () => (await http(hp, { url: '/readyz' })).statusCode === 200, '/readyz');
    const ws = new Client(hp, '/v1/session?vad=false', auth('alice'));
    await ws.opened;
    await ws.next((m) => m.type === 'session.ready', 'session.ready');

    await vault.stop({ signal: 'SIGKILL' });
    const back = await startRedisServer({ port: vault.port, dir: vault.dir, args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    try {
      await waitFor(async () => (await http(hp, { url: '/readyz' })).statusCode === 200, '/readyz after the restart', 30_000);
      const from = ws.messages.length;
      ws.send({ type: 'text', text: 'still there?' });
      const accepted = await ws.next((m) => m.type === 'turn.accepted', 'turn.accepted', from);
      const end = await ws.next((m) => m.type === 'turn.end' && m.turn === accepted.turn, 'turn.end after the restart', from);
      expect(end.data).toEqual({ outcome: 'timeout', code: 'ORB_ERR_TURN_TIMEOUT' });
      await ws.close();
    } finally {
      await Promise.all(apps.splice(0).map((a) => a.close()));
      await back.stop({ removeDir: true });
    }
  } finally {
    await vault.stop({ removeDir: false });
  }
}, 60_000);

describe('orb-core and a vault that does not answer yet', () => {
  let server: RedisServerHandle | undefined;
  afterAll(async () => {
    await server?.stop({ removeDir: true });
  });

  test('a vault hostname that does not resolve: the gateway starts, /livez answers, /readyz says why it is not ready', async () => {
    const hp = await gateway('te-d', { REDIS_URL: '', REDIS_HOST: 'vault.invalid', REDIS_PORT: '6379' });
    expect((await http(hp, { url: '/livez' })).statusCode).toBe(200);
    const r = await http(hp, { url: '/readyz' });
    expect({ s: r.statusCode, reason: r.json().reason, vault: r.json().checks.vault }).toEqual({
      s: 503,
      reason: 'vault not reachable',
      vault: false,
    });
  });

  test('the vault comes up later: the same gateway becomes ready without a restart', async () => {
    const port = await freePort();
    const hp = await gateway('te-e', { REDIS_URL: `redis://127.0.0.1:${port}` });
    expect((await http(hp, { url: '/readyz' })).statusCode).toBe(503);
    server = await startRedisServer({ port });
    const late = testRedisAt(server.url);
    await loadOrbFunctions(late);
    await seedIdentity(late, prefix);
    await late.quit();
    await waitFor(async () => (await http(hp, { url: '/readyz' })).statusCode === 200, '/readyz once the vault answers', 30_000);
  });
});

function testRedisAt(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 2 });
}
