/**
 * `npm run diff [git-ref]` (default HEAD): renders the manifests at the ref (a temporary
 * `git worktree`) and from the working tree, each into a temporary output, and prints per
 * resource added / removed / changed with a field-level diff, as markdown for a PR comment.
 *   --synth CMD   render command, run in the tree's root (default: npm run --silent synth);
 *                 it gets SYNTH_OUT=<temp dir> and writes <SYNTH_OUT>/<env>/*.yaml
 *   --out FILE    also write the markdown to FILE
 * Always exits 0 when it could produce a diff: a review aid, not a gate.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { diffRenderings, renderMarkdown, type Rendering } from '../policy/diff';
import { listEnvironments, loadEnvironment } from '../policy/load';

const DEFAULT_SYNTH = 'npm run --silent synth';

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function readRendering(dir: string): Rendering {
  return new Map(listEnvironments(dir).map((env) => [env, loadEnvironment(path.join(dir, env)).objects]));
}

export interface Rendered {
  readonly rendering: Rendering;
  readonly note?: string;
}

/**
 * Runs the render command in `treeDir` with SYNTH_OUT pointing into `outDir`. A tree whose entry
 * ignores SYNTH_OUT writes its own dist/, which is read instead; a tree that cannot render at all
 * falls back to the dist/ committed with it.
 */
function render(treeDir: string, outDir: string, synth: string, label: string, committedDist?: string): Rendered {
  const r = spawnSync(synth, { cwd: treeDir, shell: true, encoding: 'utf8', env: { ...process.env, SYNTH_OUT: outDir }, timeout: 300_000 });
  if (r.status === 0) {
    if (listEnvironments(outDir).length > 0) return { rendering: readRendering(outDir) };
    const own = path.join(treeDir, 'dist');
    if (listEnvironments(own).length > 0) return { rendering: readRendering(own) };
    return { rendering: new Map(), note: `${label}: \`${synth}\` rendered no manifests` };
  }
  const output = `${r.stderr ?? ''}\n${r.stdout ?? ''}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const why = (output.find((l) => /error/i.test(l)) ?? output[output.length - 1] ?? `exit ${r.status}`).slice(0, 300);
  if (committedDist && listEnvironments(committedDist).length > 0) {
    return { rendering: readRendering(committedDist), note: `${label}: could not render (${why}); using its committed dist/` };
  }
  return { rendering: new Map(), note: `${label}: could not render (${why}); treated as empty` };
}

export interface DiffOptions {
  readonly ref: string;
  readonly repo: string;
  readonly synth?: string;
}

/** The commit `ref` names in the repository holding `repo`, and that repository's root. */
export function resolveCommit(repo: string, ref: string): { root: string; sha: string } {
  const root = git(repo, 'rev-parse', '--show-toplevel');
  return { root, sha: git(root, 'rev-parse', '--verify', `${ref}^{commit}`) };
}

/**
 * Renders the tree of commit `sha` (checked out into a temporary `git worktree`, with today's
 * node_modules); falls back to the dist/ committed with it when it cannot render.
 */
export function renderCommit(root: string, sha: string, label: string, synth: string = DEFAULT_SYNTH): Rendered {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'manifest-diff-'));
  const tree = path.join(tmp, 'ref');
  try {
    git(root, 'worktree', 'add', '--detach', tree, sha);
    const modules = path.join(root, 'node_modules');
    // The ref renders with today's dependencies: installing old ones is slow and rarely matters here.
    if (fs.existsSync(modules) && !fs.existsSync(path.join(tree, 'node_modules')))
      fs.symlinkSync(modules, path.join(tree, 'node_modules'), 'dir');
    const committed = path.join(tmp, 'ref-committed-dist');
    if (fs.existsSync(path.join(tree, 'dist'))) fs.renameSync(path.join(tree, 'dist'), committed);
    return render(tree, path.join(tmp, 'out-ref'), synth, label, committed);
  } finally {
    spawnSync('git', ['worktree', 'remove', '--force', tree], { cwd: root });
    fs.rmSync(tmp, { recursive: true, force: true });
    spawnSync('git', ['worktree', 'prune'], { cwd: root });
  }
}

/** The markdown diff between `ref` and the working tree of `repo`. */
export function manifestDiff(opts: DiffOptions): string {
  const synth = opts.synth ?? DEFAULT_SYNTH;
  const { root, sha } = resolveCommit(opts.repo, opts.ref);
  const base = renderCommit(root, sha, opts.ref, synth);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'manifest-diff-'));
  try {
    const head = render(root, path.join(tmp, 'out-work'), synth, 'working tree');
    const envs = [...new Set([...base.rendering.keys(), ...head.rendering.keys()])].sort();
    const diffs = diffRenderings(base.rendering, head.rendering);
    const notes = [base.note, head.note].filter((n): n is string => n !== undefined);
    return renderMarkdown(diffs, envs, { baseLabel: `${opts.ref} (${sha.slice(0, 7)})`, notes });
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function main(argv: string[]): number {
  let ref = 'HEAD';
  let synth: string | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--synth') synth = argv[++i];
    else if (a === '--out') out = argv[++i];
    else if (a === '-h' || a === '--help') {
      process.stdout.write('usage: npm run diff -- [git-ref] [--synth CMD] [--out FILE]\n');
      return 0;
    } else if (a.startsWith('-')) {
      process.stderr.write(`unknown option ${a}\n`);
      return 2;
    } else ref = a;
  }
  let md: string;
  try {
    md = manifestDiff({ ref, repo: process.cwd(), synth });
  } catch (e) {
    process.stderr.write(`diff: ${(e as Error).message}\n`);
    return 2;
  }
  process.stdout.write(`${md}\n`);
  if (out) fs.writeFileSync(out, `${md}\n`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
