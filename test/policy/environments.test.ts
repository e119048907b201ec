/**
 * The policy over every rendered environment in dist/: prod with zero findings and no exemption,
 * dev with only I2 A1 A7 N4 exempted. Until dist/ holds manifests, the fixture stack stands in,
 * round-tripped through YAML so the loader is exercised the same way.
 */
import * as path from 'node:path';
import { stringify } from 'yaml';
import { formatFindings, runPolicy } from '../../policy/engine';
import { ENV_PROFILES } from '../../policy/exemptions';
import { listEnvironments, loadEnvironment, parseManifests } from '../../policy/load';
import type { K8sObject } from '../../policy/types';
import { goodStack } from './fixtures';

const DIST = path.join(__dirname, '..', '..', 'dist');
const rendered = listEnvironments(DIST);

function fixtureAsYaml(): K8sObject[] {
  return parseManifests(
    goodStack()
      .map((o) => stringify(o))
      .join('---\n'),
    'fixture',
  );
}

const envs: [string, () => K8sObject[]][] =
  rendered.length > 0
    ? rendered.map((env) => [env, () => loadEnvironment(path.join(DIST, env)).objects])
    : [
        ['prod', fixtureAsYaml],
        ['dev', fixtureAsYaml],
      ];

describe.each(envs)('policy over %s', (env, load) => {
  const objects = load();
  const report = runPolicy(objects, { env });

  it('has objects to check', () => {
    expect(objects.length).toBeGreaterThan(0);
  });

  it('has zero findings', () => {
    // The string diff lists every finding, one per line, when this fails.
    expect(formatFindings(report.findings)).toBe('');
  });

  it('uses only the exemptions the environment allows', () => {
    const allowed = ENV_PROFILES[env]?.exemptible ?? [];
    const used = report.exemptions.map((r) => `${r.rule} ${r.kind}/${r.name}`);
    expect(used.filter((u) => !allowed.includes(u.split(' ')[0] as never))).toEqual([]);
    if (env === 'prod') expect(used).toEqual([]);
  });
});

describe('environments in dist/', () => {
  it('are prod and dev once the manifests are rendered', () => {
    if (rendered.length === 0) return; // until then the fixture stands in (see above)
    expect(rendered).toEqual(expect.arrayContaining(['dev', 'prod']));
  });
});
