/**
 * The runtime's HTTP face on a real socket: /livez answers while the model loads, /readyz waits
 * for model + bus, /metrics exposes the job metrics; and the worker entry's argument handling.
 */
import Redis from 'ioredis';
import { join } from 'node:path';
import { createAcp, createEnvelope, textPart } from '../../../../services/acp';
import { RoleFactory, WorkerRuntime } from '../../../../services/workers/runtime';
import { freePort } from '../../../../tools/redis/redis-server';
import { deletePrefix, testRedis, testRedisUrl, uniquePrefix } from '../../../support/vault';
import { exited, REPO, spawnTs, waitUntil, workerConfig } from '../../acp/helpers';

const prefix = uniquePrefix('rt');
let redis: Redis;
beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await deletePrefix(redis, prefix);
  await redis.quit();
});

test('/livez during load, /readyz 503 until the model is loaded and the bus consumed, /metrics', async () => {
  let release!: () => void;
  const loaded = new Promise<void>((r) => {
    release = r;
  });
  const role: RoleFactory = () => ({
    name: 'slow',
    queue: 'slow',
    load: () => loaded,
    handle: async () => undefined,
    dispose: async () => undefined,
  });
  const port = await freePort();
  const client = testRedis();
  const rt = new WorkerRuntime(role, {
    redis: client,
    keyPrefix: prefix,
    host: '127.0.0.1',
    worker: workerConfig({ port, podName: 'slow-0' }),
  });
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
    expect(await ready.json()).toEqual({
      status: 'ready',
      reason: null,
      checks: { model_loaded: true, bus_reachable: true, consuming: true, accepting: true },
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    for (const name of [
      'acp_jobs_total',
      'acp_job_duration_seconds',
      'acp_batch_size',
      'acp_redeliveries_total',
      'acp_dlq_size',
      'acp_jobs_in_flight',
    ]) {
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

test('acp_consumer_lag counts jobs not yet acknowledged (what the queue-lag alert and KEDA read), then drops to 0', async () => {
  let release!: () => void;
  const held = new Promise<void>((r) => {
    release = r;
  });
  const role: RoleFactory = () => ({
    name: 'held',
    queue: 'held',
    load: async () => undefined,
    handle: () => held,
    dispose: async () => undefined,
  });
  const client = testRedis();
  const rt = new WorkerRuntime(role, {
    redis: client,
    keyPrefix: prefix,
    http: false,
    worker: workerConfig({ podName: 'held-0', concurrency: 1 }),
  });
  const lag = async () => {
    const m = (await rt.metrics.getSingleMetric('acp_consumer_lag')!.get()).values.find((v) => v.labels.queue === 'held');
    return m?.value;
  };
  try {
    await rt.start();
    const acp = createAcp(client, { prefix });
    for (let i = 0; i < 3; i++) {
      await acp.bus.publish(
        'held',
        createEnvelope({ id: `lag-${i}`, kind: 'held.job', session: 's-lag', turn: `t${i}`, timeoutMs: 60_000, parts: [textPart('x')] }),
      );
    }
    expect(await waitUntil('3 jobs counted', async () => (await lag()) === 3)).toBe(true);
    release();
    expect(await waitUntil('backlog drained', async () => (await lag()) === 0)).toBe(true);
  } finally {
    release();
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

test('a worker started before the vault is live but not ready, becomes ready when the vault appears, and drains on SIGTERM', async () => {
  const { startRedisServer } = await import('../../../../tools/redis/redis-server');
  const vaultPort = await freePort();
  const port = await freePort();
  const child = spawnTs(join(__dirname, 'fixtures', 'echo-role.ts'), [], {
    REDIS_URL: `redis://127.0.0.1:${vaultPort}`,
    VAULT_KEY_PREFIX: prefix,
    POD_NAME: 'early-0',
    PORT: String(port),
    ACP_BLOCK_MS: '200',
  });
  const server = { handle: undefined as Awaited<ReturnType<typeof startRedisServer>> | undefined };
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitUntil('HTTP up', async () => (await fetch(`${base}/livez`)).status === 200);
    const r = await fetch(`${base}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ checks: { model_loaded: true, bus_reachable: false } });
    server.handle = await startRedisServer({ port: vaultPort });
    await waitUntil('ready once the vault is up', async () => (await fetch(`${base}/readyz`)).status === 200, 60_000, 200);
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
    await server.handle?.stop({ removeDir: true });
  }
}, 90_000);

test('SIGTERM while the vault is unreachable still exits cleanly (no QUIT stuck in the offline queue)', async () => {
  const port = await freePort();
  const child = spawnTs(join(__dirname, 'fixtures', 'echo-role.ts'), [], {
    REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    VAULT_KEY_PREFIX: prefix,
    POD_NAME: 'down-0',
    PORT: String(port),
    DRAIN_TIMEOUT_MS: '1000',
  });
  try {
    await waitUntil('HTTP up', async () => (await fetch(`http://127.0.0.1:${port}/livez`)).status === 200);
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
  }
}, 60_000);
