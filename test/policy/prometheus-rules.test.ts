/**
 * The PrometheusRule specs rendered in dist/ (the fixture's until dist/ is rendered): structure
 * always, and `promtool check rules` when promtool is installed (CI: Debian `prometheus`).
 */
import * as path from 'node:path';
import { listEnvironments, loadEnvironment } from '../../policy/load';
import { checkRuleGroups, findPromtool, prometheusRules, promtoolCheck } from '../../policy/prometheus';
import type { K8sObject } from '../../policy/types';
import { find, goodStack } from './fixtures';
import { hasTool } from '../support/system-tools';

const DIST = path.join(__dirname, '..', '..', 'dist');
const rendered = listEnvironments(DIST);
const promtool = hasTool('promtool', 'prometheus', 'promtool check rules on the rendered PrometheusRules') ? findPromtool() : undefined;

const sources: [string, K8sObject][] = (
  rendered.length > 0
    ? rendered.flatMap((env) => prometheusRules(loadEnvironment(path.join(DIST, env)).objects).map((o) => [`${env}/${o.metadata.name}`, o]))
    : prometheusRules(goodStack()).map((o) => [`fixture/${o.metadata.name}`, o])
) as [string, K8sObject][];

function goodGroups(): any[] {
  return find(goodStack(), 'PrometheusRule', 'orb-alerts').spec.groups;
}

describe('rendered PrometheusRules', () => {
  it('exist in at least one environment', () => {
    expect(sources.length).toBeGreaterThan(0);
  });

  // An environment without PrometheusRules (scrape annotations only) still gets the test above.
  describe.each(sources.length > 0 ? sources : [['none', undefined as unknown as K8sObject]])('%s', (_name, rule) => {
    it('has well-formed groups (name, expr, for, labels)', () => {
      if (!rule) return;
      expect(checkRuleGroups(rule.spec?.groups)).toEqual([]);
    });

    (promtool ? it : it.skip)('passes promtool check rules', () => {
      if (!rule) return;
      const r = promtoolCheck(rule.spec.groups);
      expect(r.output).toContain('SUCCESS');
      expect(r.ok).toBe(true);
    });
  });
});

describe('rule group checks', () => {
  it('accept the fixture alerts', () => {
    expect(checkRuleGroups(goodGroups())).toEqual([]);
  });

  it('flag a missing expr, a missing for, a bad duration and a missing severity', () => {
    const g = goodGroups();
    g[0].rules.push({ alert: 'DeadLetterGrowing', labels: { severity: 'warning' }, annotations: { summary: 's' } });
    g[0].rules.push({
      alert: 'HeartbeatMissing',
      expr: 'absent(orb_replica_heartbeat)',
      for: '5 minutes',
      labels: { severity: 'warning' },
      annotations: { summary: 's' },
    });
    g[0].rules.push({ alert: 'SpeechLagHigh', expr: 'orb_queue_lag > 50', annotations: { summary: 's' } });
    expect(checkRuleGroups(g)).toEqual([
      'groups[0] (orb.rules).rules[1] (DeadLetterGrowing): no expr',
      "groups[0] (orb.rules).rules[1] (DeadLetterGrowing): alert has no 'for'",
      'groups[0] (orb.rules).rules[2] (HeartbeatMissing): for 5 minutes is not a duration',
      "groups[0] (orb.rules).rules[3] (SpeechLagHigh): alert has no 'for'",
      'groups[0] (orb.rules).rules[3] (SpeechLagHigh): alert has no labels.severity',
    ]);
  });

  it('flag duplicate and empty groups', () => {
    const g = goodGroups();
    expect(checkRuleGroups([...g, { name: 'orb.rules', rules: [] }])).toEqual([
      'groups[1] (orb.rules): duplicate group name',
      'groups[1] (orb.rules): no rules',
    ]);
    expect(checkRuleGroups([])).toEqual(['spec.groups is empty']);
  });

  (promtool ? it : it.skip)('promtool rejects an expression that does not parse', () => {
    const g = goodGroups();
    g[0].rules[0].expr = 'sum(up{job="core4"} < 3';
    const r = promtoolCheck(g);
    expect(r.ok).toBe(false);
    expect(r.output).toMatch(/FAILED|parse error/);
  });
});
