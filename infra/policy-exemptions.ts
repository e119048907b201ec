/**
 * The annotations kube-score and Polaris read to skip one check on one object. Only dev uses
 * them, and only for rules POLICY.md lets dev exempt; the rule → tool-check mapping is the
 * policy engine's own (policy/exemptions.ts), so the engine and the manifests agree.
 */
import { policyExemptions } from '../policy/exemptions';

/** Rule IDs (POLICY.md) an environment may exempt. */
export type ExemptableRule = 'I2' | 'A1' | 'A7' | 'N4';
const EXEMPTABLE: readonly ExemptableRule[] = ['I2', 'A1', 'A7', 'N4'];

/** Annotations exempting an object from `rules`; empty when none. */
export function exemptionAnnotations(rules: readonly ExemptableRule[]): Record<string, string> {
  for (const r of rules) if (!EXEMPTABLE.includes(r)) throw new Error(`rule '${r}' may not be exempted (only ${EXEMPTABLE.join(', ')})`);
  return rules.length ? policyExemptions(...[...new Set(rules)].sort()) : {};
}
