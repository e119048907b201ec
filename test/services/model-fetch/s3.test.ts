/**
 * model-fetch from an S3-compatible bucket: the rendered init container of a prod-like chart whose
 * xtts source is a bucket, run against s3rver (a local S3 stand-in on 127.0.0.1). s3rver checks the
 * access key id but not the V4 signature math (that is checked against AWS's own example in
 * sources.test.ts).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prod } from '../../../charts/environments';
import type { EnvironmentConfig } from '../../../charts/config';
import { signS3 } from '../../../services/model-fetch/sources';
import { find, synthEnvironment, type K8sObject } from '../../infra/manifests';
import { runContainer } from '../../support/rendered-container';
import { writeTinyPiperVoices } from '../../../tools/tiny-models/piper';

jest.setTimeout(120_000);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const S3rver = require('s3rver');

const CREDS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', region: 'us-east-1' };
let server: { run(): Promise<{ port: number }>; close(): Promise<void> };
let endpoint: string;
let work: string;
let src: string;
let names: string[];

function put(url: URL, body: Buffer): Promise<number> {
  const headers = signS3('PUT', url, { 'content-length': String(body.length) }, CREDS);
  return new Promise((resolve, reject) => {
    const r = request(url, { method: 'PUT', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    r.on('error', reject);
    r.end(body);
  });
}

function renderedFetch(files: string[]): K8sObject {
  const cfg: EnvironmentConfig = {
    ...prod,
    speech: {
      ...prod.speech,
      models: {
        ...prod.speech.models,
        xtts: {
          volume: { kind: 'emptyDir', sizeLimit: '1Gi' },
          source: {
            kind: 's3',
            endpoint,
            bucket: 'models',
            prefix: 'voices/v1',
            files: files.map((path) => ({ path })),
            credentialsSecret: { secret: 'model-s3', accessKeyIdKey: 'access-key-id', secretAccessKeyKey: 'secret-access-key' },
          },
        },
      },
      modelEgress: { peer: { cidr: '127.0.0.1/32' }, port: Number(new URL(endpoint).port) },
    },
  };
  return find(synthEnvironment(cfg).objects, 'Deployment', 'xtts').spec.template.spec.initContainers[0];
}

async function run(init: K8sObject, dir: string, secret = 'S3RVER'): Promise<{ code: number; out: string }> {
  const r = runContainer(init, {
    mounts: { '/models': dir },
    secrets: { 'model-s3/access-key-id': 'S3RVER', 'model-s3/secret-access-key': secret },
    podName: 'xtts-0',
  });
  return { code: await r.exit, out: r.output() };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'model-fetch-s3-'));
  src = writeTinyPiperVoices(join(work, 'src'));
  names = readdirSync(src)
    .filter((f) => f.endsWith('.onnx') || f.endsWith('.onnx.json'))
    .sort();
  server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(work, 's3'),
    configureBuckets: [{ name: 'models', configs: [] }],
  });
  endpoint = `http://127.0.0.1:${(await server.run()).port}`;
  for (const n of names) expect(await put(new URL(`${endpoint}/models/voices/v1/${n}`), readFileSync(join(src, n)))).toBe(200);
});
afterAll(async () => {
  await server?.close();
  rmSync(work, { recursive: true, force: true });
});

test('renders the bucket and both keys as secretKeyRefs, never a value', () => {
  const init = renderedFetch(names);
  expect(init.env).toContainEqual({ name: 'MODEL_S3_ENDPOINT', value: endpoint });
  expect(init.env).toContainEqual({ name: 'AWS_ACCESS_KEY_ID', valueFrom: { secretKeyRef: { name: 'model-s3', key: 'access-key-id' } } });
  expect(init.env).toContainEqual({
    name: 'AWS_SECRET_ACCESS_KEY',
    valueFrom: { secretKeyRef: { name: 'model-s3', key: 'secret-access-key' } },
  });
});

test('fetches every file verified against the ETag md5, reuses the cache, fails on a tampered object and on a missing key', async () => {
  const dir = join(work, 'out');
  mkdirSync(dir);
  const first = await run(renderedFetch(names), dir);
  expect(first.out).toContain(`OK ${names.length} fetched`);
  expect(first.code).toBe(0);
  for (const n of names) {
    expect(readFileSync(join(dir, n)).equals(readFileSync(join(src, n)))).toBe(true);
    expect(first.out).toContain(
      `${n}: fetched ${readFileSync(join(src, n)).length} bytes, md5:${createHash('md5')
        .update(readFileSync(join(src, n)))
        .digest('hex')} verified against the S3 ETag (md5)`,
    );
  }
  const again = await run(renderedFetch(names), dir);
  expect(again.code).toBe(0);
  expect(again.out).toContain(`0 fetched (0 bytes), ${names.length} cached`);

  // Bit rot in the bucket: the stored bytes change, the recorded md5 (ETag) does not.
  const stored = readdirSync(join(work, 's3', 'models', 'voices', 'v1')).find(
    (f) => f.startsWith('en_US-tiny-low.onnx') && f.endsWith('._S3rver_object'),
  )!;
  const p = join(work, 's3', 'models', 'voices', 'v1', stored);
  const bytes = readFileSync(p);
  bytes[100] ^= 0xff;
  writeFileSync(p, bytes);
  const bad = await run(renderedFetch(['en_US-tiny-low.onnx']), join(work, 'fresh'));
  expect(bad.code).toBe(1);
  expect(bad.out).toMatch(/FAILED en_US-tiny-low\.onnx: md5 mismatch: expected [0-9a-f]{32} \(S3 ETag \(md5\)\), got [0-9a-f]{32}/);

  const missing = await run(renderedFetch(['nope.onnx']), join(work, 'missing'));
  expect(missing.code).toBe(1);
  expect(missing.out).toContain(`FAILED nope.onnx: not found (404 on HEAD ${endpoint}/models/voices/v1/nope.onnx)`);
});
