import { dev, prod } from '../../charts/environments';
import { find, podSpecs, synthEnvironment, synthYaml, validateObject, type K8sObject } from '../infra/manifests';
import { ACP_GROUP } from '../../services/acp/bus';

const envs = { dev, prod };

describe.each(Object.entries(envs))('%s environment', (name, cfg) => {
  const { objects, testPods, files } = synthEnvironment(cfg);
  const all = [...objects, ...testPods];

  test('matches the committed snapshot', () => {
    expect(files).toMatchSnapshot();
    expect(testPods).toMatchSnapshot();
  });

  test('every object is valid against the Kubernetes (and CRD) schemas', () => {
    for (const obj of all) {
      expect(() => validateObject(obj)).not.toThrow();
    }
  });

  test('synthesizing twice gives identical bytes', () => {
    expect(synthYaml(cfg)).toBe(synthYaml(cfg));
  });

  test("the seed's commands work: deployments orb-core, whisperx, xtts; container orb-field under app=orb-core", () => {
    for (const d of ['orb-core', 'whisperx', 'xtts', 'cali'])
      expect(find(objects, 'Deployment', d).spec.template.metadata.labels.app).toBe(d);
    const orb = find(objects, 'Deployment', 'orb-core');
    expect(orb.spec.template.spec.containers.map((c: { name: string }) => c.name)).toEqual(['orb-field']);
    const core4 = find(objects, 'StatefulSet', 'core4');
    expect(core4.spec.replicas).toBe(5);
    expect(find(objects, 'Service', 'core4').spec.clusterIP).toBe('None');
    expect(find(objects, 'ConfigMap', 'seed-vault-identity').data['identity.json']).toContain('"CaleonGenesis"');
    expect(JSON.parse(find(objects, 'ConfigMap', 'seed-vault-identity').data['identity.json'])).toMatchObject({
      name: 'CaleonGenesis',
      version: '1.12',
    });
    find(objects, 'Job', 'seed-vault');
    find(objects, 'ConfigMap', 'orb-config');
    find(testPods, 'Job', 'orb-smoke');
    expect(objects.find((o) => o.metadata.name === 'orb-smoke')).toBeUndefined();
  });

  test('labels: app + app.kubernetes.io/* on every object; instance == name on workloads; no hash names', () => {
    for (const o of all) {
      const l = o.metadata.labels ?? {};
      expect([o.kind, o.metadata.name, l.app]).toEqual([o.kind, o.metadata.name, expect.any(String)]);
      for (const k of ['name', 'instance', 'component', 'part-of', 'managed-by', 'version']) {
        expect([o.metadata.name, k, l[`app.kubernetes.io/${k}`]]).toEqual([o.metadata.name, k, expect.any(String)]);
      }
      expect(o.metadata.name).not.toMatch(/-c8[0-9a-f]{6,}$/);
    }
    for (const { owner, template } of podSpecs(all)) {
      expect(owner.metadata.labels?.['app.kubernetes.io/instance']).toBe(owner.metadata.name);
      expect(template.metadata.labels.app).toBe(owner.metadata.name);
    }
  });

  test('contract: every container knows POD_NAME from the downward API, exactly once', () => {
    for (const { owner, template } of podSpecs(all)) {
      for (const c of [...template.spec.containers, ...(template.spec.initContainers ?? [])]) {
        const pod = c.env.filter((e: { name: string }) => e.name === 'POD_NAME');
        expect([owner.metadata.name, c.name, pod]).toEqual([
          owner.metadata.name,
          c.name,
          [{ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        ]);
      }
    }
  });

  test('orb-core fans out to exactly the cores the StatefulSet runs and CALI waits for', () => {
    const envOf = (kind: string, name: string, variable: string) =>
      find(objects, kind, name).spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === variable)?.value;
    const cores = String(find(objects, 'StatefulSet', 'core4').spec.replicas);
    expect(envOf('Deployment', 'orb-core', 'ORB_CORES')).toBe(cores);
    expect(envOf('Deployment', 'cali', 'CALI_CORES')).toBe(cores);
  });

  test('selectors use only the stable app label, never cdk8s.io/metadata.addr', () => {
    const text = JSON.stringify(all);
    expect(text).not.toContain('cdk8s.io/metadata.addr');
    for (const o of all.filter((x) => ['Deployment', 'StatefulSet'].includes(x.kind))) {
      expect(o.spec.selector).toEqual({ matchLabels: { app: o.metadata.name } });
    }
  });

  test('files are ordered so namespace and config apply before workloads', () => {
    const order = Object.keys(files);
    expect(order).toEqual([...order].sort());
    expect(files['00-namespace'].map((o) => o.kind)).toContain('Namespace');
    expect(files['01-config'].map((o) => o.metadata.name)).toEqual(['orb-config']);
    const firstWorkload = order.findIndex((f) => files[f].some((o) => ['Deployment', 'StatefulSet', 'Job', 'CronJob'].includes(o.kind)));
    expect(firstWorkload).toBeGreaterThan(order.indexOf('01-config'));
    // Every namespaced object lands in the environment's namespace.
    for (const o of all.filter((x: K8sObject) => !['Namespace', 'PriorityClass'].includes(x.kind)))
      expect(o.metadata.namespace).toBe(cfg.namespace);
  });

  test(`${name}: the PDB escape hatch (unhealthyPodEvictionPolicy) reaches the output`, () => {
    const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
    expect(pdbs.map((p) => p.metadata.name).sort()).toEqual(
      ['cali', 'core4', 'orb-core', 'whisperx', 'xtts', ...(cfg.vault.mode === 'in-cluster' ? ['vault'] : [])].sort(),
    );
    for (const p of pdbs) expect(p.spec.unhealthyPodEvictionPolicy).toBe('AlwaysAllow');
  });
});

describe('dev vs prod', () => {
  const d = synthEnvironment(dev).objects;
  const p = synthEnvironment(prod).objects;

  test('prod speech workers get GPUs (a Quantity, never null), tolerations, GPU affinity and a model-load startupProbe; dev none', () => {
    for (const role of ['whisperx', 'xtts']) {
      const pc = find(p, 'Deployment', role).spec.template.spec;
      expect(pc.containers[0].resources.limits['nvidia.com/gpu']).toBe(1);
      expect(pc.tolerations).toEqual([{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
      expect(pc.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key).toBe(
        'nvidia.com/gpu.present',
      );
      expect(pc.containers[0].startupProbe.failureThreshold * pc.containers[0].startupProbe.periodSeconds).toBeGreaterThanOrEqual(600);
      expect(pc.containers[0].env).toContainEqual({ name: 'EXECUTION_PROVIDER', value: 'cuda' });
      const dc = find(d, 'Deployment', role).spec.template.spec;
      expect(dc.containers[0].resources.limits['nvidia.com/gpu']).toBeUndefined();
      expect(dc.tolerations).toBeUndefined();
      expect(dc.containers[0].env).toContainEqual({ name: 'EXECUTION_PROVIDER', value: 'cpu' });
    }
  });

  test('prod pins every image by digest and pulls Always; TLS on the ingress', () => {
    for (const { template } of podSpecs(p)) {
      for (const c of [...template.spec.containers, ...(template.spec.initContainers ?? [])]) {
        expect(c.image).toMatch(/:[^:@/]+@sha256:[0-9a-f]{64}$/);
        expect(c.imagePullPolicy).toBe('Always');
      }
    }
    expect(find(p, 'Ingress', 'orb-core').spec.tls).toEqual([{ hosts: ['orb.ucm4.example.com'], secretName: 'orb-tls' }]);
  });

  test('prod orb-core is HPA-driven (replicas unset), dev has a fixed replica count', () => {
    expect(find(p, 'Deployment', 'orb-core').spec.replicas).toBeUndefined();
    expect(find(p, 'HorizontalPodAutoscaler', 'orb-core').spec.minReplicas).toBe(3);
    expect(find(d, 'Deployment', 'orb-core').spec.replicas).toBe(1);
  });

  test('prod scales speech workers with KEDA on the stream lag; dev with a plain HPA', () => {
    for (const role of ['whisperx', 'xtts']) {
      const so = find(p, 'ScaledObject', role);
      expect(so.spec.triggers).toEqual([
        {
          // The HA vault: KEDA finds the primary through the Sentinels, as the workers do.
          type: 'redis-sentinel-streams',
          metadata: expect.objectContaining({
            stream: `acp:jobs:${role}`,
            consumerGroup: ACP_GROUP,
            lagCount: '10',
            addresses: 'vault-0.vault:26379,vault-1.vault:26379,vault-2.vault:26379',
            sentinelMaster: 'vault',
          }),
        },
      ]);
      expect(p.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === role)).toBeUndefined();
      expect(find(d, 'HorizontalPodAutoscaler', role).spec.scaleTargetRef).toEqual({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        name: role,
      });
      expect(d.find((o) => o.kind === 'ScaledObject')).toBeUndefined();
    }
  });

  test('prod has ServiceMonitors + PrometheusRule; dev scrape annotations instead', () => {
    expect(
      p
        .filter((o) => o.kind === 'ServiceMonitor')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['cali', 'core4', 'orb-core', 'whisperx', 'xtts']);
    const alerts = find(p, 'PrometheusRule', 'ucm4-core').spec.groups[0].rules.map((r: { alert: string }) => r.alert);
    expect(alerts).toEqual(['OrbCoreQuorumLost', 'OrbDeadLetterGrowing', 'OrbReplicaHeartbeatMissing', 'OrbSpeechQueueLagHigh']);
    expect(find(d, 'Deployment', 'orb-core').spec.template.metadata.annotations).toMatchObject({
      'prometheus.io/scrape': 'true',
      'prometheus.io/port': '8080',
      'prometheus.io/path': '/metrics',
    });
    expect(d.find((o) => o.kind === 'ServiceMonitor')).toBeUndefined();
  });

  test('pods that load orb-config carry its checksum, so a config change rolls them; Jobs do not (immutable template)', () => {
    const sum = (objs: typeof d, kind: string, name: string) =>
      find(objs, kind, name).spec.template.metadata.annotations?.['ucm4.dev/config-checksum'];
    expect(sum(d, 'Deployment', 'orb-core')).toMatch(/^[0-9a-f]{64}$/);
    expect(sum(d, 'StatefulSet', 'core4')).toBe(sum(d, 'Deployment', 'orb-core'));
    expect(sum(p, 'Deployment', 'orb-core')).not.toBe(sum(d, 'Deployment', 'orb-core'));
    expect(sum(d, 'Job', 'seed-vault')).toBeUndefined();
  });
});
