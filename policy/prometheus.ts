/** Checks the alert rules rendered into PrometheusRule objects: structure always, `promtool` when present. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { K8sObject } from './types';

/** Prometheus duration: one or more number+unit pairs, e.g. `5m`, `1h30m`. */
const DURATION = /^((\d+)(ms|s|m|h|d|w|y))+$/;
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Problems with `spec.groups` of one PrometheusRule; empty when sound. */
export function checkRuleGroups(groups: unknown): string[] {
  if (!Array.isArray(groups) || groups.length === 0) return ['spec.groups is empty'];
  const out: string[] = [];
  const names = new Set<string>();
  groups.forEach((g: any, gi) => {
    const where = `groups[${gi}]${g?.name ? ` (${g.name})` : ''}`;
    if (!g?.name || typeof g.name !== 'string') out.push(`${where}: no name`);
    else if (names.has(g.name)) out.push(`${where}: duplicate group name`);
    else names.add(g.name);
    if (g?.interval !== undefined && !DURATION.test(String(g.interval))) out.push(`${where}: interval ${g.interval} is not a duration`);
    const rules: any[] = Array.isArray(g?.rules) ? g.rules : [];
    if (rules.length === 0) out.push(`${where}: no rules`);
    rules.forEach((r, ri) => {
      const rw = `${where}.rules[${ri}]${r?.alert ? ` (${r.alert})` : r?.record ? ` (${r.record})` : ''}`;
      if ((r?.alert === undefined) === (r?.record === undefined)) out.push(`${rw}: needs exactly one of alert or record`);
      if (typeof r?.expr !== 'string' || r.expr.trim() === '') out.push(`${rw}: no expr`);
      if (r?.record !== undefined && !METRIC_NAME.test(r.record)) out.push(`${rw}: record ${r.record} is not a metric name`);
      if (r?.alert !== undefined) {
        if (typeof r.alert !== 'string' || r.alert === '') out.push(`${rw}: empty alert name`);
        // Without `for`, one bad scrape pages someone.
        if (r.for === undefined) out.push(`${rw}: alert has no 'for'`);
        else if (!DURATION.test(String(r.for))) out.push(`${rw}: for ${r.for} is not a duration`);
        if (!r.labels || typeof r.labels.severity !== 'string') out.push(`${rw}: alert has no labels.severity`);
        if (!r.annotations || typeof r.annotations.summary !== 'string') out.push(`${rw}: alert has no annotations.summary`);
      }
      for (const [k, v] of Object.entries(r?.labels ?? {})) {
        if (!LABEL_NAME.test(k)) out.push(`${rw}: label name ${k} is invalid`);
        if (typeof v !== 'string') out.push(`${rw}: label ${k} is not a string`);
      }
    });
  });
  return out;
}

export function prometheusRules(objects: readonly K8sObject[]): K8sObject[] {
  return objects.filter((o) => o.kind === 'PrometheusRule' && o.apiVersion.startsWith('monitoring.coreos.com/'));
}

export function findPromtool(): string | undefined {
  const r = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'promtool' : undefined;
}

export interface PromtoolResult {
  readonly ok: boolean;
  readonly output: string;
}

/** `promtool check rules` over the groups of one PrometheusRule, written as a rules file. */
export function promtoolCheck(groups: unknown, promtool = 'promtool'): PromtoolResult {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promrules-'));
  try {
    const file = path.join(dir, 'rules.yaml');
    fs.writeFileSync(file, stringify({ groups }));
    const r = spawnSync(promtool, ['check', 'rules', file], { encoding: 'utf8', timeout: 60_000 });
    return { ok: r.status === 0, output: `${r.stdout ?? ''}${r.stderr ?? ''}`.replaceAll(file, 'rules.yaml') };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
