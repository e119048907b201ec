import { Testing } from 'cdk8s';
import {
  Cali,
  CoreQuorum,
  OrbConfig,
  OrbCore,
  OrbNamespace,
  renderEnv,
  SeedVault,
  SmokeTest,
  SpeechWorker,
  mergeEnv,
  vaultEnv,
  exemptionAnnotations,
  threadsFor,
  type ResourceSpec,
  type VaultEndpoint,
} from '../../infra';
import { ORB_ENV } from '../../services/config/orb';
import { VAULT_ENV } from '../../services/config/vault';
import { ACP_GROUP } from '../../services/acp/bus';

const RES: ResourceSpec = {
  cpu: { request: '10m', limit: '1500m' },
  memory: { request: '16Mi', limit: '64Mi' },
  ephemeralStorage: { request: '1Mi', limit: '8Mi' },
};
const VAULT: VaultEndpoint = { mode: 'in-cluster', serviceName: 'vault', port: 6379 };
const IMAGE = 'ucm4/orb:0.1.0';

function synth(build: (chart: ReturnType<typeof Testing.chart>) => void) {
  const chart = Testing.chart();
  build(chart);
  return Testing.synth(chart);
}

describe('CoreQuorum', () => {
  test('StatefulSet core4 with one pod per core, a headless Service, ordinal from the pod-index label, PDB keeping the quorum', () => {
    const objs = synth((c) => new CoreQuorum(c, 'core4', { image: IMAGE, resources: RES, vault: VAULT }));
    const sts = objs.find((o) => o.kind === 'StatefulSet');
    expect(sts.spec.replicas).toBe(5);
    expect(sts.spec.serviceName).toBe('core4');
    expect(objs.find((o) => o.kind === 'Service').spec.clusterIP).toBe('None');
    const env = sts.spec.template.spec.containers[0].env;
    expect(env).toContainEqual({
      name: 'CORE_ORDINAL',
      valueFrom: { fieldRef: { fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']" } },
    });
    expect(env).toContainEqual({ name: 'CORE_MODELS_DIR', value: '/app/models/core' });
    expect(env).toContainEqual({ name: 'CORE_THREADS', value: '1' });
    expect(sts.spec.template.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe(
      'kubernetes.io/hostname',
    );
    expect(objs.find((o) => o.kind === 'PodDisruptionBudget').spec).toMatchObject({
      minAvailable: 3,
      unhealthyPodEvictionPolicy: 'AlwaysAllow',
    });
  });

  test.each([
    [{ cores: 4 }, "'cores' (4) must be an odd integer >= 3"],
    [{ cores: 1 }, "'cores' (1) must be an odd integer >= 3"],
    [{ quorum: 6 }, "'quorum' (6) must be an integer above half of cores (5) and at most cores"],
    [{ quorum: 2 }, "'quorum' (2) must be an integer above half of cores (5) and at most cores"],
  ])('invariant %j throws naming the prop', (bad, message) => {
    expect(() => new CoreQuorum(Testing.chart(), 'c', { image: IMAGE, resources: RES, vault: VAULT, ...bad })).toThrow(message);
  });
});

describe('OrbCore', () => {
  test('replicas default 3; container orb-field; API keys and vault password only by secretKeyRef; drain hooks', () => {
    const objs = synth(
      (c) =>
        new OrbCore(c, 'orb', { image: IMAGE, resources: RES, vault: VAULT, ingress: { host: 'orb.example.com', tlsSecretName: 'tls' } }),
    );
    const dep = objs.find((o) => o.kind === 'Deployment');
    expect(dep.spec.replicas).toBe(3);
    const c = dep.spec.template.spec.containers[0];
    expect(c.name).toBe('orb-field');
    expect(c.env).toContainEqual({ name: 'ORB_API_KEYS', valueFrom: { secretKeyRef: { name: 'orb-api-keys', key: 'keys' } } });
    expect(c.env).toContainEqual({ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'vault-acl', key: 'orb-password' } } });
    expect(c.env).toContainEqual({ name: 'REDIS_USERNAME', value: 'orb' });
    expect(c.lifecycle.preStop.exec.command).toEqual(['sleep', '5']);
    expect(dep.spec.template.spec.terminationGracePeriodSeconds).toBe(45);
    const ing = objs.find((o) => o.kind === 'Ingress');
    expect(ing.metadata.annotations).toMatchObject({
      'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
      'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
    });
    expect(objs.find((o) => o.kind === 'PodDisruptionBudget').spec.minAvailable).toBe(2);
  });

  test('X-Forwarded-For is believed from the Ingress hops only: ORB_TRUST_PROXY_HOPS 1 behind it, unset (0) without one', () => {
    const env = (props: object) =>
      synth((c) => new OrbCore(c, 'orb', { image: IMAGE, resources: RES, vault: VAULT, ...props })).find((o) => o.kind === 'Deployment')
        .spec.template.spec.containers[0].env as { name: string; value?: string }[];
    expect(env({ ingress: { host: 'orb.example.com' } })).toContainEqual({ name: 'ORB_TRUST_PROXY_HOPS', value: '1' });
    expect(env({ ingress: { host: 'orb.example.com', proxyHops: 2 } })).toContainEqual({ name: 'ORB_TRUST_PROXY_HOPS', value: '2' });
    expect(env({}).find((e) => e.name === 'ORB_TRUST_PROXY_HOPS')).toBeUndefined();
    expect(
      () => new OrbCore(Testing.chart(), 'o', { image: IMAGE, resources: RES, vault: VAULT, ingress: { host: 'h', proxyHops: 0 } }),
    ).toThrow("'ingress.proxyHops' (0) must be an integer from 1 to 8");
  });

  test('an HPA leaves replicas unset', () => {
    const objs = synth(
      (c) => new OrbCore(c, 'orb', { image: IMAGE, resources: RES, vault: VAULT, autoscaling: { minReplicas: 3, maxReplicas: 6 } }),
    );
    expect(objs.find((o) => o.kind === 'Deployment').spec.replicas).toBeUndefined();
    expect(objs.find((o) => o.kind === 'HorizontalPodAutoscaler').spec).toMatchObject({ minReplicas: 3, maxReplicas: 6 });
  });

  test.each([
    [{ replicas: 0 }, "'replicas' (0) must be an integer >= 1"],
    [
      { autoscaling: { minReplicas: 3, maxReplicas: 3 } },
      "'autoscaling.maxReplicas' (3) must be an integer greater than 'minReplicas' (3)",
    ],
    [{ replicas: 2, minAvailable: 2 }, "'minAvailable' (2) must be below the replica floor (2)"],
  ])('invariant %j throws naming the prop', (bad, message) => {
    expect(() => new OrbCore(Testing.chart(), 'o', { image: IMAGE, resources: RES, vault: VAULT, ...bad })).toThrow(message);
  });
});

const HUB_SOURCE = { kind: 'hub', repo: 'o/r', revision: 'a'.repeat(40), files: [{ path: 'model.onnx' }] } as const;

describe('SpeechWorker', () => {
  test('gpu adds the nvidia.com/gpu limit as a number (Quantity, not a null JsonPatch), toleration, affinity, startupProbe and /dev/shm', () => {
    const objs = synth(
      (c) =>
        new SpeechWorker(c, 'w', {
          role: 'whisperx',
          image: IMAGE,
          resources: RES,
          vault: VAULT,
          gpu: { count: 2 },
          modelLoadSeconds: 900,
          scaling: { minReplicas: 2, maxReplicas: 4 },
          modelVolume: { kind: 'pvc', size: '10Gi' },
        }),
    );
    const spec = objs.find((o) => o.kind === 'Deployment').spec.template.spec;
    expect(spec.containers[0].resources.limits['nvidia.com/gpu']).toBe(2);
    expect(spec.containers[0].startupProbe).toMatchObject({ periodSeconds: 10, failureThreshold: 90 });
    expect(spec.volumes).toContainEqual({ name: 'dshm', emptyDir: { medium: 'Memory', sizeLimit: '1Gi' } });
    expect(spec.volumes).toContainEqual({ name: 'models', persistentVolumeClaim: { claimName: 'whisperx-models', readOnly: true } });
    expect(spec.containers[0].env).toContainEqual({ name: 'ORT_INTRA_OP_THREADS', value: '1' });
    expect(objs.find((o) => o.kind === 'PersistentVolumeClaim').metadata.name).toBe('whisperx-models');
  });

  test('models baked into the image: MODEL_DIR points there and no models volume is mounted', () => {
    const objs = synth(
      (c) =>
        new SpeechWorker(c, 'w', {
          role: 'xtts',
          image: IMAGE,
          resources: RES,
          vault: VAULT,
          scaling: { minReplicas: 1, maxReplicas: 2 },
          modelVolume: { kind: 'image', dir: '/app/models/tiny/voices' },
        }),
    );
    const c = objs.find((o) => o.kind === 'Deployment').spec.template.spec.containers[0];
    expect(c.env).toContainEqual({ name: 'MODEL_DIR', value: '/app/models/tiny/voices' });
    expect(c.volumeMounts.map((m: { name: string }) => m.name)).toEqual(['tmp', 'dshm']);
    expect(
      () =>
        new SpeechWorker(Testing.chart(), 'w', {
          role: 'xtts',
          image: IMAGE,
          resources: RES,
          vault: VAULT,
          scaling: { minReplicas: 1, maxReplicas: 2 },
          modelVolume: { kind: 'image', dir: 'models' },
        }),
    ).toThrow("'modelVolume.dir' (models) must be an absolute path");
  });

  test('KEDA ScaledObject on the lag of acp:jobs:<role> (with the key prefix), credentials from the container env', () => {
    const objs = synth(
      (c) =>
        new SpeechWorker(c, 'w', {
          role: 'xtts',
          image: IMAGE,
          resources: RES,
          vault: VAULT,
          keyPrefix: 't1:',
          scaling: { minReplicas: 2, maxReplicas: 4, keda: { lagCount: 7 } },
        }),
    );
    const so = objs.find((o) => o.kind === 'ScaledObject');
    expect(so.spec).toMatchObject({ minReplicaCount: 2, maxReplicaCount: 4, scaleTargetRef: { name: 'xtts', kind: 'Deployment' } });
    expect(so.spec.triggers[0]).toEqual({
      type: 'redis-streams',
      metadata: {
        // The group the workers really read as (services/acp/bus), not the role name: KEDA reads its lag.
        address: 'vault:6379',
        stream: 't1:acp:jobs:xtts',
        consumerGroup: ACP_GROUP,
        lagCount: '7',
        enableTLS: 'false',
        usernameFromEnv: 'REDIS_USERNAME',
        passwordFromEnv: 'REDIS_PASSWORD',
      },
    });
    expect(objs.find((o) => o.kind === 'HorizontalPodAutoscaler')).toBeUndefined();
  });

  test('Sentinel vaults use the redis-sentinel-streams trigger', () => {
    const objs = synth(
      (c) =>
        new SpeechWorker(c, 'w', {
          role: 'xtts',
          image: IMAGE,
          resources: RES,
          vault: {
            mode: 'external',
            host: 'redis.example',
            port: 6379,
            sentinels: ['s1:26379', 's2:26379'],
            sentinelMaster: 'orb',
            tls: true,
          },
          scaling: { minReplicas: 2, maxReplicas: 4, keda: { lagCount: 7 } },
        }),
    );
    expect(objs.find((o) => o.kind === 'ScaledObject').spec.triggers[0]).toMatchObject({
      type: 'redis-sentinel-streams',
      metadata: { addresses: 's1:26379,s2:26379', sentinelMaster: 'orb', enableTLS: 'true' },
    });
    const env = objs.find((o) => o.kind === 'Deployment').spec.template.spec.containers[0].env;
    expect(env).toContainEqual({ name: 'REDIS_SENTINELS', value: 's1:26379,s2:26379' });
    expect(env).toContainEqual({ name: 'REDIS_TLS', value: 'true' });
  });

  test.each([
    [{ scaling: { minReplicas: 0, maxReplicas: 2 } }, "'scaling.minReplicas' (0)"],
    [{ scaling: { minReplicas: 2, maxReplicas: 2 } }, "'scaling.maxReplicas' (2)"],
    [{ gpu: { count: 0 } }, "'gpu.count' (0)"],
    [{ modelLoadSeconds: 5 }, "'modelLoadSeconds' (5)"],
    [{ scaling: { minReplicas: 1, maxReplicas: 2, keda: { lagCount: 0 } } }, "'scaling.keda.lagCount' (0)"],
    [{ minAvailable: 2 }, "'minAvailable' (2) must be below the replica floor (2)"],
    [
      { modelSource: HUB_SOURCE, modelVolume: { kind: 'image' as const, dir: '/app/models' } },
      "'modelSource' (hub) needs a 'modelVolume' of kind pvc or emptyDir, not image",
    ],
    [{ modelSource: { ...HUB_SOURCE, revision: 'main' } }, `'modelSource.revision' ("main") must be a pinned 40-hex commit hash`],
    [
      {
        modelSource: HUB_SOURCE,
        modelVolume: { kind: 'emptyDir' as const, sizeLimit: '2Gi' },
        resources: { ...RES, ephemeralStorage: { request: '1Gi', limit: '2Gi' } },
      },
      "'modelVolume.sizeLimit' (2Gi) must stay below 'resources.ephemeralStorage.limit' (2Gi)",
    ],
    [
      { modelVolume: { kind: 'pvc' as const, size: '5Gi', storageClassName: 'ssd', accessMode: 'ReadWriteOnce' as const } },
      "'modelVolume.accessMode' (ReadWriteOnce) cannot serve 'scaling.maxReplicas' (3) pods on several nodes",
    ],
  ])('invariant %j throws naming the prop', (bad, message) => {
    expect(
      () =>
        new SpeechWorker(Testing.chart(), 'w', {
          role: 'xtts',
          image: IMAGE,
          resources: RES,
          vault: VAULT,
          scaling: { minReplicas: 2, maxReplicas: 3 },
          ...bad,
        }),
    ).toThrow(message);
  });
});

describe('Cali, SeedVault, SmokeTest, OrbConfig, OrbNamespace', () => {
  test('cali gets the quorum from the cores and the last ordinal as tie breaker', () => {
    const env = synth((c) => new Cali(c, 'cali', { image: IMAGE, resources: RES, vault: VAULT, cores: 5, quorum: 3 })).find(
      (o) => o.kind === 'Deployment',
    ).spec.template.spec.containers[0].env;
    expect(env).toEqual(
      expect.arrayContaining([
        { name: 'CALI_CORES', value: '5' },
        { name: 'CALI_QUORUM', value: '3' },
        { name: 'CALI_TIEBREAK_CORE', value: '4' },
      ]),
    );
    expect(() => new Cali(Testing.chart(), 'c', { image: IMAGE, resources: RES, vault: VAULT, cores: 3, quorum: 4 })).toThrow(
      "'quorum' (4) must be an integer above half of cores (3) and at most cores",
    );
  });

  test('seed-vault mounts the identity ConfigMap where IDENTITY_FILE points; invalid versions are refused', () => {
    const objs = synth((c) => new SeedVault(c, 's', { image: IMAGE, vault: VAULT, identity: { name: 'CaleonGenesis', version: '1.12' } }));
    const job = objs.find((o) => o.kind === 'Job');
    expect(job.spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
    expect(job.spec.template.spec.containers[0].env).toContainEqual({ name: 'IDENTITY_FILE', value: '/etc/seed-vault/identity.json' });
    expect(job.spec.template.spec.containers[0].volumeMounts).toContainEqual({
      name: 'identity',
      mountPath: '/etc/seed-vault',
      readOnly: true,
    });
    expect(() => new SeedVault(Testing.chart(), 's', { image: IMAGE, vault: VAULT, identity: { name: 'X', version: 'one' } })).toThrow(
      "'identity.version' (one)",
    );
  });

  test('orb-smoke targets the orb-core Service with its key from a Secret', () => {
    const job = synth((c) => new SmokeTest(c, 's', { image: IMAGE, resources: RES })).find((o) => o.kind === 'Job');
    expect(job.metadata.name).toBe('orb-smoke');
    expect(job.spec.template.spec.containers[0].command).toEqual(['node', 'build/services/cli/orb.js', 'smoke', '--speak']);
    expect(job.spec.template.spec.containers[0].env).toEqual([
      { name: 'ORB_URL', value: 'http://orb-core:8080' },
      { name: 'ORB_API_KEY', valueFrom: { secretKeyRef: { name: 'orb-smoke', key: 'api-key' } } },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ]);
  });

  test('orb-config names come from the schemas; bad values throw naming the prop', () => {
    const cm = synth((c) => new OrbConfig(c, 'c', { environment: 'dev', logLevel: 'debug', keyPrefix: 'a:' })).find(
      (o) => o.kind === 'ConfigMap',
    );
    expect(cm.data).toEqual({ LOG_LEVEL: 'debug', ORB_ENVIRONMENT: 'dev', VAULT_KEY_PREFIX: 'a:' });
    expect(() => new OrbConfig(Testing.chart(), 'c', { environment: 'dev', logLevel: 'loud' })).toThrow("'logLevel' (loud)");
    expect(() => new OrbConfig(Testing.chart(), 'c', { environment: 'dev', keyPrefix: 'a b' })).toThrow("'keyPrefix' (a b)");
  });

  test('the namespace enforces the restricted Pod Security profile', () => {
    const ns = synth((c) => new OrbNamespace(c, 'ns', { name: 'ucm4' }))[0];
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('restricted');
    expect(() => new OrbNamespace(Testing.chart(), 'ns', { name: 'UCM4' })).toThrow("'name' (UCM4)");
  });
});

describe('env rendering from the service schemas', () => {
  test('secret fields refuse literal values and must be bound when required', () => {
    expect(() => renderEnv(VAULT_ENV, { values: { password: 'hunter2' } })).toThrow('REDIS_PASSWORD is secret');
    expect(() => renderEnv(ORB_ENV, {})).toThrow('ORB_API_KEYS is a required secret');
  });

  test("literal values are checked with the schema's own parser; unknown keys are refused", () => {
    expect(() => renderEnv(VAULT_ENV, { values: { port: 70000 } })).toThrow('REDIS_PORT="70000": must be at most 65535');
    expect(() => renderEnv(VAULT_ENV, { values: { nope: 1 } as never })).toThrow("env binding 'nope' is not a field");
  });

  test("duplicate names fail (POLICY S11) and vault env points at the component's ACL user", () => {
    expect(() => mergeEnv(vaultEnv(VAULT, 'orb'), vaultEnv(VAULT, 'cali'))).toThrow('env REDIS_HOST is set twice');
    expect(vaultEnv(VAULT, 'cali')).toEqual([
      { name: 'REDIS_HOST', value: 'vault' },
      { name: 'REDIS_PORT', value: '6379' },
      { name: 'REDIS_USERNAME', value: 'cali' },
      { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'vault-acl', key: 'cali-password' } } },
    ]);
  });

  test('threads follow the CPU limit', () => {
    expect([threadsFor('500m'), threadsFor('1500m'), threadsFor('4')]).toEqual([1, 1, 4]);
  });

  test('exemption annotations speak Polaris and kube-score; only I2, A1, A7, N4', () => {
    expect(exemptionAnnotations(['I2'])).toEqual({
      'polaris.fairwinds.com/pullPolicyNotAlways-exempt': 'true',
      'kube-score/ignore': 'container-image-pull-policy',
    });
    expect(() => exemptionAnnotations(['S1' as never])).toThrow("rule 'S1' may not be exempted");
  });
});
