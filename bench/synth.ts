/**
 * synth: the full app (every environment, `tsx charts/main.ts` as `npm run synth` does) against
 * (a) the same app run the way the cdk8s init template does (`cdk8s synth` + `npx ts-node main.ts`,
 * which type-checks on every run) and (b) a one-Deployment cdk8s app on the same runner as ours,
 * i.e. what our constructs add. Runs in a scratch copy so the committed dist/ is never touched.
 */
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleave } from './harness/interleave';
import { figure, NotAvailable, type Benchmark } from './harness/result';
import { summarize } from './harness/stats';
import { timeCommand, tsxBin } from './harness/proc';

/** Everything the app may import or read: code, config, committed models and seed documents. */
const COPY = ['charts', 'infra', 'services', 'models', 'seed', 'package.json', 'tsconfig.json'];

function scratchCopy(root: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'orb-bench-synth-'));
  for (const p of COPY) if (existsSync(join(root, p))) cpSync(join(root, p), join(dir, p), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  // The init template's cdk8s.yaml: `cdk8s synth` runs the app through ts-node.
  writeFileSync(join(dir, 'cdk8s.yaml'), 'language: typescript\napp: npx ts-node charts/main.ts\nimports:\n  - k8s\n');
  return dir;
}

function countYaml(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile() && e.name.endsWith('.yaml')) n++;
  return n;
}

export const synth: Benchmark = {
  name: 'synth',
  title: 'cdk8s synth of every environment vs the init-template way (ts-node) and a one-Deployment app',
  async run({ quick, root, log }) {
    if (!existsSync(join(root, 'charts', 'main.ts'))) throw new NotAvailable('charts/main.ts (the cdk8s app) has not landed');
    const dir = scratchCopy(root);
    try {
      const tsx = tsxBin(root);
      const cli = join(root, 'node_modules', '.bin', 'cdk8s');
      const out = join(dir, 'dist');
      const oneOut = join(dir, 'one-dist');
      const fixture = join(root, 'bench', 'fixtures', 'one-deployment.ts');
      // Warm the OS file cache once so the first measured arm is not penalised.
      await timeCommand(tsx, ['charts/main.ts'], dir);
      const files = countYaml(out);
      const rounds = quick ? 1 : 3;
      const r = await interleave(rounds, [
        {
          name: 'ours',
          round: async () => {
            rmSync(out, { recursive: true, force: true });
            return timeCommand(tsx, ['charts/main.ts'], dir);
          },
        },
        {
          name: 'template',
          round: async () => {
            rmSync(out, { recursive: true, force: true });
            return timeCommand(cli, ['synth', '--output', out], dir);
          },
        },
        {
          name: 'one',
          round: async () => {
            rmSync(oneOut, { recursive: true, force: true });
            return timeCommand(tsx, [fixture], dir, { CDK8S_OUTDIR: oneOut });
          },
        },
      ]);
      log(
        `ours ${r.ours.map((x) => x.toFixed(0)).join('/')} ms; template ${r.template.map((x) => x.toFixed(0)).join('/')} ms; one ${r.one.map((x) => x.toFixed(0)).join('/')} ms`,
      );
      const ours = summarize(r.ours).p50;
      return {
        figures: [
          figure({
            metric: 'synth wall time, median',
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'tsx charts/main.ts',
            subject: ours,
            baselineLabel: 'cdk8s synth + ts-node (init template)',
            baseline: summarize(r.template).p50,
          }),
          figure({
            metric: 'synth wall time, median',
            unit: 'ms',
            better: 'lower',
            subjectLabel: 'tsx charts/main.ts',
            subject: ours,
            baselineLabel: 'one-Deployment app (tsx)',
            baseline: summarize(r.one).p50,
          }),
        ],
        details: { rounds, samplesMs: r, manifestFiles: files },
      };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
