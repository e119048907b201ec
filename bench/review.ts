/**
 * review: the platform engineer's PR loop. `npm run review <ref>` (one process: synth once,
 * policy on every environment, manifest diff against a base cached by commit) with the cache
 * cold (a fresh cache folder: the base is rendered in a worktree) and warm, against today's three
 * commands run one after the other: `npm run synth`, `npm run policy prod`, `npm run diff <ref>`.
 * Wall-clock of each command as typed (npm included), rounds alternating between the arms.
 * Runs in the repository itself: synth and review rewrite dist/ with the same content.
 *
 * Each command also reports its CPU time (user + sys of it and every child, from /usr/bin/time):
 * on a shared 2-core machine wall time mostly measures the neighbours, while these commands are
 * single-threaded, so CPU time is close to the wall time they take on an idle machine.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleave } from './harness/interleave';
import { timeCommand } from './harness/proc';
import { figure, NotAvailable, type Benchmark } from './harness/result';
import { median } from './harness/stats';

const GOAL_MS = 3000;

interface Timing {
  wall: number;
  cpu: number;
}

/** Wall and CPU milliseconds of one command, through /usr/bin/time (falls back to wall only). */
async function timeWithCpu(args: readonly string[], cwd: string): Promise<Timing> {
  if (!existsSync('/usr/bin/time')) return { wall: await timeCommand('npm', args, cwd), cpu: NaN };
  const dir = mkdtempSync(join(tmpdir(), 'orb-bench-time-'));
  try {
    const file = join(dir, 'time');
    const wall = await timeCommand('/usr/bin/time', ['-f', '%U %S', '-o', file, 'npm', ...args], cwd);
    const [user, sys] = readFileSync(file, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
    return { wall, cpu: (user + sys) * 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const review: Benchmark = {
  name: 'review',
  title: 'PR loop: npm run review <ref> (cache cold and warm) vs npm run synth + policy prod + diff <ref>',
  async run({ quick, root, log }) {
    if (!existsSync(join(root, 'scripts', 'review.ts'))) throw new NotAvailable('scripts/review.ts (npm run review) has not landed');
    let ref = 'HEAD~3';
    try {
      execFileSync('git', ['rev-parse', '--verify', `${ref}^{commit}`], { cwd: root, stdio: 'ignore' });
    } catch {
      ref = 'HEAD';
    }
    const warmCache = mkdtempSync(join(tmpdir(), 'orb-bench-review-warm-'));
    const coldCaches: string[] = [];
    const npm = (...args: string[]) => timeWithCpu(['run', '--silent', ...args], root);
    const sum = (...t: Timing[]) => ({ wall: t.reduce((n, x) => n + x.wall, 0), cpu: t.reduce((n, x) => n + x.cpu, 0) });
    const fmt = (t: Timing) => `${t.wall.toFixed(0)} ms (cpu ${t.cpu.toFixed(0)})`;
    try {
      // Warm-up: tsx's transform cache, the OS file cache, and the warm arm's base rendering.
      await npm('review', '--', ref, '--cache', warmCache);
      const rounds = quick ? 1 : 3;
      const r = await interleave<{ total: Timing; synth?: Timing; policy?: Timing; diff?: Timing }>(rounds, [
        {
          name: 'three',
          round: async () => {
            const synth = await npm('synth');
            const policy = await npm('policy', '--', 'prod');
            const diff = await npm('diff', '--', ref);
            const total = sum(synth, policy, diff);
            log(`three commands: synth ${fmt(synth)} + policy prod ${fmt(policy)} + diff ${fmt(diff)} = ${fmt(total)}`);
            return { total, synth, policy, diff };
          },
        },
        {
          name: 'cold',
          round: async () => {
            const dir = mkdtempSync(join(tmpdir(), 'orb-bench-review-cold-'));
            coldCaches.push(dir);
            const t = await npm('review', '--', ref, '--cache', dir);
            log(`review ${ref}, cache cold: ${fmt(t)}`);
            return { total: t };
          },
        },
        {
          name: 'warm',
          round: async () => {
            const t = await npm('review', '--', ref, '--cache', warmCache);
            log(`review ${ref}, cache warm: ${fmt(t)}`);
            return { total: t };
          },
        },
      ]);
      const med = (k: string, m: keyof Timing = 'wall') => median(r[k].map((x) => x.total[m]));
      const step = (k: 'synth' | 'policy' | 'diff', m: keyof Timing) => median(r.three.map((x) => x[k]![m]));
      const loop = 'npm run review (synth once, policy dev+prod, diff)';
      const today = `npm run synth + policy prod + diff ${ref}`;
      const figures = [];
      for (const [m, what] of [
        ['wall', 'wall time'],
        ['cpu', 'CPU time (user+sys, children included)'],
      ] as const) {
        if (m === 'cpu' && Number.isNaN(med('warm', 'cpu'))) continue;
        figures.push(
          figure({
            metric: `PR loop ${what}, cache warm, median (ref ${ref})`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: `${loop}, warm`,
            subject: med('warm', m),
            baselineLabel: today,
            baseline: med('three', m),
          }),
          figure({
            metric: `PR loop ${what}, cache cold, median (ref ${ref})`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: `${loop}, cold`,
            subject: med('cold', m),
            baselineLabel: today,
            baseline: med('three', m),
          }),
          figure({
            metric: `PR loop ${what}, cache warm, against the goal`,
            unit: 'ms',
            better: 'lower',
            subjectLabel: `${loop}, warm`,
            subject: med('warm', m),
            baselineLabel: 'goal (issue 17)',
            baseline: GOAL_MS,
          }),
        );
      }
      return {
        figures,
        details: {
          ref,
          rounds,
          samplesMs: r,
          steps: Object.fromEntries((['synth', 'policy', 'diff'] as const).map((k) => [k, { wall: step(k, 'wall'), cpu: step(k, 'cpu') }])),
        },
      };
    } finally {
      for (const d of [warmCache, ...coldCaches]) rmSync(d, { recursive: true, force: true });
    }
  },
};
