/** .github/workflows/manifests.yml runs the manifest steps of .ci/run and comments the diff. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

const ROOT = path.join(__dirname, '..', '..');
const wf = parse(fs.readFileSync(path.join(ROOT, '.github', 'workflows', 'manifests.yml'), 'utf8'));
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const steps: { name?: string; run?: string; uses?: string; with?: Record<string, unknown> }[] = wf.jobs.manifests.steps;
const runs = steps.map((s) => s.run ?? '').join('\n');

describe('manifests workflow', () => {
  it('runs on pull requests with permission to comment', () => {
    expect(Object.keys(wf.on)).toEqual(['pull_request']);
    expect(wf.permissions).toEqual({ contents: 'read', 'pull-requests': 'write' });
  });

  it('runs npm ci, typecheck, synth with a dist drift check, policy', () => {
    const order = ['npm ci', 'npm run typecheck', 'npm run synth', 'git status --porcelain -- dist', 'npm run policy'];
    const at = order.map((cmd) => runs.indexOf(cmd));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('renders the diff against the base branch with full history and posts it as a sticky comment', () => {
    expect(steps[0]).toEqual(expect.objectContaining({ uses: expect.stringMatching(/^actions\/checkout@/), with: { 'fetch-depth': 0 } }));
    expect(runs).toContain('npm run --silent diff -- "origin/${{ github.base_ref }}" --out manifest-diff.md');
    const comment = steps.find((s) => s.uses?.startsWith('actions/github-script@'));
    expect(comment?.with?.script).toEqual(expect.stringContaining('updateComment'));
    expect(comment?.with?.script).toEqual(expect.stringContaining("readFileSync('manifest-diff.md'"));
  });

  it('installs promtool so the alert rules are checked', () => {
    expect(runs).toMatch(/apt-get install[^\n]*\bprometheus\b/);
  });

  it('only calls npm scripts that exist', () => {
    for (const m of runs.matchAll(/npm run (?:--silent )?([\w:-]+)/g)) expect(Object.keys(pkg.scripts)).toContain(m[1]);
  });
});
