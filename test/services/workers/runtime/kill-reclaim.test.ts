/**
 * A worker process killed with SIGKILL while holding 100 jobs: another worker reclaims them
 * (XAUTOCLAIM), all 100 complete, and each result is visible exactly once — including the 50
 * the dead worker had already emitted but never acknowledged.
 */
import { join } from 'node:path';
import Redis from 'ioredis';
import { ACP_GROUP, createAcp, createEnvelope, textPart } from '../../../../services/acp';
import { freePort } from '../../../../tools/redis/redis-server';
import { deletePrefix, testRedis, testRedisUrl, uniquePrefix } from '../../../support/vault';
import { exited, spawnTs, waitUntil } from '../../acp/helpers';

const FIXTURE = join(__dirname, 'fixtures', 'echo-role.ts');
const prefix = uniquePrefix('kill');
const SID = 'kill-session';
let redis: Redis;
const children: ReturnType<typeof spawnTs>[] = [];

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(children.map(exited));
  await deletePrefix(redis, prefix);
  await redis.quit();
});

function workerEnv(pod: string, port: number, extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { REDIS_URL: testRedisUrl(), VAULT_KEY_PREFIX: prefix, POD_NAME: pod, PORT: String(port), ACP_BLOCK_MS: '200', ...extra };
}

test('SIGKILL with 100 jobs held: all complete after reclaim, each result visible exactly once', async () => {
  const acp = createAcp(redis, { prefix });
  const stream = acp.keys.jobs('echo');
  for (let i = 0; i < 100; i++) {
    await acp.bus.publish(
      'echo',
      createEnvelope({ id: `job-${i}`, kind: 'echo', session: SID, turn: `t${i}`, timeoutMs: 120_000, parts: [textPart(`n${i}`)] }),
    );
  }

  const a = spawnTs(
    FIXTURE,
    [],
    workerEnv('echo-a', await freePort(), {
      ACP_CONCURRENCY: '100',
      ECHO_HOLD_MS: '600000',
      ECHO_HOLD_BEFORE_ODD: '1',
      ACP_RECLAIM_IDLE_MS: '600000',
    }),
  );
  children.push(a);
  // A holds all 100 (delivered, unacknowledged) and has emitted the 50 even ones.
  await waitUntil(
    'worker A to hold 100 jobs with 50 results out',
    async () => {
      const pending = (await redis.xpending(stream, ACP_GROUP)) as [number, ...unknown[]];
      const events = await acp.events.read(SID, 0);
      return pending[0] === 100 && events.filter((e) => e.type === 'echo').length === 50;
    },
    60_000,
  );
  a.kill('SIGKILL');
  expect(await exited(a)).toBe('SIGKILL');

  const port = await freePort();
  const b = spawnTs(FIXTURE, [], workerEnv('echo-b', port, { ACP_RECLAIM_IDLE_MS: '500', ACP_CONCURRENCY: '32' }));
  children.push(b);
  await waitUntil(
    'worker B to finish the reclaimed jobs',
    async () => {
      const pending = (await redis.xpending(stream, ACP_GROUP)) as [number, ...unknown[]];
      return pending[0] === 0 && (await acp.events.read(SID, 0)).filter((e) => e.type === 'echo').length >= 100;
    },
    60_000,
  );

  const echoes = (await acp.events.read(SID, 0)).filter((e) => e.type === 'echo');
  expect(echoes).toHaveLength(100);
  const texts = echoes.map((e) => (e.data as { text: string }).text).sort();
  expect(new Set(texts).size).toBe(100);
  expect(new Set(echoes.map((e) => e.job)).size).toBe(100);
  for (let i = 0; i < 100; i++) expect(await redis.hget(acp.keys.done(`job-${i}`), 'done')).toBe('ok');

  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(metrics).toMatch(/acp_jobs_total\{role="echo",outcome="ok"\} 100/);
  expect(metrics).toMatch(/acp_redeliveries_total\{role="echo"\} 100/);
  expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

  // SIGTERM: B drains and exits cleanly.
  b.kill('SIGTERM');
  expect(await exited(b)).toBe(0);
  await acp.close();
}, 120_000);
