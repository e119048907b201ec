/** @jest-environment ./test/support/onnx-node-environment.js */
/**
 * One contract, shown end to end: two OrbStacks (`blue-`, `green-`) share one namespace, and
 * everything of the blue stack — object names, labels, selectors, NetworkPolicies, ACL users,
 * the vault's ACL rules and the services' env — follows its prefix. The real services then run
 * a text turn with the env read back from the rendered manifests, each as the ACL user the
 * manifests name, against a redis-server loaded with the rendered ACL rules.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chart, Testing } from 'cdk8s';
import type { FastifyInstance } from 'fastify';
import Redis from 'ioredis';
import { dev } from '../../charts/environments';
import type { EnvironmentConfig } from '../../charts/config';
import { OrbStack } from '../../charts/orb-stack';
import { graphAllows } from '../../infra/network-graph';
import { ASSEMBLE_ACL_SCRIPT } from '../../infra/vault-acl';
import { loadOrbFunctions } from '../../services/acp/functions';
import { loadEnv } from '../../services/config/env';
import { ORB_ENV } from '../../services/config/orb';
import { VAULT_ENV } from '../../services/config/vault';
import { COMPONENTS, PORTS, VAULT_USERS } from '../../services/contract';
import { buildApp } from '../../services/orb/app';
import { seed } from '../../services/seed/main';
import { caliRole } from '../../services/workers/cali/role';
import { coreRole } from '../../services/workers/core/role';
import { WorkerRuntime } from '../../services/workers/runtime';
import { RedisServerHandle, startRedisServer } from '../../tools/redis/redis-server';
import { REPO, workerConfig } from '../services/acp/helpers';
import { API_KEYS_ENV, auth, Client, http, listen } from '../services/orb/support';
import type { K8sObject } from '../infra/manifests';

jest.setTimeout(240_000);

const CFG: EnvironmentConfig = { ...dev, keyPrefix: 'blue:' };

function render(): { chart: Chart; objects: K8sObject[]; blue: OrbStack } {
  const chart = new Chart(Testing.app(), 'two-stacks', { namespace: CFG.namespace });
  const blue = new OrbStack(chart, 'blue', { config: CFG, namePrefix: 'blue-', testPods: true });
  new OrbStack(chart, 'green', { config: { ...dev, keyPrefix: 'green:' }, namePrefix: 'green-', clusterObjects: false, testPods: true });
  return { chart, objects: Testing.synth(chart) as K8sObject[], blue };
}

const { objects, blue } = render();
const named = (kind: string, name: string): K8sObject => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(
      `no ${kind}/${name} rendered (have: ${objects
        .filter((x) => x.kind === kind)
        .map((x) => x.metadata.name)
        .join(', ')})`,
    );
  return o;
};
const containerOf = (kind: string, name: string, container?: string): K8sObject => {
  const spec = named(kind, name).spec;
  const pod = spec.template?.spec ?? spec.jobTemplate.spec.template.spec;
  return container ? pod.containers.find((c: K8sObject) => c.name === container) : pod.containers[0];
};

describe('two prefixed stacks in one namespace', () => {
  test('no two objects share a kind and name; the namespace is rendered once', () => {
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
    expect(objects.filter((o) => o.kind === 'Namespace')).toHaveLength(1);
  });

  test('every namespaced object of a stack carries its prefix in its name, and its app label and selector follow', () => {
    for (const [prefix, other] of [
      ['blue-', 'green-'],
      ['green-', 'blue-'],
    ]) {
      const mine = objects.filter((o) => o.kind !== 'Namespace' && o.kind !== 'PriorityClass' && o.metadata.name.startsWith(prefix));
      expect(mine.length).toBeGreaterThan(20);
      for (const o of mine) {
        if (o.metadata.labels?.app)
          expect({ o: `${o.kind}/${o.metadata.name}`, app: o.metadata.labels.app.startsWith(prefix) }).toEqual({
            o: `${o.kind}/${o.metadata.name}`,
            app: true,
          });
        const sel =
          o.spec?.selector?.matchLabels?.app ??
          (o.kind === 'Service' ? o.spec.selector?.app : undefined) ??
          o.spec?.podSelector?.matchLabels?.app;
        if (sel)
          expect({ o: `${o.kind}/${o.metadata.name}`, sel: sel.startsWith(prefix) && !sel.startsWith(other) }).toEqual({
            o: `${o.kind}/${o.metadata.name}`,
            sel: true,
          });
      }
    }
    const unprefixed = objects.filter((o) => !['Namespace', 'PriorityClass'].includes(o.kind) && !/^(blue|green)-/.test(o.metadata.name));
    expect(unprefixed.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([]);
  });

  test('the NetworkPolicies and the graph speak the prefixed names', () => {
    expect(graphAllows(blue.graph, 'blue-orb-core', 'blue-vault', PORTS.vault)).toBe(true);
    expect(graphAllows(blue.graph, 'blue-orb-core', 'green-vault', PORTS.vault)).toBe(false);
    const vaultPolicy = named('NetworkPolicy', 'blue-vault');
    expect(vaultPolicy.spec.podSelector.matchLabels).toEqual({ app: 'blue-vault' });
    const from = vaultPolicy.spec.ingress
      .flatMap((r: K8sObject) => r.from.map((p: K8sObject) => p.podSelector?.matchLabels?.app))
      .filter(Boolean);
    expect(from).toContain('blue-orb-core');
    expect(from.some((a: string) => a.startsWith('green-'))).toBe(false);
    expect(named('NetworkPolicy', 'blue-default-deny')).toBeDefined();
  });

  test('the ACL users, their Secret keys and the KEDA triggers follow the prefix', () => {
    const rules = named('ConfigMap', 'blue-vault-acl-rules').data as Record<string, string>;
    expect(
      Object.keys(rules)
        .filter((k) => k.endsWith('.rules'))
        .sort(),
    ).toEqual(VAULT_USERS.map((u) => `blue-${u}.rules`).sort());
    // Key patterns carry the stack's key prefix.
    expect(rules['blue-orb.rules']).toContain('~blue:session:*');
    const env = containerOf('Deployment', 'blue-orb-core').env as K8sObject[];
    expect(env.find((e) => e.name === 'REDIS_USERNAME')?.value).toBe('blue-orb');
    expect(env.find((e) => e.name === 'REDIS_HOST')?.value).toBe('blue-vault');
    expect(env.find((e) => e.name === 'REDIS_PASSWORD')?.valueFrom.secretKeyRef).toEqual({
      name: 'blue-vault-acl',
      key: 'blue-orb-password',
    });
    expect(containerOf('Deployment', 'blue-orb-core').envFrom).toEqual([{ configMapRef: { name: 'blue-orb-config' } }]);
    expect(named('ConfigMap', 'blue-orb-config').data.VAULT_KEY_PREFIX).toBe('blue:');
    for (const so of objects.filter((o) => o.kind === 'ScaledObject' && o.metadata.name.startsWith('blue-'))) {
      const role = so.metadata.name.slice('blue-'.length);
      expect(so.spec.triggers[0].metadata.stream).toBe(`blue:acp:jobs:${role}`);
    }
  });
});

describe('a text turn through the renamed pieces', () => {
  let dir: string;
  let server: RedisServerHandle;
  let admin: Redis;
  let app: FastifyInstance;
  let host: string;
  const passwords: Record<string, string> = {};
  const clients: Redis[] = [];
  const workers: WorkerRuntime[] = [];

  /** A container's rendered env, with the vault's Service name and port pointed at this test's server. */
  function renderedEnv(c: K8sObject): Record<string, string> {
    const configMaps = new Map(objects.filter((o) => o.kind === 'ConfigMap').map((m) => [m.metadata.name, m.data ?? {}]));
    const env: Record<string, string> = {};
    for (const from of c.envFrom ?? []) Object.assign(env, configMaps.get(from.configMapRef.name));
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.secretKeyRef) env[e.name] = passwords[e.valueFrom.secretKeyRef.key.replace(/-password$/, '')];
    }
    expect(env.REDIS_HOST).toBe('blue-vault');
    return { ...env, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(server.port) };
  }
  const user = (env: Record<string, string>): Redis => {
    const c = new Redis({
      host: '127.0.0.1',
      port: server.port,
      username: env.REDIS_USERNAME,
      password: env.REDIS_PASSWORD,
      maxRetriesPerRequest: 2,
    });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'name-prefix-'));
    // The vault's init container, run on the rendered rules and a Secret of this test's own.
    const rules = named('ConfigMap', 'blue-vault-acl-rules').data as Record<string, string>;
    mkdirSync(join(dir, 'rules'));
    mkdirSync(join(dir, 'secrets'));
    writeFileSync(join(dir, 'assemble-acl.sh'), ASSEMBLE_ACL_SCRIPT);
    for (const [file, text] of Object.entries(rules)) {
      if (!file.endsWith('.rules')) continue;
      const u = file.slice(0, -'.rules'.length);
      passwords[u] = `pw-${u}-${Math.random().toString(36).slice(2)}`;
      writeFileSync(join(dir, 'rules', file), text);
      writeFileSync(join(dir, 'secrets', `${u}-password`), passwords[u]);
    }
    execFileSync('sh', [join(dir, 'assemble-acl.sh'), join(dir, 'rules'), join(dir, 'secrets'), join(dir, 'users.acl')]);
    writeFileSync(join(dir, 'users.acl'), `user admin on >admin-pw ~* &* +@all\n`, { flag: 'a' });
    server = await startRedisServer({ dir, args: ['--aclfile', join(dir, 'users.acl')] });
    admin = new Redis({ host: '127.0.0.1', port: server.port, username: 'admin', password: 'admin-pw' });

    // The seed Job: its init container loads the FUNCTION library, its container writes the identity.
    const seedJob = named('Job', 'blue-seed-vault').spec.template.spec;
    const loader = user(renderedEnv(seedJob.initContainers.find((c: K8sObject) => c.name === 'functions')));
    await loadOrbFunctions(loader);
    await seed({ ...renderedEnv(seedJob.containers[0]), IDENTITY_FILE: join(REPO, 'services', 'seed', 'identity.json') });

    const w = (podName: string) => workerConfig({ podName });
    const coreEnv = renderedEnv(containerOf('StatefulSet', 'blue-core4'));
    for (let n = 0; n < Number(named('StatefulSet', 'blue-core4').spec.replicas); n++) {
      workers.push(
        new WorkerRuntime(coreRole, {
          redis: user(coreEnv),
          keyPrefix: coreEnv.VAULT_KEY_PREFIX,
          http: false,
          worker: w(`blue-core4-${n}`),
          env: { CORE_MODELS_DIR: join(REPO, 'models', 'core') },
        }),
      );
    }
    const caliEnv = renderedEnv(containerOf('Deployment', 'blue-cali'));
    workers.push(
      new WorkerRuntime(caliRole, {
        redis: user(caliEnv),
        keyPrefix: caliEnv.VAULT_KEY_PREFIX,
        http: false,
        worker: w('blue-cali-0'),
        env: { CALI_QUORUM_GRACE_MS: '3000' },
      }),
    );
    await Promise.all(workers.map((x) => x.start()));

    const env = {
      ...renderedEnv(containerOf('Deployment', 'blue-orb-core')),
      POD_NAME: 'blue-orb-core-0',
      ORB_API_KEYS: API_KEYS_ENV,
      LOG_LEVEL: 'silent',
      ORB_VAD: 'false',
      ORB_MAX_EVENT_LOOP_DELAY_MS: '0',
    };
    app = await buildApp({ config: loadEnv(ORB_ENV, env), vault: loadEnv(VAULT_ENV, env), logger: false, tailBlockMs: 100 });
    host = await listen(app);
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await Promise.all(workers.map((x) => x.stop()));
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
    await admin?.quit();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the gateway, the cores and CALI, each as its prefixed ACL user, end a text turn; every key is under the stack's prefix; the ACL refused nothing", async () => {
    const res = await http(host, { method: 'POST', url: '/v1/session/tickets', headers: auth('alice') });
    expect(res.statusCode).toBe(201);
    const c = new Client(host, `/v1/session?ticket=${(res.json() as { ticket: string }).ticket}&vad=false`);
    await c.opened;
    await c.next((m) => m.type === 'session.ready', 'session.ready');
    c.send({ type: 'text', text: 'hello there', speak: false });
    const end = await c.next((m) => m.type === 'turn.end', 'turn.end');
    expect(end.data ?? end).toMatchObject({ outcome: 'ok' });
    expect(c.messages.some((m) => m.type === 'reply')).toBe(true);
    await c.close();

    const users = ((await admin.call('ACL', 'USERS')) as string[]).filter((u) => u !== 'admin' && u !== 'default');
    expect(users.sort()).toEqual(VAULT_USERS.map((u) => `blue-${u}`).sort());
    const keys = (await admin.keys('*')) as string[];
    expect(keys.length).toBeGreaterThan(0);
    expect(keys.filter((k) => !k.startsWith('blue:'))).toEqual([]);
    const log = (await admin.call('ACL', 'LOG', '100')) as unknown[];
    expect(log).toEqual([]);
    expect(COMPONENTS.orbCore).toBe('orb-core');
  });
});

describe('two prefixed stacks sharing one external vault', () => {
  const external: EnvironmentConfig = {
    ...dev,
    backup: undefined,
    vault: {
      mode: 'external',
      host: 'redis.shared.internal',
      port: 6379,
      sentinels: [],
      sentinelMaster: 'mymaster',
      tls: true,
      cidr: '10.40.0.0/24',
    },
  };
  const chart = new Chart(Testing.app(), 'shared-vault', { namespace: dev.namespace });
  new OrbStack(chart, 'blue', { config: external, namePrefix: 'blue-' });
  new OrbStack(chart, 'green', { config: external, namePrefix: 'green-', clusterObjects: false });
  const out = Testing.synth(chart) as K8sObject[];
  const get = (kind: string, name: string) => out.find((o) => o.kind === kind && o.metadata.name === name)!;

  test('each gets its own key prefix, ACL users and key patterns; no vault pods', () => {
    expect(out.filter((o) => o.kind === 'StatefulSet' && o.metadata.labels?.['app.kubernetes.io/component'] === 'vault')).toEqual([]);
    expect(get('ConfigMap', 'blue-orb-config').data.VAULT_KEY_PREFIX).toBe('blue:');
    expect(get('ConfigMap', 'green-orb-config').data.VAULT_KEY_PREFIX).toBe('green:');
    const blueRules = get('ConfigMap', 'blue-vault-acl-rules').data as Record<string, string>;
    const greenRules = get('ConfigMap', 'green-vault-acl-rules').data as Record<string, string>;
    expect(blueRules['blue-orb.rules']).toContain('~blue:session:*');
    expect(blueRules['blue-orb.rules']).not.toContain('green:');
    expect(greenRules['green-orb.rules']).toContain('~green:session:*');
    const users = (d: Record<string, string>) => Object.keys(d).filter((k) => k.endsWith('.rules'));
    expect(users(blueRules).filter((u) => users(greenRules).includes(u))).toEqual([]);
    // Every key pattern of a blue user starts with blue's key prefix.
    for (const [file, rules] of Object.entries(blueRules)) {
      if (!file.endsWith('.rules')) continue;
      for (const m of rules.matchAll(/(?:%[RW])?~(\S+)/g))
        expect({ file, pattern: m[1].replace(/\)$/, '').startsWith('blue:') }).toEqual({ file, pattern: true });
    }
    const env = get('Deployment', 'green-orb-core').spec.template.spec.containers[0].env as K8sObject[];
    expect(env.find((e) => e.name === 'REDIS_USERNAME')?.value).toBe('green-orb');
    expect(env.find((e) => e.name === 'REDIS_HOST')?.value).toBe('redis.shared.internal');
    expect(env.find((e) => e.name === 'REDIS_PASSWORD')?.valueFrom.secretKeyRef).toEqual({
      name: 'green-vault-acl',
      key: 'green-orb-password',
    });
  });
});

describe('ConfigMaps and Secrets are passed in or created, never assumed', () => {
  const chart = new Chart(Testing.app(), 'passed-in', { namespace: dev.namespace });
  new OrbStack(chart, 'stack', {
    config: dev,
    namePrefix: 'red-',
    configMap: { name: 'platform-orb-settings', checksum: 'abc123' },
    secrets: { vaultAcl: 'platform-vault-passwords', apiKeys: 'platform-api-keys' },
  });
  const out = Testing.synth(chart) as K8sObject[];

  test('a passed-in ConfigMap is loaded and not created; passed-in Secrets are what every reference names', () => {
    expect(out.filter((o) => o.kind === 'ConfigMap' && /orb-config|platform-orb-settings/.test(o.metadata.name))).toEqual([]);
    const secretRefs = new Set<string>();
    const configRefs = new Set<string>();
    const walk = (x: unknown): void => {
      if (Array.isArray(x)) x.forEach(walk);
      else if (x && typeof x === 'object') {
        const o = x as Record<string, unknown>;
        if (o.secretKeyRef) secretRefs.add((o.secretKeyRef as { name: string }).name);
        if (typeof o.secretName === 'string') secretRefs.add(o.secretName);
        if (o.configMapRef) configRefs.add((o.configMapRef as { name: string }).name);
        Object.values(o).forEach(walk);
      }
    };
    walk(out);
    expect([...configRefs]).toEqual(['platform-orb-settings']);
    expect(secretRefs.has('platform-vault-passwords')).toBe(true);
    expect(secretRefs.has('platform-api-keys')).toBe(true);
    expect([...secretRefs].filter((s) => /^(red-)?(vault-acl|orb-api-keys)$/.test(s))).toEqual([]);
    const orb = out.find((o) => o.kind === 'Deployment' && o.metadata.name === 'red-orb-core')!;
    expect(orb.spec.template.metadata.annotations['ucm4.dev/config-checksum']).toBe('abc123');
  });
});

test('a prefixed replicated vault: its nodes, Sentinels and clients all use the prefixed names', async () => {
  const { prod } = await import('../../charts/environments');
  const chart = new Chart(Testing.app(), 'ha', { namespace: prod.namespace });
  new OrbStack(chart, 'blue', { config: prod, namePrefix: 'blue-' });
  const out = Testing.synth(chart) as K8sObject[];
  const vault = out.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'blue-vault')!;
  const redis = vault.spec.template.spec.containers.find((c: K8sObject) => c.name === 'redis');
  const nodes = (redis.env as K8sObject[]).find((e) => e.name === 'VAULT_NODES')!.value as string;
  expect(nodes.split(' ').map((h) => h.split('.').slice(0, 2).join('.'))).toEqual([
    'blue-vault-0.blue-vault',
    'blue-vault-1.blue-vault',
    'blue-vault-2.blue-vault',
  ]);
  expect(redis.readinessProbe.exec.command.join(' ')).toContain('--user blue-backup');
  const orb = out.find((o) => o.kind === 'Deployment' && o.metadata.name === 'blue-orb-core')!;
  const env = orb.spec.template.spec.containers[0].env as K8sObject[];
  expect(env.find((e) => e.name === 'REDIS_SENTINELS')!.value).toBe(
    `blue-vault-0.blue-vault:${PORTS.sentinel},blue-vault-1.blue-vault:${PORTS.sentinel},blue-vault-2.blue-vault:${PORTS.sentinel}`,
  );
  const sentinelRules = out.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'blue-vault-sentinel-acl-rules')!.data as Record<
    string,
    string
  >;
  expect(Object.keys(sentinelRules)).toContain('blue-orb.rules');
});
