/**
 * review: the platform engineer's PR loop. `npm run review <ref>` (one process: synth once,
 * policy on every environment, manifest diff against a base cached by commit) with the cache
 * cold (a fresh cache folder: the base is rendered in a worktree) and warm, against today's three
 * commands run one after the other: `npm run synth`, `npm run policy prod`, `npm run diff <ref>`.
 * Wall-clock of each command as typed (npm included), rounds alternating between the arms.
 * Runs in the repository itself: synth and review rewrite dist/ with the same content.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleave } from './harness/interleave';
import { timeCommand } from './harness/proc';
import { figure, NotAvailable, type Benchmark } from './harness/result';
import { median } from './harness/stats';

const GOAL_MS = 3000;

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
    const npm = (...args: string[]) => timeCommand('npm', ['run', '--silent', ...args], root);
    try {
      // Warm-up: tsx's transform cache, the OS file cache, and the warm arm's base rendering.
      await npm('review', '--', ref, '--cache', warmCache);
      const rounds = quick ? 1 : 3;
      const r = await interleave<{ total: number; synth?: number; policy?: number; diff?: number }>(rounds, [
        {
          name: 'three',
          round: async () => {
            const synth = await npm('synth');
            const policy = await npm('policy', '--', 'prod');
            const diff = await npm('diff', '--', ref);
            log(`three commands: synth ${synth.toFixed(0)} + policy prod ${policy.toFixed(0)} + diff ${diff.toFixed(0)} = ${(synth + policy + diff).toFixed(0)} ms`);
            return { total: synth + policy + diff, synth, policy, diff };
          },
        },
        {
          name: 'cold',
          round: async () => {
            const dir = mkdtempSync(join(tmpdir(), 'orb-bench-review-cold-'));
            coldCaches.push(dir);
            const ms = await npm('review', '--', ref, '--cache', dir);
            log(`review ${ref}, cache cold: ${ms.toFixed(0)} ms`);
            return { total: ms };
          },
        },
        {
          name: 'warm',
          round: async () => {
            const ms = await npm('review', '--', ref, '--cache', warmCache);
            log(`review ${ref}, cache warm: ${ms.toFixed(0)} ms`);
            return { total: ms };
          },
        },
      ]);
      const med = (k: string) => median(r[k].map((x) => x.total));
      const three = med('three');
      const loop = 'npm run review (synth once, policy dev+prod, diff)';
      const today = `npm run synth + policy prod + diff ${ref}`;
      return {
        figures: [
          figure({ metric: `PR loop wall time, cache warm, median (ref ${ref})`, unit: 'ms', better: 'lower', subjectLabel: `${loop}, warm`, subject: med('warm'), baselineLabel: today, baseline: three }),
          figure({ metric: `PR loop wall time, cache cold, median (ref ${ref})`, unit: 'ms', better: 'lower', subjectLabel: `${loop}, cold`, subject: med('cold'), baselineLabel: today, baseline: three }),
          figure({ metric: 'PR loop wall time, cache warm, against the goal', unit: 'ms', better: 'lower', subjectLabel: `${loop}, warm`, subject: med('warm'), baselineLabel: 'goal (issue 17)', baseline: GOAL_MS }),
        ],
        details: { ref, rounds, samplesMs: r, steps: { synth: median(r.three.map((x) => x.synth!)), policyProd: median(r.three.map((x) => x.policy!)), diff: median(r.three.map((x) => x.diff!)) } },
      };
    } finally {
      for (const d of [warmCache, ...coldCaches]) rmSync(d, { recursive: true, force: true });
    }
  },
};
