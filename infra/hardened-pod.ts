/**
 * Pod and container specs that pass the restricted Pod Security profile and the POLICY.md rules
 * by construction: every workload construct builds its pods here, so a rule is fixed once.
 */
import { HTTP_PORT_NAME, PORTS } from '../services/contract';
import { k8s } from './k8s';

/** uid/gid every container runs as (POLICY S1: >= 10000; the images create it). */
export const RUN_AS_ID = 10001;

/** Requests and limits for one container, as Kubernetes quantity strings. */
export interface ResourceSpec {
  /** CPU request and limit, e.g. `{ request: '250m', limit: '1' }`. */
  readonly cpu: { readonly request: string; readonly limit: string };
  /** Memory request and limit, e.g. `{ request: '256Mi', limit: '512Mi' }`. */
  readonly memory: { readonly request: string; readonly limit: string };
  /** Ephemeral storage (the /tmp emptyDir and logs count against it). */
  readonly ephemeralStorage: { readonly request: string; readonly limit: string };
  /**
   * Whole GPUs (`nvidia.com/gpu` limit).
   * @default 0
   */
  readonly gpus?: number;
}

/** Small resources for init containers and one-shot Jobs. */
export const SMALL_RESOURCES: ResourceSpec = {
  cpu: { request: '50m', limit: '200m' },
  memory: { request: '32Mi', limit: '64Mi' },
  ephemeralStorage: { request: '16Mi', limit: '64Mi' },
};

export function renderResources(r: ResourceSpec): k8s.ResourceRequirements {
  const limits: Record<string, k8s.Quantity> = {
    cpu: k8s.Quantity.fromString(r.cpu.limit),
    memory: k8s.Quantity.fromString(r.memory.limit),
    'ephemeral-storage': k8s.Quantity.fromString(r.ephemeralStorage.limit),
  };
  // Quantity.fromNumber, not a number in a JsonPatch: the latter renders `null` for nvidia.com/gpu.
  if ((r.gpus ?? 0) > 0) limits['nvidia.com/gpu'] = k8s.Quantity.fromNumber(r.gpus ?? 0);
  return {
    requests: {
      cpu: k8s.Quantity.fromString(r.cpu.request),
      memory: k8s.Quantity.fromString(r.memory.request),
      'ephemeral-storage': k8s.Quantity.fromString(r.ephemeralStorage.request),
    },
    limits,
  };
}

/** Name of the port every service listens on (contract: 8080 named `http`). */
export { HTTP_PORT_NAME };
export const HTTP_PORT: number = PORTS.http;

/** `/readyz` for readiness and `/livez` for liveness: the two differ on purpose (POLICY P2). */
export function httpProbes(opts: { startupFailureThreshold?: number; startupPeriodSeconds?: number; startupPath?: string } = {}): {
  readiness: k8s.Probe;
  liveness: k8s.Probe;
  startup?: k8s.Probe;
} {
  const port = k8s.IntOrString.fromString(HTTP_PORT_NAME);
  const out: { readiness: k8s.Probe; liveness: k8s.Probe; startup?: k8s.Probe } = {
    readiness: { httpGet: { path: '/readyz', port }, periodSeconds: 5, timeoutSeconds: 2, failureThreshold: 2 },
    liveness: { httpGet: { path: '/livez', port }, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
  };
  if (opts.startupFailureThreshold !== undefined) {
    out.startup = {
      httpGet: { path: opts.startupPath ?? '/livez', port },
      periodSeconds: opts.startupPeriodSeconds ?? 10,
      timeoutSeconds: 3,
      failureThreshold: opts.startupFailureThreshold,
    };
  }
  return out;
}

export interface HardenedContainerOptions {
  readonly name: string;
  readonly image: string;
  readonly imagePullPolicy: string;
  readonly command?: string[];
  readonly args?: string[];
  readonly env?: k8s.EnvVar[];
  /**
   * ConfigMap loaded with envFrom (the shared `orb-config`); explicit `env` wins over it.
   * @default - none
   */
  readonly envFromConfigMap?: string;
  readonly resources: ResourceSpec;
  /**
   * Declared container ports.
   * @default - none
   */
  readonly ports?: k8s.ContainerPort[];
  readonly readinessProbe?: k8s.Probe;
  readonly livenessProbe?: k8s.Probe;
  readonly startupProbe?: k8s.Probe;
  readonly lifecycle?: k8s.Lifecycle;
  /**
   * Mounts besides /tmp.
   * @default - only /tmp
   */
  readonly volumeMounts?: k8s.VolumeMount[];
}

/** The `tmp` emptyDir volume every pod carries: root filesystems are read-only. */
export const TMP_VOLUME = 'tmp';

/** Contract: every workload knows its pod name (downward API), whether or not its schema lists it. */
function withPodName(env: k8s.EnvVar[] | undefined): k8s.EnvVar[] {
  const list = env ?? [];
  if (list.some((e) => e.name === 'POD_NAME')) return list;
  return [...list, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }];
}

export function hardenedContainer(o: HardenedContainerOptions): k8s.Container {
  return {
    name: o.name,
    image: o.image,
    imagePullPolicy: o.imagePullPolicy,
    command: o.command,
    args: o.args,
    env: withPodName(o.env),
    envFrom: o.envFromConfigMap ? [{ configMapRef: { name: o.envFromConfigMap } }] : undefined,
    ports: o.ports,
    resources: renderResources(o.resources),
    readinessProbe: o.readinessProbe,
    livenessProbe: o.livenessProbe,
    startupProbe: o.startupProbe,
    lifecycle: o.lifecycle,
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: RUN_AS_ID,
      runAsGroup: RUN_AS_ID,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [{ name: TMP_VOLUME, mountPath: '/tmp' }, ...(o.volumeMounts ?? [])],
  };
}

export interface HardenedPodOptions {
  readonly serviceAccountName: string;
  readonly containers: k8s.Container[];
  readonly initContainers?: k8s.Container[];
  /** Volumes besides `tmp`. */
  readonly volumes?: k8s.Volume[];
  /** @default - none */
  readonly priorityClassName?: string;
  /** `app` label of the pods: anti-affinity and spread select on it. */
  readonly app: string;
  /**
   * Spread replicas across nodes (required for independent failures, e.g. the cores) or prefer it.
   * @default 'preferred'
   */
  readonly hostSpread?: 'required' | 'preferred' | 'none';
  /**
   * Spread across zones: 'required' (DoNotSchedule) where losing a zone must not take a quorum.
   * @default 'preferred'
   */
  readonly zoneSpread?: 'required' | 'preferred';
  /** @default 'Always' */
  readonly restartPolicy?: string;
  /** @default 30 */
  readonly terminationGracePeriodSeconds?: number;
  readonly tolerations?: k8s.Toleration[];
  /** Node labels a pod requires (e.g. the GPU pool); rendered as required node affinity. */
  readonly requiredNodeLabels?: Record<string, string>;
  /** Size limit of the /tmp emptyDir. @default '64Mi' */
  readonly tmpSizeLimit?: string;
}

export function hardenedPodSpec(o: HardenedPodOptions): k8s.PodSpec {
  const selector = { matchLabels: { app: o.app } };
  const hostSpread = o.hostSpread ?? 'preferred';
  const antiTerm: k8s.PodAffinityTerm = { labelSelector: selector, topologyKey: 'kubernetes.io/hostname' };
  const podAntiAffinity: k8s.PodAntiAffinity | undefined =
    hostSpread === 'required'
      ? { requiredDuringSchedulingIgnoredDuringExecution: [antiTerm] }
      : hostSpread === 'preferred'
        ? { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: antiTerm }] }
        : undefined;
  const nodeAffinity: k8s.NodeAffinity | undefined =
    o.requiredNodeLabels && Object.keys(o.requiredNodeLabels).length
      ? {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {
                matchExpressions: Object.entries(o.requiredNodeLabels)
                  .sort(([a], [b]) => a.localeCompare(b))
                  .map(([key, value]) => ({ key, operator: 'In', values: [value] })),
              },
            ],
          },
        }
      : undefined;
  return {
    serviceAccountName: o.serviceAccountName,
    automountServiceAccountToken: false,
    priorityClassName: o.priorityClassName,
    restartPolicy: o.restartPolicy,
    terminationGracePeriodSeconds: o.terminationGracePeriodSeconds ?? 30,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS_ID,
      runAsGroup: RUN_AS_ID,
      fsGroup: RUN_AS_ID,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    affinity: podAntiAffinity || nodeAffinity ? { podAntiAffinity, nodeAffinity } : undefined,
    topologySpreadConstraints: [
      {
        maxSkew: 1,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: (o.zoneSpread ?? 'preferred') === 'required' ? 'DoNotSchedule' : 'ScheduleAnyway',
        labelSelector: selector,
      },
    ],
    tolerations: o.tolerations,
    initContainers: o.initContainers,
    containers: o.containers,
    volumes: [{ name: TMP_VOLUME, emptyDir: { sizeLimit: k8s.Quantity.fromString(o.tmpSizeLimit ?? '64Mi') } }, ...(o.volumes ?? [])],
  };
}
