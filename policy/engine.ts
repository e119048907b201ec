/** Runs every rule over one environment's objects and applies the tools' exemption annotations. */
import type { Finding, K8sObject, Rule, RuleContext, RuleId, RuleResult } from './types';
import { RULES } from './rules';
import { declaredExemptions, exemptedRules, profileFor } from './exemptions';

export interface PolicyReport {
  readonly env: string;
  /** Every applicable rule × object cell. */
  readonly results: readonly RuleResult[];
  /** What fails the build: broken rules and exemptions the environment does not allow. */
  readonly findings: readonly Finding[];
  /** Allowed exemptions in use, as `rule kind/name`. */
  readonly exemptions: readonly RuleResult[];
}

export interface RunOptions {
  /** Environment name: picks the profile (prod: no exemptions; dev: I2 A1 A7 N4). */
  readonly env: string;
  /** Rules to run. @default - all of RULES */
  readonly rules?: readonly Rule[];
}

export function runPolicy(objects: readonly K8sObject[], opts: RunOptions): PolicyReport {
  const profile = profileFor(opts.env);
  const ctx: RuleContext = { objects, env: opts.env, profile };
  const results: RuleResult[] = [];
  const findings: Finding[] = [];
  const rules = opts.rules ?? RULES;
  const running = new Set<RuleId>(rules.map((r) => r.id));

  for (const obj of objects) {
    const id = { kind: obj.kind, name: obj.metadata?.name ?? '<unnamed>', namespace: obj.metadata?.namespace };
    const allowed = new Set([...exemptedRules(obj)].filter((r) => profile.exemptible.includes(r)));
    for (const e of declaredExemptions(obj)) {
      if (e.rule && !running.has(e.rule)) continue;
      if (!e.rule) {
        if (running.has('K1'))
          findings.push({ rule: 'K1', ...id, message: `exemption annotation ${e.annotation} names a check this policy does not know` });
      } else if (!profile.exemptible.includes(e.rule)) {
        const may = profile.exemptible.length ? profile.exemptible.join(', ') : 'none';
        findings.push({
          rule: e.rule,
          ...id,
          message: `exemption ${e.annotation} is not allowed in ${opts.env} (exemptible here: ${may})`,
        });
      }
    }
    for (const rule of rules) {
      if (!rule.applies(obj, ctx)) continue;
      const messages = rule.check(obj, ctx);
      const verdict = messages.length === 0 ? 'pass' : allowed.has(rule.id) ? 'exempt' : 'fail';
      results.push({ rule: rule.id, ...id, verdict, messages });
      if (verdict === 'fail') for (const message of messages) findings.push({ rule: rule.id, ...id, message });
    }
  }
  return { env: opts.env, results, findings, exemptions: results.filter((r) => r.verdict === 'exempt') };
}

/** One line per finding, for test failures and the CLI. */
export function formatFindings(findings: readonly Finding[]): string {
  return findings.map((f) => `${f.rule} ${f.kind}/${f.namespace ? `${f.namespace}/` : ''}${f.name}: ${f.message}`).join('\n');
}
