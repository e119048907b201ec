/**
 * The construct library as another team gets it: `npm run build:lib`, `npm pack` of build/lib,
 * and an install of the tarball into a scratch cdk8s app outside the repo (os.tmpdir()) with
 * only what the library declares (cdk8s and constructs as the app's own, cdk8s-plus-28 and the
 * CRD models pulled in as the library's dependencies; from the npm registry, or npm's cache).
 * The app composes two OrbStacks with different prefixes in one chart and synthesizes them;
 * every module it loaded must come from the scratch app, and the policy engine (from this repo)
 * must pass the result.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { prod } from '../../charts/environments';
import { formatFindings, runPolicy } from '../../policy/engine';
import type { K8sObject } from '../../policy/types';

jest.setTimeout(600_000);

const REPO = join(__dirname, '..', '..');
const rootPkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
let scratch: string;
let objects: K8sObject[] = [];
let loaded: string[] = [];

const APP = `
const fs = require('node:fs');
const path = require('node:path');
const { App, Chart } = require('cdk8s');
const { OrbStack } = require('@ucm4/orb-constructs');
const { PORTS } = require('@ucm4/orb-constructs/contract');
const config = JSON.parse(fs.readFileSync(path.join(__dirname, 'config.json'), 'utf8'));
const app = new App({ outdir: path.join(__dirname, 'out') });
const chart = new Chart(app, 'two-stacks', { namespace: config.namespace });
const blue = new OrbStack(chart, 'blue', { config, namePrefix: 'blue-' });
new OrbStack(chart, 'green', { config, namePrefix: 'green-', clusterObjects: false });
app.synth();
if (PORTS.http !== 8080 || blue.names.component.orbCore !== 'blue-orb-core') throw new Error('unexpected contract');
fs.writeFileSync(path.join(__dirname, 'loaded.json'), JSON.stringify(Object.keys(require.cache)));
`;

beforeAll(() => {
  scratch = realpathSync(mkdtempSync(join(tmpdir(), 'orb-lib-app-')));
  execFileSync(process.execPath, [require.resolve('tsx/cli'), join(REPO, 'scripts', 'build-lib.ts')], { cwd: REPO, stdio: 'pipe' });
  const packed = execFileSync('npm', ['pack', join(REPO, 'build', 'lib'), '--pack-destination', scratch, '--silent'], {
    cwd: scratch,
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .pop()!;
  const tarball = join(scratch, packed);
  const app = join(scratch, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-orb-app', version: '0.0.0', private: true }));
  const env = { ...process.env, NODE_PATH: '' };
  execFileSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      tarball,
      `cdk8s@${rootPkg.dependencies.cdk8s}`,
      `constructs@${rootPkg.dependencies.constructs}`,
    ],
    { cwd: app, env, stdio: 'pipe' },
  );
  writeFileSync(join(app, 'config.json'), JSON.stringify({ ...prod, namespace: 'orb-shared' }));
  writeFileSync(join(app, 'app.js'), APP);
  execFileSync(process.execPath, [join(app, 'app.js')], { cwd: app, env, stdio: 'pipe' });
  loaded = JSON.parse(readFileSync(join(app, 'loaded.json'), 'utf8'));
  const out = join(app, 'out');
  for (const f of readdirSync(out)
    .filter((x) => x.endsWith('.k8s.yaml'))
    .sort()) {
    objects.push(
      ...parseAllDocuments(readFileSync(join(out, f), 'utf8'))
        .map((d) => d.toJS() as K8sObject)
        .filter(Boolean),
    );
  }
});

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('the config survives JSON (the scratch app reads it as data)', () => {
  expect(JSON.parse(JSON.stringify(prod))).toEqual(prod);
});

test('every module the scratch app loaded comes from the scratch app, none from the repo', () => {
  expect(loaded.length).toBeGreaterThan(50);
  expect(loaded.filter((p) => !p.startsWith(`${scratch}/`))).toEqual([]);
  const of = (pkg: string) => loaded.some((p) => p.includes(`/node_modules/${pkg}/`));
  for (const pkg of ['cdk8s', 'constructs', 'cdk8s-plus-28', '@ucm4/orb-constructs'])
    expect({ pkg, loaded: of(pkg) }).toEqual({ pkg, loaded: true });
});

test('two stacks with their own prefixes in one chart: no name collides, each has its own vault', () => {
  const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
  expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  const vaults = objects
    .filter((o) => o.kind === 'StatefulSet' && o.metadata.labels?.['app.kubernetes.io/component'] === 'vault')
    .map((o) => o.metadata.name);
  expect(vaults.sort()).toEqual(['blue-vault', 'green-vault']);
  expect(objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)).toEqual(['orb-shared']);
});

test("the policy engine passes the packed library's output (prod profile)", () => {
  const report = runPolicy(objects, { env: 'prod' });
  expect(report.results.length).toBeGreaterThan(100);
  expect(formatFindings(report.findings)).toBe(formatFindings([]));
});
