/** `npm run policy`: the table, the totals, and the exit code, over a temporary dist/. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { main } from '../../policy/cli';
import type { K8sObject } from '../../policy/types';
import { find, goodStack } from './fixtures';

const ROOT = path.join(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
let dist: string;

// Each test spawns tsx (or git + a render): minutes, not seconds, on a busy 2-core machine.
jest.setTimeout(180_000);

function writeEnv(env: string, objects: K8sObject[]): void {
  fs.mkdirSync(path.join(dist, env), { recursive: true });
  // Split across two files, multi-document each, like cdk8s writes them.
  const half = Math.floor(objects.length / 2);
  fs.writeFileSync(
    path.join(dist, env, 'a.k8s.yaml'),
    objects
      .slice(0, half)
      .map((o) => stringify(o))
      .join('---\n'),
  );
  fs.writeFileSync(
    path.join(dist, env, 'b.k8s.yaml'),
    objects
      .slice(half)
      .map((o) => stringify(o))
      .join('---\n'),
  );
}

/** The command as npm runs it: a real process through tsx. */
function policyProcess(...args: string[]) {
  return spawnSync(TSX, [path.join(ROOT, 'policy/cli.ts'), '--dist', dist, ...args], { encoding: 'utf8', cwd: ROOT, timeout: 120_000 });
}

/** The same entry in process (no tsx start-up per case), capturing what it prints. */
function policy(...args: string[]) {
  let stdout = '';
  let stderr = '';
  const out = jest.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((stdout += String(c)), true));
  const err = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((stderr += String(c)), true));
  try {
    const status = main(['--dist', dist, ...args]);
    return { status, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

beforeAll(() => {
  dist = fs.mkdtempSync(path.join(os.tmpdir(), 'policy-cli-'));
  writeEnv('prod', goodStack());
  const broken = goodStack();
  find(broken, 'Deployment', 'orb-core').spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem = false;
  writeEnv('broken', broken);
});

afterAll(() => fs.rmSync(dist, { recursive: true, force: true }));

describe('policy CLI', () => {
  it('prints the table with totals and exits 0 on a clean environment', () => {
    const r = policyProcess('prod');
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^RULE\s+OBJECT\s+RESULT\s+DETAIL$/m);
    expect(r.stdout).toMatch(/^S4\s+Deployment\/orb-core\s+PASS/m);
    expect(r.stdout).toMatch(/TOTAL prod: \d+ pass, 0 fail, 0 exempt; 0 finding\(s\)/);
  });

  it('exits 1 and shows the failing cell on a finding', () => {
    const r = policyProcess('broken');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(
      /^S4\s+Deployment\/orb-core\s+FAIL\s+container orb-core: securityContext.readOnlyRootFilesystem is not true$/m,
    );
    expect(r.stdout).toMatch(/TOTAL broken: \d+ pass, 1 fail, 0 exempt; 1 finding\(s\)/);
  });

  it('checks every environment of dist/ when none is named', () => {
    const r = policy('--only-problems');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('# policy: broken');
    expect(r.stdout).toContain('# policy: prod');
    expect(r.stdout).not.toMatch(/^[A-Z]+\d+\s+\S+\s+PASS/m);
  });

  it('exits 2 naming what exists when an environment has no manifests', () => {
    const r = policy('staging');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('have: broken, prod');
  });
});
