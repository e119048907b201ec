/**
 * Vault: the one stateful component — Redis as StatefulSet `vault` (AOF on a PVC from
 * volumeClaimTemplates, ACL users per component), or an external Redis/Sentinel endpoint.
 * With `replicas` >= 3 every pod runs a Redis node and a Sentinel (vault-sentinel.ts): one primary,
 * the others replicas, clients find the primary through the Sentinels.
 */
import { COMPONENTS, PORTS } from '../services/contract';
import { createHash } from 'node:crypto';
import { Construct } from 'constructs';
import { componentLabels, selectorLabels } from './labels';
import { k8s } from './k8s';
import { hardenedContainer, hardenedPodSpec, type ResourceSpec, SMALL_RESOURCES } from './hardened-pod';
import { type VaultEndpoint } from './service-env';
import { aclRules, ASSEMBLE_ACL_SCRIPT, VAULT_USERS } from './vault-acl';
import {
  haNodeAclRules,
  PRESTOP_SCRIPT,
  replicationConfLines,
  SENTINEL_PORT,
  sentinelAclRules,
  START_REDIS_SCRIPT,
  START_SENTINEL_SCRIPT,
  VAULT_HA_USERS,
  VAULT_SENTINEL_MASTER,
} from './vault-sentinel';
import { namesOf, podDisruptionBudget, workloadAnnotations, workloadServiceAccount, type WorkloadProps } from './workload-support';
import { stackNames, VAULT_ACL_SECRET_NAME, vaultReplicasProblem, type StackNames } from '../services/contract';

export const VAULT: string = COMPONENTS.vault;
export const VAULT_PORT: number = PORTS.vault;

export interface InClusterVaultProps extends WorkloadProps {
  readonly resources: ResourceSpec;
  /** Size of the data PVC (AOF + RDB). */
  readonly storage: string;
  /** @default - the cluster's default StorageClass */
  readonly storageClassName?: string;
  /**
   * Redis `maxmemory`; keep under the memory limit (noeviction: writes fail rather than lose state).
   * @default '256mb'
   */
  readonly maxMemory?: string;
  /** Key prefix the services use; ACL key patterns include it. @default '' */
  readonly keyPrefix?: string;
  /**
   * Redis nodes: 1 (a single pod), or an odd number >= 3 (a primary, replicas, and a Sentinel
   * in every pod; quorum a majority).
   * @default 1
   */
  readonly replicas?: number;
  /** Settings of a replicated vault (ignored with one replica). @default - see VaultHaProps */
  readonly ha?: VaultHaProps;
}

/** Tuning of the replicated vault. */
export interface VaultHaProps {
  /** A primary refuses writes unless this many replicas are connected. @default 1 */
  readonly minReplicasToWrite?: number;
  /** Seconds since a replica's last ack for it to count as connected. @default 10 */
  readonly minReplicasMaxLag?: number;
  /** Sentinel: how long a node is silent before it is down. @default 5000 */
  readonly downAfterMilliseconds?: number;
  /**
   * Sentinel failover-timeout. Also how long Sentinels wait to retry after a split vote (twice
   * this), which is likely when the primary's pod takes its own Sentinel down with it.
   * @default 15000
   */
  readonly failoverTimeoutMilliseconds?: number;
  /** Cluster DNS domain of the announced per-pod names. @default 'cluster.local' */
  readonly clusterDomain?: string;
  /**
   * Spread over zones: 'required' (DoNotSchedule) keeps a zone outage from taking a quorum.
   * @default 'required'
   */
  readonly zoneSpread?: 'required' | 'preferred';
  /** Resources of each Sentinel container. @default SMALL_RESOURCES */
  readonly sentinelResources?: ResourceSpec;
}

/** Where the HA pods write generated config (memory-backed: it holds masterauth). */
const RUN_DIR = '/etc/redis/run';

/** Redis configuration: AOF on, never evict, ACL users from the assembled file (plus replication when HA). */
export function redisConf(maxMemory: string, replication?: { minReplicasToWrite: number; minReplicasMaxLag: number }): string {
  return [
    'bind 0.0.0.0',
    `port ${VAULT_PORT}`,
    'dir /data',
    'appendonly yes',
    'appendfsync everysec',
    'save 3600 1 300 100 60 10000',
    `maxmemory ${maxMemory}`,
    'maxmemory-policy noeviction',
    'aclfile /etc/redis/acl/users.acl',
    ...(replication ? replicationConfLines(replication, RUN_DIR) : []),
    '',
  ].join('\n');
}

/** How clients reach the in-cluster vault of `replicas` nodes: directly, or through its Sentinels. */
export function inClusterVaultEndpoint(replicas = 1, names: StackNames = stackNames()): VaultEndpoint {
  const vault = names.component.vault;
  // The unprefixed stack keeps the endpoint it always had (no ACL naming fields).
  const acl =
    names.prefix || names.vaultAclSecret !== VAULT_ACL_SECRET_NAME
      ? { aclSecret: names.vaultAclSecret, userPrefix: names.vaultUser('') }
      : {};
  if (replicas === 1) return { mode: 'in-cluster', serviceName: vault, port: VAULT_PORT, ...acl };
  return {
    mode: 'in-cluster',
    serviceName: vault,
    port: VAULT_PORT,
    // Short names: clients live in the vault's namespace (search path); Sentinels answer with FQDNs.
    sentinels: Array.from({ length: replicas }, (_, i) => `${vault}-${i}.${vault}:${SENTINEL_PORT}`),
    sentinelMaster: VAULT_SENTINEL_MASTER,
    ...acl,
  };
}

export class Vault extends Construct {
  public readonly endpoint: VaultEndpoint;
  public readonly statefulSet: k8s.KubeStatefulSet;
  public readonly service: k8s.KubeService;

  constructor(scope: Construct, id: string, props: InClusterVaultProps) {
    super(scope, id);
    const names = namesOf(props);
    const name = names.component.vault;
    const maxMemory = props.maxMemory ?? '256mb';
    if (!/^\d+(b|kb|mb|gb)$/i.test(maxMemory)) throw new Error(`'maxMemory' (${maxMemory}) must be a Redis size like 256mb`);
    const replicas = props.replicas ?? 1;
    const replicasProblem = vaultReplicasProblem(replicas);
    if (replicasProblem) throw new Error(`'replicas' (${replicas}) ${replicasProblem}`);
    const ha = replicas > 1 ? resolveHa(props.ha ?? {}, replicas) : undefined;
    const labels = componentLabels({ name, component: 'vault', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);

    const conf = new k8s.KubeConfigMap(this, 'config', {
      metadata: { name: `${name}-config`, labels },
      data: {
        'redis.conf': redisConf(maxMemory, ha),
        ...(ha ? { 'start-redis.sh': START_REDIS_SCRIPT, 'start-sentinel.sh': START_SENTINEL_SCRIPT, 'prestop.sh': PRESTOP_SCRIPT } : {}),
      },
    });
    // Every node assembles the same users from the same rules: ACLs are not replicated by Redis.
    const rulesData: Record<string, string> = { 'assemble-acl.sh': ASSEMBLE_ACL_SCRIPT };
    for (const user of VAULT_USERS) rulesData[`${names.vaultUser(user)}.rules`] = aclRules(user, props.keyPrefix ?? '');
    if (ha) for (const user of VAULT_HA_USERS) rulesData[`${user}.rules`] = haNodeAclRules(user);
    const rules = new k8s.KubeConfigMap(this, 'acl-rules', {
      metadata: { name: `${name}-acl-rules`, labels },
      data: rulesData,
    });
    const sentinelRules = ha
      ? new k8s.KubeConfigMap(this, 'sentinel-acl-rules', {
          metadata: { name: `${name}-sentinel-acl-rules`, labels },
          data: Object.fromEntries(
            [...VAULT_USERS.map((u) => names.vaultUser(u)), 'sentinel'].map((u) => [`${u}.rules`, sentinelAclRules(u)]),
          ),
        })
      : undefined;
    // Config changes must restart Redis (it reads these files at start only).
    const checksum = createHash('sha256')
      .update(JSON.stringify([conf.toJson(), rules.toJson(), ...(sentinelRules ? [sentinelRules.toJson()] : [])]))
      .digest('hex');

    this.service = new k8s.KubeService(this, 'service', {
      metadata: { name, labels },
      spec: {
        // Headless, as the StatefulSet requires (M5): per-pod names vault-N.vault that the nodes
        // announce. Published before ready, so a starting node can reach its peers by name.
        clusterIp: 'None',
        publishNotReadyAddresses: ha ? true : undefined,
        selector: selectorLabels(name),
        ports: [
          { name: 'redis', port: VAULT_PORT, targetPort: k8s.IntOrString.fromString('redis'), protocol: 'TCP' },
          ...(ha ? [{ name: 'sentinel', port: SENTINEL_PORT, targetPort: k8s.IntOrString.fromString('sentinel'), protocol: 'TCP' }] : []),
        ],
      },
    });

    const pullPolicy = props.imagePullPolicy ?? 'Always';
    const assemble = (rulesDir: string, out: string) => `sh /etc/redis/acl-rules/assemble-acl.sh ${rulesDir} /secrets/vault-acl ${out}`;
    const initContainers = [
      hardenedContainer({
        name: 'assemble-acl',
        image: props.image,
        imagePullPolicy: pullPolicy,
        command: ha
          ? [
              'sh',
              '-c',
              `${assemble('/etc/redis/acl-rules', '/etc/redis/acl/users.acl')} && ${assemble('/etc/redis/sentinel-acl-rules', '/etc/redis/acl/sentinel.acl')}`,
            ]
          : ['sh', '/etc/redis/acl-rules/assemble-acl.sh', '/etc/redis/acl-rules', '/secrets/vault-acl', '/etc/redis/acl/users.acl'],
        resources: SMALL_RESOURCES,
        volumeMounts: [
          { name: 'acl-rules', mountPath: '/etc/redis/acl-rules', readOnly: true },
          ...(ha ? [{ name: 'sentinel-acl-rules', mountPath: '/etc/redis/sentinel-acl-rules', readOnly: true }] : []),
          { name: 'acl-secret', mountPath: '/secrets/vault-acl', readOnly: true },
          { name: 'acl', mountPath: '/etc/redis/acl' },
        ],
      }),
    ];
    const containers = [redisContainer(props, pullPolicy, names, ha)];
    if (ha) containers.push(sentinelContainer(props, pullPolicy, names, ha));

    this.statefulSet = new k8s.KubeStatefulSet(this, 'stateful-set', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        serviceName: name,
        replicas,
        // OrderedReady: vault-0 is up before vault-1 asks it who the primary is.
        podManagementPolicy: ha ? 'OrderedReady' : undefined,
        selector: { matchLabels: selectorLabels(name) },
        updateStrategy: { type: 'RollingUpdate' },
        template: {
          metadata: { labels, annotations: { 'ucm4.dev/config-checksum': checksum } },
          spec: hardenedPodSpec({
            app: name,
            serviceAccountName: sa.name,
            priorityClassName: props.priorityClassName,
            // Replicated: never two nodes (or two Sentinels) on one host (policy A4 asks it of one node too).
            hostSpread: ha ? 'required' : 'preferred',
            zoneSpread: ha?.zoneSpread,
            // AOF fsync, the shutdown save and (primary) the preStop failover need a moment on SIGTERM.
            terminationGracePeriodSeconds: ha ? 90 : 60,
            initContainers,
            containers,
            volumes: [
              { name: 'config', configMap: { name: `${name}-config` } },
              { name: 'acl-rules', configMap: { name: `${name}-acl-rules` } },
              ...(ha ? [{ name: 'sentinel-acl-rules', configMap: { name: `${name}-sentinel-acl-rules` } }] : []),
              { name: 'acl-secret', secret: { secretName: names.vaultAclSecret, defaultMode: 0o440 } },
              // Memory-backed: the assembled ACL file (password hashes) never touches a node disk.
              { name: 'acl', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } },
              // Memory-backed: replication.conf holds masterauth, sentinel.conf the Sentinel's password.
              ...(ha ? [{ name: 'run', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } }] : []),
            ],
          }),
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data', labels },
            spec: {
              accessModes: ['ReadWriteOnce'],
              storageClassName: props.storageClassName,
              resources: { requests: { storage: k8s.Quantity.fromString(props.storage) } },
            },
          },
        ],
      },
    });

    if (ha) {
      // A majority stays up through any drain: Sentinel quorum and a replica for min-replicas-to-write.
      podDisruptionBudget(this, name, labels, { minAvailable: ha.quorum });
    } else {
      // One replica: a drain may move it (brief outage) rather than block the node forever.
      podDisruptionBudget(this, name, labels, { maxUnavailable: 1 });
    }
    this.endpoint = inClusterVaultEndpoint(replicas, names);
  }
}

interface ResolvedHa {
  readonly replicas: number;
  readonly quorum: number;
  readonly minReplicasToWrite: number;
  readonly minReplicasMaxLag: number;
  readonly downAfterMilliseconds: number;
  readonly failoverTimeoutMilliseconds: number;
  readonly clusterDomain: string;
  readonly zoneSpread: 'required' | 'preferred';
  readonly sentinelResources: ResourceSpec;
}

function resolveHa(p: VaultHaProps, replicas: number): ResolvedHa {
  const ha: ResolvedHa = {
    replicas,
    quorum: Math.floor(replicas / 2) + 1,
    minReplicasToWrite: p.minReplicasToWrite ?? 1,
    minReplicasMaxLag: p.minReplicasMaxLag ?? 10,
    downAfterMilliseconds: p.downAfterMilliseconds ?? 5000,
    failoverTimeoutMilliseconds: p.failoverTimeoutMilliseconds ?? 15000,
    clusterDomain: p.clusterDomain ?? 'cluster.local',
    zoneSpread: p.zoneSpread ?? 'required',
    sentinelResources: p.sentinelResources ?? SMALL_RESOURCES,
  };
  if (!Number.isInteger(ha.minReplicasToWrite) || ha.minReplicasToWrite < 1 || ha.minReplicasToWrite > replicas - 1) {
    throw new Error(`'ha.minReplicasToWrite' (${ha.minReplicasToWrite}) must be an integer in 1..${replicas - 1} ('replicas' - 1)`);
  }
  if (!Number.isInteger(ha.minReplicasMaxLag) || ha.minReplicasMaxLag < 1)
    throw new Error(`'ha.minReplicasMaxLag' (${ha.minReplicasMaxLag}) must be an integer >= 1`);
  if (!Number.isInteger(ha.downAfterMilliseconds) || ha.downAfterMilliseconds < 1000)
    throw new Error(`'ha.downAfterMilliseconds' (${ha.downAfterMilliseconds}) must be an integer >= 1000`);
  if (!(ha.failoverTimeoutMilliseconds > ha.downAfterMilliseconds)) {
    throw new Error(
      `'ha.failoverTimeoutMilliseconds' (${ha.failoverTimeoutMilliseconds}) must exceed 'ha.downAfterMilliseconds' (${ha.downAfterMilliseconds})`,
    );
  }
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(ha.clusterDomain))
    throw new Error(`'ha.clusterDomain' (${ha.clusterDomain}) must be a DNS name`);
  return ha;
}

/** Env of both HA containers: this pod's announced name and every node's (k8s expands `$(VAR)`). */
function haEnv(ha: ResolvedHa, vault: string): k8s.EnvVar[] {
  const host = (pod: string) => `${pod}.${vault}.$(POD_NAMESPACE).svc.${ha.clusterDomain}`;
  return [
    { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
    { name: 'VAULT_SELF', value: host('$(POD_NAME)') },
    { name: 'VAULT_NODES', value: Array.from({ length: ha.replicas }, (_, i) => host(`${vault}-${i}`)).join(' ') },
    { name: 'VAULT_PORT', value: String(VAULT_PORT) },
    { name: 'SENTINEL_PORT', value: String(SENTINEL_PORT) },
    { name: 'VAULT_MASTER_NAME', value: VAULT_SENTINEL_MASTER },
    { name: 'VAULT_ACL_DIR', value: '/secrets/vault-acl' },
    { name: 'VAULT_RUN_DIR', value: RUN_DIR },
  ];
}

const DATA_MOUNTS_COMMON: k8s.VolumeMount[] = [
  { name: 'config', mountPath: '/etc/redis/conf', readOnly: true },
  { name: 'acl', mountPath: '/etc/redis/acl', readOnly: true },
  { name: 'acl-secret', mountPath: '/secrets/vault-acl', readOnly: true },
];

function redisContainer(
  props: InClusterVaultProps,
  pullPolicy: 'Always' | 'IfNotPresent',
  names: StackNames,
  ha?: ResolvedHa,
): k8s.Container {
  const backup = names.vaultUser('backup');
  const auth = `REDISCLI_AUTH="$(cat /secrets/vault-acl/${backup}-password)" redis-cli --no-auth-warning --user ${backup}`;
  // A replica is ready once its link to the primary is up: before that it serves nothing current.
  const readiness = ha
    ? `${auth} ping | grep -q PONG && { ${auth} info replication | tr -d '\\r' | grep -q '^role:master' || ${auth} info replication | tr -d '\\r' | grep -q '^master_link_status:up'; }`
    : `${auth} ping | grep -q PONG`;
  return hardenedContainer({
    name: 'redis',
    image: props.image,
    imagePullPolicy: pullPolicy,
    command: ha ? ['sh', '/etc/redis/conf/start-redis.sh', '/etc/redis/conf/redis.conf'] : ['redis-server', '/etc/redis/conf/redis.conf'],
    env: ha ? haEnv(ha, names.component.vault) : undefined,
    ports: [{ name: 'redis', containerPort: VAULT_PORT, protocol: 'TCP' }],
    resources: props.resources,
    readinessProbe: { exec: { command: ['sh', '-c', readiness] }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
    // Liveness only asks whether the port answers: a busy AOF rewrite must not get Redis killed.
    livenessProbe: {
      tcpSocket: { port: k8s.IntOrString.fromString('redis') },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      timeoutSeconds: 3,
      failureThreshold: 6,
    },
    lifecycle: ha ? { preStop: { exec: { command: ['sh', '/etc/redis/conf/prestop.sh'] } } } : undefined,
    volumeMounts: [{ name: 'data', mountPath: '/data' }, ...DATA_MOUNTS_COMMON, ...(ha ? [{ name: 'run', mountPath: RUN_DIR }] : [])],
  });
}

function sentinelContainer(
  props: InClusterVaultProps,
  pullPolicy: 'Always' | 'IfNotPresent',
  names: StackNames,
  ha: ResolvedHa,
): k8s.Container {
  const ping = `REDISCLI_AUTH="$(cat /secrets/vault-acl/sentinel-password)" redis-cli --no-auth-warning --user sentinel -p ${SENTINEL_PORT}`;
  return hardenedContainer({
    name: 'sentinel',
    image: props.image,
    imagePullPolicy: pullPolicy,
    command: ['sh', '/etc/redis/conf/start-sentinel.sh'],
    env: [
      ...haEnv(ha, names.component.vault),
      { name: 'SENTINEL_QUORUM', value: String(ha.quorum) },
      { name: 'SENTINEL_DOWN_AFTER_MS', value: String(ha.downAfterMilliseconds) },
      { name: 'SENTINEL_FAILOVER_TIMEOUT_MS', value: String(ha.failoverTimeoutMilliseconds) },
      { name: 'SENTINEL_ACL_FILE', value: '/etc/redis/acl/sentinel.acl' },
    ],
    ports: [{ name: 'sentinel', containerPort: SENTINEL_PORT, protocol: 'TCP' }],
    resources: ha.sentinelResources,
    // Ready once it monitors a primary; alive while the port answers.
    readinessProbe: {
      exec: { command: ['sh', '-c', `${ping} SENTINEL get-master-addr-by-name ${VAULT_SENTINEL_MASTER} | grep -q .`] },
      periodSeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 3,
    },
    livenessProbe: {
      tcpSocket: { port: k8s.IntOrString.fromString('sentinel') },
      initialDelaySeconds: 10,
      periodSeconds: 10,
      timeoutSeconds: 3,
      failureThreshold: 6,
    },
    volumeMounts: [...DATA_MOUNTS_COMMON, { name: 'run', mountPath: RUN_DIR }],
  });
}

export interface ExternalVaultAclProps {
  /** The stack's names: ConfigMap `<prefix>vault-acl-rules`, users `<prefix><user>`. @default - unprefixed */
  readonly names?: StackNames;
  /** VAULT_KEY_PREFIX of the stack: every key pattern carries it. @default '' */
  readonly keyPrefix?: string;
  /** @default - no version label */
  readonly version?: string;
}

/**
 * A stack on an external vault: the ACL rules its users need there, as a ConfigMap
 * (`<user>.rules` plus the assemble script, the same files the in-cluster vault's init container
 * reads), for whoever runs that vault to load. Two stacks sharing one vault get disjoint users
 * and key patterns (their name and key prefixes).
 */
export class ExternalVaultAcl extends Construct {
  public readonly configMap: k8s.KubeConfigMap;

  constructor(scope: Construct, id: string, props: ExternalVaultAclProps = {}) {
    super(scope, id);
    const names = props.names ?? stackNames();
    const data: Record<string, string> = { 'assemble-acl.sh': ASSEMBLE_ACL_SCRIPT };
    for (const user of VAULT_USERS) data[`${names.vaultUser(user)}.rules`] = aclRules(user, props.keyPrefix ?? '');
    const name = `${names.component.vault}-acl-rules`;
    this.configMap = new k8s.KubeConfigMap(this, 'acl-rules', {
      metadata: { name, labels: componentLabels({ name, component: 'vault', version: props.version }) },
      data,
    });
  }
}
