/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * GPU workers fail fast: the prod whisperx container (EXECUTION_PROVIDER=cuda, as rendered) is run
 * with its own command and env; onnxruntime-node here has no CUDA binaries (.npmrc skips them), so
 * the real `cuda` provider request fails. Its startup probe must never pass and the process must
 * exit saying why. The dev container (cpu, as rendered) passes the same probe and reports the
 * provider as a metric label.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dev, prod } from '../../../../charts/environments';
import { find, synthEnvironment, type K8sObject } from '../../../infra/manifests';
import pino from 'pino';
import { loadEnv } from '../../../../services/config/env';
import { WORKER_ENV } from '../../../../services/config/worker';
import { asrRole } from '../../../../services/workers/asr/role';
import { WorkerRuntime } from '../../../../services/workers/runtime';
import { runContainer } from '../../../support/rendered-container';
import { testRedis, uniquePrefix } from '../../../support/vault';
import { writeTinyWhisper } from '../../../../tools/tiny-models/whisper';

jest.setTimeout(120_000);

let models: string;
beforeAll(() => {
  models = writeTinyWhisper(mkdtempSync(join(tmpdir(), 'ep-')));
});
afterAll(() => rmSync(models, { recursive: true, force: true }));

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function worker(env: typeof prod): K8sObject {
  return find(synthEnvironment(env).objects, 'Deployment', 'whisperx').spec.template.spec.containers[0];
}

/** The probe as rendered, aimed at the port the process listens on here. */
function probeUrl(c: K8sObject, port: number): string {
  const p = c.startupProbe.httpGet;
  expect(c.ports).toContainEqual(expect.objectContaining({ name: p.port, containerPort: 8080 }));
  return `http://127.0.0.1:${port}${p.path}`;
}

async function get(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
    return { status: r.status, body: await r.text() };
  } catch {
    return undefined;
  }
}

const kubelet = (mountPath: string, port: number) => ({
  mounts: { [mountPath]: models },
  secrets: { 'vault-acl/whisperx-password': '' },
  podName: 'whisperx-0',
  // Not from the manifest: the test vault's address and a free port instead of 8080.
  extraEnv: { REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', PORT: String(port), LOG_LEVEL: 'error' },
});

test('prod (GPU): the CUDA provider cannot load, the startup probe never passes, the process exits saying why', async () => {
  const c = worker(prod);
  expect(c.env).toContainEqual({ name: 'EXECUTION_PROVIDER', value: 'cuda' });
  expect(c.startupProbe.httpGet.path).toBe('/startupz');
  expect(c.terminationMessagePolicy).toBe('FallbackToLogsOnError');
  const port = await freePort();
  const run = runContainer(c, kubelet('/models', port));
  const seen: number[] = [];
  let exited: number | undefined;
  run.exit.then((code) => {
    exited = code;
  });
  while (exited === undefined) {
    const r = await get(probeUrl(c, port));
    if (r) seen.push(r.status);
    await new Promise((res) => setTimeout(res, 25));
  }
  expect(exited).toBe(1);
  expect(seen).not.toContain(200);
  const out = run.output();
  expect(out).toMatch(
    /worker failed: CUDA execution provider could not be loaded for \S+encoder_model\.onnx: .+ \(EXECUTION_PROVIDER=cuda; no CPU fallback/,
  );
  expect(out).not.toMatch(/falling back to CPU/i);
});

test('while the failed process is still up its startup probe answers 500 with the reason (in process, real cuda request)', async () => {
  const port = await freePort();
  const redis = testRedis();
  const runtime = new WorkerRuntime(asrRole, {
    redis,
    keyPrefix: uniquePrefix('ep'),
    log: pino({ level: 'silent' }),
    host: '127.0.0.1',
    worker: loadEnv(WORKER_ENV, { PORT: String(port), LOG_LEVEL: 'silent' }),
    env: { MODEL_DIR: models, EXECUTION_PROVIDER: 'cuda' },
  });
  try {
    await expect(runtime.start()).rejects.toThrow('CUDA execution provider could not be loaded');
    const r = await get(`http://127.0.0.1:${port}/startupz`);
    expect(r?.status).toBe(500);
    expect(JSON.parse(r!.body)).toEqual({ status: 'failed', error: expect.stringContaining('no CPU fallback') });
    expect((await get(`http://127.0.0.1:${port}/readyz`))?.status).toBe(503);
  } finally {
    await runtime.stop();
    await redis.quit();
  }
});

test('dev (CPU): the same probe passes once loaded, and the provider is a metric label', async () => {
  const c = worker(dev);
  expect(c.env).toContainEqual({ name: 'EXECUTION_PROVIDER', value: 'cpu' });
  const port = await freePort();
  const modelDir = c.env.find((e: { name: string }) => e.name === 'MODEL_DIR').value;
  const run = runContainer(c, kubelet(modelDir, port));
  try {
    let r: { status: number; body: string } | undefined;
    for (let i = 0; i < 400 && r?.status !== 200; i++) {
      r = await get(probeUrl(c, port));
      if (r?.status !== 200) await new Promise((res) => setTimeout(res, 50));
    }
    expect(r?.status).toBe(200);
    expect(JSON.parse(r!.body)).toEqual({ status: 'started', providers: ['cpu'] });
    const metrics = await get(`http://127.0.0.1:${port}/metrics`);
    expect(metrics?.body).toMatch(/^worker_execution_provider\{role="whisperx",provider="cpu"\} 1$/m);
    expect(metrics?.body).not.toMatch(/provider="cuda"/);
  } finally {
    run.child.kill('SIGTERM');
    await run.exit;
  }
});
