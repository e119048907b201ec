/**
 * The pod runner's stand-in hub (tools/pods/model-hub.ts, hub-server.ts): the lock of the dev-fetch
 * variant pins the true bytes of the tiny models, the hub process speaks the hub's protocol to the
 * rendered model-fetch init containers (their own command and env), and the runner finds the hub
 * a rendered environment names.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type Server } from 'node:http';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { dev, devFetch, ENVIRONMENTS, prod, STAND_IN_HUB, VARIANTS } from '../../../charts/environments';
import tinyLock from '../../../charts/models.tiny.lock.json';
import {
  hubFile,
  inClusterHubs,
  loadHubRepos,
  startHubServer,
  summarizeAccessLog,
  tinyHubLock,
  tinyHubSpecs,
  treeRevision,
  type HubAccess,
} from '../../../tools/pods/model-hub';
import { find, synthEnvironment, type K8sObject } from '../../infra/manifests';
import { runContainer } from '../../support/rendered-container';
import { writeTinyPiperVoices } from '../../../tools/tiny-models/piper';
import { writeTinyWhisper } from '../../../tools/tiny-models/whisper';

const dir = mkdtempSync(join(tmpdir(), 'model-hub-'));
const tiny = join(dir, 'tiny');
writeTinyWhisper(join(tiny, 'whisper'));
writeTinyPiperVoices(join(tiny, 'voices'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function get(
  url: string,
  method = 'GET',
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((ok, fail) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('charts/models.tiny.lock.json', () => {
  test('pins the revision and sha256 of exactly the bytes the tiny-model builders write', () => {
    const { $comment: _comment, ...pinned } = tinyLock;
    expect(tinyHubLock(tiny)).toEqual(pinned);
  });

  test('a repository revision names its tree: any changed byte or path changes it', () => {
    const files = [
      { path: 'a.onnx', sha256: 'a'.repeat(64) },
      { path: 'b.json', sha256: 'b'.repeat(64) },
    ];
    expect(treeRevision(files)).toMatch(/^[0-9a-f]{40}$/);
    expect(treeRevision([...files].reverse())).toBe(treeRevision(files));
    expect(treeRevision([files[0], { ...files[1], sha256: 'c'.repeat(64) }])).not.toBe(treeRevision(files));
    expect(treeRevision([files[0], { ...files[1], path: 'c.json' }])).not.toBe(treeRevision(files));
  });
});

describe('the dev-fetch variant', () => {
  const { objects } = synthEnvironment(devFetch);

  test('is a variant, not an environment: npm run synth does not render it into dist/', () => {
    expect(Object.keys(ENVIRONMENTS)).not.toContain('dev-fetch');
    expect(VARIANTS['dev-fetch']).toBe(devFetch);
    expect({ ...devFetch, name: 'dev', speech: dev.speech }).toEqual(dev);
  });

  test('renders a model-fetch init container per speech worker that names the in-cluster hub and the lock', () => {
    for (const role of ['whisperx', 'xtts'] as const) {
      const spec = find(objects, 'Deployment', role).spec.template.spec;
      const env = Object.fromEntries(
        spec.initContainers[0].env
          .filter((e: { value?: string }) => e.value !== undefined)
          .map((e: { name: string; value: string }) => [e.name, e.value]),
      );
      expect(env).toMatchObject({
        MODEL_SOURCE: 'hub',
        MODEL_HUB_ENDPOINT: 'http://model-hub.model-hub.svc.cluster.local:8080',
        MODEL_REPO: tinyLock[role].repo,
        MODEL_REVISION: tinyLock[role].revision,
      });
      expect(JSON.parse(env.MODEL_FILES)).toEqual(tinyLock[role].files);
      expect(spec.volumes.find((v: { name: string }) => v.name === 'models').emptyDir).toBeDefined();
    }
  });

  test('egress to the hub pods on 8080 is opened for the speech workers only', () => {
    type Peer = { namespaceSelector?: { matchLabels?: Record<string, string> } };
    const toHub = (np: K8sObject) =>
      ((np.spec.egress ?? []) as Array<{ to?: Peer[] }>).some((r) =>
        (r.to ?? []).some((t) => t.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === STAND_IN_HUB.namespace),
      );
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    expect(
      policies
        .filter(toHub)
        .map((np) => np.metadata.name)
        .sort(),
    ).toEqual(['whisperx', 'xtts']);
  });

  test('the runner finds one in-cluster hub; dev names none; a hub outside the cluster is an error naming the container', () => {
    expect(inClusterHubs(objects)).toEqual([
      {
        service: 'model-hub',
        namespace: 'model-hub',
        port: 8080,
        url: 'http://model-hub.model-hub.svc.cluster.local:8080',
        wants: [
          { repo: tinyLock.whisperx.repo, revision: tinyLock.whisperx.revision, container: 'Deployment/whisperx container model-fetch' },
          { repo: tinyLock.xtts.repo, revision: tinyLock.xtts.revision, container: 'Deployment/xtts container model-fetch' },
        ],
      },
    ]);
    expect(inClusterHubs(synthEnvironment(dev).objects)).toEqual([]);
    expect(() => inClusterHubs(synthEnvironment(prod).objects)).toThrow(
      'Deployment/whisperx container model-fetch: MODEL_HUB_ENDPOINT https://huggingface.co is not a hub Service in the cluster',
    );
  });

  describe('its rendered init containers against the hub process (hub-server.ts)', () => {
    let hub: ChildProcess;
    let url = '';
    let log = '';

    beforeAll(async () => {
      const content = join(dir, 'repos.json');
      writeFileSync(content, JSON.stringify(tinyHubSpecs(tiny)));
      hub = spawn(
        process.execPath,
        ['--import', 'tsx', resolve(__dirname, '../../../tools/pods/hub-server.ts'), 'serve', content, '127.0.0.1', '0'],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      hub.stdout!.on('data', (d) => {
        log += d;
      });
      url = await new Promise<string>((ok) =>
        hub.stdout!.on('data', () => {
          const m = /on (127\.0\.0\.1:\d+)/.exec(log);
          if (m) ok(`http://${m[1]}`);
        }),
      );
    });
    afterAll(() => {
      hub.kill();
    });

    test.each(['whisperx', 'xtts'] as const)(
      '%s: model-fetch fetches every file, verifies the lock sha256, writes the marker',
      async (role) => {
        const container = find(objects, 'Deployment', role).spec.template.spec.initContainers[0];
        const models = mkdtempSync(join(dir, `${role}-`));
        // The one override: the Service name resolves only in a cluster (the runner gives it an address).
        const run = runContainer(container, { mounts: { '/models': models }, podName: `${role}-0`, extraEnv: { MODEL_HUB_ENDPOINT: url } });
        const code = await run.exit;
        const out = run.output();
        expect({ code, out }).toEqual({ code: 0, out: expect.stringContaining('model-fetch: OK') });
        for (const f of tinyLock[role].files as Array<{ path: string; as?: string; sha256: string }>) {
          expect(out).toContain(`model-fetch: ${f.path}: fetched`);
          expect(out).toContain(`sha256:${f.sha256} verified against the lock file`);
          expect(sha256(readFileSync(join(models, f.as ?? f.path)))).toBe(f.sha256);
        }
        expect(JSON.parse(readFileSync(join(models, '.verified.json'), 'utf8')).source).toBe(
          `hub ${url}/${tinyLock[role].repo}@${tinyLock[role].revision}`,
        );
        // .onnx files take the hub's LFS path (302 to the CDN path), the others come straight.
        const lines = summarizeAccessLog(log);
        expect(lines.byStatus['302']).toBeGreaterThan(0);
        expect(lines.byStatus['200']).toBeGreaterThan(0);
      },
    );
  });
});

describe('the hub protocol (in-process server)', () => {
  let server: Server;
  let base = '';
  const access: HubAccess[] = [];
  const [whisper] = loadHubRepos(tinyHubSpecs(tiny));

  beforeAll(async () => {
    server = await startHubServer([whisper], '127.0.0.1', 0, (a) => access.push(a));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  test('an LFS file: HEAD answers 302 with X-Linked-Etag/Size and the commit; the CDN path serves its bytes', async () => {
    const f = whisper.files.get('onnx/encoder_model.onnx')!;
    const head = await get(`${base}/${whisper.repo}/resolve/${whisper.revision}/onnx/encoder_model.onnx`, 'HEAD');
    expect(head.status).toBe(302);
    expect(head.headers).toMatchObject({
      location: `/cdn/${f.sha256}`,
      'x-linked-etag': `"${f.sha256}"`,
      'x-linked-size': String(f.bytes.length),
      'x-repo-commit': whisper.revision,
    });
    const body = await get(`${base}/cdn/${f.sha256}`);
    expect(body.status).toBe(200);
    expect(body.body.equals(f.bytes)).toBe(true);
  });

  test('a small file: 200 with the git blob sha1 as ETag; Range gives 206 and the tail', async () => {
    const f = whisper.files.get('config.json')!;
    const path = `${base}/${whisper.repo}/resolve/${whisper.revision}/config.json`;
    const full = await get(path);
    expect(full.status).toBe(200);
    expect(full.headers.etag).toBe(`"${hubFile('config.json', f.bytes).gitSha1}"`);
    const part = await get(path, 'GET', { range: 'bytes=10-' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-${f.bytes.length - 1}/${f.bytes.length}`);
    expect(part.body.equals(f.bytes.subarray(10))).toBe(true);
    expect((await get(path, 'GET', { range: `bytes=${f.bytes.length}-` })).status).toBe(416);
  });

  test('an unknown repository, revision or file is a 404 with the hub error code; other methods 405', async () => {
    const code = async (p: string) => (await get(`${base}${p}`)).headers['x-error-code'];
    expect(await code(`/nobody/nothing/resolve/${whisper.revision}/config.json`)).toBe('RepoNotFound');
    expect(await code(`/${whisper.repo}/resolve/${'0'.repeat(40)}/config.json`)).toBe('RevisionNotFound');
    expect(await code(`/${whisper.repo}/resolve/${whisper.revision}/missing.json`)).toBe('EntryNotFound');
    expect((await get(`${base}/${whisper.repo}/resolve/${whisper.revision}/config.json`, 'POST')).status).toBe(405);
  });

  test('the access log counts requests and the bytes of content sent', () => {
    const text = access.map((a) => JSON.stringify(a)).join('\n');
    const s = summarizeAccessLog(`hub: serving …\n${text}\n`);
    expect(s.requests).toBe(access.length);
    expect(s.bytes).toBe(access.reduce((n, a) => n + a.bytes, 0));
    expect(s.byStatus['404']).toBe(3);
  });
});
