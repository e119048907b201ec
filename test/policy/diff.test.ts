/** `npm run diff`: resource and field-level diffs, on synthetic sets and on a real git repository. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diffRenderings, renderMarkdown } from '../../policy/diff';
import type { K8sObject } from '../../policy/types';
import { manifestDiff } from '../../scripts/diff';
import { find, goodStack } from './fixtures';
import { gitIn, scratchRenderRepo } from './render-stand-in';

// Each test spawns tsx (or git + a render): minutes, not seconds, on a busy 2-core machine.
jest.setTimeout(180_000);

describe('diffRenderings on synthetic sets', () => {
  const before = goodStack();
  const after = goodStack();
  const c = find(after, 'Deployment', 'orb-core').spec.template.spec.containers[0];
  c.image = c.image.replace('1.2.3', '1.2.4');
  c.env.push({ name: 'LOG_LEVEL', value: 'debug' });
  find(after, 'HorizontalPodAutoscaler', 'orb-core').spec.maxReplicas = 12;
  after.splice(after.indexOf(find(after, 'Job', 'seed-vault')), 1);
  after.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'orb-voices', namespace: 'orb' }, data: { default: 'en' } });
  const diffs = diffRenderings(new Map([['prod', before]]), new Map([['prod', after]]));

  it('reports added, removed and changed resources by kind/namespace/name', () => {
    expect(diffs.map((d) => `${d.change} ${d.id}`)).toEqual([
      'added ConfigMap/orb/orb-voices',
      'changed Deployment/orb/orb-core',
      'changed HorizontalPodAutoscaler/orb/orb-core',
      'removed Job/orb/seed-vault',
    ]);
  });

  it('addresses list items by name, down to the changed field', () => {
    const d = diffs.find((x) => x.id === 'Deployment/orb/orb-core')!;
    expect(d.fields).toEqual([
      { path: 'spec.template.spec.containers[orb-core].env[LOG_LEVEL]', before: undefined, after: { name: 'LOG_LEVEL', value: 'debug' } },
      {
        path: 'spec.template.spec.containers[orb-core].image',
        before: expect.stringContaining(':1.2.3@'),
        after: expect.stringContaining(':1.2.4@'),
      },
    ]);
  });

  it('renders markdown with per-environment counts and a field table', () => {
    const md = renderMarkdown(diffs, ['prod'], { baseLabel: 'origin/main' });
    expect(md).toContain('## Manifest diff: `origin/main` → working tree');
    expect(md).toContain('| prod | 1 | 1 | 2 |');
    expect(md).toContain('- `ConfigMap/orb/orb-voices`');
    expect(md).toContain('| `spec.maxReplicas` | `10` | `12` |');
  });

  it('says so when nothing changed', () => {
    const same = diffRenderings(new Map([['dev', goodStack()]]), new Map([['dev', goodStack()]]));
    expect(same).toEqual([]);
    expect(renderMarkdown(same, ['dev'], { baseLabel: 'HEAD' })).toContain('No resource changes in dev.');
  });

  it('shows a map that appears whole (annotations) key by key', () => {
    const a: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' } };
    const b: K8sObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'x', annotations: { 'kube-score/ignore': 'pod-probes', owner: 'orb' } },
    };
    expect(diffRenderings(new Map([['dev', [a]]]), new Map([['dev', [b]]]))[0].fields).toEqual([
      { path: 'metadata.annotations.kube-score/ignore', before: undefined, after: 'pod-probes' },
      { path: 'metadata.annotations.owner', before: undefined, after: 'orb' },
    ]);
  });

  it('escapes pipes so a value cannot break the table', () => {
    const a: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { q: 'a' } };
    const b: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { q: 'a|b' } };
    const md = renderMarkdown(diffRenderings(new Map([['dev', [a]]]), new Map([['dev', [b]]])), ['dev'], { baseLabel: 'HEAD' });
    expect(md).toContain('| `data.q` | `"a"` | `"a\\|b"` |');
  });

  it('adds a line diff for a changed multi-line value (a script in a ConfigMap), only its changed lines in context', () => {
    const script = (wait: string) => ['#!/bin/sh', 'set -eu', 'a=1', 'b=2', wait, 'c=3', 'd=4', 'e=5', 'f=6'].join('\n');
    const a: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { 'run.sh': script('sleep 1') } };
    const b: K8sObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { 'run.sh': script('sleep 2') } };
    const md = renderMarkdown(diffRenderings(new Map([['dev', [a]]]), new Map([['dev', [b]]])), ['dev'], { baseLabel: 'HEAD' });
    const block = md.slice(md.indexOf('```diff'));
    expect(block).toContain('\n-sleep 1\n+sleep 2\n');
    expect(block).toContain(' b=2');
    expect(block).not.toContain('#!/bin/sh'); // unchanged lines far from the change stay out
  });
});

describe('manifestDiff against a real git repository', () => {
  let repo: string;
  const git = (...args: string[]) => gitIn(repo)(...args);

  beforeAll(() => {
    repo = scratchRenderRepo('diff-repo-');
  });

  afterAll(() => fs.rmSync(repo, { recursive: true, force: true }));

  it('diffs HEAD against the uncommitted working tree', () => {
    const md = manifestDiff({ ref: 'HEAD', repo, synth: 'node render.js' });
    expect(md).toContain('#### ✏️ changed `Deployment/ucm4-prod/orb-core`');
    expect(md).toContain('| `spec.template.spec.containers[orb-field].image` | `"orb:1.0.0"` | `"orb:1.1.0"` |');
    expect(md).not.toContain('spec.replicas');
  });

  it('diffs HEAD~1 (a real change) and leaves no worktree or dist/ behind', () => {
    const md = manifestDiff({ ref: 'HEAD~1', repo, synth: 'node render.js' });
    expect(md).toContain('| `spec.replicas` | `2` | `3` |');
    expect(md).toContain('| dev | 0 | 0 | 1 |');
    expect(git('worktree', 'list').trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(path.join(repo, 'dist'))).toBe(false);
  });

  it('runs as a command that prints the markdown and exits 0', () => {
    const tsx = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
    const r = spawnSync(tsx, [path.join(__dirname, '..', '..', 'scripts', 'diff.ts'), 'HEAD~1', '--synth', 'node render.js'], {
      cwd: repo,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('## Manifest diff: `HEAD~1');
  });

  it('notes a ref that cannot render instead of failing', () => {
    const md = manifestDiff({ ref: 'HEAD', repo, synth: 'node missing.js' });
    expect(md).toMatch(/HEAD: could not render \(.*Cannot find module/);
    expect(md).toMatch(/working tree: could not render/);
  });
});
