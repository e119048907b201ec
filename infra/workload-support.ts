/** Pieces every workload construct shares: identity, disruption budget, common props. */
import { PORTS, stackNames, type StackNames } from '../services/contract';
import { ApiObject, JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import { k8s } from './k8s';
import { exemptionAnnotations, type ExemptableRule } from './policy-exemptions';
import {
  HTTP_PORT,
  HTTP_PORT_NAME,
  hardenedContainer,
  type HardenedContainerOptions,
  type httpProbes,
  type ResourceSpec,
} from './hardened-pod';
import { ORB_CONFIG } from './orb-config';

/** Props common to every workload construct. */
export interface WorkloadProps {
  /** Container image reference (a tag, or a tag@sha256 digest in prod). */
  readonly image: string;
  /** @default 'Always' */
  readonly imagePullPolicy?: 'Always' | 'IfNotPresent';
  /**
   * Release version for `app.kubernetes.io/version`.
   * @default - no version label
   */
  readonly version?: string;
  /**
   * PriorityClass of the pods.
   * @default - none (clusters where the chart may not create PriorityClasses)
   */
  readonly priorityClassName?: string;
  /**
   * Policy rules this workload is exempt from, rendered as the tools' own annotations.
   * @default - none
   */
  readonly policyExemptions?: readonly ExemptableRule[];
  /**
   * Put `prometheus.io/*` scrape annotations on the pods (when no ServiceMonitor scrapes them).
   * @default false
   */
  readonly scrapeAnnotations?: boolean;
  /**
   * Checksum of the shared `orb-config` the pods load, so a config change rolls them.
   * @default - none
   */
  readonly configChecksum?: string;
  /**
   * The stack's names: every object, label, selector and vault ACL user of this workload takes
   * the stack's name prefix (`stackNames('blue-')`), so two stacks can share a namespace.
   * @default - the unprefixed names (`stackNames()`)
   */
  readonly names?: StackNames;
  /**
   * The ConfigMap the service containers load with envFrom (an OrbConfig's, or one passed in).
   * @default - the stack's `orb-config` (`names.orbConfig`)
   */
  readonly configMapName?: string;
}

/** Pod annotations for annotation-based Prometheus scraping of the `http` port's /metrics. */
export function scrapeAnnotations(enabled: boolean | undefined, port: number = PORTS.http): Record<string, string> | undefined {
  if (!enabled) return undefined;
  return { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(port), 'prometheus.io/path': '/metrics' };
}

/** Pod template annotations: scrape hints and the config checksum. */
export function podAnnotations(props: WorkloadProps): Record<string, string> | undefined {
  const a = {
    ...scrapeAnnotations(props.scrapeAnnotations),
    ...(props.configChecksum ? { 'ucm4.dev/config-checksum': props.configChecksum } : {}),
  };
  return Object.keys(a).length ? a : undefined;
}

/** Metadata annotations of a workload object (exemptions only). */
export function workloadAnnotations(props: WorkloadProps): Record<string, string> | undefined {
  const a = exemptionAnnotations(props.policyExemptions ?? []);
  return Object.keys(a).length ? a : undefined;
}

/** A dedicated ServiceAccount per workload; no workload calls the Kubernetes API, so no token. */
export function workloadServiceAccount(scope: Construct, name: string, labels: Record<string, string>): k8s.KubeServiceAccount {
  return new k8s.KubeServiceAccount(scope, 'service-account', {
    metadata: { name, labels },
    automountServiceAccountToken: false,
  });
}

/** How many pods a voluntary disruption may take. Exactly one of the two. */
export type DisruptionBudget = { readonly minAvailable: number } | { readonly maxUnavailable: number };

export function podDisruptionBudget(scope: Construct, name: string, labels: Record<string, string>, budget: DisruptionBudget): ApiObject {
  const pdb = new k8s.KubePodDisruptionBudget(scope, 'disruption-budget', {
    metadata: { name, labels },
    spec: {
      selector: { matchLabels: { app: labels.app } },
      ...('minAvailable' in budget
        ? { minAvailable: k8s.IntOrString.fromNumber(budget.minAvailable) }
        : { maxUnavailable: k8s.IntOrString.fromNumber(budget.maxUnavailable) }),
    },
  });
  // Escape hatch: the k8s 1.28 L1 types of cdk8s-plus-28 lack this field; a prop would be dropped.
  // AlwaysAllow lets a drain evict a crash-looping pod instead of blocking on it.
  pdb.addJsonPatch(JsonPatch.add('/spec/unhealthyPodEvictionPolicy', 'AlwaysAllow'));
  return pdb;
}

/** Autoscaling bounds shared by HPAs and ScaledObjects. */
export interface ReplicaRange {
  readonly minReplicas: number;
  readonly maxReplicas: number;
}

export function checkReplicaRange(what: string, r: ReplicaRange): void {
  if (!Number.isInteger(r.minReplicas) || r.minReplicas < 1)
    throw new Error(`'${what}.minReplicas' (${r.minReplicas}) must be an integer >= 1`);
  if (!Number.isInteger(r.maxReplicas) || r.maxReplicas <= r.minReplicas) {
    throw new Error(`'${what}.maxReplicas' (${r.maxReplicas}) must be an integer greater than 'minReplicas' (${r.minReplicas})`);
  }
}

/** The budget a workload keeps: `minAvailable` if it stays under the replica floor, else one pod may go. */
export function budgetFor(floor: number, minAvailable: number | undefined, what: string): DisruptionBudget {
  if (minAvailable === undefined) return { maxUnavailable: 1 };
  if (minAvailable >= floor) {
    throw new Error(`'${what}' (${minAvailable}) must be below the replica floor (${floor}) or no pod could ever be evicted`);
  }
  return { minAvailable };
}

/** What differs between the long-running service containers; the rest is the contract. */
export interface ServiceContainerOptions {
  readonly name: string;
  readonly command: string[];
  readonly env: k8s.EnvVar[];
  readonly resources: ResourceSpec;
  readonly probes: ReturnType<typeof httpProbes>;
  readonly lifecycle?: HardenedContainerOptions['lifecycle'];
  readonly volumeMounts?: HardenedContainerOptions['volumeMounts'];
}

/**
 * A service container as the contract fixes it: port 8080 named `http`, `orb-config` loaded with
 * envFrom, /readyz + /livez (+ a startup probe where given), hardened security context.
 */
export function serviceContainer(props: WorkloadProps, o: ServiceContainerOptions): k8s.Container {
  return hardenedContainer({
    name: o.name,
    image: props.image,
    imagePullPolicy: props.imagePullPolicy ?? 'Always',
    command: o.command,
    env: o.env,
    envFromConfigMap: configMapOf(props),
    ports: [{ name: HTTP_PORT_NAME, containerPort: HTTP_PORT, protocol: 'TCP' }],
    resources: o.resources,
    readinessProbe: o.probes.readiness,
    livenessProbe: o.probes.liveness,
    startupProbe: o.probes.startup,
    lifecycle: o.lifecycle,
    volumeMounts: o.volumeMounts,
  });
}

/** The stack names a workload renders under. */
export function namesOf(props: { readonly names?: StackNames }): StackNames {
  return props.names ?? stackNames();
}

/** The ConfigMap a workload's containers load with envFrom. */
export function configMapOf(props: WorkloadProps): string {
  return props.configMapName ?? (props.names ? props.names.orbConfig : ORB_CONFIG);
}

/**
 * A worker Deployment's rollout: one extra pod at a time and never fewer ready than the replica
 * count, so a rollout never takes queue capacity away (CALI, the speech workers).
 */
export function surgeOneRollout(): k8s.DeploymentStrategy {
  return {
    type: 'RollingUpdate',
    rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(1), maxUnavailable: k8s.IntOrString.fromNumber(0) },
  };
}
