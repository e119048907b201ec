/**
 * Composes the constructs into one environment from the typed config, two ways:
 * - `OrbStack`: a construct another cdk8s app puts in its own Chart (the installable library);
 *   a `namePrefix` lets two stacks share a namespace;
 * - `buildEnvironment`: this repo's app: one Chart per component, numbered so that
 *   `kubectl apply -f dist/<env>/NN-*.k8s.yaml` in that order creates the namespace and config
 *   before the workloads (`kubectl apply -k dist/<env>/` sorts by kind to the same effect).
 * Both run the same `composeStack`, so they cannot drift apart.
 */
import { App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { COMPONENTS, ORB_CONFIG_NAME, stackNames, VAULT_ACL_SECRET_NAME, type StackNames } from '../services/contract';
import {
  Cali,
  CoreQuorum,
  ExternalVaultAcl,
  NetworkPolicies,
  Observability,
  OrbConfig,
  OrbCore,
  OrbNamespace,
  orbNetworkGraph,
  PRIORITY_BATCH,
  PRIORITY_CRITICAL,
  PRIORITY_SERVING,
  PriorityClasses,
  SCRAPED,
  SCRAPED_ROLES,
  SeedVault,
  SmokeTest,
  SpeechWorker,
  Vault,
  VaultBackup,
  type ExemptableRule,
  type NetworkGraph,
  type VaultEndpoint,
} from '../infra';
import { chatPort } from '../infra/cali';
import identity from '../services/seed/identity.json';
import { validateEnvironment, type EnvironmentConfig } from './config';

/** File names (without .k8s.yaml) of the component charts, in apply order. */
export const COMPONENT_FILES = [
  '00-namespace',
  '01-config',
  '02-network',
  '10-vault',
  '11-vault-backup',
  '12-seed-vault',
  '20-core4',
  '21-cali',
  '22-whisperx',
  '23-xtts',
  '30-orb-core',
  '40-monitoring',
] as const;

/** Name of the test chart's file (its own App, applied separately). */
export const TEST_PODS_FILE = 'test-pods';

/** An environment as `buildEnvironment` renders it: one Chart per component file. */
export interface OrbEnvironment {
  readonly config: EnvironmentConfig;
  readonly graph: NetworkGraph;
  readonly charts: Record<string, Chart>;
}

/** Where an external vault is; an in-cluster vault's endpoint is its construct's (`Vault.endpoint`). */
function externalVaultEndpoint(cfg: EnvironmentConfig, names: StackNames): VaultEndpoint {
  const v = cfg.vault;
  if (v.mode === 'in-cluster') throw new Error('externalVaultEndpoint: the vault is in-cluster');
  const acl =
    names.prefix || names.vaultAclSecret !== VAULT_ACL_SECRET_NAME
      ? { aclSecret: names.vaultAclSecret, userPrefix: names.vaultUser('') }
      : {};
  return { mode: 'external', host: v.host, port: v.port, sentinels: v.sentinels, sentinelMaster: v.sentinelMaster, tls: v.tls, ...acl };
}

export function networkGraph(cfg: EnvironmentConfig, names: StackNames = stackNames()): NetworkGraph {
  const v = cfg.vault;
  return orbNetworkGraph({
    names,
    vault:
      v.mode === 'in-cluster'
        ? { mode: 'in-cluster', sentinel: (v.replicas ?? 1) > 1 }
        : {
            mode: 'external',
            cidr: v.cidr,
            ports: [...new Set([v.port, ...v.sentinels.map((s) => Number(s.split(':')[1]))])].sort((a, b) => a - b),
          },
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
    I2: ['Deployment', 'StatefulSet', 'Job'],
    A7: ['Deployment', 'StatefulSet', 'Job'],
    A1: ['Deployment'],
    N4: ['Ingress'],
  };
  return cfg.exemptions.filter((r) => applies[r].includes(kind));
}

/** How a stack is composed beyond its environment config. */
export interface StackOptions {
  /**
   * Prefix of every object name, label, selector, NetworkPolicy and vault ACL user of the stack
   * (`'blue-'`), so two stacks can live in one namespace.
   * @default '' (the names in services/contract)
   */
  readonly namePrefix?: string;
  /**
   * The ConfigMap the services load (envFrom): passed in (its name, and a checksum of its data
   * that rolls the pods when it changes), or created (an OrbConfig named `<prefix>orb-config`).
   * @default - created
   */
  readonly configMap?: { readonly name: string; readonly checksum?: string };
  /**
   * Render the cluster-wide and namespace objects (the Namespace, PriorityClasses). Leave them
   * to one stack when several share a namespace.
   * @default true
   */
  readonly clusterObjects?: boolean;
  /**
   * Secrets the stack reads, passed in by name (they hold credentials, so no manifest of ours
   * creates them): the vault ACL users' passwords (keys `<user>-password`) and the gateway's API
   * keys (key `keys`).
   * @default - `<prefix>vault-acl` and `<prefix>orb-api-keys`
   */
  readonly secrets?: { readonly vaultAcl?: string; readonly apiKeys?: string };
}

/** The objects of a stack rendered under a scope factory: one scope per component file. */
function composeStack(
  config: EnvironmentConfig,
  opts: StackOptions,
  scope: (file: string) => Construct,
): {
  cfg: EnvironmentConfig;
  graph: NetworkGraph;
  scopes: Record<string, Construct>;
  names: StackNames;
} {
  const cfg = validateEnvironment(config);
  const base = stackNames(opts.namePrefix ?? '');
  const names: StackNames = {
    ...base,
    vaultAclSecret: opts.secrets?.vaultAcl ?? base.vaultAclSecret,
    apiKeysSecret: opts.secrets?.apiKeys ?? base.apiKeysSecret,
  };
  // Props carry the names only where they differ from the contract's, so default renders stay as they were.
  const custom = names.prefix !== '' || opts.secrets !== undefined;
  // Two stacks on one external vault must not share keys: a prefixed stack's key prefix defaults to its name.
  const keyPrefix = cfg.keyPrefix || (names.prefix && cfg.vault.mode === 'external' ? `${names.prefix.slice(0, -1)}:` : cfg.keyPrefix);
  const ns = cfg.namespace;
  const scopes: Record<string, Construct> = {};
  const chart = (file: string) => (scopes[file] = scope(file));
  const priority = (p: string) => (cfg.priorityClasses ? p : undefined);
  const common = (kind: 'Deployment' | 'StatefulSet' | 'Job') => ({
    version: cfg.version,
    imagePullPolicy: cfg.imagePullPolicy,
    policyExemptions: exemptionsFor(cfg, kind),
    scrapeAnnotations: !cfg.monitoring.prometheusOperator,
    // Jobs keep no checksum: their pod template is immutable, a changed one could not be re-applied.
    configChecksum: kind === 'Job' ? undefined : configChecksum,
    // Unprefixed stacks keep their props as they were (names default to the contract's).
    ...(custom ? { names } : {}),
    ...(opts.configMap ? { configMapName: opts.configMap.name } : {}),
  });
  // The services reach the vault where its construct says it is (Vault.endpoint), or at the external address.
  let vault: VaultEndpoint | undefined = cfg.vault.mode === 'external' ? externalVaultEndpoint(cfg, names) : undefined;
  const graph = networkGraph(cfg, names);

  if (opts.clusterObjects ?? true) {
    chart('00-namespace');
    new OrbNamespace(scopes['00-namespace'], 'namespace', { name: ns, version: cfg.version });
    if (cfg.priorityClasses) new PriorityClasses(scopes['00-namespace'], 'priority-classes', { version: cfg.version });
  }

  let configChecksum = opts.configMap?.checksum;
  if (!opts.configMap) {
    chart('01-config');
    configChecksum = new OrbConfig(scopes['01-config'], ORB_CONFIG_NAME, {
      environment: cfg.name,
      logLevel: cfg.logLevel,
      keyPrefix,
      version: cfg.version,
      ...(names.prefix ? { name: names.orbConfig } : {}),
    }).checksum;
  }

  chart('02-network');
  new NetworkPolicies(scopes['02-network'], 'network-policies', {
    graph,
    components: graph.components.filter((c) => c !== names.component.orbSmoke),
    version: cfg.version,
    ...(names.prefix ? { namePrefix: names.prefix } : {}),
  });

  if (cfg.vault.mode === 'in-cluster') {
    chart('10-vault');
    const single = (cfg.vault.replicas ?? 1) < 3;
    vault = new Vault(scopes['10-vault'], COMPONENTS.vault, {
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
      keyPrefix,
      replicas: cfg.vault.replicas,
    }).endpoint;
  }
  if (!vault) throw new Error(`${cfg.name}.vault: no endpoint (mode ${cfg.vault.mode})`);
  if (cfg.vault.mode === 'external' && names.prefix) {
    // A shared external vault: this stack's users and key patterns, for the vault's operator to load.
    chart('10-vault');
    new ExternalVaultAcl(scopes['10-vault'], 'external-vault-acl', { names, keyPrefix, version: cfg.version });
  }
  if (cfg.backup) {
    chart('11-vault-backup');
    new VaultBackup(scopes['11-vault-backup'], COMPONENTS.vaultBackup, {
      ...common('Job'),
      scrapeAnnotations: false,
      image: cfg.images.redis,
      priorityClassName: priority(PRIORITY_BATCH),
      vault,
      schedule: cfg.backup.schedule,
      keep: cfg.backup.keep,
      storage: cfg.backup.storage,
      resources: cfg.backup.resources,
      offsite: cfg.backup.offsite
        ? {
            endpoint: cfg.backup.offsite.endpoint,
            bucket: cfg.backup.offsite.bucket,
            prefix: cfg.backup.offsite.prefix,
            region: cfg.backup.offsite.region,
            credentialsSecret: cfg.backup.offsite.credentialsSecret,
            image: cfg.images.app,
          }
        : undefined,
    });
  }
  chart('12-seed-vault');
  new SeedVault(scopes['12-seed-vault'], COMPONENTS.seedVault, {
    ...common('Job'),
    scrapeAnnotations: false,
    image: cfg.images.app,
    priorityClassName: priority(PRIORITY_BATCH),
    vault,
    resources: cfg.jobResources,
    // One document: the same file the seed image bakes in.
    identity,
  });

  chart('20-core4');
  const cores = new CoreQuorum(scopes['20-core4'], COMPONENTS.coreQuorum, {
    ...common('StatefulSet'),
    image: cfg.images.app,
    priorityClassName: priority(PRIORITY_CRITICAL),
    cores: cfg.cores.cores,
    quorum: cfg.cores.quorum,
    hostSpread: cfg.cores.hostSpread,
    resources: cfg.cores.resources,
    vault,
  });

  chart('21-cali');
  new Cali(scopes['21-cali'], COMPONENTS.cali, {
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

  for (const [file, role] of [
    ['22-whisperx', 'whisperx'],
    ['23-xtts', 'xtts'],
  ] as const) {
    chart(file);
    new SpeechWorker(scopes[file], role, {
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
      keyPrefix,
      scaling: {
        ...cfg.speech.scaling,
        keda: cfg.keda ? { lagCount: cfg.keda.lagCount, activationLagCount: cfg.keda.activationLagCount } : undefined,
      },
    });
  }

  chart('30-orb-core');
  new OrbCore(scopes['30-orb-core'], COMPONENTS.orbCore, {
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
    chart('40-monitoring');
    new Observability(scopes['40-monitoring'], 'observability', {
      namespace: ns,
      services: names.prefix ? SCRAPED_ROLES.map((r) => names.component[r]) : SCRAPED,
      quorum: cores.quorum,
      speechLagThreshold: cfg.monitoring.speechLagThreshold,
      version: cfg.version,
      ...(names.prefix ? { names } : {}),
    });
  }
  return { cfg, graph, scopes, names };
}

/** Builds every component chart of `config` into `app` (this repo's dist/). */
export function buildEnvironment(app: App, config: EnvironmentConfig, opts: StackOptions = {}): OrbEnvironment {
  const ns = config.namespace;
  const { cfg, graph, scopes } = composeStack(
    config,
    opts,
    (file) => new Chart(app, file, { namespace: file === '00-namespace' ? undefined : ns }),
  );
  return { config: cfg, graph, charts: scopes as Record<string, Chart> };
}

export interface OrbStackProps extends StackOptions {
  /** The environment: images, replicas, vault, resources… (validated; errors name the field). */
  readonly config: EnvironmentConfig;
  /**
   * Also render the in-cluster smoke test Job (`<prefix>orb-smoke`) and its NetworkPolicy.
   * @default false
   */
  readonly testPods?: boolean;
}

/**
 * The whole stack as one construct, for a cdk8s app of your own: put it in a Chart whose
 * namespace is `config.namespace`. Two stacks with different `namePrefix`es share a namespace;
 * each gets its own vault unless `config.vault` points both at one external vault, where each
 * keeps its own key prefix and ACL users.
 *
 * @example
 * const chart = new Chart(app, 'orb', { namespace: 'orb' });
 * new OrbStack(chart, 'blue', { config, namePrefix: 'blue-' });
 * new OrbStack(chart, 'green', { config, namePrefix: 'green-', clusterObjects: false });
 */
export class OrbStack extends Construct {
  /** The validated config. */
  public readonly config: EnvironmentConfig;
  /** The allowed connections its NetworkPolicies render. */
  public readonly graph: NetworkGraph;
  /** Every name the stack rendered. */
  public readonly names: StackNames;

  constructor(scope: Construct, id: string, props: OrbStackProps) {
    super(scope, id);
    const { cfg, graph, names } = composeStack(props.config, props, (file) => new Construct(this, file));
    if (props.testPods) addTestPods(new Construct(this, TEST_PODS_FILE), cfg, names);
    this.config = cfg;
    this.graph = graph;
    this.names = names;
  }
}

/** The test chart: Job `orb-smoke` and its NetworkPolicy, applied after the stack is up. */
export function buildTestPods(app: App, config: EnvironmentConfig, opts: Pick<StackOptions, 'namePrefix'> = {}): Chart {
  const cfg = validateEnvironment(config);
  const chart = new Chart(app, TEST_PODS_FILE, { namespace: cfg.namespace });
  addTestPods(chart, cfg, stackNames(opts.namePrefix ?? ''));
  return chart;
}

function addTestPods(scope: Construct, cfg: EnvironmentConfig, names: StackNames): void {
  new SmokeTest(scope, COMPONENTS.orbSmoke, {
    ...(names.prefix ? { names } : {}),
    version: cfg.version,
    image: cfg.images.app,
    imagePullPolicy: cfg.imagePullPolicy,
    policyExemptions: exemptionsFor(cfg, 'Job'),
    priorityClassName: cfg.priorityClasses ? PRIORITY_BATCH : undefined,
    resources: cfg.jobResources,
    acceptance: cfg.acceptance.inJob ? cfg.acceptance : undefined,
  });
  new NetworkPolicies(scope, 'network-policies', {
    graph: networkGraph(cfg, names),
    components: [names.component.orbSmoke],
    defaultDeny: false,
    version: cfg.version,
  });
}
