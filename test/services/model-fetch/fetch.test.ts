/**
 * model-fetch as the prod chart renders it: the init container's own command and env (read from
 * the synthesized whisperx Deployment of a prod-like environment pointed at a local hub), run
 * against a hub stand-in on 127.0.0.1 serving the tiny models, with faults switched on.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prod } from '../../../charts/environments';
import type { EnvironmentConfig, ModelEgress } from '../../../charts/config';
import type { ModelFile } from '../../../infra';
import { find, synthEnvironment, type K8sObject } from '../../infra/manifests';
import { startConnectProxy, startLocalHub, type LocalHub } from '../../support/local-hub';
import { runContainer, type KubeletStandIn } from '../../support/rendered-container';
import { writeTinyWhisper } from '../../../tools/tiny-models/whisper';

jest.setTimeout(120_000);

const REPO = 'ucm4-test/tiny-whisper';
const REV = createHash('sha1').update('tiny whisper v1').digest('hex');
const TOKEN = 'hf_local_test_token';
const SECRETS = { 'model-hub/token': TOKEN, 'vault-acl/whisperx-password': 'unused' };

let hub: LocalHub;
let src: string;
let work: string;
let names: string[];

function sha256(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

/** The rendered model-fetch init container of whisperx in a prod-like chart pointed at the local hub. */
function renderedFetch(o: { lock?: Record<string, string>; egress?: ModelEgress; files?: ModelFile[] } = {}): {
  init: K8sObject;
  deployment: K8sObject;
  objects: K8sObject[];
} {
  const files = o.files ?? names.map((path) => ({ path, ...(o.lock?.[path] ? { sha256: o.lock[path] } : {}) }));
  const cfg: EnvironmentConfig = {
    ...prod,
    speech: {
      ...prod.speech,
      models: {
        ...prod.speech.models,
        whisperx: {
          volume: { kind: 'emptyDir', sizeLimit: '3Gi' },
          source: { kind: 'hub', endpoint: hub.url, repo: REPO, revision: REV, files, tokenSecret: { secret: 'model-hub', key: 'token' } },
        },
      },
      modelEgress: o.egress ?? { peer: { cidr: '127.0.0.1/32' }, port: Number(new URL(hub.url).port) },
    },
  };
  const { objects } = synthEnvironment(cfg);
  const deployment = find(objects, 'Deployment', 'whisperx');
  const init = deployment.spec.template.spec.initContainers.find((c: K8sObject) => c.name === 'model-fetch');
  return { init, deployment, objects };
}

async function run(init: K8sObject, modelDir: string, k: Partial<KubeletStandIn> = {}): Promise<{ code: number; out: string }> {
  const r = runContainer(init, { mounts: { '/models': modelDir }, secrets: SECRETS, podName: 'whisperx-abc12', ...k });
  const code = await r.exit;
  return { code, out: r.output() };
}

function sameFiles(modelDir: string): void {
  for (const n of names) expect(readFileSync(join(modelDir, n)).equals(readFileSync(join(src, n)))).toBe(true);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'model-fetch-'));
  src = writeTinyWhisper(join(work, 'src'));
  names = readdirSync(src).sort();
  hub = await startLocalHub();
  hub.addDir(REPO, REV, src);
  hub.faults.token = TOKEN;
});
afterAll(async () => {
  await hub?.close();
  rmSync(work, { recursive: true, force: true });
});
beforeEach(() => {
  hub.requests.length = 0;
  hub.sent.clear();
  Object.assign(hub.faults, {
    corrupt: new Set(),
    missing: new Set(),
    cutAfter: new Map(),
    stallAfter: new Map(),
    fail500: new Map(),
    token: TOKEN,
  });
});

const fresh = (name: string) => {
  const d = join(work, name);
  mkdirSync(d);
  return d;
};

describe('the rendered model-fetch init container', () => {
  test('renders verification, the token as a secretKeyRef, a read-only worker mount and egress to the source', () => {
    const { init, deployment, objects } = renderedFetch();
    expect(init.command).toEqual(['node', 'build/services/model-fetch/main.js']);
    expect(init.env).toContainEqual({ name: 'MODEL_HUB_TOKEN', valueFrom: { secretKeyRef: { name: 'model-hub', key: 'token' } } });
    expect(init.env).toContainEqual({ name: 'MODEL_REVISION', value: REV });
    expect(init.volumeMounts).toContainEqual({ name: 'models', mountPath: '/models', readOnly: false });
    expect(init.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(init.resources.limits['ephemeral-storage']).toBeDefined();
    const worker = deployment.spec.template.spec.containers[0];
    expect(worker.volumeMounts).toContainEqual({ name: 'models', mountPath: '/models', readOnly: true });
    const np = find(objects, 'NetworkPolicy', 'whisperx');
    expect(np.spec.egress).toContainEqual({
      to: [{ ipBlock: { cidr: '127.0.0.1/32' } }],
      ports: [{ port: Number(new URL(hub.url).port), protocol: 'TCP' }],
    });
  });

  test('good fetch: every file lands byte-identical, verified against the hub hashes; the token never goes to the CDN', async () => {
    const dir = fresh('good');
    const { code, out } = await run(renderedFetch().init, dir);
    expect(out).toContain('model-fetch: OK 7 fetched');
    expect(code).toBe(0);
    sameFiles(dir);
    expect(out).toMatch(/encoder_model\.onnx: fetched \d+ bytes, sha256:[0-9a-f]{64} verified against the hub X-Linked-Etag/);
    expect(out).toMatch(/config\.json: fetched \d+ bytes, git-sha1:[0-9a-f]{40} verified against the hub ETag \(git blob sha1\)/);
    const marker = JSON.parse(readFileSync(join(dir, '.verified.json'), 'utf8'));
    expect(Object.keys(marker.files).sort()).toEqual(names);
    expect(hub.requests.filter((r) => r.host === 'hub').every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(hub.requests.filter((r) => r.host === 'cdn').length).toBeGreaterThan(0);
    expect(hub.requests.filter((r) => r.host === 'cdn').some((r) => r.authorization)).toBe(false);
    expect(existsSync(join(dir, '.partial'))).toBe(false);

    // A second start reuses the verified cache: no request at all, files untouched.
    const mtimes = names.map((n) => statSync(join(dir, n)).mtimeMs);
    hub.requests.length = 0;
    const again = await run(renderedFetch().init, dir);
    expect(again.code).toBe(0);
    expect(again.out).toContain('OK 0 fetched (0 bytes), 7 cached');
    expect(hub.requests).toEqual([]);
    expect(names.map((n) => statSync(join(dir, n)).mtimeMs)).toEqual(mtimes);
  });

  test('with a committed lock the sha256 of the lock is checked, and a wrong lock entry fails naming the file', async () => {
    const lock = Object.fromEntries(names.map((n) => [n, sha256(join(src, n))]));
    const ok = await run(renderedFetch({ lock }).init, fresh('lock'));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/tokenizer\.json: fetched \d+ bytes, sha256:[0-9a-f]{64} verified against the lock file/);
    const wrong = { ...lock, 'tokenizer.json': 'f'.repeat(64) };
    const dir = fresh('lock-wrong');
    const bad = await run(renderedFetch({ lock: wrong }).init, dir);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(
      /FAILED tokenizer\.json: sha256 mismatch: expected f{64} \(lock file\), got [0-9a-f]{64}; the download was deleted/,
    );
    expect(existsSync(join(dir, 'tokenizer.json'))).toBe(false);
    expect(existsSync(join(dir, '.verified.json'))).toBe(false);
  });

  test('a corrupted file fails naming it and the reason; nothing unverified is left in place', async () => {
    hub.faults.corrupt.add('decoder_model_merged.onnx');
    const dir = fresh('corrupt');
    const { code, out } = await run(renderedFetch().init, dir);
    expect(code).toBe(1);
    expect(out).toMatch(
      /model-fetch: FAILED decoder_model_merged\.onnx: sha256 mismatch: expected [0-9a-f]{64} \(hub X-Linked-Etag\), got [0-9a-f]{64}/,
    );
    expect(existsSync(join(dir, 'decoder_model_merged.onnx'))).toBe(false);
    expect(existsSync(join(dir, '.verified.json'))).toBe(false);
  });

  test('a 404 fails naming the file', async () => {
    hub.faults.missing.add('preprocessor_config.json');
    const { code, out } = await run(renderedFetch().init, fresh('404'));
    expect(code).toBe(1);
    expect(out).toContain(
      `FAILED preprocessor_config.json: not found (404 on HEAD ${hub.url}/${REPO}/resolve/${REV}/preprocessor_config.json)`,
    );
  });

  test('a transfer cut mid-file resumes with Range in the same run; 500s are retried', async () => {
    const size = readFileSync(join(src, 'decoder_model_merged.onnx')).length;
    hub.faults.cutAfter.set('decoder_model_merged.onnx', 5000);
    hub.faults.fail500.set('tokenizer.json', 2);
    const dir = fresh('cut');
    const { code, out } = await run(renderedFetch().init, dir);
    expect(code).toBe(0);
    expect(out).toMatch(/decoder_model_merged\.onnx: attempt 1\/4 interrupted .*resuming from byte 5000/);
    expect(out).toMatch(/tokenizer\.json: attempt 2\/4 interrupted \(500 from/);
    const gets = hub.requests.filter((r) => r.method === 'GET' && r.host === 'cdn' && r.range);
    expect(gets.map((r) => r.range)).toContain('bytes=5000-');
    expect(hub.sent.get('decoder_model_merged.onnx')).toBe(size); // 5000 + the rest, nothing twice
    sameFiles(dir);
  });

  test('a transfer killed with its container resumes from the partial file on the next start', async () => {
    hub.faults.stallAfter.set('encoder_model.onnx', 1000);
    const dir = fresh('restart');
    const first = runContainer(renderedFetch().init, { mounts: { '/models': dir }, secrets: SECRETS, podName: 'whisperx-abc12' });
    const partial = join(dir, '.partial', 'whisperx-abc12', 'encoder_model.onnx');
    for (let i = 0; i < 200 && !(existsSync(partial) && statSync(partial).size >= 1000); i++) await new Promise((r) => setTimeout(r, 50));
    expect(statSync(partial).size).toBe(1000);
    first.child.kill('SIGKILL');
    expect(await first.exit).not.toBe(0);
    hub.faults.stallAfter.clear();
    hub.requests.length = 0;
    const { code, out } = await run(renderedFetch().init, dir);
    expect(code).toBe(0);
    expect(out).toMatch(/encoder_model\.onnx: fetched 2930 bytes \(resumed from byte 1000\)/);
    expect(hub.requests).toContainEqual(expect.objectContaining({ method: 'GET', host: 'cdn', range: 'bytes=1000-' }));
    sameFiles(dir);
  });

  test('a missing or rejected token fails naming the variable', async () => {
    const empty = await run(renderedFetch().init, fresh('no-token'), { secrets: { ...SECRETS, 'model-hub/token': '' } });
    expect(empty.code).toBe(1);
    expect(empty.out).toMatch(/FAILED config\.json: access denied \(401 on HEAD .*\): MODEL_HUB_TOKEN is empty/);
    const wrong = await run(renderedFetch().init, fresh('bad-token'), { secrets: { ...SECRETS, 'model-hub/token': 'hf_wrong' } });
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain('the token in MODEL_HUB_TOKEN was rejected');
    expect(wrong.out).not.toContain('hf_wrong');
  });

  test('through an egress proxy from the config every request tunnels with CONNECT', async () => {
    const proxy = await startConnectProxy();
    try {
      const egress: ModelEgress = { proxy: proxy.url, peer: { cidr: '127.0.0.1/32' }, port: Number(new URL(proxy.url).port) };
      const { init, objects } = renderedFetch({ egress });
      expect(init.env).toContainEqual({ name: 'HTTPS_PROXY', value: proxy.url });
      expect(find(objects, 'NetworkPolicy', 'xtts').spec.egress).toContainEqual({
        to: [{ ipBlock: { cidr: '127.0.0.1/32' } }],
        ports: [{ port: egress.port, protocol: 'TCP' }],
      });
      const dir = fresh('proxy');
      const { code, out } = await run(init, dir);
      expect(code).toBe(0);
      expect(out).toContain(`via proxy ${new URL(proxy.url).host}`);
      // One tunnel per request: the HEADs and GETs of 7 files, hub and CDN.
      expect(proxy.tunnels.length).toBe(hub.requests.length);
      expect(new Set(proxy.tunnels).size).toBe(2);
      sameFiles(dir);
    } finally {
      await proxy.close();
    }
  });

  test('a pre-filled volume is verified against the lock, read-only, and a tampered file fails', async () => {
    const lock = Object.fromEntries(names.map((n) => [n, sha256(join(src, n))]));
    const cfg: EnvironmentConfig = {
      ...prod,
      speech: {
        ...prod.speech,
        models: {
          ...prod.speech.models,
          whisperx: {
            volume: { kind: 'pvc', size: '5Gi', storageClassName: 'fast-rwx' },
            source: { kind: 'volume', files: names.map((path) => ({ path, sha256: lock[path] })) },
          },
        },
      },
    };
    const dep = find(synthEnvironment(cfg).objects, 'Deployment', 'whisperx');
    const init = dep.spec.template.spec.initContainers[0];
    expect(init.volumeMounts).toContainEqual({ name: 'models', mountPath: '/models', readOnly: true });
    expect(dep.spec.template.spec.volumes).toContainEqual({
      name: 'models',
      persistentVolumeClaim: { claimName: 'whisperx-models', readOnly: true },
    });
    const dir = fresh('volume');
    for (const n of names) writeFileSync(join(dir, n), readFileSync(join(src, n)));
    const ok = await run(init, dir);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('OK 0 fetched (0 bytes), 0 cached, 7 verified in place');
    expect(hub.requests).toEqual([]);
    writeFileSync(join(dir, 'config.json'), '{"tampered":true}');
    const bad = await run(init, dir);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/FAILED config\.json: sha256 mismatch: expected [0-9a-f]{64} \(lock file\)/);
  });
});
