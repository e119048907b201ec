import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testing } from 'cdk8s';
import { stringify } from 'yaml';
import { Observability } from '../../infra';
import { validateObject } from './manifests';
import { hasTool } from '../support/system-tools';

const hasPromtool = hasTool('promtool', 'prometheus', 'alert rules checked and unit-tested by promtool');

describe('Observability', () => {
  const chart = Testing.chart();
  const obs = new Observability(chart, 'o', { namespace: 'ucm4', services: ['orb-core', 'xtts'], quorum: 3, speechLagThreshold: 50 });
  const objs = Testing.synth(chart);
  const groups = objs.find((o) => o.kind === 'PrometheusRule').spec.groups;

  test('typed CRDs: the models validate, and what renders is exactly the model', () => {
    for (const sm of obs.serviceMonitors) expect(() => sm.validate()).not.toThrow();
    expect(() => obs.rule.validate()).not.toThrow();
    for (const o of objs) expect(() => validateObject(o)).not.toThrow();
    expect(objs.find((o) => o.kind === 'PrometheusRule').spec).toEqual(obs.rule.toJSON().spec);
  });

  test('one ServiceMonitor per service, on the http port /metrics, in the stack namespace', () => {
    const sms = objs.filter((o) => o.kind === 'ServiceMonitor');
    expect(sms.map((s) => s.metadata.name)).toEqual(['orb-core', 'xtts']);
    expect(sms[1].spec).toEqual({
      selector: { matchLabels: { app: 'xtts' } },
      namespaceSelector: { matchNames: ['ucm4'] },
      endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }],
    });
  });

  (hasPromtool ? test : test.skip)('promtool: the rules parse, and each alert fires on the situation it names and only then', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rules-'));
    try {
      writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
      const check = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yaml')], { encoding: 'utf8' });
      expect(check.stdout + check.stderr).toContain('SUCCESS');
      const ns = 'namespace="ucm4"';
      const tests = {
        rule_files: ['rules.yaml'],
        evaluation_interval: '1m',
        tests: [
          {
            interval: '1m',
            input_series: [
              { series: `kube_statefulset_status_replicas_ready{${ns},statefulset="core4"}`, values: '5 5 2 2 2 2 2' },
              { series: `acp_dlq_size{${ns},queue="whisperx"}`, values: '0+1x30' },
              { series: `acp_dlq_size{${ns},queue="xtts"}`, values: '3x30' },
              { series: `orb_replicas_alive{${ns},pod="orb-core-a"}`, values: '3 3 2 2 2 2 2' },
              { series: `kube_deployment_status_replicas_available{${ns},deployment="orb-core"}`, values: '3x10' },
              { series: `acp_consumer_lag{${ns},queue="xtts"}`, values: '10 80 80 80 80 80 80 80' },
              { series: `acp_consumer_lag{${ns},queue="whisperx"}`, values: '10x10' },
            ],
            alert_rule_test: [
              { eval_time: '1m', alertname: 'OrbCoreQuorumLost', exp_alerts: [] },
              {
                eval_time: '4m',
                alertname: 'OrbCoreQuorumLost',
                exp_alerts: [{ exp_labels: { severity: 'critical', namespace: 'ucm4', statefulset: 'core4' } }],
              },
              {
                eval_time: '25m',
                alertname: 'OrbDeadLetterGrowing',
                exp_alerts: [{ exp_labels: { severity: 'warning', queue: 'whisperx' } }],
              },
              { eval_time: '5m', alertname: 'OrbReplicaHeartbeatMissing', exp_alerts: [{ exp_labels: { severity: 'warning' } }] },
              { eval_time: '7m', alertname: 'OrbSpeechQueueLagHigh', exp_alerts: [{ exp_labels: { severity: 'warning', queue: 'xtts' } }] },
            ],
          },
        ],
      };
      // promtool compares annotations too; the firing logic is under test, so the unit-test copy drops them.
      const bare = groups.map((g: { rules: object[] }) => ({ ...g, rules: g.rules.map((r) => ({ ...r, annotations: undefined })) }));
      writeFileSync(join(dir, 'bare.yaml'), stringify({ groups: bare }));
      writeFileSync(join(dir, 'tests.yaml'), stringify({ ...tests, rule_files: ['bare.yaml'] }));
      const run = spawnSync('promtool', ['test', 'rules', join(dir, 'tests.yaml')], { encoding: 'utf8', cwd: dir });
      expect([run.status, run.stdout + run.stderr]).toEqual([0, expect.stringContaining('SUCCESS')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
