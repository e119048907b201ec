import { App } from 'cdk8s';
import { dev, prod } from '../../charts/environments';
import { validateEnvironment, type EnvironmentConfig } from '../../charts/config';
import { buildEnvironment } from '../../charts/orb-stack';

type Mutable<T> = { -readonly [K in keyof T]: Mutable<T[K]> };
const clone = (c: EnvironmentConfig): Mutable<EnvironmentConfig> => JSON.parse(JSON.stringify(c));

describe('environment config validation', () => {
  test('dev and prod are valid', () => {
    expect(validateEnvironment(dev)).toBe(dev);
    expect(validateEnvironment(prod)).toBe(prod);
  });

  test.each<[string, (c: Mutable<EnvironmentConfig>) => void, string]>([
    [
      'an image without digest in prod',
      (c) => {
        c.images.app = 'ghcr.io/ucm4/orb:0.1.0';
      },
      'prod.images.app ("ghcr.io/ucm4/orb:0.1.0"): must be pinned by an @sha256 digest',
    ],
    [
      'a latest tag',
      (c) => {
        c.images.redis = 'redis:latest';
        c.pinDigests = false;
      },
      'prod.images.redis ("redis:latest"): must not use the \'latest\' tag',
    ],
    [
      'no tag',
      (c) => {
        c.images.gpu = 'ghcr.io/ucm4/orb-gpu';
        c.pinDigests = false;
      },
      'prod.images.gpu ("ghcr.io/ucm4/orb-gpu"): must carry a tag',
    ],
    [
      'quorum too small',
      (c) => {
        c.cores.quorum = 2;
      },
      'prod.cores.quorum (2): must be an integer above half of cores (5)',
    ],
    [
      'even cores',
      (c) => {
        c.cores.cores = 4;
      },
      'prod.cores.cores (4): must be an odd integer >= 3',
    ],
    [
      'a bad quantity',
      (c) => {
        c.orbCore.resources = { ...c.orbCore.resources, memory: { request: '1 GB', limit: '2Gi' } };
      },
      'prod.orbCore.resources.memory.request ("1 GB")',
    ],
    [
      'replicas with an HPA',
      (c) => {
        c.orbCore.replicas = 3;
      },
      'prod.orbCore.replicas (3): must be unset when autoscaling is set',
    ],
    [
      'HPA max <= min',
      (c) => {
        c.orbCore.autoscaling = { minReplicas: 3, maxReplicas: 3, targetCpuUtilization: 60 };
      },
      'prod.orbCore.autoscaling.maxReplicas (3)',
    ],
    [
      'PDB that blocks every eviction',
      (c) => {
        c.orbCore.minAvailable = 3;
      },
      'prod.orbCore.minAvailable (3): must be below the replica floor (3)',
    ],
    [
      'no TLS without the N4 exemption',
      (c) => {
        delete c.orbCore.ingress.tlsSecretName;
      },
      "prod.orbCore.ingress.tlsSecretName (undefined): is required unless 'N4' is exempted",
    ],
    [
      'one cali replica without A1',
      (c) => {
        c.cali.replicas = 1;
      },
      "prod.cali.replicas (1): must be >= 2 unless 'A1' is exempted",
    ],
    [
      'IfNotPresent without I2',
      (c) => {
        c.imagePullPolicy = 'IfNotPresent';
      },
      'prod.imagePullPolicy ("IfNotPresent"): needs the \'I2\' exemption',
    ],
    [
      'an exemption POLICY.md forbids',
      (c) => {
        (c.exemptions as string[]).push('S1');
      },
      'prod.exemptions ("S1"): only I2, A1, A7, N4 may be exempted',
    ],
    [
      'a bad namespace',
      (c) => {
        c.namespace = 'UCM_4';
      },
      'prod.namespace ("UCM_4"): must be a DNS label',
    ],
    [
      'a bad backup schedule',
      (c) => {
        c.backup!.schedule = 'hourly';
      },
      'prod.backup.schedule ("hourly"): must be a 5-field cron expression',
    ],
    [
      'keep 0 backups',
      (c) => {
        c.backup!.keep = 0;
      },
      'prod.backup.keep (0): must be an integer >= 1',
    ],
    [
      'an in-cluster vault without backups',
      (c) => {
        delete c.backup;
      },
      'prod.backup (undefined): is required for an in-cluster vault',
    ],
    [
      'an external vault with a bad CIDR',
      (c) => {
        c.vault = { mode: 'external', host: 'r', port: 6379, sentinels: [], sentinelMaster: 'm', tls: true, cidr: '10.0.0.1' };
      },
      'prod.vault.cidr ("10.0.0.1"): must be an IPv4 CIDR',
    ],
    [
      'a zero lag target',
      (c) => {
        c.keda!.lagCount = 0;
      },
      'prod.keda.lagCount (0): must be > 0',
    ],
    [
      'an RWX model claim without a storage class',
      (c) => {
        c.speech.models.whisperx.volume = { kind: 'pvc', size: '20Gi' };
      },
      'prod.speech.models.whisperx.volume.storageClassName (undefined): is required for a ReadWriteMany claim',
    ],
    [
      'an unpinned model revision',
      (c) => {
        (c.speech.models.xtts.source as { revision: string }).revision = 'main';
      },
      `'prod.speech.models.xtts.source.revision' ("main") must be a pinned 40-hex commit hash`,
    ],
    [
      'a fetched source without egress',
      (c) => {
        delete c.speech.modelEgress;
      },
      'prod.speech.modelEgress (undefined): is required: speech.models.whisperx.source (hub) is fetched through the default-deny NetworkPolicies',
    ],
    [
      'a pre-filled volume without hashes',
      (c) => {
        c.speech.models.xtts.source = { kind: 'volume', files: [{ path: 'v.onnx' }] };
      },
      `'prod.speech.models.xtts.source.files[0].sha256' (undefined) is required for a pre-filled volume`,
    ],
    [
      'a model path leaving the volume',
      (c) => {
        c.speech.models.xtts.source!.files = [{ path: '../etc/passwd' }];
      },
      `'prod.speech.models.xtts.source.files[0].path' ("../etc/passwd") must be a relative path without . or .. segments`,
    ],
    [
      'a pinned image tagged other than the release',
      (c) => {
        c.images.gpu = c.images.gpu.replace(':0.1.0@', ':0.0.9@');
      },
      "must carry the release version '0.1.0' as its tag (charts/images.json)",
    ],
    [
      'a WER threshold above 1',
      (c) => {
        c.acceptance.maxWer = 25;
      },
      'prod.acceptance.maxWer (25): must be a word error rate in 0..1',
    ],
    [
      'a proxy on another port',
      (c) => {
        c.speech.modelEgress!.port = 8080;
      },
      "prod.speech.modelEgress.port (8080): must be the proxy's port (3128)",
    ],
    [
      'a single-node in-cluster vault without A1',
      (c) => {
        (c.vault as { replicas?: number }).replicas = 1;
      },
      "prod.vault.replicas (1): must be >= 3 (a primary, 2 replicas, 3 Sentinels) unless 'A1' is exempted or the vault is external",
    ],
    [
      'an even vault',
      (c) => {
        (c.vault as { replicas?: number }).replicas = 4;
      },
      'prod.vault.replicas (4): must be 1 or an odd integer >= 3',
    ],
    [
      'a backup store on another port',
      (c) => {
        c.backup!.offsite!.port = 80;
      },
      "prod.backup.offsite.port (80): must be the endpoint's port (443)",
    ],
    [
      'a backup endpoint with a path',
      (c) => {
        c.backup!.offsite!.endpoint = 'https://s3.example.com/bucket';
      },
      'prod.backup.offsite.endpoint ("https://s3.example.com/bucket"): must be http(s)://host[:port]',
    ],
  ])('%s fails synth naming the field and value', (_what, mutate, message) => {
    const c = clone(prod);
    mutate(c);
    expect(() => validateEnvironment(c as EnvironmentConfig)).toThrow(message);
    expect(() => buildEnvironment(new App({ outdir: '/nonexistent' }), c as EnvironmentConfig)).toThrow(message);
  });

  test('all problems are reported at once', () => {
    const c = clone(dev);
    c.cores.cores = 2;
    c.namespace = 'X';
    expect(() => validateEnvironment(c as EnvironmentConfig)).toThrow(/dev\.namespace[\s\S]*dev\.cores\.cores/);
  });

  test('a new environment composes from an existing one (the README example)', () => {
    const staging: EnvironmentConfig = {
      ...prod,
      name: 'staging',
      namespace: 'ucm4-staging',
      orbCore: { ...prod.orbCore, ingress: { ...prod.orbCore.ingress, host: 'orb.staging.example.com' } },
    };
    const app = new App({ outdir: '/nonexistent' });
    const stack = buildEnvironment(app, staging);
    expect(Object.keys(stack.charts)).toContain('30-orb-core');
    expect(app.synthYaml()).toContain('namespace: ucm4-staging');
  });

  test('the README example: staging on an external vault renders no vault pods, connects by host, and egresses only to its CIDR', () => {
    const staging: EnvironmentConfig = {
      ...prod,
      name: 'staging',
      namespace: 'ucm4-staging',
      orbCore: {
        ...prod.orbCore,
        autoscaling: { minReplicas: 2, maxReplicas: 4, targetCpuUtilization: 70 },
        minAvailable: 1,
        ingress: { ...prod.orbCore.ingress, host: 'orb.staging.example.com' },
      },
      vault: {
        mode: 'external',
        host: 'redis.staging.internal',
        port: 6379,
        sentinels: [],
        sentinelMaster: 'mymaster',
        tls: true,
        cidr: '10.40.0.0/24',
      },
      backup: undefined,
    };
    const app = new App({ outdir: '/nonexistent' });
    const stack = buildEnvironment(app, staging);
    expect(Object.keys(stack.charts)).not.toContain('10-vault');
    expect(Object.keys(stack.charts)).not.toContain('11-vault-backup');
    const yaml = app.synthYaml();
    expect(yaml).toContain('value: redis.staging.internal');
    expect(yaml).toContain('cidr: 10.40.0.0/24');
    expect(yaml).not.toMatch(/kind: StatefulSet\n[\s\S]*?name: vault\n/);
  });
});
