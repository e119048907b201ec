/**
 * The runtime's HTTP face on a real socket: /livez answers while the model loads, /readyz waits
 * for model + bus, /metrics exposes the job metrics; and the worker entry's argument handling.
 */
import Redis from 'ioredis';
import { join } from 'node:path';
import { RoleFactory, WorkerRuntime } from '../../../../services/workers/runtime';
import { freePort } from '../../../support/redis-server';
import { deletePrefix, testRedis, testRedisUrl, uniquePrefix } from '../../../support/vault';
import { exited, REPO, spawnTs, waitUntil, workerConfig } from '../../acp/helpers';

const prefix = uniquePrefix('rt');
let redis: Redis;
beforeAll(() => { redis = testRedis(); });
afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

test('/livez during load, /readyz 503 until the model is loaded and the bus consumed, /metrics', async () => {
  let release!: () => void;
  const loaded = new Promise<void>((r) => { release = r; });
  const role: RoleFactory = () => ({ name: 'slow', queue: 'slow', load: () => loaded, handle: async () => undefined, dispose: async () => undefined });
  const port = await freePort();
  const client = testRedis();
  const rt = new WorkerRuntime(role, { redis: client, keyPrefix: prefix, host: '127.0.0.1', worker: workerConfig({ port, podName: 'slow-0' }) });
  const starting = rt.start();
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitUntil('HTTP up', async () => (await fetch(`${base}/livez`)).status === 200);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ checks: { model_loaded: false } });
    release();
    await starting;
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { model_loaded: true, bus_reachable: true, accepting: true } });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of ['acp_jobs_total', 'acp_job_duration_seconds', 'acp_batch_size', 'acp_redeliveries_total', 'acp_dlq_size', 'acp_jobs_in_flight']) {
      expect(metrics).toContain(`# TYPE ${name}`);
    }
    expect(metrics).toMatch(/acp_dlq_size\{queue="slow"\} 0/);
  } finally {
    release();
    await starting.catch(() => undefined);
    await rt.stop();
    await client.quit();
  }
});

test('worker entry: an unknown role exits 2 with the usage', async () => {
  const child = spawnTs(join(REPO, 'services', 'workers', 'main.ts'), ['bogus'], { REDIS_URL: testRedisUrl() });
  expect(await exited(child)).toBe(2);
  expect(child.output()).toMatch(/usage: worker <core\|cali.*> \(got "bogus"\)/);
});

test('worker entry: a bad variable exits 2 naming it', async () => {
  const child = spawnTs(join(REPO, 'services', 'workers', 'main.ts'), ['cali'], { REDIS_URL: testRedisUrl(), ACP_MAX_DELIVERIES: 'many' });
  expect(await exited(child)).toBe(2);
  expect(child.output()).toMatch(/ACP_MAX_DELIVERIES="many": must be an integer/);
});
