/**
 * Composes the constructs into one environment: one Chart per component, numbered so that
 * `kubectl apply -f dist/<env>/NN-*.k8s.yaml` in that order creates the namespace and config before
 * the workloads (`kubectl apply -k dist/<env>/` sorts by kind to the same effect).
 */
import { App, Chart } from 'cdk8s';
import {
  Cali, CoreQuorum, NetworkPolicies, Observability, OrbConfig, OrbCore, OrbNamespace, orbNetworkGraph, PRIORITY_BATCH,
  PRIORITY_CRITICAL, PRIORITY_SERVING, PriorityClasses, inClusterVaultEndpoint, SCRAPED, SeedVault, SmokeTest, SpeechWorker, Vault, VaultBackup,
  type ExemptableRule, type NetworkGraph, type VaultEndpoint,
} from '../infra';
import { chatPort } from '../infra/cali';
import identity from '../services/seed/identity.json';
import { validateEnvironment, type EnvironmentConfig } from './config';

/** File names (without .k8s.yaml) of the component charts, in apply order. */
export const COMPONENT_FILES = [
  '00-namespace', '01-config', '02-network', '10-vault', '11-vault-backup', '12-seed-vault',
  '20-core4', '21-cali', '22-whisperx', '23-xtts', '30-orb-core', '40-monitoring',
] as const;

/** Name of the test chart's file (its own App, applied separately). */
export const TEST_PODS_FILE = 'test-pods';

export interface OrbStack {
  readonly config: EnvironmentConfig;
  readonly graph: NetworkGraph;
  readonly charts: Record<string, Chart>;
}

function vaultEndpoint(cfg: EnvironmentConfig): VaultEndpoint {
  const v = cfg.vault;
  if (v.mode === 'in-cluster') return inClusterVaultEndpoint(v.replicas ?? 1);
  return { mode: 'external', host: v.host, port: v.port, sentinels: v.sentinels, sentinelMaster: v.sentinelMaster, tls: v.tls };
}

export function networkGraph(cfg: EnvironmentConfig): NetworkGraph {
  const v = cfg.vault;
  return orbNetworkGraph({
    vault: v.mode === 'in-cluster' ? { mode: 'in-cluster', sentinel: (v.replicas ?? 1) > 1 }
      : { mode: 'external', cidr: v.cidr, ports: [...new Set([v.port, ...v.sentinels.map((s) => Number(s.split(':')[1]))])].sort((a, b) => a - b) },
    ingressController: cfg.ingressController,
    prometheus: cfg.monitoring.prometheus,
    keda: cfg.keda?.operator,
    // CALI's egress comes from the same config that sets its endpoint.
    caliChat: cfg.cali.chat ? { cidr: cfg.cali.chat.cidr, port: chatPort(cfg.cali.chat.url) } : undefined,
    modelSource: cfg.speech.modelEgress ? { peer: cfg.speech.modelEgress.peer, port: cfg.speech.modelEgress.port } : undefined,
    backupStore: cfg.backup?.offsite ? { peer: cfg.backup.offsite.peer, port: cfg.backup.offsite.port } : undefined,
  });
}

/** Exemptions that apply to a kind of object (A1 concerns Deployments, N4 the Ingress only; the vault's A1 is its own). */
function exemptionsFor(cfg: EnvironmentConfig, kind: 'Deployment' | 'StatefulSet' | 'Job' | 'Ingress'): ExemptableRule[] {
  const applies: Record<ExemptableRule, readonly string[]> = {
    I2: ['Deployment', 'StatefulSet', 'Job'], A7: ['Deployment', 'StatefulSet', 'Job'], A1: ['Deployment'], N4: ['Ingress'],
  };
  return cfg.exemptions.filter((r) => applies[r].includes(kind));
}

/** Builds every component chart of `config` into `app`. */
export function buildEnvironment(app: App, config: EnvironmentConfig): OrbStack {
  const cfg = validateEnvironment(config);
  const ns = cfg.namespace;
  const chart = (file: string) => new Chart(app, file, { namespace: file === '00-namespace' ? undefined : ns });
  const charts: Record<string, Chart> = {};
  const priority = (p: string) => (cfg.priorityClasses ? p : undefined);
  const common = (kind: 'Deployment' | 'StatefulSet' | 'Job') => ({
    version: cfg.version,
    imagePullPolicy: cfg.imagePullPolicy,
    policyExemptions: exemptionsFor(cfg, kind),
    scrapeAnnotations: !cfg.monitoring.prometheusOperator,
    // Jobs keep no checksum: their pod template is immutable, a changed one could not be re-applied.
    configChecksum: kind === 'Job' ? undefined : orbConfig.checksum,
  });
  const vault = vaultEndpoint(cfg);
  const graph = networkGraph(cfg);

  charts['00-namespace'] = chart('00-namespace');
  new OrbNamespace(charts['00-namespace'], 'namespace', { name: ns, version: cfg.version });
  if (cfg.priorityClasses) new PriorityClasses(charts['00-namespace'], 'priority-classes', { version: cfg.version });

  charts['01-config'] = chart('01-config');
  const orbConfig = new OrbConfig(charts['01-config'], 'orb-config', { environment: cfg.name, logLevel: cfg.logLevel, keyPrefix: cfg.keyPrefix, version: cfg.version });

  charts['02-network'] = chart('02-network');
  new NetworkPolicies(charts['02-network'], 'network-policies', {
    graph, components: graph.components.filter((c) => c !== 'orb-smoke'), version: cfg.version,
  });

  if (cfg.vault.mode === 'in-cluster') {
    charts['10-vault'] = chart('10-vault');
    const single = (cfg.vault.replicas ?? 1) < 3;
    new Vault(charts['10-vault'], 'vault', {
      ...common('StatefulSet'),
      // A single-node vault (dev only: the config refuses it elsewhere) carries A1's exemption.
      policyExemptions: [...exemptionsFor(cfg, 'StatefulSet'), ...(single && cfg.exemptions.includes('A1') ? ['A1' as const] : [])],
      image: cfg.images.redis,
      priorityClassName: priority(PRIORITY_CRITICAL),
      scrapeAnnotations: false,
      resources: cfg.vault.resources,
      storage: cfg.vault.storage,
      storageClassName: cfg.vault.storageClassName,
      maxMemory: cfg.vault.maxMemory,
      keyPrefix: cfg.keyPrefix,
      replicas: cfg.vault.replicas,
    });
  }
  if (cfg.backup) {
    charts['11-vault-backup'] = chart('11-vault-backup');
    new VaultBackup(charts['11-vault-backup'], 'vault-backup', {
      ...common('Job'),
      scrapeAnnotations: false,
      image: cfg.images.redis,
      priorityClassName: priority(PRIORITY_BATCH),
      vault,
      schedule: cfg.backup.schedule,
      keep: cfg.backup.keep,
      storage: cfg.backup.storage,
      resources: cfg.backup.resources,
      offsite: cfg.backup.offsite ? {
        endpoint: cfg.backup.offsite.endpoint, bucket: cfg.backup.offsite.bucket, prefix: cfg.backup.offsite.prefix,
        region: cfg.backup.offsite.region, credentialsSecret: cfg.backup.offsite.credentialsSecret, image: cfg.images.app,
      } : undefined,
    });
  }
  charts['12-seed-vault'] = chart('12-seed-vault');
  new SeedVault(charts['12-seed-vault'], 'seed-vault', {
    ...common('Job'), scrapeAnnotations: false, image: cfg.images.app, priorityClassName: priority(PRIORITY_BATCH), vault, resources: cfg.jobResources,
    // One document: the same file the seed image bakes in.
    identity,
  });

  charts['20-core4'] = chart('20-core4');
  const cores = new CoreQuorum(charts['20-core4'], 'core4', {
    ...common('StatefulSet'),
    image: cfg.images.app,
    priorityClassName: priority(PRIORITY_CRITICAL),
    cores: cfg.cores.cores,
    quorum: cfg.cores.quorum,
    hostSpread: cfg.cores.hostSpread,
    resources: cfg.cores.resources,
    vault,
  });

  charts['21-cali'] = chart('21-cali');
  new Cali(charts['21-cali'], 'cali', {
    ...common('Deployment'),
    image: cfg.images.app,
    priorityClassName: priority(PRIORITY_SERVING),
    replicas: cfg.cali.replicas,
    resources: cfg.cali.resources,
    cores: cores.cores,
    quorum: cores.quorum,
    chat: cfg.cali.chat,
    vault,
  });

  for (const [file, role] of [['22-whisperx', 'whisperx'], ['23-xtts', 'xtts']] as const) {
    charts[file] = chart(file);
    new SpeechWorker(charts[file], role, {
      ...common('Deployment'),
      role,
      image: cfg.speech.gpu ? cfg.images.gpu : cfg.images.app,
      priorityClassName: priority(PRIORITY_SERVING),
      resources: cfg.speech.resources[role],
      vault,
      gpu: cfg.speech.gpu ? { count: 1 } : undefined,
      modelVolume: cfg.speech.models[role].volume,
      modelSource: cfg.speech.models[role].source,
      modelProxy: cfg.speech.modelEgress?.proxy,
      modelLoadSeconds: cfg.speech.modelLoadSeconds,
      minAvailable: cfg.speech.minAvailable,
      keyPrefix: cfg.keyPrefix,
      scaling: {
        ...cfg.speech.scaling,
        keda: cfg.keda ? { lagCount: cfg.keda.lagCount, activationLagCount: cfg.keda.activationLagCount } : undefined,
      },
    });
  }

  charts['30-orb-core'] = chart('30-orb-core');
  new OrbCore(charts['30-orb-core'], 'orb-core', {
    ...common('Deployment'),
    image: cfg.images.app,
    priorityClassName: priority(PRIORITY_SERVING),
    replicas: cfg.orbCore.replicas,
    // The gateway fans each turn out to exactly the cores the StatefulSet runs.
    settings: { cores: cores.cores },
    autoscaling: cfg.orbCore.autoscaling,
    minAvailable: cfg.orbCore.minAvailable,
    resources: cfg.orbCore.resources,
    vault,
    ingress: { ...cfg.orbCore.ingress, policyExemptions: exemptionsFor(cfg, 'Ingress') },
  });

  if (cfg.monitoring.prometheusOperator) {
    charts['40-monitoring'] = chart('40-monitoring');
    new Observability(charts['40-monitoring'], 'observability', {
      namespace: ns, services: SCRAPED, quorum: cores.quorum, speechLagThreshold: cfg.monitoring.speechLagThreshold, version: cfg.version,
    });
  }
  return { config: cfg, graph, charts };
}

/** The test chart: Job `orb-smoke` and its NetworkPolicy, applied after the stack is up. */
export function buildTestPods(app: App, config: EnvironmentConfig): Chart {
  const cfg = validateEnvironment(config);
  const chart = new Chart(app, TEST_PODS_FILE, { namespace: cfg.namespace });
  new SmokeTest(chart, 'orb-smoke', {
    version: cfg.version,
    image: cfg.images.app,
    imagePullPolicy: cfg.imagePullPolicy,
    policyExemptions: exemptionsFor(cfg, 'Job'),
    priorityClassName: cfg.priorityClasses ? PRIORITY_BATCH : undefined,
    resources: cfg.jobResources,
    acceptance: cfg.acceptance.inJob ? cfg.acceptance : undefined,
  });
  new NetworkPolicies(chart, 'network-policies', { graph: networkGraph(cfg), components: ['orb-smoke'], defaultDeny: false, version: cfg.version });
  return chart;
}
