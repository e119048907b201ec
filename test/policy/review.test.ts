/** `npm run review`: one process for synth + policy + diff, the diff base cached by commit. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { K8sObject } from '../../policy/types';
import { review, synthByCommand } from '../../scripts/review';
import { goodStack } from './fixtures';
import { gitIn, scratchRenderRepo } from './render-stand-in';

// Cold reviews make a git worktree and run a render: seconds each on a busy 2-core machine.
jest.setTimeout(180_000);

describe('review against a real git repository', () => {
  let repo: string;
  let cache: string;
  const git = (...args: string[]) => gitIn(repo)(...args);
  const opts = () => ({ repo, synthHead: synthByCommand('node render.js'), baseSynth: 'node render.js', cacheDir: cache });

  beforeAll(() => {
    repo = scratchRenderRepo('review-repo-', { 'package-lock.json': '{"lockfileVersion":3}' });
    cache = fs.mkdtempSync(path.join(os.tmpdir(), 'review-cache-'));
  });

  afterAll(() => {
    fs.rmSync(repo, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  });

  it('diffs the working tree against HEAD, reports the policy findings, and exits 1 on them', () => {
    const r = review({ ...opts(), ref: 'HEAD' });
    expect(r.cache).toBe('miss');
    expect(r.sha).toBe(git('rev-parse', 'HEAD'));
    expect(r.markdown).toContain('#### ✏️ changed `Deployment/ucm4-prod/orb-core`');
    expect(r.markdown).toContain('| `spec.template.spec.containers[orb-field].image` | `"orb:1.0.0"` | `"orb:1.1.0"` |');
    expect(r.markdown).not.toContain('spec.replicas');
    // The bare Deployment breaks many rules: each environment's findings are named, with the rule.
    expect(r.findings).toBeGreaterThan(0);
    expect(r.exitCode).toBe(1);
    expect(r.markdown).toMatch(/- prod: 1 objects, \d+ pass, \d+ fail, 0 exempt, \*\*\d+ finding\(s\)\*\*/);
    expect(r.markdown).toMatch(/^R1 Deployment\/ucm4-prod\/orb-core: /m);
    expect(r.markdown).toContain('TOTAL dev:');
  });

  it('reads the base from the cache the second time, keyed by the commit, with the same report', () => {
    const first = review({ ...opts(), ref: 'HEAD~1' });
    const again = review({ ...opts(), ref: 'HEAD~1' });
    expect(first.cache).toBe('miss');
    expect(again.cache).toBe('hit');
    expect(again.markdown).toBe(first.markdown);
    expect(again.markdown).toContain('| `spec.replicas` | `2` | `3` |');
    // One file per commit: HEAD (previous test) and HEAD~1.
    expect(fs.readdirSync(cache).sort()).toEqual([`${git('rev-parse', 'HEAD')}.json`, `${git('rev-parse', 'HEAD~1')}.json`].sort());
    // A hit never makes a worktree.
    expect(git('worktree', 'list').split('\n')).toHaveLength(1);
  });

  it('misses for a new commit, and when the cached entry was made with other dependencies', () => {
    expect(review({ ...opts(), ref: 'HEAD' }).cache).toBe('hit');
    fs.writeFileSync(path.join(repo, 'package-lock.json'), '{"lockfileVersion":3,"packages":{}}');
    expect(review({ ...opts(), ref: 'HEAD' }).cache).toBe('miss');
    expect(review({ ...opts(), ref: 'HEAD' }).cache).toBe('hit');
    git('commit', '-q', '-am', 'new image');
    const r = review({ ...opts(), ref: 'HEAD' });
    expect(r.cache).toBe('miss');
    expect(r.markdown).toContain('No resource changes in dev, prod.');
  });

  it('treats an unreadable cache entry as a miss and rewrites it', () => {
    const sha = git('rev-parse', 'HEAD');
    fs.writeFileSync(path.join(cache, `${sha}.json`), '{"format":1,');
    expect(review({ ...opts(), ref: 'HEAD' }).cache).toBe('miss');
    expect(JSON.parse(fs.readFileSync(path.join(cache, `${sha}.json`), 'utf8')).sha).toBe(sha);
  });

  it('runs without a cache when told to', () => {
    const r = review({ ...opts(), ref: 'HEAD', cacheDir: null });
    expect(r.cache).toBe('off');
  });

  it('exits 0 when the policy finds nothing (a clean prod stack)', () => {
    const clean = new Map<string, K8sObject[]>([['prod', goodStack()]]);
    const r = review({ ...opts(), ref: 'HEAD', synthHead: () => clean, envs: ['prod'] });
    expect(r.findings).toBe(0);
    expect(r.exitCode).toBe(0);
    expect(r.markdown).toMatch(/- prod: \d+ objects, \d+ pass, 0 fail, 0 exempt, \*\*0 finding\(s\)\*\*/);
  });

  describe('as a command', () => {
    const tsx = path.join(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
    const cli = (...args: string[]) =>
      spawnSync(tsx, [path.join(__dirname, '..', '..', 'scripts', 'review.ts'), ...args], {
        cwd: repo,
        encoding: 'utf8',
        timeout: 120_000,
      });

    it('prints the report and exits 1 on findings, with the timing and cache state on stderr', () => {
      const r = cli('HEAD~1', '--synth', 'node render.js', '--base-synth', 'node render.js', '--cache', cache);
      expect(r.status).toBe(1);
      expect(r.stdout).toContain('# Review: working tree against `HEAD~1`');
      expect(r.stdout).toContain('## Manifest diff: `HEAD~1');
      expect(r.stderr).toMatch(/review: synth [\d.]+ s, policy [\d.]+ s, base [\d.]+ s \(cache (hit|miss) [0-9a-f]{7}\)/);
    });

    it('exits 2 on an unknown ref, an unknown option, or an environment that was not rendered', () => {
      const bad = cli('no-such-ref', '--synth', 'node render.js', '--cache', cache);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('review:');
      expect(cli('--frobnicate').status).toBe(2);
      const env = cli('HEAD', '--synth', 'node render.js', '--base-synth', 'node render.js', '--cache', cache, '--env', 'staging');
      expect(env.status).toBe(2);
      expect(env.stderr).toContain('no rendered environment staging');
    });
  });
});
