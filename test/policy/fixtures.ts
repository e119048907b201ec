/**
 * A small stack that meets every rule in prod: the "good object" each rule test breaks one field of.
 * Shaped like the real one (gateway Deployment + HPA + Ingress, a StatefulSet with its headless
 * Service, a seed Job, a backup CronJob, a ScaledObject, a PrometheusRule, a Role for the API).
 */
import type { K8sObject } from '../../policy/types';

export const NS = 'orb';
const DIGEST = `sha256:${'a'.repeat(64)}`;

function labels(name: string): Record<string, string> {
  return { app: name, 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': name, 'app.kubernetes.io/part-of': 'ucm4-core' };
}

function container(name: string, opts: { probes?: boolean } = {}): any {
  const c: any = {
    name,
    image: `registry.example.com/ucm4/orb:1.2.3@${DIGEST}`,
    imagePullPolicy: 'Always',
    ports: [{ name: 'http', containerPort: 8080 }],
    env: [
      { name: 'PORT', value: '8080' },
      { name: 'VAULT_KEY_PREFIX', value: 'ucm:' },
      { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'vault-acl', key: `${name}-password` } } },
    ],
    resources: {
      requests: { cpu: '100m', memory: '128Mi', 'ephemeral-storage': '64Mi' },
      limits: { cpu: '1', memory: '512Mi', 'ephemeral-storage': '256Mi' },
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      privileged: false,
      capabilities: { drop: ['ALL'] },
    },
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }],
  };
  if (opts.probes !== false) {
    c.readinessProbe = { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5 };
    c.livenessProbe = { httpGet: { path: '/livez', port: 'http' }, periodSeconds: 10 };
  }
  return c;
}

function podSpecFor(name: string, opts: { probes?: boolean; restartPolicy?: string } = {}): any {
  const spec: any = {
    serviceAccountName: name,
    automountServiceAccountToken: false,
    priorityClassName: 'orb-critical',
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      runAsGroup: 10001,
      fsGroup: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [container(name, opts)],
    volumes: [{ name: 'tmp', emptyDir: {} }],
  };
  if (opts.restartPolicy) spec.restartPolicy = opts.restartPolicy;
  return spec;
}

function spreading(name: string): any {
  return {
    affinity: {
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: name } } } },
        ],
      },
    },
    topologySpreadConstraints: [
      {
        maxSkew: 1,
        topologyKey: 'topology.kubernetes.io/zone',
        whenUnsatisfiable: 'ScheduleAnyway',
        labelSelector: { matchLabels: { app: name } },
      },
    ],
  };
}

function meta(name: string, extra: Record<string, unknown> = {}): any {
  return { name, namespace: NS, labels: labels(name), ...extra };
}

function serviceAccount(name: string, automount = false): K8sObject {
  return { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(name), automountServiceAccountToken: automount };
}

function pdb(name: string, spec: Record<string, unknown>): K8sObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(name),
    spec: { selector: { matchLabels: { app: name } }, unhealthyPodEvictionPolicy: 'AlwaysAllow', ...spec },
  };
}

function netpol(name: string): K8sObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(name),
    spec: {
      podSelector: { matchLabels: { app: name } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: name === 'orb-core' ? [{ ports: [{ port: 8080, protocol: 'TCP' }] }] : [],
      egress: [{ to: [{ podSelector: { matchLabels: { app: 'vault' } } }], ports: [{ port: 6379, protocol: 'TCP' }] }],
    },
  };
}

/** Fresh objects every call: tests mutate them. */
export function goodStack(): K8sObject[] {
  const gatewaySpec = podSpecFor('orb-core');
  Object.assign(gatewaySpec, spreading('orb-core'));
  const coreSpec = podSpecFor('core4');
  Object.assign(coreSpec, spreading('core4'));
  const vaultSpec = podSpecFor('vault');
  Object.assign(vaultSpec, spreading('vault'));
  const sentinel = container('vault');
  Object.assign(sentinel, {
    name: 'sentinel',
    ports: [{ name: 'sentinel', containerPort: 26379 }],
    readinessProbe: { exec: { command: ['sh', '-c', 'redis-cli -p 26379 ping'] }, periodSeconds: 5 },
    livenessProbe: { tcpSocket: { port: 'sentinel' }, periodSeconds: 10 },
  });
  vaultSpec.containers.push(sentinel);
  // A GPU worker: startupProbe sized for model load.
  const asrSpec = podSpecFor('whisperx');
  Object.assign(asrSpec, spreading('whisperx'));
  asrSpec.containers[0].resources.limits['nvidia.com/gpu'] = '1';
  asrSpec.containers[0].startupProbe = { httpGet: { path: '/livez', port: 8080 }, periodSeconds: 10, failureThreshold: 30 };

  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    {
      apiVersion: 'scheduling.k8s.io/v1',
      kind: 'PriorityClass',
      metadata: { name: 'orb-critical', labels: labels('orb-critical') },
      value: 100000,
      globalDefault: false,
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: meta('default-deny'),
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta('orb-config'), data: { VAULT_KEY_PREFIX: 'ucm:', LOG_LEVEL: 'info' } },

    serviceAccount('orb-core'),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('orb-core'),
      spec: {
        selector: { matchLabels: { app: 'orb-core' } },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } },
        template: { metadata: { labels: labels('orb-core') }, spec: gatewaySpec },
      },
    },
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: meta('orb-core'),
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'orb-core' },
        minReplicas: 3,
        maxReplicas: 10,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
      },
    },
    pdb('orb-core', { minAvailable: 2 }),
    netpol('orb-core'),
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('orb-core'),
      spec: { selector: { app: 'orb-core' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
    },
    {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: meta('orb-core'),
      spec: {
        ingressClassName: 'nginx',
        tls: [{ hosts: ['orb.example.com'], secretName: 'orb-tls' }],
        rules: [
          {
            host: 'orb.example.com',
            http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'orb-core', port: { name: 'http' } } } }] },
          },
        ],
      },
    },

    serviceAccount('core4'),
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta('core4'),
      spec: {
        replicas: 5,
        serviceName: 'core4',
        selector: { matchLabels: { app: 'core4' } },
        template: { metadata: { labels: labels('core4') }, spec: coreSpec },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('core4'),
      spec: { clusterIP: 'None', selector: { app: 'core4' }, ports: [{ name: 'http', port: 8080, targetPort: 'http' }] },
    },
    pdb('core4', { minAvailable: 3 }),
    netpol('core4'),

    // The in-cluster vault, replicated: three nodes, a Sentinel container in each pod.
    serviceAccount('vault'),
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: meta('vault'),
      spec: {
        replicas: 3,
        serviceName: 'vault',
        selector: { matchLabels: { app: 'vault' } },
        template: { metadata: { labels: labels('vault') }, spec: vaultSpec },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta('vault'),
      spec: {
        clusterIP: 'None',
        selector: { app: 'vault' },
        ports: [
          { name: 'http', port: 8080, targetPort: 'http' },
          { name: 'sentinel', port: 26379, targetPort: 'sentinel' },
        ],
      },
    },
    pdb('vault', { minAvailable: 2 }),
    netpol('vault'),

    serviceAccount('whisperx'),
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('whisperx'),
      spec: {
        selector: { matchLabels: { app: 'whisperx' } },
        template: { metadata: { labels: labels('whisperx') }, spec: asrSpec },
      },
    },
    {
      apiVersion: 'keda.sh/v1alpha1',
      kind: 'ScaledObject',
      metadata: meta('whisperx'),
      spec: {
        scaleTargetRef: { name: 'whisperx' },
        minReplicaCount: 2,
        maxReplicaCount: 6,
        triggers: [{ type: 'redis-streams', metadata: { stream: 'acp:asr', consumerGroup: 'whisperx', lagCount: '5' } }],
      },
    },
    pdb('whisperx', { maxUnavailable: 1 }),
    netpol('whisperx'),

    serviceAccount('seed-vault'),
    {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: meta('seed-vault'),
      spec: {
        ttlSecondsAfterFinished: 3600,
        backoffLimit: 3,
        template: {
          metadata: { labels: labels('seed-vault') },
          spec: podSpecFor('seed-vault', { probes: false, restartPolicy: 'OnFailure' }),
        },
      },
    },
    netpol('seed-vault'),

    serviceAccount('vault-backup', true),
    {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: meta('vault-backup'),
      spec: {
        schedule: '17 3 * * *',
        startingDeadlineSeconds: 600,
        concurrencyPolicy: 'Forbid',
        jobTemplate: {
          spec: {
            ttlSecondsAfterFinished: 86400,
            template: {
              metadata: { labels: labels('vault-backup') },
              spec: { ...podSpecFor('vault-backup', { probes: false, restartPolicy: 'OnFailure' }), automountServiceAccountToken: true },
            },
          },
        },
      },
    },
    netpol('vault-backup'),
    // The backup calls the API (to find the vault pod): the one workload with a Role.
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta('vault-backup'),
      rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta('vault-backup'),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'vault-backup' },
      subjects: [{ kind: 'ServiceAccount', name: 'vault-backup', namespace: NS }],
    },

    {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: meta('orb-alerts'),
      spec: {
        groups: [
          {
            name: 'orb.rules',
            rules: [
              {
                alert: 'CoreQuorumLost',
                expr: 'sum(up{job="core4"}) < 3',
                for: '2m',
                labels: { severity: 'critical' },
                annotations: { summary: 'fewer than 3 verdict cores are up' },
              },
            ],
          },
        ],
      },
    },
  ];
}

/** The object of `objects` with this kind and name (throws when absent: a fixture typo). */
export function find(objects: K8sObject[], kind: string, name: string): any {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`fixture has no ${kind}/${name}`);
  return o;
}
