/**
 * The app entry (`npm run synth`): the only reader of process.env and the only caller of
 * app.synth(). Renders dist/<env>/ (the stack) and dist/<env>/test/ (test pods) per environment.
 *   SYNTH_ENVS  comma-separated environments (default: all of ENVIRONMENTS; a variant such as
 *               dev-fetch only when named)
 *   SYNTH_OUT   output root (default: dist)
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { App, YamlOutputType } from 'cdk8s';
import { ENVIRONMENTS, VARIANTS } from './environments';
import { buildEnvironment, buildTestPods } from './orb-stack';
import { placeholderPins } from './pins';
import { kustomization, placeholderHeader } from './render';

function main(): void {
  const started = performance.now();
  const names = (process.env.SYNTH_ENVS ?? Object.keys(ENVIRONMENTS).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  const outRoot = process.env.SYNTH_OUT ?? 'dist';
  for (const name of names) {
    const config = ENVIRONMENTS[name] ?? VARIANTS[name];
    if (!config) throw new Error(`SYNTH_ENVS names '${name}'; known environments: ${Object.keys(ENVIRONMENTS).join(', ')}; variants: ${Object.keys(VARIANTS).join(', ')}`);
    const outdir = join(outRoot, name);
    // Stale files of renamed components must not linger in a committed dist/.
    rmSync(outdir, { recursive: true, force: true });
    const app = new App({ outdir, yamlOutputType: YamlOutputType.FILE_PER_CHART });
    buildEnvironment(app, config);
    app.synth();
    const tests = new App({ outdir: join(outdir, 'test'), yamlOutputType: YamlOutputType.FILE_PER_CHART });
    buildTestPods(tests, config);
    tests.synth();
    const placeholders = config.releasePins ? placeholderPins() : [];
    if (placeholders.length) {
      console.warn(`synth ${name}: WARNING placeholder release pins (npm run release-check will refuse this output):\n  - ${placeholders.join('\n  - ')}`);
    }
    for (const dir of [outdir, join(outdir, 'test')]) {
      const files = readdirSync(dir).filter((f) => f.endsWith('.k8s.yaml')).sort();
      if (placeholders.length) for (const f of files) writeFileSync(join(dir, f), placeholderHeader(placeholders) + readFileSync(join(dir, f), 'utf8'));
      writeFileSync(join(dir, 'kustomization.yaml'), kustomization(files, dir === outdir ? name : `${name} test pods`));
    }
    const objects = app.charts.reduce((n, c) => n + c.node.findAll().filter((x) => 'apiVersion' in x).length, 0);
    console.log(`synth ${name}: ${app.charts.length} files, ${objects} objects -> ${outdir}/`);
  }
  console.log(`synth: ${Math.round(performance.now() - started)} ms`);
}

main();
