/**
 * .github/workflows/release.yml (cannot run here: no registry, no GitHub) is checked for the parts
 * the release depends on; scripts/pin-images.ts, which it runs, is tested for real.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { placeholderPins, type Pins } from '../../charts/pins';
import { pinImages } from '../../scripts/pin-images';

const ROOT = path.join(__dirname, '..', '..');
const wf = parse(fs.readFileSync(path.join(ROOT, '.github', 'workflows', 'release.yml'), 'utf8'));
const dockerfile = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
type Step = { name?: string; run?: string; uses?: string; with?: Record<string, unknown> };

describe('release workflow', () => {
  const build = wf.jobs.images;
  const steps: Step[] = build.steps;
  const push = steps.find((s) => s.uses?.startsWith('docker/build-push-action@'))!;

  test('runs on version tags and by hand', () => {
    expect(wf.on.push.tags).toEqual(['v*.*.*']);
    expect(wf.on.workflow_dispatch.inputs.version.required).toBe(true);
  });

  test('builds both Dockerfile targets with buildx and pushes them by digest with SBOM and provenance', () => {
    const targets = build.strategy.matrix.include.map((m: { target: string }) => m.target);
    expect(targets).toEqual(['cpu', 'gpu']);
    for (const t of targets) expect(dockerfile).toMatch(new RegExp(`^FROM \\S+ AS ${t}$`, 'm'));
    expect(steps.some((s) => s.uses?.startsWith('docker/setup-buildx-action@'))).toBe(true);
    expect(push.with).toMatchObject({ target: '${{ matrix.target }}', sbom: true, provenance: 'mode=max' });
    expect(push.with!.outputs).toContain('push-by-digest=true');
    expect(build.permissions).toMatchObject({ packages: 'write', 'id-token': 'write', attestations: 'write' });
  });

  test('writes the digests into charts/images.json, re-renders dist/ and opens a pull request', () => {
    const pin: Step[] = wf.jobs.pin.steps;
    const runs = pin.map((s) => s.run ?? '').join('\n');
    expect(runs).toMatch(/scripts\/pin-images\.ts --version "\$v" "app=\$\(cat digests\/cpu\)" "gpu=\$\(cat digests\/gpu\)" "redis=/);
    expect(runs.indexOf('scripts/pin-images.ts')).toBeLessThan(runs.indexOf('npm run synth'));
    const pr = pin.find((s) => s.uses?.startsWith('peter-evans/create-pull-request@'));
    expect(String(pr?.with?.['add-paths'])).toMatch(/charts\/images\.json\s+dist\/\*\*/);
    expect(wf.jobs.pin.permissions).toEqual({ contents: 'write', 'pull-requests': 'write' });
    for (const m of runs.matchAll(/npm run ([\w:-]+)/g)) expect(Object.keys(pkg.scripts)).toContain(m[1]);
  });
});

describe('pin-images', () => {
  const json = fs.readFileSync(path.join(ROOT, 'charts', 'images.json'), 'utf8');
  const d = (c: string) => `sha256:${c.repeat(64)}`;

  test('writes each digest and the version tag; the pins are no longer placeholders', () => {
    const out = JSON.parse(pinImages(json, '0.2.0', { app: d('a'), gpu: d('b'), redis: d('c') }));
    expect(out.app).toEqual({ repository: 'ghcr.io/ucm4/orb', tag: '0.2.0', digest: d('a') });
    expect(out.gpu).toEqual({ repository: 'ghcr.io/ucm4/orb-gpu', tag: '0.2.0', digest: d('b') });
    expect(out.redis).toEqual({ repository: 'redis', tag: '7.4.1', digest: d('c') });
    const pins = {
      images: out,
      models: { whisperx: { repo: 'r', revision: '1'.repeat(40), files: [] }, xtts: { repo: 'r', revision: '2'.repeat(40), files: [] } },
    } as unknown as Pins;
    expect(placeholderPins(pins)).toEqual([]);
  });

  test.each([
    [{ app: d('0') }, "app: 'sha256:0000"],
    [{ app: 'latest' }, "app: 'latest' is not a pushed image digest"],
    [{ web: d('a') }, "charts/images.json has no image 'web'"],
  ])('refuses %j', (digests, message) => {
    expect(() => pinImages(json, '0.2.0', digests)).toThrow(message);
  });
});
