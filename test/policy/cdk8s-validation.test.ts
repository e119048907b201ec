/**
 * The policy engine as a cdk8s-cli validation plugin: in process against cdk8s-cli's own
 * ValidationContext, and end to end through a real `cdk8s synth` that must fail on a finding.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { PolicyValidation, envOfManifest } from '../../policy/validation';
import type { K8sObject } from '../../policy/types';
import { find, goodStack } from './fixtures';

// cdk8s-cli exports its plugin API as 'cdk8s-cli/plugins'; tsc (node10 resolution) sees only lib/.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ValidationContext } = require('cdk8s-cli/plugins') as typeof import('cdk8s-cli/lib/plugins');

const ROOT = path.join(__dirname, '..', '..');
const PLUGIN = path.join(ROOT, 'policy', 'cdk8s-plugin');
let tmp: string;

function writeDist(dir: string, env: string, objects: K8sObject[]): string {
  fs.mkdirSync(path.join(dir, env), { recursive: true });
  const file = path.join(dir, env, 'app.k8s.yaml');
  fs.writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
  return file;
}

function broken(): K8sObject[] {
  const o = goodStack();
  find(o, 'Deployment', 'orb-core').spec.template.spec.hostNetwork = true;
  return o;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cdk8s-validation-'));
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('envOfManifest', () => {
  it('reads the environment from <output>/<env>/…, test pods included', () => {
    expect(envOfManifest('dist/dev/10-vault.k8s.yaml', 'dist', 'prod')).toBe('dev');
    expect(envOfManifest('dist/prod/test/test-pods.k8s.yaml', 'dist', 'dev')).toBe('prod');
    expect(envOfManifest('dist/app.k8s.yaml', 'dist', 'prod')).toBe('prod');
    expect(envOfManifest('/elsewhere/x.yaml', 'dist', 'prod')).toBe('prod');
  });
});

describe('PolicyValidation in process', () => {
  // cdk8s-cli's ValidationLogger writes to console.log; the report is what these tests read.
  let log: jest.SpyInstance;
  beforeAll(() => {
    log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  });
  afterAll(() => log.mockRestore());

  it('submits success for a clean environment', async () => {
    const file = writeDist(path.join(tmp, 'ok'), 'prod', goodStack());
    const ctx = new ValidationContext([file], 'policy', '0.1.0');
    await new PolicyValidation({ output: path.join(tmp, 'ok') }).validate(ctx);
    expect(ctx.report.success).toBe(true);
    expect(ctx.report.toJson().violations).toEqual([]);
  });

  it('submits failure with one violation per rule, naming object, message and manifest', async () => {
    const file = writeDist(path.join(tmp, 'bad'), 'prod', broken());
    const ctx = new ValidationContext([file], 'policy', '0.1.0');
    await new PolicyValidation({ output: path.join(tmp, 'bad') }).validate(ctx);
    expect(ctx.report.success).toBe(false);
    const v = ctx.report.toJson().violations;
    expect(v.map((x) => x.ruleName)).toEqual([expect.stringMatching(/^S7 \[prod\]/)]);
    expect(v[0].violatingConstructs).toEqual([
      expect.objectContaining({
        resourceName: 'orb-core',
        manifestPath: file,
        locations: ['Deployment/orb-core: pod sets hostNetwork: true'],
      }),
    ]);
  });

  it('applies the environment profile from the path (dev honours its exemptions)', async () => {
    const o = goodStack();
    const gw = find(o, 'Deployment', 'orb-core');
    gw.spec.template.spec.containers[0].imagePullPolicy = 'IfNotPresent';
    gw.metadata.annotations = { 'polaris.fairwinds.com/pullPolicyNotAlways-exempt': 'true' };
    const out = path.join(tmp, 'envs');
    const dev = writeDist(out, 'dev', o);
    const prod = writeDist(out, 'prod', o);
    const devCtx = new ValidationContext([dev], 'policy', '0.1.0');
    await new PolicyValidation({ output: out }).validate(devCtx);
    expect(devCtx.report.success).toBe(true);
    const prodCtx = new ValidationContext([prod], 'policy', '0.1.0');
    await new PolicyValidation({ output: out }).validate(prodCtx);
    expect(prodCtx.report.success).toBe(false);
  });
});

describe('cdk8s.yaml', () => {
  it('wires the plugin into cdk8s synth', () => {
    const cfg = parse(fs.readFileSync(path.join(ROOT, 'cdk8s.yaml'), 'utf8'));
    expect(cfg.validations).toEqual([expect.objectContaining({ package: './policy/cdk8s-plugin', class: 'PolicyValidation' })]);
    // cdk8s-cli refuses version ranges; the local package's version is what it reports.
    const pkg = JSON.parse(fs.readFileSync(path.join(PLUGIN, 'package.json'), 'utf8'));
    expect(cfg.validations[0].version).toBe(pkg.version);
    expect(fs.readFileSync(path.join(PLUGIN, pkg.main), 'utf8')).toContain("require('../validation.ts')");
  });
});

describe('cdk8s synth with the plugin', () => {
  // A stand-in app: copies prepared manifests into the output cdk8s-cli hands it.
  const APP = `
const fs = require('fs'), path = require('path');
const src = process.env.FIXTURE_DIR, out = process.env.CDK8S_OUTDIR;
for (const env of fs.readdirSync(src)) {
  fs.mkdirSync(path.join(out, env), { recursive: true });
  for (const f of fs.readdirSync(path.join(src, env))) fs.copyFileSync(path.join(src, env, f), path.join(out, env, f));
}
`;
  let project: string;

  beforeAll(() => {
    project = path.join(tmp, 'project');
    fs.mkdirSync(project);
    fs.writeFileSync(path.join(project, 'app.js'), APP);
    fs.writeFileSync(
      path.join(project, 'cdk8s.yaml'),
      stringify({
        language: 'typescript',
        app: 'node app.js',
        output: 'dist',
        validations: [{ package: PLUGIN, version: '0.1.0', class: 'PolicyValidation' }],
      }),
    );
    writeDist(path.join(tmp, 'fixture-good'), 'prod', goodStack());
    writeDist(path.join(tmp, 'fixture-bad'), 'prod', broken());
  });

  function synth(fixture: string) {
    return spawnSync(path.join(ROOT, 'node_modules', '.bin', 'cdk8s'), ['synth'], {
      cwd: project,
      encoding: 'utf8',
      env: { ...process.env, FIXTURE_DIR: path.join(tmp, fixture) },
      timeout: 180_000,
    });
  }

  it('fails (exit 2) and prints the finding when a rule is broken', () => {
    const r = synth('fixture-bad');
    expect(r.stdout).toContain('S7 [prod]');
    expect(r.stdout).toContain('Deployment/orb-core: pod sets hostNetwork: true');
    expect(r.status).toBe(2);
  }, 200_000);

  it('succeeds on a clean rendering', () => {
    const r = synth('fixture-good');
    expect(r.stdout).toContain('Validations ended succesfully');
    expect(r.status).toBe(0);
  }, 200_000);
});
