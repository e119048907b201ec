/**
 * `npm run review [git-ref]` (default HEAD): the platform engineer's PR loop in one process.
 * Synthesizes the working tree once, in-process (charts/main.ts' `synthEnvironments`, writing
 * dist/ as `npm run synth` does), hands those objects to the policy (as `npm run policy` runs it,
 * every environment) and to the manifest diff against `git-ref` (as `npm run diff` renders it).
 * The base rendering is cached by commit under node_modules/.cache/orb-review/<sha>.json, so
 * only the first review against a commit pays for a worktree and a synth.
 *   --env ENV     policy for this environment only (repeatable; default: every rendered one)
 *   --synth CMD   render the working tree with CMD (SYNTH_OUT=<dir>) instead of in-process
 *   --base-synth CMD  render the base with CMD (default: npm run --silent synth)
 *   --cache DIR   cache folder (default: <repo>/node_modules/.cache/orb-review); --no-cache: none
 *   --full        print every policy cell, not only the failing and exempt ones
 *   --out FILE    also write the report (markdown) to FILE
 * Exit: 0 no policy findings, 1 findings (the report says which), 2 bad usage or an unknown ref.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { diffRenderings, renderMarkdown, type Rendering } from '../policy/diff';
import { formatFindings, runPolicy } from '../policy/engine';
import { listEnvironments, loadEnvironment } from '../policy/load';
import { renderTable, totals } from '../policy/table';
import type { K8sObject } from '../policy/types';
import { renderCommit, resolveCommit, type Rendered } from './diff';

/** The caller's mistake (exit 2), not a finding. */
class UsageError extends Error {}

/** Bumped when the cached rendering's shape changes, so old entries read as misses. */
const CACHE_FORMAT = 1;

export interface ReviewOptions {
  /** A path inside the repository under review. */
  readonly repo: string;
  /** @default 'HEAD' */
  readonly ref?: string;
  /** Renders the working tree; gets the repository root. @default - charts/main.ts in-process into <root>/dist */
  readonly synthHead?: (root: string) => Rendering;
  /** Render command for the base tree. @default - `npm run --silent synth`, as `npm run diff` */
  readonly baseSynth?: string;
  /** Cache folder; null: no cache. @default - <root>/node_modules/.cache/orb-review */
  readonly cacheDir?: string | null;
  /** Environments the policy runs on. @default - every rendered environment */
  readonly envs?: readonly string[];
  /** Every policy cell in the report, not only failing and exempt ones. @default false */
  readonly full?: boolean;
}

export interface ReviewResult {
  /** The report: policy tables and totals, then the manifest diff. */
  readonly markdown: string;
  readonly sha: string;
  readonly findings: number;
  /** `hit`: base read from the cache; `miss`: rendered and stored; `off`: no cache. */
  readonly cache: 'hit' | 'miss' | 'off';
  /** Seconds per step. */
  readonly seconds: { synth: number; policy: number; base: number; diff: number; total: number };
  /** 0: no findings; 1: findings. */
  readonly exitCode: 0 | 1;
}

interface CacheEntry {
  readonly format: number;
  readonly sha: string;
  /** The base renders with today's node_modules: a new lockfile may render it differently. */
  readonly deps: string;
  readonly rendering: Record<string, readonly K8sObject[]>;
}

function depsKey(root: string): string {
  const lock = path.join(root, 'package-lock.json');
  return fs.existsSync(lock) ? createHash('sha256').update(fs.readFileSync(lock)).digest('hex').slice(0, 16) : 'none';
}

/** The base rendering of commit `sha`: from the cache when it holds one for today's dependencies, else rendered (and stored). */
export function baseRendering(
  root: string,
  sha: string,
  label: string,
  cacheDir: string | null,
  synth?: string,
): Rendered & { cache: ReviewResult['cache'] } {
  const deps = depsKey(root);
  const file = cacheDir ? path.join(cacheDir, `${sha}.json`) : null;
  if (file && fs.existsSync(file)) {
    try {
      const e = JSON.parse(fs.readFileSync(file, 'utf8')) as CacheEntry;
      if (e.format === CACHE_FORMAT && e.sha === sha && e.deps === deps)
        return { rendering: new Map(Object.entries(e.rendering)), cache: 'hit' };
    } catch {
      // A torn or foreign file is a miss; it is rewritten below.
    }
  }
  const r = renderCommit(root, sha, label, synth);
  // A base that could not render (a note says why) is not cached: the next review tries again.
  if (file && r.note === undefined) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const entry: CacheEntry = { format: CACHE_FORMAT, sha, deps, rendering: Object.fromEntries(r.rendering) };
    // Write then rename: a concurrent review never reads half a file.
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry));
    fs.renameSync(tmp, file);
  }
  return { ...r, cache: file ? 'miss' : 'off' };
}

/** The working tree through charts/main.ts in this process (loaded lazily: cdk8s is most of the start-up). */
function synthInProcess(root: string): Rendering {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { synthEnvironments } = require('../charts/main') as typeof import('../charts/main');
  const { ENVIRONMENTS } = require('../charts/environments') as typeof import('../charts/environments');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const log = (msg: string) => process.stderr.write(`${msg}\n`);
  const envs = synthEnvironments(Object.keys(ENVIRONMENTS), path.join(root, 'dist'), log);
  return new Map(envs.map((e) => [e.name, e.objects as K8sObject[]]));
}

/** The working tree through a render command, as `npm run diff` does it. */
export function synthByCommand(cmd: string): (root: string) => Rendering {
  return (root) => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'orb-review-'));
    try {
      const r = spawnSync(cmd, { cwd: root, shell: true, encoding: 'utf8', env: { ...process.env, SYNTH_OUT: out }, timeout: 300_000 });
      if (r.status !== 0)
        throw new Error(`\`${cmd}\` failed (exit ${r.status}): ${(r.stderr || r.stdout || '').trim().split('\n').slice(-3).join(' / ')}`);
      return new Map(listEnvironments(out).map((env) => [env, loadEnvironment(path.join(out, env)).objects]));
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  };
}

export function review(opts: ReviewOptions): ReviewResult {
  const t0 = performance.now();
  const ref = opts.ref ?? 'HEAD';
  const { root, sha } = resolveCommit(opts.repo, ref);
  const cacheDir = opts.cacheDir === undefined ? path.join(root, 'node_modules', '.cache', 'orb-review') : opts.cacheDir;
  const head = (opts.synthHead ?? synthInProcess)(root);
  const t1 = performance.now();

  const envs = opts.envs?.length ? [...opts.envs] : [...head.keys()].sort();
  const missing = envs.filter((e) => !head.has(e));
  if (missing.length)
    throw new UsageError(`no rendered environment ${missing.join(', ')} (have: ${[...head.keys()].join(', ') || 'none'})`);
  const policy: string[] = [];
  const summary: string[] = [];
  let findings = 0;
  for (const env of envs) {
    const objects = head.get(env)!;
    const report = runPolicy(objects, { env });
    const t = totals(report);
    findings += t.findings;
    policy.push(renderTable(report, { onlyProblems: !opts.full }));
    if (t.findings) policy.push(`\nFindings in ${env}:\n${formatFindings(report.findings)}`);
    summary.push(`- ${env}: ${objects.length} objects, ${t.pass} pass, ${t.fail} fail, ${t.exempt} exempt, **${t.findings} finding(s)**`);
  }
  const t2 = performance.now();

  const base = baseRendering(root, sha, ref, cacheDir, opts.baseSynth);
  const t3 = performance.now();
  const allEnvs = [...new Set([...base.rendering.keys(), ...head.keys()])].sort();
  const diff = renderMarkdown(diffRenderings(base.rendering, head), allEnvs, {
    baseLabel: `${ref} (${sha.slice(0, 7)})`,
    notes: base.note === undefined ? [] : [base.note],
  });
  const t4 = performance.now();

  const markdown = [
    `# Review: working tree against \`${ref}\` (${sha.slice(0, 7)})`,
    '',
    '## Policy',
    '',
    ...summary,
    '',
    '```',
    policy.join('\n\n'),
    '```',
    '',
    diff,
  ].join('\n');
  const s = (a: number, b: number) => (b - a) / 1000;
  return {
    markdown,
    sha,
    findings,
    cache: base.cache,
    seconds: { synth: s(t0, t1), policy: s(t1, t2), base: s(t2, t3), diff: s(t3, t4), total: s(t0, t4) },
    exitCode: findings > 0 ? 1 : 0,
  };
}

function main(argv: string[]): number {
  let ref = 'HEAD';
  let synth: string | undefined;
  let baseSynth: string | undefined;
  let cacheDir: string | null | undefined;
  let out: string | undefined;
  let full = false;
  const envs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    try {
      if (a === '--env') envs.push(value());
      else if (a === '--synth') synth = value();
      else if (a === '--base-synth') baseSynth = value();
      else if (a === '--cache') cacheDir = path.resolve(value());
      else if (a === '--no-cache') cacheDir = null;
      else if (a === '--out') out = value();
      else if (a === '--full') full = true;
      else if (a === '-h' || a === '--help') {
        process.stdout.write(
          'usage: npm run review -- [git-ref] [--env ENV]… [--synth CMD] [--base-synth CMD] [--cache DIR | --no-cache] [--full] [--out FILE]\n',
        );
        return 0;
      } else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
      else ref = a;
    } catch (e) {
      process.stderr.write(`review: ${(e as Error).message}\n`);
      return 2;
    }
  }
  let r: ReviewResult;
  try {
    r = review({ repo: process.cwd(), ref, synthHead: synth ? synthByCommand(synth) : undefined, baseSynth, cacheDir, envs, full });
  } catch (e) {
    // An unknown ref or a bad --env is the caller's mistake (2); anything else is a failure too, not a finding.
    process.stderr.write(`review: ${(e as Error).message.trim().split('\n')[0]}\n`);
    return 2;
  }
  process.stdout.write(`${r.markdown}\n`);
  if (out) fs.writeFileSync(out, `${r.markdown}\n`);
  const f = (x: number) => x.toFixed(2);
  process.stderr.write(
    `review: synth ${f(r.seconds.synth)} s, policy ${f(r.seconds.policy)} s, base ${f(r.seconds.base)} s (cache ${r.cache} ${r.sha.slice(0, 7)}), diff ${f(r.seconds.diff)} s; ${f(r.seconds.total)} s in all; ${r.findings} policy finding(s)\n`,
  );
  return r.exitCode;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
