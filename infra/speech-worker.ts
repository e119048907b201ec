/** SpeechWorker: a GPU-capable ASR/TTS Deployment (`whisperx`, `xtts`) scaled on its bus stream lag. */
import { ApiObject } from 'cdk8s';
import { Construct } from 'constructs';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { ACP_CONSUMER_GROUP, jobStreamKey } from '../services/contract';
import { componentLabels, selectorLabels } from './labels';
import {
  MODEL_FETCH_RESOURCES,
  MODEL_MOUNT,
  modelFetchContainer,
  modelSourceProblems,
  quantityBytes,
  type ModelSource,
} from './model-delivery';
import { k8s } from './k8s';
import { HTTP_PORT, HTTP_PORT_NAME, hardenedPodSpec, httpProbes, type ResourceSpec } from './hardened-pod';
import { ASR_ROLE_ENV, mergeEnv, renderEnv, threadsFor, TTS_ROLE_ENV, vaultEnv, vaultSentinels, type VaultEndpoint } from './service-env';
import {
  budgetFor,
  checkReplicaRange,
  podAnnotations,
  podDisruptionBudget,
  workloadAnnotations,
  workloadServiceAccount,
  type ReplicaRange,
  type WorkloadProps,
  serviceContainer,
  namesOf,
  surgeOneRollout,
} from './workload-support';

export type SpeechRole = 'whisperx' | 'xtts';

/** Where the model files come from. */
export type ModelVolume =
  /**
   * A claim, read-only in the worker. With a `modelSource` it is a shared cache every pod's
   * model-fetch fills once and verifies; without one, operators load it.
   */
  | {
      readonly kind: 'pvc';
      readonly size: string;
      /** @default - the cluster's default class (few clusters have an RWX default) */
      readonly storageClassName?: string;
      /** ReadWriteMany shares one claim between replicas on many nodes. @default 'ReadWriteMany' */
      readonly accessMode?: 'ReadWriteMany' | 'ReadWriteOnce' | 'ReadWriteOncePod';
    }
  /** An emptyDir per pod, filled by the model-fetch init container (its size counts as pod ephemeral storage). */
  | { readonly kind: 'emptyDir'; readonly sizeLimit: string }
  /** Models baked into the image at `dir` (dev: the CPU image's tiny models); no volume. */
  | { readonly kind: 'image'; readonly dir: string };

export interface GpuOptions {
  /** Whole GPUs per pod. @default 1 */
  readonly count?: number;
  /**
   * Node labels of the GPU pool (required node affinity).
   * @default { 'nvidia.com/gpu.present': 'true' }
   */
  readonly nodeLabels?: Record<string, string>;
}

export interface SpeechScaling extends ReplicaRange {
  /**
   * Scale on the consumer-group lag of `acp:jobs:<role>` with KEDA; otherwise a CPU HPA.
   * @default - CPU HPA
   */
  readonly keda?: { readonly lagCount: number; readonly activationLagCount?: number };
  /** CPU target of the plain HPA. @default 70 */
  readonly targetCpuUtilization?: number;
}

export interface SpeechWorkerProps extends WorkloadProps {
  readonly role: SpeechRole;
  readonly resources: ResourceSpec;
  readonly vault: VaultEndpoint;
  readonly scaling: SpeechScaling;
  /** @default - CPU execution provider, no GPU scheduling */
  readonly gpu?: GpuOptions;
  /** @default { kind: 'emptyDir', sizeLimit: '1Gi' } */
  readonly modelVolume?: ModelVolume;
  /**
   * Where the models come from: a `model-fetch` init container delivers and verifies them into
   * the model volume before the worker starts.
   * @default - no init container (the volume is filled some other way, or the image holds the models)
   */
  readonly modelSource?: ModelSource;
  /** Egress proxy (`http://host:port`) model-fetch tunnels through. @default - direct */
  readonly modelProxy?: string;
  /** Resources of the model-fetch init container. @default MODEL_FETCH_RESOURCES */
  readonly modelFetchResources?: ResourceSpec;
  /**
   * Seconds a pod may take to load its models before the startup probe gives up.
   * @default 600
   */
  readonly modelLoadSeconds?: number;
  /** Size of the /dev/shm emptyDir (CUDA and batched inference use shared memory). @default '1Gi' */
  readonly shmSize?: string;
  /**
   * Pods a disruption must leave; must stay below `scaling.minReplicas`.
   * @default - one pod may be evicted at a time
   */
  readonly minAvailable?: number;
  /** VAULT_KEY_PREFIX the services use, so the KEDA trigger watches the same stream. @default '' */
  readonly keyPrefix?: string;
}

/** Stream a role consumes (docs/vault-keys.md `acp:jobs:{role}`). */
export function jobStream(role: string, keyPrefix = ''): string {
  return jobStreamKey(role, keyPrefix);
}

export class SpeechWorker extends Construct {
  public readonly deployment: k8s.KubeDeployment;
  public readonly service: k8s.KubeService;
  /** The KEDA ScaledObject, typed with @kubernetes-models/keda (validated in tests). */
  public readonly scaledObject?: ScaledObject;

  constructor(scope: Construct, id: string, props: SpeechWorkerProps) {
    super(scope, id);
    const name = `${namesOf(props).prefix}${props.role}`;
    checkReplicaRange('scaling', props.scaling);
    const modelLoadSeconds = props.modelLoadSeconds ?? 600;
    if (!Number.isInteger(modelLoadSeconds) || modelLoadSeconds < 10)
      throw new Error(`'modelLoadSeconds' (${modelLoadSeconds}) must be an integer >= 10`);
    const gpus = props.gpu ? (props.gpu.count ?? 1) : 0;
    if (props.gpu && (!Number.isInteger(gpus) || gpus < 1)) throw new Error(`'gpu.count' (${gpus}) must be an integer >= 1`);
    if (props.scaling.keda && !(props.scaling.keda.lagCount > 0))
      throw new Error(`'scaling.keda.lagCount' (${props.scaling.keda.lagCount}) must be > 0`);

    const labels = componentLabels({ name, component: props.role === 'whisperx' ? 'asr' : 'tts', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);
    const model = props.modelVolume ?? { kind: 'emptyDir', sizeLimit: '1Gi' };

    const source = props.modelSource;
    checkModelDelivery(props, model);
    const fetches = source !== undefined && source.kind !== 'volume';
    const volumes: k8s.Volume[] = [
      { name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString(props.shmSize ?? '1Gi') } },
    ];
    // The claim itself is writable only when model-fetch fills it; the worker's mount is read-only either way.
    if (model.kind === 'pvc')
      volumes.unshift({ name: 'models', persistentVolumeClaim: { claimName: `${name}-models`, readOnly: !fetches } });
    if (model.kind === 'emptyDir') volumes.unshift({ name: 'models', emptyDir: { sizeLimit: k8s.Quantity.fromString(model.sizeLimit) } });
    const modelDir = model.kind === 'image' ? model.dir : MODEL_MOUNT;
    if (model.kind === 'pvc') {
      new k8s.KubePersistentVolumeClaim(this, 'models', {
        metadata: { name: `${name}-models`, labels },
        spec: {
          accessModes: [model.accessMode ?? 'ReadWriteMany'],
          storageClassName: model.storageClassName,
          resources: { requests: { storage: k8s.Quantity.fromString(model.size) } },
        },
      });
    }
    const initContainers = source
      ? [
          modelFetchContainer({
            image: props.image,
            imagePullPolicy: props.imagePullPolicy ?? 'Always',
            source,
            volumeName: 'models',
            resources: props.modelFetchResources,
            proxy: props.modelProxy,
          }),
        ]
      : undefined;

    const startupPeriod = 10;
    // The startup probe passes once the models are loaded on the configured provider (/startupz), so it is sized to the load.
    const probes = httpProbes({
      startupFailureThreshold: Math.ceil(modelLoadSeconds / startupPeriod),
      startupPeriodSeconds: startupPeriod,
      startupPath: '/startupz',
    });
    const env = mergeEnv(
      renderEnv(props.role === 'whisperx' ? ASR_ROLE_ENV : TTS_ROLE_ENV, {
        values: {
          port: HTTP_PORT,
          modelDir,
          executionProvider: gpus > 0 ? 'cuda' : 'cpu',
          intraOpThreads: threadsFor(props.resources.cpu.limit),
        },
        fieldRefs: { podName: 'metadata.name' },
      }),
      vaultEnv(props.vault, props.role),
    );

    this.deployment = new k8s.KubeDeployment(this, 'deployment', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        // Left to the autoscaler (HPA or KEDA's HPA), which owns the replica count.
        selector: { matchLabels: selectorLabels(name) },
        strategy: surgeOneRollout(),
        template: {
          metadata: { labels, annotations: podAnnotations(props) },
          spec: hardenedPodSpec({
            app: name,
            serviceAccountName: sa.name,
            priorityClassName: props.priorityClassName,
            terminationGracePeriodSeconds: 45,
            tolerations: gpus > 0 ? [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] : undefined,
            requiredNodeLabels: gpus > 0 ? (props.gpu?.nodeLabels ?? { 'nvidia.com/gpu.present': 'true' }) : undefined,
            volumes,
            initContainers,
            containers: [
              {
                ...serviceContainer(props, {
                  name,
                  command: ['node', 'build/services/workers/main.js', name],
                  env,
                  resources: { ...props.resources, gpus },
                  probes,
                  volumeMounts: [
                    ...(model.kind === 'image' ? [] : [{ name: 'models', mountPath: MODEL_MOUNT, readOnly: true }]),
                    { name: 'dshm', mountPath: '/dev/shm' },
                  ],
                }),
                // A provider that cannot load exits with one line saying so: `kubectl describe pod` shows it.
                terminationMessagePolicy: 'FallbackToLogsOnError',
              },
            ],
          }),
        },
      },
    });

    // ClusterIP Service: the metrics scrape target (ServiceMonitor) of the worker.
    this.service = new k8s.KubeService(this, 'service', {
      metadata: { name, labels },
      spec: {
        type: 'ClusterIP',
        selector: selectorLabels(name),
        ports: [{ name: HTTP_PORT_NAME, port: HTTP_PORT, targetPort: k8s.IntOrString.fromString(HTTP_PORT_NAME), protocol: 'TCP' }],
      },
    });

    const scaling = props.scaling;
    if (scaling.keda) {
      this.scaledObject = new ScaledObject({
        metadata: { name, labels },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
          minReplicaCount: scaling.minReplicas,
          maxReplicaCount: scaling.maxReplicas,
          triggers: [kedaStreamTrigger(props.vault, props.role, props.keyPrefix ?? '', scaling.keda)],
        },
      });
      new ApiObject(this, 'scaled-object', this.scaledObject.toJSON() as never);
    } else {
      new k8s.KubeHorizontalPodAutoscalerV2(this, 'autoscaler', {
        metadata: { name, labels },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
          minReplicas: scaling.minReplicas,
          maxReplicas: scaling.maxReplicas,
          metrics: [
            {
              type: 'Resource',
              resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: scaling.targetCpuUtilization ?? 70 } },
            },
          ],
        },
      });
    }

    podDisruptionBudget(this, name, labels, budgetFor(scaling.minReplicas, props.minAvailable, 'minAvailable'));
  }
}

/** Invariants between the model volume, the source and the pod's ephemeral storage, naming the props. */
function checkModelDelivery(props: SpeechWorkerProps, model: ModelVolume): void {
  if (model.kind === 'image' && !model.dir.startsWith('/')) throw new Error(`'modelVolume.dir' (${model.dir}) must be an absolute path`);
  const source = props.modelSource;
  if (source) {
    if (model.kind === 'image') throw new Error(`'modelSource' (${source.kind}) needs a 'modelVolume' of kind pvc or emptyDir, not image`);
    const problems = modelSourceProblems('modelSource', source);
    if (problems.length) throw new Error(problems.join('; '));
  }
  if (model.kind === 'pvc' && model.accessMode && model.accessMode !== 'ReadWriteMany' && props.scaling.maxReplicas > 1) {
    throw new Error(
      `'modelVolume.accessMode' (${model.accessMode}) cannot serve 'scaling.maxReplicas' (${props.scaling.maxReplicas}) pods on several nodes: use ReadWriteMany or an emptyDir`,
    );
  }
  if (model.kind === 'emptyDir' && source) {
    // The kubelet evicts a pod whose emptyDirs and writable layers exceed its ephemeral-storage limit.
    const limit = Math.max(
      quantityBytes(props.resources.ephemeralStorage.limit),
      quantityBytes((props.modelFetchResources ?? MODEL_FETCH_RESOURCES).ephemeralStorage.limit),
    );
    if (!(quantityBytes(model.sizeLimit) < limit)) {
      throw new Error(
        `'modelVolume.sizeLimit' (${model.sizeLimit}) must stay below 'resources.ephemeralStorage.limit' (${props.resources.ephemeralStorage.limit}): the pod would be evicted once the models are in`,
      );
    }
  }
}

/** KEDA trigger on the consumer-group lag of the role's job stream (XINFO GROUPS, Redis >= 7). */
function kedaStreamTrigger(
  vault: VaultEndpoint,
  role: string,
  keyPrefix: string,
  keda: { lagCount: number; activationLagCount?: number },
): ScaledObject['spec']['triggers'][number] {
  const common: Record<string, string> = {
    stream: jobStream(role, keyPrefix),
    // The group the workers really read as (services/acp), not the role: KEDA reads its lag.
    consumerGroup: ACP_CONSUMER_GROUP,
    lagCount: String(keda.lagCount),
    // Credentials are read from the worker container's own env (secretKeyRef), never written here.
    usernameFromEnv: 'REDIS_USERNAME',
    passwordFromEnv: 'REDIS_PASSWORD',
  };
  if (keda.activationLagCount !== undefined) common.activationLagCount = String(keda.activationLagCount);
  const sentinel = vaultSentinels(vault);
  if (sentinel) {
    return {
      type: 'redis-sentinel-streams',
      metadata: {
        ...common,
        addresses: sentinel.sentinels.join(','),
        sentinelMaster: sentinel.master,
        // The Sentinels know the worker's user too (Sentinel-side ACL: discovery only).
        ...(vault.mode === 'in-cluster' ? { sentinelUsernameFromEnv: 'REDIS_USERNAME', sentinelPasswordFromEnv: 'REDIS_PASSWORD' } : {}),
        enableTLS: String(vault.mode === 'external' ? vault.tls : false),
      },
    };
  }
  const host = vault.mode === 'in-cluster' ? vault.serviceName : vault.host;
  const tls = vault.mode === 'external' ? vault.tls : false;
  return { type: 'redis-streams', metadata: { ...common, address: `${host}:${vault.port}`, enableTLS: String(tls) } };
}
