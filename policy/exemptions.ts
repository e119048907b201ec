/**
 * Exemptions speak the tools' own language: Polaris `polaris.fairwinds.com/<check>-exempt: "true"`
 * and kube-score `kube-score/ignore: <check>[,<check>]`, so the same manifests exempt the same
 * things when a team runs the real tools. Each rule ID maps to the checks those tools name for it
 * (Polaris pkg/config/default.yaml, kube-score README_CHECKS.md).
 */
import {
  EXEMPTABLE_RULES,
  EXEMPTABLE_TOOL_CHECKS,
  KUBE_SCORE_IGNORE,
  POLARIS_PREFIX,
  toolExemptionAnnotations,
  type ToolChecks,
} from '../services/contract/policy-exemptions';
import type { EnvProfile, K8sObject, RuleId } from './types';
import { podTemplate } from './k8s';

export { KUBE_SCORE_IGNORE, POLARIS_PREFIX, type ToolChecks };

/** Rule ID → the Polaris and kube-score checks it merges; rules only kube-linter or PSS carry have none. */
export const TOOL_CHECKS: Readonly<Record<RuleId, ToolChecks>> = {
  R1: {
    polaris: ['cpuRequestsMissing', 'cpuLimitsMissing', 'memoryRequestsMissing', 'memoryLimitsMissing'],
    kubeScore: ['container-resources'],
  },
  R2: { polaris: [], kubeScore: ['container-ephemeral-storage-request-and-limit'] },
  I1: { polaris: ['tagNotSpecified'], kubeScore: ['container-image-tag'] },
  I2: EXEMPTABLE_TOOL_CHECKS.I2,
  P1: { polaris: ['readinessProbeMissing', 'livenessProbeMissing'], kubeScore: ['pod-probes'] },
  P2: { polaris: [], kubeScore: ['pod-probes-identical'] },
  P3: { polaris: [], kubeScore: [] },
  S1: { polaris: ['runAsRootAllowed'], kubeScore: ['container-security-context-user-group-id'] },
  S2: { polaris: ['privilegeEscalationAllowed'], kubeScore: [] },
  S3: { polaris: ['runAsPrivileged'], kubeScore: ['container-security-context-privileged'] },
  S4: { polaris: ['notReadOnlyRootFilesystem'], kubeScore: ['container-security-context-readonlyrootfilesystem'] },
  S5: { polaris: ['dangerousCapabilities', 'insecureCapabilities'], kubeScore: [] },
  S6: { polaris: ['linuxHardening'], kubeScore: ['container-seccomp-profile'] },
  S7: { polaris: ['hostIPCSet', 'hostPIDSet', 'hostNetworkSet', 'hostPortSet', 'hostPathSet'], kubeScore: [] },
  S9: { polaris: ['automountServiceAccountToken'], kubeScore: [] },
  S10: { polaris: ['sensitiveContainerEnvVar', 'sensitiveConfigmapContent'], kubeScore: [] },
  S11: { polaris: [], kubeScore: ['environment-variable-key-duplication'] },
  A1: EXEMPTABLE_TOOL_CHECKS.A1,
  A2: { polaris: ['missingPodDisruptionBudget'], kubeScore: ['deployment-has-poddisruptionbudget', 'statefulset-has-poddisruptionbudget'] },
  A3: {
    polaris: ['pdbDisruptionsIsZero', 'pdbMinAvailableGreaterThanOrEqualToHPAMinReplicas'],
    kubeScore: ['poddisruptionbudget-has-policy'],
  },
  A4: { polaris: [], kubeScore: ['deployment-has-host-podantiaffinity', 'statefulset-has-host-podantiaffinity'] },
  A5: { polaris: ['topologySpreadConstraint'], kubeScore: ['pod-topology-spread-constraints'] },
  A6: { polaris: [], kubeScore: ['deployment-strategy'] },
  A7: EXEMPTABLE_TOOL_CHECKS.A7,
  N1: { polaris: ['missingNetworkPolicy'], kubeScore: ['pod-networkpolicy'] },
  N2: { polaris: [], kubeScore: ['networkpolicy-targets-pod'] },
  N3: { polaris: [], kubeScore: ['service-targets-pod', 'service-type'] },
  N4: EXEMPTABLE_TOOL_CHECKS.N4,
  M1: {
    polaris: [],
    kubeScore: [
      'deployment-pod-selector-labels-match-template-metadata-labels',
      'statefulset-pod-selector-labels-match-template-metadata-labels',
    ],
  },
  M2: { polaris: [], kubeScore: ['stable-version'] },
  M3: { polaris: ['metadataAndInstanceMismatched'], kubeScore: ['label-values'] },
  M5: { polaris: [], kubeScore: ['statefulset-has-servicename'] },
  M6: { polaris: [], kubeScore: ['cronjob-has-deadline', 'cronjob-restartpolicy'] },
  B1: {
    polaris: [
      'clusterrolePodExecAttach',
      'rolePodExecAttach',
      'clusterrolebindingPodExecAttach',
      'rolebindingClusterRolePodExecAttach',
      'rolebindingRolePodExecAttach',
      'clusterrolebindingClusterAdmin',
      'rolebindingClusterAdminClusterRole',
      'rolebindingClusterAdminRole',
    ],
    kubeScore: [],
  },
  K1: { polaris: [], kubeScore: [] },
};

/** Per-environment strictness: prod exempts nothing; dev only what kind/minikube cannot meet. */
export const ENV_PROFILES: Readonly<Record<string, EnvProfile>> = {
  prod: { exemptible: [], requireDigests: true },
  dev: { exemptible: EXEMPTABLE_RULES, requireDigests: false },
};

/** An environment the engine does not know is held to prod's bar. */
export function profileFor(env: string): EnvProfile {
  return ENV_PROFILES[env] ?? ENV_PROFILES.prod;
}

/**
 * The annotations that exempt an object from the given rules, in both tools' syntax.
 * Put them on the workload's metadata (Polaris reads the controller, kube-score the object).
 */
export function policyExemptions(...ruleIds: RuleId[]): Record<string, string> {
  return toolExemptionAnnotations(
    ruleIds.map((id) => {
      const checks = TOOL_CHECKS[id];
      if (!checks) throw new Error(`unknown policy rule '${id}'`);
      if (checks.polaris.length === 0 && checks.kubeScore.length === 0) {
        throw new Error(`rule '${id}' has no Polaris or kube-score check, so no tool annotation can exempt it`);
      }
      return checks;
    }),
  );
}

/** Tool check name → rule ID, for reading annotations back. */
const POLARIS_TO_RULE = new Map<string, RuleId>();
const KUBE_SCORE_TO_RULE = new Map<string, RuleId>();
for (const [id, checks] of Object.entries(TOOL_CHECKS) as [RuleId, ToolChecks][]) {
  for (const c of checks.polaris) POLARIS_TO_RULE.set(c, id);
  for (const c of checks.kubeScore) KUBE_SCORE_TO_RULE.set(c, id);
}

export interface DeclaredExemption {
  readonly rule: RuleId | undefined;
  /** The annotation as written, for messages. */
  readonly annotation: string;
}

function annotationsOf(obj: K8sObject): Record<string, string>[] {
  const out = [obj.metadata?.annotations ?? {}];
  const tpl = podTemplate(obj);
  if (tpl && obj.kind !== 'Pod') out.push(tpl.metadata?.annotations ?? {});
  return out;
}

/** Exemptions an object declares (on itself or its pod template), mapped back to rule IDs. */
export function declaredExemptions(obj: K8sObject): DeclaredExemption[] {
  const out: DeclaredExemption[] = [];
  for (const annotations of annotationsOf(obj)) {
    for (const [key, value] of Object.entries(annotations)) {
      if (key.startsWith(POLARIS_PREFIX) && key.endsWith('-exempt') && String(value).toLowerCase() === 'true') {
        const check = key.slice(POLARIS_PREFIX.length, -'-exempt'.length);
        out.push({ rule: POLARIS_TO_RULE.get(check), annotation: `${key}: "${value}"` });
      } else if (key === KUBE_SCORE_IGNORE) {
        for (const check of String(value)
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)) {
          out.push({ rule: KUBE_SCORE_TO_RULE.get(check), annotation: `${key}: ${check}` });
        }
      }
    }
  }
  return out;
}

/** Rule IDs this object is exempted from by annotation (allowed or not). */
export function exemptedRules(obj: K8sObject): Set<RuleId> {
  return new Set(declaredExemptions(obj).flatMap((e) => (e.rule ? [e.rule] : [])));
}
