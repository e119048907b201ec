/**
 * `npm run synth:helm [env…] [--dist DIR] [--out DIR]`: packages each rendered environment of
 * dist/ as its own Helm chart (build/helm/<env>/) for teams deploying with Helm or Argo CD.
 * `cdk8s synth --format helm` makes one chart per cdk8s app run, while this app renders every
 * environment in one run, so the charts are packaged from dist/ (drift-checked in CI, so equal
 * to the code). The smoke-test pods of dist/<env>/test/ become Helm tests (`helm test`).
 */
import { COMPONENTS } from '../services/contract';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { listEnvironments } from '../policy/load';

export const CHART_PREFIX = 'ucm4-orb';

/**
 * Rendered manifests are final, but Helm runs every template through Go templates: alert
 * annotations such as `{{ $labels.pod }}` must come out literally, so each delimiter is emitted
 * as a string constant. One regex pass, so an emitted escape is never escaped again.
 */
export function escapeForHelm(text: string): string {
  return text.replace(/\{\{|\}\}/g, (m) => (m === '{{' ? '{{ "{{" }}' : '{{ "}}" }}'));
}

/** What Helm's template engine makes of an escaped text (for tests and self-checks). */
export function unescapeHelm(text: string): string {
  return text.replace(/\{\{ "(\{\{|\}\})" \}\}/g, '$1');
}

function yamlFilesIn(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  // kustomization.yaml is kustomize's input, not a template.
  return fs
    .readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml')
    .sort();
}

/** appVersion: the image tag orb-core runs (what a release upgrades), else the chart version. */
function appVersionOf(envDir: string, fallback: string): string {
  for (const f of yamlFilesIn(envDir)) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(envDir, f), 'utf8'))) {
      const o = doc.toJS();
      if (o?.kind !== 'Deployment' || o.metadata?.name !== COMPONENTS.orbCore) continue;
      const image: string | undefined = o.spec?.template?.spec?.containers?.[0]?.image;
      const m = image ? /:([^:@/]+)(@|$)/.exec(image) : null;
      if (m) return m[1];
    }
  }
  return fallback;
}

/** The smoke pods, marked as Helm tests so `helm test <release>` runs them after an install. */
function asHelmTests(text: string): string {
  return parseAllDocuments(text)
    .map((d) => d.toJS())
    .filter((o) => o)
    .map((o) => {
      o.metadata = o.metadata ?? {};
      o.metadata.annotations = {
        ...(o.metadata.annotations ?? {}),
        'helm.sh/hook': 'test',
        'helm.sh/hook-delete-policy': 'before-hook-creation',
      };
      return stringify(o);
    })
    .join('---\n');
}

export interface HelmOptions {
  readonly distDir: string;
  readonly outDir: string;
  /** Chart version (SemVer). @default - package.json version */
  readonly version?: string;
  /** @default - every environment of distDir */
  readonly envs?: readonly string[];
}

/** Writes one chart per environment; returns the chart folders. */
export function packageHelmCharts(opts: HelmOptions): string[] {
  const version = opts.version ?? JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
  const envs = opts.envs ?? listEnvironments(opts.distDir);
  const out: string[] = [];
  for (const env of envs) {
    const src = path.join(opts.distDir, env);
    const files = yamlFilesIn(src);
    if (files.length === 0) throw new Error(`no manifests in ${src}`);
    const chart = path.join(opts.outDir, env);
    fs.rmSync(chart, { recursive: true, force: true });
    fs.mkdirSync(path.join(chart, 'templates'), { recursive: true });
    fs.writeFileSync(
      path.join(chart, 'Chart.yaml'),
      stringify({
        apiVersion: 'v2',
        name: `${CHART_PREFIX}-${env}`,
        description: `UCM 4 Core — Stateless ORB, ${env} environment (rendered by cdk8s)`,
        type: 'application',
        version,
        appVersion: appVersionOf(src, version),
      }),
    );
    fs.writeFileSync(
      path.join(chart, 'values.yaml'),
      '# Every manifest is rendered by cdk8s from the typed environment config (charts/environments.ts);\n' +
        '# change that and re-run `npm run synth && npm run synth:helm` rather than templating here.\n{}\n',
    );
    for (const f of files) fs.writeFileSync(path.join(chart, 'templates', f), escapeForHelm(fs.readFileSync(path.join(src, f), 'utf8')));
    const tests = yamlFilesIn(path.join(src, 'test'));
    if (tests.length > 0) fs.mkdirSync(path.join(chart, 'templates', 'tests'), { recursive: true });
    for (const f of tests) {
      fs.writeFileSync(
        path.join(chart, 'templates', 'tests', f),
        escapeForHelm(asHelmTests(fs.readFileSync(path.join(src, 'test', f), 'utf8'))),
      );
    }
    out.push(chart);
  }
  return out;
}

function main(argv: string[]): number {
  let distDir = 'dist';
  let outDir = path.join('build', 'helm');
  const envs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dist') distDir = argv[++i];
    else if (a === '--out') outDir = argv[++i];
    else if (a.startsWith('-')) {
      process.stderr.write(`usage: npm run synth:helm -- [env…] [--dist DIR] [--out DIR]\n`);
      return 2;
    } else envs.push(a);
  }
  try {
    for (const c of packageHelmCharts({ distDir, outDir, envs: envs.length ? envs : undefined }))
      process.stdout.write(`helm chart: ${c}/\n`);
  } catch (e) {
    process.stderr.write(`synth:helm: ${(e as Error).message}\n`);
    return 1;
  }
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
