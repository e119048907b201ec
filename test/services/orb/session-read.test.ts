/**
 * GET /v1/sessions/:id, the hot read (services/orb/session-read.ts): its rate-limit step rides in
 * the read's vault round trip, yet the budget is the same one as every other route's, per key,
 * across replicas; and a read refreshes the session's TTL only once it has fallen below the
 * threshold. Two real gateways on real sockets over the run's real Redis.
 */
import type { FastifyInstance } from 'fastify';
import { deletePrefix, testRedis, uniquePrefix } from '../../support/vault';
import { auth, http, listen, makeApp, seedIdentity, waitFor, type HttpResult } from './support';

const redis = testRedis();
const apps: FastifyInstance[] = [];

async function gateway(prefix: string, pod: string, extra: Record<string, string>): Promise<string> {
  const app = await makeApp(prefix, pod, extra);
  apps.push(app);
  return listen(app);
}

afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

afterAll(async () => {
  await redis.quit();
});

const RATE_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'];

describe('rate limit on the hot read', () => {
  const MAX = 12;
  const limits = { ORB_RATE_LIMIT_MAX: String(MAX), ORB_RATE_LIMIT_WINDOW_MS: '600000' };

  test('two replicas: concurrent reads on both draw from one budget per key (stated tolerance: 0, the vault INCR is the only arbiter)', async () => {
    const prefix = uniquePrefix('orbsr');
    await seedIdentity(redis, prefix);
    try {
      const a = await gateway(prefix, 'orb-sr-a', limits);
      const b = await gateway(prefix, 'orb-sr-b', limits);
      const created = await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') }); // 1 of the budget
      expect(created.statusCode).toBe(201);
      const sid = created.json().id as string;
      const answers = await Promise.all(
        Array.from({ length: 3 * MAX }, (_, i) => http(i % 2 ? a : b, { url: `/v1/sessions/${sid}`, headers: auth('alice') })),
      );
      const onA = answers.filter((_, i) => i % 2);
      const onB = answers.filter((_, i) => !(i % 2));
      const count = (rs: HttpResult[], status: number) => rs.filter((r) => r.statusCode === status).length;
      console.log(
        `hot read, 2 replicas, limit ${MAX} (1 spent on POST): A answered ${count(onA, 200)} refused ${count(onA, 429)}; B answered ${count(onB, 200)} refused ${count(onB, 429)}`,
      );
      expect(count(answers, 200)).toBe(MAX - 1);
      expect(count(answers, 429)).toBe(answers.length - (MAX - 1));
      expect(new Set(answers.filter((r) => r.statusCode === 429).map((r) => r.json().code))).toEqual(
        new Set(['ORB_ERR_TOO_MANY_REQUESTS']),
      );
      // Both replicas refused: neither had a budget of its own.
      expect(count(onA, 429)).toBeGreaterThan(0);
      expect(count(onB, 429)).toBeGreaterThan(0);
      // Other routes share the same exhausted budget; another key has its own.
      expect((await http(b, { url: '/v1/identity', headers: auth('alice') })).statusCode).toBe(429);
      expect((await http(a, { url: `/v1/sessions/${sid}`, headers: auth('bob') })).statusCode).toBe(404);
    } finally {
      await deletePrefix(redis, prefix);
    }
  });

  test('reads and other routes spend the same budget, in either order', async () => {
    const prefix = uniquePrefix('orbsr');
    await seedIdentity(redis, prefix);
    try {
      const a = await gateway(prefix, 'orb-sr-a', limits);
      const b = await gateway(prefix, 'orb-sr-b', limits);
      const sid = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json().id as string;
      const statuses: number[] = [];
      for (let i = 0; i < MAX; i++) {
        const host = i % 2 ? a : b;
        statuses.push((await http(host, { url: i % 3 ? `/v1/sessions/${sid}` : '/v1/identity', headers: auth('alice') })).statusCode);
      }
      expect(statuses).toEqual([...Array(MAX - 1).fill(200), 429]);
    } finally {
      await deletePrefix(redis, prefix);
    }
  });

  test('one replica: allowed answers carry the same x-ratelimit-* headers, and the 429 the same code and headers, as any other route', async () => {
    const prefix = uniquePrefix('orbsr');
    await seedIdentity(redis, prefix);
    try {
      const a = await gateway(prefix, 'orb-sr-1', { ORB_RATE_LIMIT_MAX: '4', ORB_RATE_LIMIT_WINDOW_MS: '600000' });
      const sid = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json().id as string;
      const bobSid = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('bob') })).json().id as string;
      const read = await http(a, { url: `/v1/sessions/${sid}`, headers: auth('alice') });
      const other = await http(a, { url: '/v1/identity', headers: auth('alice') });
      expect(read.statusCode).toBe(200);
      expect(other.statusCode).toBe(200);
      for (const h of RATE_HEADERS) expect(read.headers[h]).toBeDefined();
      expect(read.headers['x-ratelimit-limit']).toBe('4');
      expect(read.headers['x-ratelimit-remaining']).toBe('2');
      expect(other.headers['x-ratelimit-remaining']).toBe('1');
      expect(Number(read.headers['x-ratelimit-reset'])).toBeGreaterThan(0);
      expect((await http(a, { url: `/v1/sessions/${sid}`, headers: auth('alice') })).statusCode).toBe(200);
      const refusedRead = await http(a, { url: `/v1/sessions/${sid}`, headers: auth('alice') });
      // bob's budget: spent the same way to the edge, then refused on the other route.
      for (let i = 0; i < 3; i++) expect((await http(a, { url: `/v1/sessions/${bobSid}`, headers: auth('bob') })).statusCode).toBe(200);
      const refusedOther = await http(a, { url: '/v1/identity', headers: auth('bob') });
      for (const r of [refusedRead, refusedOther]) {
        expect(r.statusCode).toBe(429);
        expect(r.json().code).toBe('ORB_ERR_TOO_MANY_REQUESTS');
        expect(r.headers['x-ratelimit-limit']).toBe('4');
        expect(r.headers['x-ratelimit-remaining']).toBe('0');
        expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
        expect(r.headers['retry-after']).toBe(r.headers['x-ratelimit-reset']);
      }
      expect(Object.keys(refusedRead.json()).sort()).toEqual(Object.keys(refusedOther.json()).sort());
      expect(refusedRead.json().message).toMatch(/^Rate limit exceeded, retry in /);
    } finally {
      await deletePrefix(redis, prefix);
    }
  });

  test('a wrong key on the hot read is counted per client IP, as on every route', async () => {
    const prefix = uniquePrefix('orbsr');
    await seedIdentity(redis, prefix);
    try {
      const a = await gateway(prefix, 'orb-sr-ip', { ORB_RATE_LIMIT_MAX: '3', ORB_RATE_LIMIT_WINDOW_MS: '600000' });
      const url = '/v1/sessions/00000000-0000-4000-8000-000000000000';
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++)
        statuses.push((await http(a, { url, headers: { authorization: 'Bearer wrong-wrong-wrong-wrong' } })).statusCode);
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      // The IP budget is shared with other routes; alice's own budget is untouched.
      expect((await http(a, { url: '/v1/identity', headers: { authorization: 'Bearer wrong-wrong-wrong-wrong' } })).statusCode).toBe(429);
      expect((await http(a, { url, headers: auth('alice') })).statusCode).toBe(404);
    } finally {
      await deletePrefix(redis, prefix);
    }
  });

  test('a query the hook cannot prefetch is still validated and answered', async () => {
    const prefix = uniquePrefix('orbsr');
    await seedIdentity(redis, prefix);
    try {
      const a = await gateway(prefix, 'orb-sr-q', {});
      const sid = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json().id as string;
      expect((await http(a, { url: `/v1/sessions/${sid}?limit=0`, headers: auth('alice') })).json().code).toBe('ORB_ERR_BAD_REQUEST');
      expect((await http(a, { url: `/v1/sessions/${sid}?after_seq=-1`, headers: auth('alice') })).json().code).toBe('ORB_ERR_BAD_SEQ');
      expect((await http(a, { url: `/v1/sessions/${sid}?after_seq=5`, headers: auth('alice') })).json().code).toBe('ORB_ERR_BAD_SEQ');
      expect((await http(a, { url: `/v1/sessions/${sid}?limit=3`, headers: auth('alice') })).statusCode).toBe(200);
      expect((await http(a, { url: '/v1/sessions/not-a-session', headers: auth('alice') })).json().code).toBe('ORB_ERR_UNKNOWN_SESSION');
    } finally {
      await deletePrefix(redis, prefix);
    }
  });
});

describe('session TTL on read', () => {
  const TTL_S = 1000; // threshold: 900 s left
  test('a read refreshes the TTL once it has fallen below the threshold, and writes nothing above it', async () => {
    const prefix = uniquePrefix('orbst');
    await seedIdentity(redis, prefix);
    const watcher = await redis.monitor();
    try {
      const a = await gateway(prefix, 'orb-st', { ORB_SESSION_TTL_S: String(TTL_S) });
      const sid = (await http(a, { method: 'POST', url: '/v1/sessions', headers: auth('alice') })).json().id as string;
      const key = `${prefix}session:${sid}`;
      const index = `${prefix}session:index:alice`;
      const writes: string[] = [];
      let sawMarker = false;
      watcher.on('monitor', (_t: string, args: string[]) => {
        if (args[0]?.toLowerCase() === 'set' && args[1] === `${prefix}marker`) sawMarker = true;
        if (/^(expire|pexpire|hset|set|del)$/i.test(args[0]) && args.slice(1).some((x) => x === key || x === index))
          writes.push(args.join(' '));
      });

      // Above the threshold (950 s left): the read answers and nothing is written to the session.
      await redis.pexpire(key, 950_000);
      await redis.pexpire(index, 950_000);
      writes.length = 0;
      for (let i = 0; i < 3; i++) expect((await http(a, { url: `/v1/sessions/${sid}`, headers: auth('alice') })).statusCode).toBe(200);
      // A marker after the reads: once MONITOR has shown it, it has shown every command sent before it.
      await redis.set(`${prefix}marker`, '1');
      await waitFor(() => sawMarker, 'the marker seen by MONITOR');
      expect(writes.filter((w) => !/^pexpire/i.test(w))).toEqual([]);
      expect(await redis.pttl(key)).toBeLessThanOrEqual(950_000);
      expect(await redis.pttl(index)).toBeLessThanOrEqual(950_000);

      // Below it (500 s left): the read puts both back to the full TTL.
      await redis.pexpire(key, 500_000);
      await redis.pexpire(index, 500_000);
      expect((await http(a, { url: `/v1/sessions/${sid}`, headers: auth('alice') })).statusCode).toBe(200);
      await waitFor(async () => (await redis.ttl(key)) > 990 && (await redis.ttl(index)) > 990, 'the TTL refreshed by the read');
      await waitFor(() => writes.some((w) => /^expire/i.test(w) && w.includes(key)), 'the EXPIRE seen by MONITOR');
      await waitFor(() => writes.some((w) => /^expire/i.test(w) && w.includes(index)), 'the index EXPIRE seen by MONITOR');
      // The one refresh: the session and its index entry, nothing else written.
      expect(writes.filter((w) => !/^pexpire/i.test(w)).sort()).toEqual([`expire ${index} ${TTL_S}`, `expire ${key} ${TTL_S}`].sort());
    } finally {
      watcher.disconnect();
      await deletePrefix(redis, prefix);
    }
  });
});
