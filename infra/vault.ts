/**
 * Vault: the one stateful component — Redis as StatefulSet `vault` (AOF on a PVC from
 * volumeClaimTemplates, ACL users per component), or an external Redis/Sentinel endpoint.
 */
import { createHash } from 'node:crypto';
import { Construct } from 'constructs';
import { componentLabels, selectorLabels } from './labels';
import { k8s } from './k8s';
import { hardenedContainer, hardenedPodSpec, type ResourceSpec, SMALL_RESOURCES } from './hardened-pod';
import { VAULT_ACL_SECRET, type VaultEndpoint } from './service-env';
import { aclRules, ASSEMBLE_ACL_SCRIPT, VAULT_USERS } from './vault-acl';
import { podDisruptionBudget, workloadAnnotations, workloadServiceAccount, type WorkloadProps } from './workload-support';

export const VAULT = 'vault';
export const VAULT_PORT = 6379;

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
}

/** Redis configuration: AOF on, never evict, ACL users from the assembled file. */
export function redisConf(maxMemory: string): string {
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
    '',
  ].join('\n');
}

export class Vault extends Construct {
  public readonly endpoint: VaultEndpoint;
  public readonly statefulSet: k8s.KubeStatefulSet;
  public readonly service: k8s.KubeService;

  constructor(scope: Construct, id: string, props: InClusterVaultProps) {
    super(scope, id);
    const name = VAULT;
    const maxMemory = props.maxMemory ?? '256mb';
    if (!/^\d+(b|kb|mb|gb)$/i.test(maxMemory)) throw new Error(`'maxMemory' (${maxMemory}) must be a Redis size like 256mb`);
    const labels = componentLabels({ name, component: 'vault', version: props.version });
    const sa = workloadServiceAccount(this, name, labels);

    const conf = new k8s.KubeConfigMap(this, 'config', {
      metadata: { name: 'vault-config', labels },
      data: { 'redis.conf': redisConf(maxMemory) },
    });
    const rulesData: Record<string, string> = { 'assemble-acl.sh': ASSEMBLE_ACL_SCRIPT };
    for (const user of VAULT_USERS) rulesData[`${user}.rules`] = aclRules(user, props.keyPrefix ?? '');
    const rules = new k8s.KubeConfigMap(this, 'acl-rules', {
      metadata: { name: 'vault-acl-rules', labels },
      data: rulesData,
    });
    // Config changes must restart Redis (it reads both files at start only).
    const checksum = createHash('sha256').update(JSON.stringify([conf.toJson(), rules.toJson()])).digest('hex');

    this.service = new k8s.KubeService(this, 'service', {
      metadata: { name, labels },
      spec: {
        // Headless, as the StatefulSet requires (M5); one pod, so `vault` resolves to it.
        clusterIp: 'None',
        selector: selectorLabels(name),
        ports: [{ name: 'redis', port: VAULT_PORT, targetPort: k8s.IntOrString.fromString('redis'), protocol: 'TCP' }],
      },
    });

    const pullPolicy = props.imagePullPolicy ?? 'Always';
    const readiness = 'REDISCLI_AUTH="$(cat /secrets/vault-acl/backup-password)" redis-cli --no-auth-warning --user backup ping | grep -q PONG';
    this.statefulSet = new k8s.KubeStatefulSet(this, 'stateful-set', {
      metadata: { name, labels, annotations: workloadAnnotations(props) },
      spec: {
        serviceName: name,
        replicas: 1,
        selector: { matchLabels: selectorLabels(name) },
        updateStrategy: { type: 'RollingUpdate' },
        template: {
          metadata: { labels, annotations: { 'ucm4.dev/config-checksum': checksum } },
          spec: hardenedPodSpec({
            app: name,
            serviceAccountName: sa.name,
            priorityClassName: props.priorityClassName,
            hostSpread: 'none',
            // AOF fsync and shutdown save need a moment on SIGTERM.
            terminationGracePeriodSeconds: 60,
            initContainers: [hardenedContainer({
              name: 'assemble-acl',
              image: props.image,
              imagePullPolicy: pullPolicy,
              command: ['sh', '/etc/redis/acl-rules/assemble-acl.sh', '/etc/redis/acl-rules', '/secrets/vault-acl', '/etc/redis/acl/users.acl'],
              resources: SMALL_RESOURCES,
              volumeMounts: [
                { name: 'acl-rules', mountPath: '/etc/redis/acl-rules', readOnly: true },
                { name: 'acl-secret', mountPath: '/secrets/vault-acl', readOnly: true },
                { name: 'acl', mountPath: '/etc/redis/acl' },
              ],
            })],
            containers: [hardenedContainer({
              name: 'redis',
              image: props.image,
              imagePullPolicy: pullPolicy,
              command: ['redis-server', '/etc/redis/conf/redis.conf'],
              ports: [{ name: 'redis', containerPort: VAULT_PORT, protocol: 'TCP' }],
              resources: props.resources,
              readinessProbe: { exec: { command: ['sh', '-c', readiness] }, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 3 },
              // Liveness only asks whether the port answers: a busy AOF rewrite must not get Redis killed.
              livenessProbe: { tcpSocket: { port: k8s.IntOrString.fromString('redis') }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 6 },
              volumeMounts: [
                { name: 'data', mountPath: '/data' },
                { name: 'config', mountPath: '/etc/redis/conf', readOnly: true },
                { name: 'acl', mountPath: '/etc/redis/acl', readOnly: true },
                { name: 'acl-secret', mountPath: '/secrets/vault-acl', readOnly: true },
              ],
            })],
            volumes: [
              { name: 'config', configMap: { name: 'vault-config' } },
              { name: 'acl-rules', configMap: { name: 'vault-acl-rules' } },
              { name: 'acl-secret', secret: { secretName: VAULT_ACL_SECRET, defaultMode: 0o440 } },
              // Memory-backed: the assembled ACL file (password hashes) never touches a node disk.
              { name: 'acl', emptyDir: { medium: 'Memory', sizeLimit: k8s.Quantity.fromString('1Mi') } },
            ],
          }),
        },
        volumeClaimTemplates: [{
          metadata: { name: 'data', labels },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: props.storageClassName,
            resources: { requests: { storage: k8s.Quantity.fromString(props.storage) } },
          },
        }],
      },
    });

    // One replica: a drain may move it (brief outage) rather than block the node forever.
    podDisruptionBudget(this, name, labels, { maxUnavailable: 1 });
    this.endpoint = { mode: 'in-cluster', serviceName: name, port: VAULT_PORT };
  }
}
