/**
 * Typed environment configuration, validated at synth time. Every problem names the field and
 * its value (`prod.images.app ("orb:1.0"): must be pinned by an @sha256 digest`).
 */
import { EXEMPTABLE_RULES, quorumProblems, vaultReplicasProblem } from '../services/contract';
import { chatPort } from '../infra/cali';
import {
  modelSourceProblems,
  type CaliChatProps,
  type ExemptableRule,
  type ExternalPeer,
  type ModelSource,
  type ModelVolume,
  type ResourceSpec,
  type VaultEndpoint,
} from '../infra';

const CIDR = /^\d+\.\d+\.\d+\.\d+\/\d+$/;

export interface ReplicaBounds {
  readonly minReplicas: number;
  readonly maxReplicas: number;
}

export type VaultConfig =
  | {
      readonly mode: 'in-cluster';
      readonly storage: string;
      readonly storageClassName?: string;
      readonly maxMemory: string;
      readonly resources: ResourceSpec;
      /**
       * Redis nodes: 1, or an odd number >= 3 under Sentinel (prod). Fewer than 3 needs the 'A1'
       * exemption (dev).
       * @default 1
       */
      readonly replicas?: number;
    }
  | (Extract<VaultEndpoint, { readonly mode: 'external' }> & {
      /** Address block of the external Redis (egress NetworkPolicy). */
      readonly cidr: string;
    });

/** Where backups leave the cluster (the upload step runs in the app image). */
export interface OffsiteBackupConfig {
  /** http(s)://host[:port] of the S3-compatible store. */
  readonly endpoint: string;
  readonly bucket: string;
  readonly prefix: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** Secret with the access key id and secret access key. */
  readonly credentialsSecret: { readonly secret: string; readonly accessKeyIdKey: string; readonly secretAccessKeyKey: string };
  /** The store's address block (or egress proxy pods) and port, for the egress NetworkPolicy. */
  readonly peer: ExternalPeer;
  readonly port: number;
}

/** A speech role's model volume and, when model-fetch delivers them, where the files come from. */
export interface SpeechModels {
  readonly volume: ModelVolume;
  /** @default - no model-fetch (the image or an operator fills the volume) */
  readonly source?: ModelSource;
}

/** How model-fetch reaches a remote source through the default-deny NetworkPolicies. */
export interface ModelEgress {
  /** The source's address block, or the egress proxy's pods (NetworkPolicies cannot name hosts). */
  readonly peer: ExternalPeer;
  readonly port: number;
  /** http://host:port of the egress proxy model-fetch tunnels through (CONNECT). @default - direct */
  readonly proxy?: string;
}

/** Thresholds of `orb smoke --accept` (rendered into the orb-smoke Job). */
export interface AcceptanceConfig {
  /** Highest word error rate of the golden utterances through the deployed ASR. */
  readonly maxWer: number;
  /** Highest word error rate of TTS output transcribed back by the deployed ASR. */
  readonly maxRoundTripWer: number;
  /** The orb-smoke Job runs the acceptance check after the smoke steps. */
  readonly inJob: boolean;
  /** The deployed models are the tiny test models: check the plumbing, not the thresholds. */
  readonly testMode: boolean;
}

export interface EnvironmentConfig {
  /** Environment name: the folder under dist/ and ORB_ENVIRONMENT. */
  readonly name: string;
  readonly namespace: string;
  /** Release version: image tags and `app.kubernetes.io/version`. */
  readonly version: string;
  readonly images: {
    /** CPU image: gateway, cores, CALI, seed, smoke (and speech workers without GPUs). */
    readonly app: string;
    /** GPU image (onnxruntime-node CUDA binaries) for speech workers on GPU nodes. */
    readonly gpu: string;
    /** Redis for the in-cluster vault and its backups. */
    readonly redis: string;
  };
  readonly imagePullPolicy: 'Always' | 'IfNotPresent';
  /** Require every image pinned by digest. */
  readonly pinDigests: boolean;
  /** Create and use the chart's PriorityClasses (cluster-scoped objects). */
  readonly priorityClasses: boolean;
  readonly logLevel: string;
  readonly keyPrefix: string;
  readonly orbCore: {
    /** Fixed replicas when `autoscaling` is absent. */
    readonly replicas?: number;
    readonly autoscaling?: ReplicaBounds & { readonly targetCpuUtilization: number };
    readonly minAvailable: number;
    readonly resources: ResourceSpec;
    readonly ingress: { readonly host: string; readonly className: string; readonly tlsSecretName?: string };
  };
  readonly speech: {
    /** Schedule on GPU nodes with the CUDA execution provider. */
    readonly gpu: boolean;
    readonly scaling: ReplicaBounds;
    readonly minAvailable?: number;
    /** Where each role's models come from. */
    readonly models: { readonly whisperx: SpeechModels; readonly xtts: SpeechModels };
    /** Egress to the model source (required when a source is fetched). @default - none */
    readonly modelEgress?: ModelEgress;
    readonly modelLoadSeconds: number;
    readonly resources: { readonly whisperx: ResourceSpec; readonly xtts: ResourceSpec };
  };
  readonly cores: {
    readonly cores: number;
    readonly quorum: number;
    readonly hostSpread: 'required' | 'preferred';
    readonly resources: ResourceSpec;
  };
  readonly cali: { readonly replicas: number; readonly resources: ResourceSpec; readonly chat?: CaliChatProps };
  readonly vault: VaultConfig;
  /** Backups of the in-cluster vault (an external one is backed up by its provider). */
  readonly backup?: {
    readonly schedule: string;
    readonly keep: number;
    readonly storage: string;
    readonly resources: ResourceSpec;
    /** Copy every snapshot to an S3-compatible bucket off the cluster. @default - PVC only */
    readonly offsite?: OffsiteBackupConfig;
  };
  readonly jobResources: ResourceSpec;
  readonly acceptance: AcceptanceConfig;
  /** Images and model revisions come from charts/images.json and charts/models.lock.json (release pins). */
  readonly releasePins: boolean;
  /** KEDA installed: speech workers scale on stream lag. */
  readonly keda?: { readonly lagCount: number; readonly activationLagCount?: number; readonly operator: ExternalPeer };
  readonly monitoring: {
    /** prometheus-operator installed: ServiceMonitors + PrometheusRule; else scrape annotations. */
    readonly prometheusOperator: boolean;
    readonly prometheus: ExternalPeer;
    readonly speechLagThreshold: number;
  };
  readonly ingressController: ExternalPeer;
  /** Rules this environment exempts (dev only: I2, A1, A7, N4). */
  readonly exemptions: readonly ExemptableRule[];
}

export class EnvironmentConfigError extends Error {
  constructor(
    readonly env: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid environment '${env}':\n  - ${problems.join('\n  - ')}`);
    this.name = 'EnvironmentConfigError';
  }
}

const QUANTITY = /^\d+(\.\d+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$/;
const DIGEST = /@sha256:[0-9a-f]{64}$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const EXEMPTABLE: readonly string[] = EXEMPTABLE_RULES;

/** Checks every invariant; throws one error listing all problems. */
export function validateEnvironment(cfg: EnvironmentConfig): EnvironmentConfig {
  const problems: string[] = [];
  const at = (field: string, value: unknown, msg: string) => problems.push(`${cfg.name}.${field} (${JSON.stringify(value)}): ${msg}`);
  const int = (field: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) at(field, v, `must be an integer >= ${min}`);
  };
  const resources = (field: string, r: ResourceSpec) => {
    for (const kind of ['cpu', 'memory', 'ephemeralStorage'] as const) {
      for (const side of ['request', 'limit'] as const) {
        const v = r[kind]?.[side];
        if (typeof v !== 'string' || !QUANTITY.test(v))
          at(`${field}.${kind}.${side}`, v, 'must be a Kubernetes quantity string like 250m or 512Mi');
      }
    }
  };
  const bounds = (field: string, b: ReplicaBounds) => {
    int(`${field}.minReplicas`, b.minReplicas, 1);
    if (!(b.maxReplicas > b.minReplicas)) at(`${field}.maxReplicas`, b.maxReplicas, `must be greater than minReplicas (${b.minReplicas})`);
  };

  if (!DNS_LABEL.test(cfg.name)) at('name', cfg.name, 'must be a DNS label');
  if (!DNS_LABEL.test(cfg.namespace)) at('namespace', cfg.namespace, 'must be a DNS label');
  if (!/^[0-9A-Za-z][0-9A-Za-z._-]{0,62}$/.test(cfg.version)) at('version', cfg.version, 'must be a valid label value');
  for (const [k, image] of Object.entries(cfg.images)) {
    const ref = image.replace(DIGEST, '');
    const tag = /:([^/:]+)$/.exec(ref)?.[1];
    if (!tag) at(`images.${k}`, image, 'must carry a tag');
    else if (tag === 'latest') at(`images.${k}`, image, "must not use the 'latest' tag");
    if (cfg.pinDigests && !DIGEST.test(image)) at(`images.${k}`, image, 'must be pinned by an @sha256 digest (pinDigests)');
  }
  if (cfg.releasePins) {
    // The release workflow tags what it pushes with the version; another tag would label a different build.
    for (const k of ['app', 'gpu'] as const) {
      const tag = /:([^/:@]+)(@|$)/.exec(cfg.images[k])?.[1];
      if (tag !== cfg.version)
        at(`images.${k}`, cfg.images[k], `must carry the release version '${cfg.version}' as its tag (charts/images.json)`);
    }
  }
  if (!['Always', 'IfNotPresent'].includes(cfg.imagePullPolicy))
    at('imagePullPolicy', cfg.imagePullPolicy, 'must be Always or IfNotPresent');
  if (cfg.imagePullPolicy !== 'Always' && !cfg.exemptions.includes('I2'))
    at('imagePullPolicy', cfg.imagePullPolicy, "needs the 'I2' exemption unless Always");
  if (!cfg.priorityClasses && !cfg.exemptions.includes('A7')) at('priorityClasses', cfg.priorityClasses, "false needs the 'A7' exemption");
  for (const e of cfg.exemptions) if (!EXEMPTABLE.includes(e)) at('exemptions', e, `only ${EXEMPTABLE.join(', ')} may be exempted`);

  if (cfg.cali.chat) {
    try {
      chatPort(cfg.cali.chat.url);
    } catch {
      at('cali.chat.url', cfg.cali.chat.url, 'must be an http(s) URL');
    }
    if (!CIDR.test(cfg.cali.chat.cidr))
      at('cali.chat.cidr', cfg.cali.chat.cidr, 'must be an IPv4 CIDR block (NetworkPolicies cannot name hosts)');
  }

  const oc = cfg.orbCore;
  if (oc.autoscaling) {
    bounds('orbCore.autoscaling', oc.autoscaling);
    if (!(oc.autoscaling.targetCpuUtilization > 0 && oc.autoscaling.targetCpuUtilization <= 100))
      at('orbCore.autoscaling.targetCpuUtilization', oc.autoscaling.targetCpuUtilization, 'must be in 1..100');
    if (oc.replicas !== undefined) at('orbCore.replicas', oc.replicas, 'must be unset when autoscaling is set (the HPA owns replicas)');
  } else {
    int('orbCore.replicas', oc.replicas ?? NaN, 1);
    if ((oc.replicas ?? 0) < 2 && !cfg.exemptions.includes('A1'))
      at('orbCore.replicas', oc.replicas, "must be >= 2 unless 'A1' is exempted");
  }
  const floor = oc.autoscaling?.minReplicas ?? oc.replicas ?? 0;
  if (floor > 1 && !(oc.minAvailable < floor)) at('orbCore.minAvailable', oc.minAvailable, `must be below the replica floor (${floor})`);
  resources('orbCore.resources', oc.resources);
  if (!/^[a-z0-9.-]+$/.test(oc.ingress.host)) at('orbCore.ingress.host', oc.ingress.host, 'must be a host name');
  if (!oc.ingress.tlsSecretName && !cfg.exemptions.includes('N4'))
    at('orbCore.ingress.tlsSecretName', oc.ingress.tlsSecretName, "is required unless 'N4' is exempted");

  bounds('speech.scaling', cfg.speech.scaling);
  if (cfg.speech.scaling.minReplicas < 2 && !cfg.exemptions.includes('A1'))
    at('speech.scaling.minReplicas', cfg.speech.scaling.minReplicas, "must be >= 2 unless 'A1' is exempted");
  int('speech.modelLoadSeconds', cfg.speech.modelLoadSeconds, 10);
  resources('speech.resources.whisperx', cfg.speech.resources.whisperx);
  resources('speech.resources.xtts', cfg.speech.resources.xtts);
  for (const role of ['whisperx', 'xtts'] as const) {
    const m = cfg.speech.models[role];
    const f = `speech.models.${role}`;
    if (m.volume.kind === 'pvc') {
      if (!QUANTITY.test(m.volume.size)) at(`${f}.volume.size`, m.volume.size, 'must be a quantity like 20Gi');
      // Few clusters have a default class that can do RWX: the claim would stay Pending.
      if ((m.volume.accessMode ?? 'ReadWriteMany') === 'ReadWriteMany' && !m.volume.storageClassName) {
        at(
          `${f}.volume.storageClassName`,
          m.volume.storageClassName,
          'is required for a ReadWriteMany claim (name a class that provides RWX, or use an emptyDir volume)',
        );
      }
    }
    if (m.volume.kind === 'emptyDir' && !QUANTITY.test(m.volume.sizeLimit))
      at(`${f}.volume.sizeLimit`, m.volume.sizeLimit, 'must be a quantity like 4Gi');
    if (m.source) {
      for (const p of modelSourceProblems(`${cfg.name}.${f}.source`, m.source)) problems.push(p);
      if (m.volume.kind === 'image') at(`${f}.volume.kind`, 'image', 'cannot take a source: use pvc or emptyDir');
      if (m.source.kind !== 'volume' && !cfg.speech.modelEgress)
        at(
          'speech.modelEgress',
          undefined,
          `is required: ${f}.source (${m.source.kind}) is fetched through the default-deny NetworkPolicies`,
        );
    }
  }
  for (const k of ['maxWer', 'maxRoundTripWer'] as const) {
    if (!(cfg.acceptance[k] >= 0 && cfg.acceptance[k] <= 1)) at(`acceptance.${k}`, cfg.acceptance[k], 'must be a word error rate in 0..1');
  }
  const eg = cfg.speech.modelEgress;
  if (eg) {
    int('speech.modelEgress.port', eg.port, 1);
    if ('cidr' in eg.peer && !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(eg.peer.cidr))
      at('speech.modelEgress.peer.cidr', eg.peer.cidr, 'must be an IPv4 CIDR');
    if (eg.proxy !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(eg.proxy);
      } catch {
        /* reported below */
      }
      if (!url || url.protocol !== 'http:') at('speech.modelEgress.proxy', eg.proxy, 'must be an http://host:port URL (a CONNECT proxy)');
      else if (Number(url.port || 80) !== eg.port) at('speech.modelEgress.port', eg.port, `must be the proxy's port (${url.port || 80})`);
    }
  }

  const c = cfg.cores;
  for (const p of quorumProblems(c.cores, c.quorum)) at(`cores.${p.field}`, c[p.field], p.message);
  resources('cores.resources', c.resources);

  int('cali.replicas', cfg.cali.replicas, 1);
  if (cfg.cali.replicas < 2 && !cfg.exemptions.includes('A1'))
    at('cali.replicas', cfg.cali.replicas, "must be >= 2 unless 'A1' is exempted");
  resources('cali.resources', cfg.cali.resources);

  const v = cfg.vault;
  if (v.mode === 'in-cluster') {
    if (!QUANTITY.test(v.storage)) at('vault.storage', v.storage, 'must be a quantity like 10Gi');
    if (!/^\d+(b|kb|mb|gb)$/i.test(v.maxMemory)) at('vault.maxMemory', v.maxMemory, 'must be a Redis size like 512mb');
    resources('vault.resources', v.resources);
    const n = v.replicas ?? 1;
    const replicasProblem = vaultReplicasProblem(n);
    if (replicasProblem) at('vault.replicas', v.replicas, replicasProblem);
    else if (n < 3 && !cfg.exemptions.includes('A1'))
      at(
        'vault.replicas',
        v.replicas,
        "must be >= 3 (a primary, 2 replicas, 3 Sentinels) unless 'A1' is exempted or the vault is external",
      );
    if (!cfg.backup) at('backup', cfg.backup, 'is required for an in-cluster vault');
  } else {
    if (!v.host) at('vault.host', v.host, 'must be set');
    int('vault.port', v.port, 1);
    if (!CIDR.test(v.cidr)) at('vault.cidr', v.cidr, 'must be an IPv4 CIDR');
    for (const s of v.sentinels) if (!/^[^:]+:\d+$/.test(s)) at('vault.sentinels', s, 'must be host:port');
  }
  if (cfg.backup) {
    int('backup.keep', cfg.backup.keep, 1);
    if (cfg.backup.schedule.trim().split(/\s+/).length !== 5)
      at('backup.schedule', cfg.backup.schedule, 'must be a 5-field cron expression');
    if (!QUANTITY.test(cfg.backup.storage)) at('backup.storage', cfg.backup.storage, 'must be a quantity like 20Gi');
    resources('backup.resources', cfg.backup.resources);
    const o = cfg.backup.offsite;
    if (o) {
      let url: URL | undefined;
      try {
        url = new URL(o.endpoint);
      } catch {
        /* reported below */
      }
      if (!url || !['http:', 'https:'].includes(url.protocol) || (url.pathname !== '/' && url.pathname !== ''))
        at('backup.offsite.endpoint', o.endpoint, 'must be http(s)://host[:port]');
      else if (Number(url.port || (url.protocol === 'https:' ? 443 : 80)) !== o.port)
        at('backup.offsite.port', o.port, `must be the endpoint's port (${url.port || (url.protocol === 'https:' ? 443 : 80)})`);
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(o.bucket)) at('backup.offsite.bucket', o.bucket, 'must be an S3 bucket name');
      if ('cidr' in o.peer && !CIDR.test(o.peer.cidr)) at('backup.offsite.peer.cidr', o.peer.cidr, 'must be an IPv4 CIDR');
    }
  }
  resources('jobResources', cfg.jobResources);
  if (cfg.keda && !(cfg.keda.lagCount > 0)) at('keda.lagCount', cfg.keda.lagCount, 'must be > 0');
  if (!/^[A-Za-z0-9:_.-]*$/.test(cfg.keyPrefix)) at('keyPrefix', cfg.keyPrefix, 'may only hold letters, digits and : _ . -');

  if (problems.length) throw new EnvironmentConfigError(cfg.name, problems);
  return cfg;
}
