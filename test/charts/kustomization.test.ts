/**
 * Each committed dist/<env>/ (and its test/) is a kustomization: `kubectl kustomize` renders it
 * (no cluster needed) to exactly the committed objects, and an overlay's `images:` override reaches
 * every container and init container.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { imagesIn } from '../../scripts/release-check';

const ROOT = join(__dirname, '..', '..');
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
if (!kubectl)
  console.log('SKIPPED: kubectl missing (apt-get install kubectl, or the kubernetes.io binary): kustomize rendering not checked');
const it = kubectl ? test : test.skip;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'kustomize-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function kustomize(dir: string): { kind: string; metadata: { name: string } }[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS())
    .filter(Boolean);
}

const imageName = (ref: string) => ref.replace(/@sha256:[0-9a-f]{64}$/, '').replace(/:[^/:]+$/, '');

describe.each(['dev', 'dev/test', 'prod', 'prod/test'])('dist/%s', (env) => {
  const dir = join(ROOT, 'dist', env);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.k8s.yaml'))
    .sort();
  const committed = files.flatMap((f) =>
    parseAllDocuments(readFileSync(join(dir, f), 'utf8'))
      .map((d) => d.toJS())
      .filter(Boolean),
  );

  test('kustomization.yaml lists every manifest file, in apply order', () => {
    const k = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
    expect(k).toEqual({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: files });
  });

  it('kubectl kustomize renders exactly the committed objects', () => {
    const objs = kustomize(dir);
    const key = (o: { kind: string; metadata: { name: string } }) => `${o.kind}/${o.metadata.name}`;
    expect(objs.map(key).sort()).toEqual(committed.map(key).sort());
  });

  it("an overlay's images: override reaches every container and init container", () => {
    const names = [...new Set(imagesIn(files.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n---\n')).map(imageName))].sort();
    expect(names.length).toBeGreaterThan(0);
    const digest = `sha256:${'7'.repeat(64)}`;
    const root = join(tmp, env.replace('/', '-'));
    cpSync(dir, join(root, 'base'), { recursive: true });
    mkdirSync(join(root, 'overlay'));
    const overrides = names.map((name) => ({ name, newName: `registry.internal.example/mirror/${name.split('/').pop()}`, digest }));
    writeFileSync(join(root, 'overlay', 'kustomization.yaml'), JSON.stringify({ resources: ['../base'], images: overrides }));
    const out = kustomize(join(root, 'overlay'));
    const images = imagesIn(out.map((o) => JSON.stringify(o)).join('\n---\n'));
    // Every workload's containers: as many as committed, each one overridden.
    expect(images.length).toBe(imagesIn(files.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n---\n')).length);
    for (const image of images) expect(image).toMatch(new RegExp(`^registry\\.internal\\.example/mirror/[a-z0-9-]+@${digest}$`));
    if (env === 'prod') expect(images.filter((i) => i.includes('/mirror/orb-gpu@')).length).toBe(4); // whisperx, xtts + their model-fetch
  });
});
