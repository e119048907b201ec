/**
 * The annotations kube-score and Polaris read to skip one check on one object. Only dev uses
 * them, and only for rules POLICY.md lets dev exempt. The rules and their tool checks are data
 * (services/contract/policy-exemptions.ts) that the policy engine reads too, so the engine and
 * the manifests agree without the constructs importing the engine.
 */
import {
  EXEMPTABLE_RULES,
  EXEMPTABLE_TOOL_CHECKS,
  isExemptableRule,
  toolExemptionAnnotations,
  type ExemptableRule,
} from '../services/contract/policy-exemptions';

export type { ExemptableRule };

/** Annotations exempting an object from `rules`; empty when none. */
export function exemptionAnnotations(rules: readonly ExemptableRule[]): Record<string, string> {
  for (const r of rules) if (!isExemptableRule(r)) throw new Error(`rule '${r}' may not be exempted (only ${EXEMPTABLE_RULES.join(', ')})`);
  return toolExemptionAnnotations([...new Set(rules)].sort().map((id) => EXEMPTABLE_TOOL_CHECKS[id]));
}
