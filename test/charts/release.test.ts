/** Release pins: placeholders warn at synth and mark the files; release-check refuses them and stale dist/. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, YamlOutputType } from 'cdk8s';
import { prod } from '../../charts/environments';
import { buildEnvironment } from '../../charts/orb-stack';
import { imageRef, PINS, placeholderPins, type Pins } from '../../charts/pins';
import { PLACEHOLDER_MARK } from '../../charts/render';
import { releaseCheck } from '../../scripts/release-check';

jest.setTimeout(120_000);
const ROOT = join(__dirname, '..', '..');
const tsx = (script: string, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });

const RELEASED: Pins = {
  images: {
    app: { ...PINS.images.app, digest: `sha256:${'a1'.repeat(32)}` },
    gpu: { ...PINS.images.gpu, digest: `sha256:${'b2'.repeat(32)}` },
    redis: { ...PINS.images.redis, digest: `sha256:${'c3'.repeat(32)}` },
  },
  models: {
    whisperx: { ...PINS.models.whisperx, revision: '1'.repeat(40) },
    xtts: { ...PINS.models.xtts, revision: '2'.repeat(40) },
  },
};

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'release-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test('the committed pins are placeholders: synth warns and marks every prod file, dev is untouched', () => {
  expect(placeholderPins()).toEqual([
    'charts/images.json app: digest is a placeholder (ghcr.io/ucm4/orb:0.1.0)',
    'charts/images.json gpu: digest is a placeholder (ghcr.io/ucm4/orb-gpu:0.1.0)',
    'charts/images.json redis: digest is a placeholder (redis:7.4.1)',
    'charts/models.lock.json whisperx: revision of onnx-community/whisper-base is a placeholder',
    'charts/models.lock.json xtts: revision of rhasspy/piper-voices is a placeholder',
  ]);
  const out = join(tmp, 'synth');
  const r = tsx('charts/main.ts', { SYNTH_OUT: out, SYNTH_ENVS: 'dev,prod' });
  expect(r.status).toBe(0);
  expect(r.stderr).toContain('synth prod: WARNING placeholder release pins');
  expect(r.stderr).not.toContain('synth dev: WARNING');
  for (const dir of ['prod', 'prod/test']) {
    for (const f of readdirSync(join(out, dir)).filter((n) => n.endsWith('.k8s.yaml'))) {
      expect(
        readFileSync(join(out, dir, f), 'utf8').startsWith(
          `${PLACEHOLDER_MARK}: not deployable as rendered.\n#   - charts/images.json app:`,
        ),
      ).toBe(true);
    }
  }
  for (const f of readdirSync(join(out, 'dev')).filter((n) => n.endsWith('.k8s.yaml')))
    expect(readFileSync(join(out, 'dev', f), 'utf8')).not.toContain(PLACEHOLDER_MARK);
});

test('npm run release-check fails on the placeholders, naming each', () => {
  const r = tsx('scripts/release-check.ts');
  expect(r.status).toBe(1);
  for (const p of placeholderPins()) expect(r.stdout).toContain(`release-check: ${p}`);
  expect(r.stdout).toContain('release-check: dist/prod/22-whisperx.k8s.yaml: rendered with placeholder pins');
  expect(r.stdout).toMatch(/release-check: FAILED, \d+ problem\(s\): not deployable/);
});

test('released pins pass; a dist/ rendered before the pins changed, or with the header, fails naming the file', () => {
  const dist = join(tmp, 'released');
  const images = { app: imageRef(RELEASED.images.app), gpu: imageRef(RELEASED.images.gpu), redis: imageRef(RELEASED.images.redis) };
  const app = new App({ outdir: join(dist, 'prod'), yamlOutputType: YamlOutputType.FILE_PER_CHART });
  buildEnvironment(app, { ...prod, images });
  app.synth();
  expect(releaseCheck({ pins: RELEASED, distDir: dist, envs: ['prod'] })).toEqual([]);

  const file = join(dist, 'prod', '20-core4.k8s.yaml');
  const text = readFileSync(file, 'utf8');
  writeFileSync(file, text.replaceAll(images.app, imageRef(PINS.images.app)));
  expect(releaseCheck({ pins: RELEASED, distDir: dist, envs: ['prod'] })).toEqual([
    `${file}: runs ${imageRef(PINS.images.app)}, which is not pinned in charts/images.json (run npm run synth)`,
  ]);
  writeFileSync(file, `${PLACEHOLDER_MARK}: x\n${text}`);
  expect(releaseCheck({ pins: RELEASED, distDir: dist, envs: ['prod'] })).toEqual([`${file}: rendered with placeholder pins`]);
});
