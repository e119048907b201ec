/** `npm run synth:helm`: one Helm chart per environment, Chart.yaml and templates checked. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { listEnvironments } from '../../policy/load';
import { CHART_PREFIX, escapeForHelm, packageHelmCharts, unescapeHelm } from '../../scripts/synth-helm';
import { goodStack } from './fixtures';

const REAL_DIST = path.join(__dirname, '..', '..', 'dist');
const SEMVER = /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
let tmp: string;
let dist: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'synth-helm-'));
  if (listEnvironments(REAL_DIST).length > 0) dist = REAL_DIST;
  else {
    // Until dist/ is rendered: a fixture environment with an alert template and a test pod.
    dist = path.join(tmp, 'dist');
    fs.mkdirSync(path.join(dist, 'prod', 'test'), { recursive: true });
    const objs = goodStack();
    (objs.find((o) => o.kind === 'PrometheusRule') as any).spec.groups[0].rules[0].annotations.description = 'core {{ $labels.pod }} down';
    fs.writeFileSync(path.join(dist, 'prod', 'app.k8s.yaml'), objs.map((o) => stringify(o)).join('---\n'));
    fs.writeFileSync(
      path.join(dist, 'prod', 'test', 'test-pods.k8s.yaml'),
      stringify({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'orb-smoke' } }),
    );
  }
  packageHelmCharts({ distDir: dist, outDir: path.join(tmp, 'helm') });
});

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('Helm escaping', () => {
  it.each(['{{ $labels.pod }}', '}}{{', '{{{{ x }}}}', 'no braces', '{ {} }'])('round-trips %j through Go templates', (s) => {
    expect(unescapeHelm(escapeForHelm(s))).toBe(s);
  });

  it('leaves no template action but the escapes', () => {
    const e = escapeForHelm('a {{ b }} c');
    expect(e).toBe('a {{ "{{" }} b {{ "}}" }} c');
  });
});

describe('synth:helm charts', () => {
  const envs = () => listEnvironments(dist);

  it('writes one chart per environment of dist/', () => {
    expect(fs.readdirSync(path.join(tmp, 'helm')).sort()).toEqual(envs());
  });

  it('has a valid Chart.yaml (apiVersion v2, name, SemVer version, appVersion) and values.yaml', () => {
    for (const env of envs()) {
      const chart = parse(fs.readFileSync(path.join(tmp, 'helm', env, 'Chart.yaml'), 'utf8'));
      expect(chart).toEqual(
        expect.objectContaining({
          apiVersion: 'v2',
          name: `${CHART_PREFIX}-${env}`,
          type: 'application',
          version: expect.stringMatching(SEMVER),
        }),
      );
      expect(typeof chart.appVersion).toBe('string');
      expect(chart.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(parse(fs.readFileSync(path.join(tmp, 'helm', env, 'values.yaml'), 'utf8'))).toEqual({});
    }
  });

  it('templates are the rendered manifests, byte for byte once Helm renders them', () => {
    for (const env of envs()) {
      const src = path.join(dist, env);
      // kustomization.yaml is kustomize's input, not a manifest: Helm gets the manifests only.
      const files = fs
        .readdirSync(src)
        .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
        .sort();
      const tpl = path.join(tmp, 'helm', env, 'templates');
      expect(
        fs
          .readdirSync(tpl)
          .filter((f) => f.endsWith('.yaml'))
          .sort(),
      ).toEqual(files);
      for (const f of files) {
        const text = fs.readFileSync(path.join(tpl, f), 'utf8');
        expect(unescapeHelm(text)).toBe(fs.readFileSync(path.join(src, f), 'utf8'));
        // Outside the escapes, no Go template action is left for Helm to evaluate.
        expect(text.replace(/\{\{ "(\{\{|\}\})" \}\}/g, '')).not.toMatch(/\{\{|\}\}/);
      }
    }
  });

  it('turns the test pods into Helm tests', () => {
    for (const env of envs()) {
      const dir = path.join(tmp, 'helm', env, 'templates', 'tests');
      if (!fs.existsSync(path.join(dist, env, 'test'))) continue;
      const docs = fs
        .readdirSync(dir)
        .flatMap((f) => parseAllDocuments(unescapeHelm(fs.readFileSync(path.join(dir, f), 'utf8'))).map((d) => d.toJS()));
      expect(docs.length).toBeGreaterThan(0);
      for (const o of docs) expect(o.metadata.annotations['helm.sh/hook']).toBe('test');
    }
  });
});
