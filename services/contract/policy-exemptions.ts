/**
 * The policy exemptions an environment may declare, as data both halves read: the constructs
 * (infra/) render them as annotations, the policy engine (policy/) reads those annotations back
 * and allows exactly these rules in dev. Imports nothing, like the rest of services/contract.
 *
 * Exemptions speak the tools' own language, so the real tools agree with the engine: Polaris
 * `polaris.fairwinds.com/<check>-exempt: "true"` and kube-score `kube-score/ignore: <check>,…`.
 */

/** Rule IDs (POLICY.md) an environment may exempt; prod exempts none of them. */
export const EXEMPTABLE_RULES = ['I2', 'A1', 'A7', 'N4'] as const;
export type ExemptableRule = (typeof EXEMPTABLE_RULES)[number];

/** The Polaris and kube-score checks one policy rule merges. */
export interface ToolChecks {
  readonly polaris: readonly string[];
  readonly kubeScore: readonly string[];
}

/** The checks each exemptable rule merges (the engine's TOOL_CHECKS uses these entries). */
export const EXEMPTABLE_TOOL_CHECKS: Readonly<Record<ExemptableRule, ToolChecks>> = {
  I2: { polaris: ['pullPolicyNotAlways'], kubeScore: ['container-image-pull-policy'] },
  A1: {
    polaris: ['deploymentMissingReplicas'],
    kubeScore: ['deployment-replicas', 'deployment-targeted-by-hpa-does-not-have-replicas-configured'],
  },
  A7: { polaris: ['priorityClassNotSet'], kubeScore: [] },
  N4: { polaris: ['tlsSettingsMissing'], kubeScore: ['ingress-targets-service'] },
};

export const POLARIS_PREFIX = 'polaris.fairwinds.com/';
export const KUBE_SCORE_IGNORE = 'kube-score/ignore';

export function isExemptableRule(rule: string): rule is ExemptableRule {
  return (EXEMPTABLE_RULES as readonly string[]).includes(rule);
}

/**
 * The annotations that exempt an object from the given tool checks, in both tools' syntax.
 * Put them on the workload's metadata (Polaris reads the controller, kube-score the object).
 */
export function toolExemptionAnnotations(checks: readonly ToolChecks[]): Record<string, string> {
  const out: Record<string, string> = {};
  const ignore: string[] = [];
  for (const c of checks) {
    for (const p of c.polaris) out[`${POLARIS_PREFIX}${p}-exempt`] = 'true';
    for (const k of c.kubeScore) if (!ignore.includes(k)) ignore.push(k);
  }
  if (ignore.length > 0) out[KUBE_SCORE_IGNORE] = ignore.join(',');
  return out;
}
