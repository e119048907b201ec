/**
 * Every rule, one at a time: the good stack passes it, and a copy with one field broken fails it
 * on the broken object (a rule that cannot fail is a defect).
 */
import { runPolicy } from '../../policy/engine';
import { RULES } from '../../policy/rules';
import type { K8sObject, RuleId } from '../../policy/types';
import { RULE_IDS } from '../../policy/types';
import { NS, find, goodStack } from './fixtures';

interface Case {
  /** What is broken, in words. */
  readonly what: string;
  /** The object that must be flagged. */
  readonly target: readonly [kind: string, name: string];
  /** Breaks the stack in place. */
  readonly breakIt: (objs: K8sObject[]) => void;
  /** Environment to run in. @default prod */
  readonly env?: string;
}

const gw = (o: K8sObject[]) => find(o, 'Deployment', 'orb-core');
const gwC = (o: K8sObject[]) => gw(o).spec.template.spec.containers[0];
const gwPod = (o: K8sObject[]) => gw(o).spec.template.spec;
const core = (o: K8sObject[]) => find(o, 'StatefulSet', 'core4');
const vault = (o: K8sObject[]) => find(o, 'StatefulSet', 'vault');
const asrC = (o: K8sObject[]) => find(o, 'Deployment', 'whisperx').spec.template.spec.containers[0];

/** Adds an initContainer that is fine except for `patch`: proves container rules cover initContainers. */
function initWith(o: K8sObject[], patch: (c: any) => void): void {
  const c = JSON.parse(JSON.stringify(gwC(o)));
  c.name = 'wait-vault';
  delete c.readinessProbe;
  delete c.livenessProbe;
  patch(c);
  gwPod(o).initContainers = [c];
}

const CASES: Record<RuleId, Case[]> = {
  R1: [
    { what: 'no cpu limit', target: ['Deployment', 'orb-core'], breakIt: (o) => delete gwC(o).resources.limits.cpu },
    {
      what: 'memory request as a number',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).resources.requests.memory = 134217728),
    },
    {
      what: 'initContainer without requests',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => initWith(o, (c) => delete c.resources.requests),
    },
  ],
  R2: [
    {
      what: 'no ephemeral-storage limit',
      target: ['StatefulSet', 'core4'],
      breakIt: (o) => delete core(o).spec.template.spec.containers[0].resources.limits['ephemeral-storage'],
    },
  ],
  I1: [
    { what: 'latest tag', target: ['Deployment', 'orb-core'], breakIt: (o) => (gwC(o).image = 'registry.example.com/ucm4/orb:latest') },
    {
      what: 'no tag (registry port is not a tag)',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).image = 'registry.example.com:5000/ucm4/orb'),
      env: 'dev',
    },
    {
      what: 'tag without digest in prod',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).image = 'registry.example.com/ucm4/orb:1.2.3'),
    },
  ],
  I2: [{ what: 'IfNotPresent', target: ['Deployment', 'orb-core'], breakIt: (o) => (gwC(o).imagePullPolicy = 'IfNotPresent') }],
  P1: [
    { what: 'no readinessProbe', target: ['Deployment', 'orb-core'], breakIt: (o) => delete gwC(o).readinessProbe },
    { what: 'GPU worker without startupProbe', target: ['Deployment', 'whisperx'], breakIt: (o) => delete asrC(o).startupProbe },
    {
      what: 'GPU startupProbe too short for a model load',
      target: ['Deployment', 'whisperx'],
      breakIt: (o) => (asrC(o).startupProbe.failureThreshold = 3),
    },
  ],
  P2: [
    {
      what: 'identical probes',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).readinessProbe = { ...gwC(o).livenessProbe, periodSeconds: 3 }),
    },
  ],
  P3: [
    {
      what: 'probe on an undeclared port name',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).livenessProbe.httpGet.port = 'admin'),
    },
    {
      what: 'probe on an undeclared port number',
      target: ['Deployment', 'whisperx'],
      breakIt: (o) => (asrC(o).startupProbe.httpGet.port = 9090),
    },
  ],
  S1: [
    { what: 'pod runAsUser 1000', target: ['Deployment', 'orb-core'], breakIt: (o) => (gwPod(o).securityContext.runAsUser = 1000) },
    {
      what: 'container overrides runAsNonRoot to false',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).securityContext.runAsNonRoot = false),
    },
    { what: 'no runAsGroup anywhere', target: ['Deployment', 'orb-core'], breakIt: (o) => delete gwPod(o).securityContext.runAsGroup },
    {
      what: 'initContainer runs as root',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => initWith(o, (c) => (c.securityContext.runAsUser = 0)),
    },
  ],
  S2: [
    {
      what: 'allowPrivilegeEscalation unset',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => delete gwC(o).securityContext.allowPrivilegeEscalation,
    },
    {
      what: 'initContainer allows escalation',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => initWith(o, (c) => (c.securityContext.allowPrivilegeEscalation = true)),
    },
  ],
  S3: [{ what: 'privileged', target: ['Deployment', 'orb-core'], breakIt: (o) => (gwC(o).securityContext.privileged = true) }],
  S4: [
    {
      what: 'writable root filesystem',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).securityContext.readOnlyRootFilesystem = false),
    },
  ],
  S5: [
    {
      what: 'drops only NET_RAW',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).securityContext.capabilities.drop = ['NET_RAW']),
    },
    {
      what: 'adds NET_BIND_SERVICE',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).securityContext.capabilities.add = ['NET_BIND_SERVICE']),
    },
  ],
  S6: [
    { what: 'no pod seccompProfile', target: ['Deployment', 'orb-core'], breakIt: (o) => delete gwPod(o).securityContext.seccompProfile },
    {
      what: 'container Unconfined',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).securityContext.seccompProfile = { type: 'Unconfined' }),
    },
  ],
  S7: [
    { what: 'hostNetwork', target: ['Deployment', 'orb-core'], breakIt: (o) => (gwPod(o).hostNetwork = true) },
    { what: 'hostPort', target: ['Deployment', 'orb-core'], breakIt: (o) => (gwC(o).ports[0].hostPort = 8080) },
    {
      what: 'hostPath volume',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => gwPod(o).volumes.push({ name: 'models', hostPath: { path: '/models' } }),
    },
  ],
  S9: [
    {
      what: 'token automounted without a Role',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => delete gwPod(o).automountServiceAccountToken,
    },
    { what: 'default ServiceAccount', target: ['Deployment', 'orb-core'], breakIt: (o) => delete gwPod(o).serviceAccountName },
    {
      what: 'ServiceAccount shared by two workloads',
      target: ['StatefulSet', 'core4'],
      breakIt: (o) => (core(o).spec.template.spec.serviceAccountName = 'orb-core'),
    },
    {
      what: 'ServiceAccount automounts without a Role',
      target: ['ServiceAccount', 'orb-core'],
      breakIt: (o) => delete find(o, 'ServiceAccount', 'orb-core').automountServiceAccountToken,
    },
  ],
  S10: [
    {
      what: 'literal password',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).env[2] = { name: 'REDIS_PASSWORD', value: 'hunter2' }),
    },
    {
      what: 'API keys from a ConfigMap',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => gwC(o).env.push({ name: 'ORB_API_KEYS', valueFrom: { configMapKeyRef: { name: 'orb-config', key: 'keys' } } }),
    },
    {
      what: 'Secret with data in dist',
      target: ['Secret', 'vault-acl'],
      breakIt: (o) =>
        o.push({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'vault-acl', namespace: NS },
          data: { 'orb-password': 'aHVudGVyMg==' },
        }),
    },
    {
      what: 'ConfigMap key holding a token',
      target: ['ConfigMap', 'orb-config'],
      breakIt: (o) => (find(o, 'ConfigMap', 'orb-config').data.GITHUB_TOKEN = 'ghp_x'),
    },
    {
      what: 'ConfigMap redis.conf with requirepass',
      target: ['ConfigMap', 'orb-config'],
      breakIt: (o) => (find(o, 'ConfigMap', 'orb-config').data['redis.conf'] = 'port 6379\nrequirepass hunter2\n'),
    },
    {
      what: 'ConfigMap ACL file with a literal password',
      target: ['ConfigMap', 'orb-config'],
      breakIt: (o) => (find(o, 'ConfigMap', 'orb-config').data['users.acl'] = 'user orb on >hunter2 ~orb:* +@read\n'),
    },
  ],
  S11: [{ what: 'PORT twice', target: ['Deployment', 'orb-core'], breakIt: (o) => gwC(o).env.push({ name: 'PORT', value: '9090' }) }],
  A1: [
    { what: 'replicas set although an HPA scales it', target: ['Deployment', 'orb-core'], breakIt: (o) => (gw(o).spec.replicas = 3) },
    {
      what: 'HPA minReplicas 1',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (find(o, 'HorizontalPodAutoscaler', 'orb-core').spec.minReplicas = 1),
    },
    {
      what: 'no autoscaler and one replica',
      target: ['Deployment', 'whisperx'],
      breakIt: (o) => {
        o.splice(o.indexOf(find(o, 'ScaledObject', 'whisperx')), 1);
        find(o, 'Deployment', 'whisperx').spec.replicas = 1;
      },
    },
    {
      what: 'ScaledObject max not above min',
      target: ['Deployment', 'whisperx'],
      breakIt: (o) => (find(o, 'ScaledObject', 'whisperx').spec.maxReplicaCount = 2),
    },
    // StatefulSets (issue 14): A1 looked at Deployments only, so a one-pod vault passed.
    { what: 'a StatefulSet with one replica', target: ['StatefulSet', 'core4'], breakIt: (o) => (core(o).spec.replicas = 1) },
    { what: 'a single-node in-cluster vault', target: ['StatefulSet', 'vault'], breakIt: (o) => (vault(o).spec.replicas = 1) },
    { what: 'a two-node vault (no majority after a loss)', target: ['StatefulSet', 'vault'], breakIt: (o) => (vault(o).spec.replicas = 2) },
    {
      what: 'three vault nodes but no Sentinel',
      target: ['StatefulSet', 'vault'],
      breakIt: (o) => vault(o).spec.template.spec.containers.splice(1, 1),
    },
  ],
  A2: [
    {
      what: 'PDB removed',
      target: ['StatefulSet', 'core4'],
      breakIt: (o) => o.splice(o.indexOf(find(o, 'PodDisruptionBudget', 'core4')), 1),
    },
  ],
  A3: [
    {
      what: 'maxUnavailable 0',
      target: ['PodDisruptionBudget', 'whisperx'],
      breakIt: (o) => (find(o, 'PodDisruptionBudget', 'whisperx').spec.maxUnavailable = 0),
    },
    {
      what: 'minAvailable equal to replicas',
      target: ['PodDisruptionBudget', 'core4'],
      breakIt: (o) => (find(o, 'PodDisruptionBudget', 'core4').spec.minAvailable = 5),
    },
    {
      what: 'minAvailable equal to the HPA floor',
      target: ['PodDisruptionBudget', 'orb-core'],
      breakIt: (o) => (find(o, 'PodDisruptionBudget', 'orb-core').spec.minAvailable = '100%'),
    },
    {
      what: 'unhealthyPodEvictionPolicy unset',
      target: ['PodDisruptionBudget', 'orb-core'],
      breakIt: (o) => delete find(o, 'PodDisruptionBudget', 'orb-core').spec.unhealthyPodEvictionPolicy,
    },
  ],
  A4: [
    { what: 'no podAntiAffinity', target: ['StatefulSet', 'core4'], breakIt: (o) => delete core(o).spec.template.spec.affinity },
    {
      what: 'a vault StatefulSet without podAntiAffinity',
      target: ['StatefulSet', 'vault'],
      breakIt: (o) => delete vault(o).spec.template.spec.affinity,
    },
    {
      what: 'a single-node vault without podAntiAffinity',
      target: ['StatefulSet', 'vault'],
      breakIt: (o) => {
        vault(o).spec.replicas = 1;
        delete vault(o).spec.template.spec.affinity;
      },
    },
    {
      what: 'anti-affinity on zone only',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) =>
        (gwPod(o).affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey =
          'topology.kubernetes.io/zone'),
    },
  ],
  A5: [
    { what: 'no topologySpreadConstraints', target: ['Deployment', 'orb-core'], breakIt: (o) => delete gwPod(o).topologySpreadConstraints },
    {
      what: 'maxSkew 0 and no labelSelector',
      target: ['StatefulSet', 'core4'],
      breakIt: (o) => {
        const t = core(o).spec.template.spec.topologySpreadConstraints[0];
        t.maxSkew = 0;
        delete t.labelSelector;
      },
    },
  ],
  A6: [{ what: 'Recreate', target: ['Deployment', 'orb-core'], breakIt: (o) => (gw(o).spec.strategy = { type: 'Recreate' }) }],
  A7: [
    { what: 'no priorityClassName', target: ['Deployment', 'orb-core'], breakIt: (o) => delete gwPod(o).priorityClassName },
    {
      what: 'PriorityClass not defined by the chart',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwPod(o).priorityClassName = 'system-cluster-critical'),
    },
  ],
  N1: [
    {
      what: 'own NetworkPolicy removed',
      target: ['StatefulSet', 'core4'],
      breakIt: (o) => o.splice(o.indexOf(find(o, 'NetworkPolicy', 'core4')), 1),
    },
    {
      what: 'no namespace default-deny',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => o.splice(o.indexOf(find(o, 'NetworkPolicy', 'default-deny')), 1),
    },
    {
      what: 'policy without Egress type',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (find(o, 'NetworkPolicy', 'orb-core').spec.policyTypes = ['Ingress']),
    },
  ],
  N2: [
    {
      what: 'policy selecting nothing',
      target: ['NetworkPolicy', 'orb-core'],
      breakIt: (o) => (find(o, 'NetworkPolicy', 'orb-core').spec.podSelector = { matchLabels: { app: 'orb-cor' } }),
    },
  ],
  N3: [
    {
      what: 'selector matches no pod',
      target: ['Service', 'orb-core'],
      breakIt: (o) => (find(o, 'Service', 'orb-core').spec.selector = { app: 'gateway' }),
    },
    { what: 'NodePort', target: ['Service', 'orb-core'], breakIt: (o) => (find(o, 'Service', 'orb-core').spec.type = 'NodePort') },
    {
      what: 'invalid port name',
      target: ['Service', 'orb-core'],
      breakIt: (o) => (find(o, 'Service', 'orb-core').spec.ports[0].name = 'HTTP_main'),
    },
    {
      what: 'targetPort not declared',
      target: ['Service', 'core4'],
      breakIt: (o) => (find(o, 'Service', 'core4').spec.ports[0].targetPort = 'grpc'),
    },
  ],
  N4: [
    { what: 'no tls', target: ['Ingress', 'orb-core'], breakIt: (o) => delete find(o, 'Ingress', 'orb-core').spec.tls },
    {
      what: 'backend Service missing',
      target: ['Ingress', 'orb-core'],
      breakIt: (o) => (find(o, 'Ingress', 'orb-core').spec.rules[0].http.paths[0].backend.service.name = 'orb'),
    },
  ],
  M1: [
    {
      what: 'selector label not on the template',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gw(o).spec.selector.matchLabels.tier = 'edge'),
    },
  ],
  M2: [
    {
      what: 'policy/v1beta1 PDB',
      target: ['PodDisruptionBudget', 'orb-core'],
      breakIt: (o) => ((find(o, 'PodDisruptionBudget', 'orb-core') as any).apiVersion = 'policy/v1beta1'),
    },
  ],
  M3: [
    {
      what: 'label value with a space',
      target: ['ConfigMap', 'orb-config'],
      breakIt: (o) => (find(o, 'ConfigMap', 'orb-config').metadata.labels['app.kubernetes.io/version'] = '1.0 beta'),
    },
    {
      what: 'label value over 63 characters',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gw(o).spec.template.metadata.labels.commit = 'x'.repeat(64)),
    },
    {
      what: 'instance label differs from the name',
      target: ['StatefulSet', 'core4'],
      breakIt: (o) => (core(o).metadata.labels['app.kubernetes.io/instance'] = 'core'),
    },
  ],
  M5: [
    {
      what: 'serviceName names a ClusterIP Service',
      target: ['StatefulSet', 'core4'],
      breakIt: (o) => delete find(o, 'Service', 'core4').spec.clusterIP,
    },
    { what: 'serviceName missing', target: ['StatefulSet', 'core4'], breakIt: (o) => delete core(o).spec.serviceName },
  ],
  M6: [
    {
      what: 'Job without ttlSecondsAfterFinished',
      target: ['Job', 'seed-vault'],
      breakIt: (o) => delete find(o, 'Job', 'seed-vault').spec.ttlSecondsAfterFinished,
    },
    {
      what: 'CronJob without startingDeadlineSeconds',
      target: ['CronJob', 'vault-backup'],
      breakIt: (o) => delete find(o, 'CronJob', 'vault-backup').spec.startingDeadlineSeconds,
    },
    {
      what: 'CronJob restartPolicy Always',
      target: ['CronJob', 'vault-backup'],
      breakIt: (o) => (find(o, 'CronJob', 'vault-backup').spec.jobTemplate.spec.template.spec.restartPolicy = 'Always'),
    },
  ],
  B1: [
    {
      what: 'pods/exec',
      target: ['Role', 'vault-backup'],
      breakIt: (o) => find(o, 'Role', 'vault-backup').rules.push({ apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] }),
    },
    { what: 'wildcard verb', target: ['Role', 'vault-backup'], breakIt: (o) => (find(o, 'Role', 'vault-backup').rules[0].verbs = ['*']) },
    {
      what: 'cluster-admin binding',
      target: ['RoleBinding', 'vault-backup'],
      breakIt: (o) =>
        (find(o, 'RoleBinding', 'vault-backup').roleRef = {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'cluster-admin',
        }),
    },
  ],
  K1: [
    { what: 'replicas as a string', target: ['StatefulSet', 'core4'], breakIt: (o) => (core(o).spec.replicas = '5') },
    {
      what: 'PrometheusRule rule without expr',
      target: ['PrometheusRule', 'orb-alerts'],
      breakIt: (o) => delete find(o, 'PrometheusRule', 'orb-alerts').spec.groups[0].rules[0].expr,
    },
    {
      what: 'ScaledObject without scaleTargetRef',
      target: ['ScaledObject', 'whisperx'],
      breakIt: (o) => delete find(o, 'ScaledObject', 'whisperx').spec.scaleTargetRef,
    },
    {
      what: 'containerPort name too long',
      target: ['Deployment', 'orb-core'],
      breakIt: (o) => (gwC(o).ports[0].name = 'http-public-api-port'),
    },
    {
      what: 'unknown kind',
      target: ['Widget', 'w'],
      breakIt: (o) => o.push({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w', namespace: NS } }),
    },
  ],
};

function resultFor(objs: K8sObject[], env: string, rule: RuleId, [kind, name]: readonly [string, string]) {
  const only = RULES.filter((r) => r.id === rule);
  return runPolicy(objs, { env, rules: only }).results.find((r) => r.kind === kind && r.name === name);
}

describe('policy rules', () => {
  it('has a case for every rule ID and a rule for every ID', () => {
    expect(RULES.map((r) => r.id).sort()).toEqual([...RULE_IDS].sort());
    for (const id of RULE_IDS) expect(CASES[id].length).toBeGreaterThan(0);
  });

  it('passes the good stack on every rule in prod', () => {
    const report = runPolicy(goodStack(), { env: 'prod' });
    expect(report.findings).toEqual([]);
    // Every rule is exercised by the fixture, so "pass" is never "not applicable".
    for (const id of RULE_IDS) expect(report.results.filter((r) => r.rule === id).length).toBeGreaterThan(0);
  });

  for (const id of RULE_IDS) {
    describe(id, () => {
      for (const c of CASES[id]) {
        it(`flags ${c.target.join('/')}: ${c.what}`, () => {
          const env = c.env ?? 'prod';
          const objs = goodStack();
          if (c.target[0] !== 'Widget' && c.target[0] !== 'Secret') expect(resultFor(objs, env, id, c.target)?.verdict).toBe('pass');
          c.breakIt(objs);
          const r = resultFor(objs, env, id, c.target);
          expect(r?.verdict).toBe('fail');
          expect(r?.messages.length).toBeGreaterThan(0);
        });
      }
    });
  }
});
