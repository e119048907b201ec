/** The environments: `dev` (kind/minikube, CPU only) and `prod` (GPU node pools, HA, TLS). */
import type { ResourceSpec } from '../infra';
import type { EnvironmentConfig } from './config';
import { imageRef, lockedHubSource, PINS, TINY_MODEL_PINS } from './pins';

const VERSION = '0.1.0';

function res(cpu: [string, string], memory: [string, string], eph: [string, string] = ['64Mi', '256Mi']): ResourceSpec {
  return {
    cpu: { request: cpu[0], limit: cpu[1] },
    memory: { request: memory[0], limit: memory[1] },
    ephemeralStorage: { request: eph[0], limit: eph[1] },
  };
}

const INGRESS_NGINX = { namespace: 'ingress-nginx', podLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } };

export const dev: EnvironmentConfig = {
  name: 'dev',
  namespace: 'ucm4-dev',
  version: VERSION,
  // Built locally and `kind load`ed: no registry, so no digests.
  images: { app: `ucm4/orb:${VERSION}`, gpu: `ucm4/orb:${VERSION}`, redis: 'redis:7.4.1' },
  // Dev exempts (POLICY.md allows exactly these): I2 — kind-loaded images exist only on the node, Always
  // would fail to pull them; A1 — one replica each to fit a laptop; A7 — no cluster-scoped
  // PriorityClasses on shared dev clusters; N4 — plain HTTP on localhost, no certificate.
  imagePullPolicy: 'IfNotPresent',
  exemptions: ['I2', 'A1', 'A7', 'N4'],
  pinDigests: false,
  priorityClasses: false,
  logLevel: 'debug',
  keyPrefix: '',
  orbCore: {
    replicas: 1,
    minAvailable: 1,
    resources: res(['100m', '1'], ['128Mi', '512Mi']),
    ingress: { host: 'orb.localtest.me', className: 'nginx' },
  },
  speech: {
    gpu: false,
    scaling: { minReplicas: 1, maxReplicas: 2 },
    // The CPU image bakes tiny models in the real formats (Dockerfile: /app/models/tiny).
    models: {
      whisperx: { volume: { kind: 'image', dir: '/app/models/tiny/whisper' } },
      xtts: { volume: { kind: 'image', dir: '/app/models/tiny/voices' } },
    },
    modelLoadSeconds: 120,
    resources: {
      whisperx: res(['100m', '2'], ['256Mi', '1Gi'], ['64Mi', '1Gi']),
      xtts: res(['100m', '2'], ['256Mi', '1Gi'], ['64Mi', '1Gi']),
    },
  },
  cores: { cores: 5, quorum: 3, hostSpread: 'preferred', resources: res(['50m', '500m'], ['128Mi', '384Mi']) },
  cali: { replicas: 1, resources: res(['50m', '500m'], ['128Mi', '384Mi']) },
  vault: { mode: 'in-cluster', storage: '1Gi', maxMemory: '200mb', resources: res(['50m', '500m'], ['128Mi', '256Mi']) },
  backup: { schedule: '17 * * * *', keep: 6, storage: '2Gi', resources: res(['50m', '200m'], ['32Mi', '128Mi']) },
  jobResources: res(['50m', '500m'], ['96Mi', '256Mi']),
  // The tiny models always say one sentence: the Job's acceptance step checks the plumbing only.
  acceptance: { maxWer: 0.25, maxRoundTripWer: 0.35, inJob: true, testMode: true },
  releasePins: false,
  monitoring: {
    prometheusOperator: false,
    prometheus: { namespace: 'monitoring', podLabels: { 'app.kubernetes.io/name': 'prometheus' } },
    speechLagThreshold: 20,
  },
  ingressController: INGRESS_NGINX,
};

// Digests come from charts/images.json (the release workflow's pull request writes it) and model
// revisions from charts/models.lock.json; prod refuses any image without a digest.
/** Secret `model-hub`, key `token`: the hub access token model-fetch sends (secretKeyRef, never in dist/). */
const HUB_TOKEN = { secret: 'model-hub', key: 'token' };

export const prod: EnvironmentConfig = {
  name: 'prod',
  namespace: 'ucm4',
  version: VERSION,
  images: { app: imageRef(PINS.images.app), gpu: imageRef(PINS.images.gpu), redis: imageRef(PINS.images.redis) },
  releasePins: true,
  imagePullPolicy: 'Always',
  exemptions: [],
  pinDigests: true,
  priorityClasses: true,
  logLevel: 'info',
  keyPrefix: '',
  orbCore: {
    autoscaling: { minReplicas: 3, maxReplicas: 12, targetCpuUtilization: 65 },
    minAvailable: 2,
    resources: res(['500m', '2'], ['512Mi', '1Gi'], ['128Mi', '512Mi']),
    ingress: { host: 'orb.ucm4.example.com', className: 'nginx', tlsSecretName: 'orb-tls' },
  },
  speech: {
    gpu: true,
    scaling: { minReplicas: 2, maxReplicas: 8 },
    minAvailable: 1,
    // An emptyDir per pod works on any cluster (no RWX class needed); model-fetch fills and verifies it.
    // The token Secret may hold an empty token for public repositories (docs/deploy.md).
    models: {
      whisperx: { volume: { kind: 'emptyDir', sizeLimit: '3Gi' }, source: lockedHubSource('whisperx', PINS, HUB_TOKEN) },
      xtts: { volume: { kind: 'emptyDir', sizeLimit: '1Gi' }, source: lockedHubSource('xtts', PINS, HUB_TOKEN) },
    },
    // The hub's CDN has no stable address block: model-fetch tunnels through the cluster's egress proxy.
    modelEgress: {
      proxy: 'http://egress-proxy.egress.svc.cluster.local:3128',
      peer: { namespace: 'egress', podLabels: { 'app.kubernetes.io/name': 'egress-proxy' } },
      port: 3128,
    },
    // Large Whisper/XTTS ONNX graphs plus CUDA initialisation.
    modelLoadSeconds: 600,
    resources: {
      whisperx: res(['2', '4'], ['8Gi', '12Gi'], ['1Gi', '4Gi']),
      xtts: res(['2', '4'], ['6Gi', '10Gi'], ['1Gi', '4Gi']),
    },
  },
  cores: { cores: 5, quorum: 3, hostSpread: 'required', resources: res(['500m', '2'], ['1Gi', '2Gi'], ['128Mi', '512Mi']) },
  cali: { replicas: 3, resources: res(['250m', '1'], ['512Mi', '1Gi'], ['128Mi', '512Mi']) },
  // Three nodes under Sentinel: one primary, two replicas, a Sentinel in every pod.
  vault: {
    mode: 'in-cluster',
    replicas: 3,
    storage: '50Gi',
    maxMemory: '6gb',
    resources: res(['1', '2'], ['7Gi', '8Gi'], ['256Mi', '1Gi']),
  },
  backup: {
    schedule: '17 * * * *',
    keep: 48,
    storage: '200Gi',
    resources: res(['100m', '500m'], ['64Mi', '256Mi'], ['64Mi', '256Mi']),
    // Off the cluster: an S3-compatible store in another failure domain; keys from Secret vault-backup-s3.
    offsite: {
      endpoint: 'https://objects.ucm4.example.com',
      bucket: 'ucm4-vault-backups',
      prefix: 'prod/vault/',
      credentialsSecret: { secret: 'vault-backup-s3', accessKeyIdKey: 'access-key-id', secretAccessKeyKey: 'secret-access-key' },
      peer: { cidr: '10.40.0.0/16' },
      port: 443,
    },
  },
  jobResources: res(['100m', '500m'], ['128Mi', '256Mi']),
  // Real weights: the orb-smoke Job fails above these word error rates (orb smoke --accept).
  acceptance: { maxWer: 0.25, maxRoundTripWer: 0.35, inJob: true, testMode: false },
  keda: { lagCount: 10, activationLagCount: 1, operator: { namespace: 'keda', podLabels: { app: 'keda-operator' } } },
  monitoring: {
    prometheusOperator: true,
    prometheus: { namespace: 'monitoring', podLabels: { 'app.kubernetes.io/name': 'prometheus' } },
    speechLagThreshold: 50,
  },
  ingressController: INGRESS_NGINX,
};

export const ENVIRONMENTS: Record<string, EnvironmentConfig> = { dev, prod };

/** The in-cluster hub `dev-fetch` fetches from: a Service in its own namespace, reached on one port. */
export const STAND_IN_HUB = {
  service: 'model-hub',
  namespace: 'model-hub',
  port: 8080,
  podLabels: { 'app.kubernetes.io/name': 'model-hub' },
} as const;

/**
 * `dev` with model delivery switched on: each speech worker's model-fetch init container pulls
 * the tiny models from the hub Service `model-hub` (namespace `model-hub`) into an emptyDir and
 * verifies every sha256 against charts/models.tiny.lock.json before the worker starts. A variant,
 * not an environment: `npm run synth` does not render it (SYNTH_ENVS=dev-fetch does), dist/ holds
 * no copy, and the pod runner stands the hub in (`npm run e2e:pods -- --variant fetch`).
 */
const hubUrl = `http://${STAND_IN_HUB.service}.${STAND_IN_HUB.namespace}.svc.cluster.local:${STAND_IN_HUB.port}`;
export const devFetch: EnvironmentConfig = {
  ...dev,
  name: 'dev-fetch',
  speech: {
    ...dev.speech,
    models: {
      whisperx: {
        volume: { kind: 'emptyDir', sizeLimit: '64Mi' },
        source: lockedHubSource('whisperx', TINY_MODEL_PINS, undefined, hubUrl),
      },
      xtts: { volume: { kind: 'emptyDir', sizeLimit: '64Mi' }, source: lockedHubSource('xtts', TINY_MODEL_PINS, undefined, hubUrl) },
    },
    // NetworkPolicies cannot name the Service: egress goes to the hub's pods in their namespace.
    modelEgress: { peer: { namespace: STAND_IN_HUB.namespace, podLabels: STAND_IN_HUB.podLabels }, port: STAND_IN_HUB.port },
  },
};

/** Variants rendered on request only (SYNTH_ENVS), for the pod runner. */
export const VARIANTS: Record<string, EnvironmentConfig> = { 'dev-fetch': devFetch };
