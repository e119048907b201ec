/**
 * The annotations kube-score and Polaris read to skip one check on one object. Only dev uses
 * them, and only for rules POLICY.md lets dev exempt (I2, A1, A7, N4).
 */

/** Rule IDs (POLICY.md) an environment may exempt. */
export type ExemptableRule = 'I2' | 'A1' | 'A7' | 'N4';

/** Polaris check name and kube-score check id of each exemptable rule. */
const TOOL_CHECKS: Record<ExemptableRule, { polaris: string; kubeScore?: string }> = {
  I2: { polaris: 'pullPolicyNotAlways', kubeScore: 'container-image-pull-policy' },
  A1: { polaris: 'deploymentMissingReplicas', kubeScore: 'deployment-replicas' },
  A7: { polaris: 'priorityClassNotSet' },
  N4: { polaris: 'tlsSettingsMissing', kubeScore: 'ingress-targets-service' },
};

/** Annotations exempting an object from `rules`; empty when none. */
export function exemptionAnnotations(rules: readonly ExemptableRule[]): Record<string, string> {
  const out: Record<string, string> = {};
  const kubeScore: string[] = [];
  for (const rule of [...new Set(rules)].sort()) {
    const checks = TOOL_CHECKS[rule];
    if (!checks) throw new Error(`rule '${rule}' may not be exempted (only ${Object.keys(TOOL_CHECKS).join(', ')})`);
    out[`polaris.fairwinds.com/${checks.polaris}-exempt`] = 'true';
    if (checks.kubeScore) kubeScore.push(checks.kubeScore);
  }
  if (kubeScore.length) out['kube-score/ignore'] = kubeScore.join(',');
  return out;
}
