/**
 * What the running system needs of the manifests, checked on the synthesized objects (the pod
 * runner, `npm run e2e:pods`, checks the same against running pods): the KEDA triggers watch the
 * group the workers really read as, the public Ingress routes client paths only, CALI's chat
 * egress follows its endpoint, and every variable a service requires is set by its manifest.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dev, prod } from '../../charts/environments';
import type { EnvironmentConfig } from '../../charts/config';
import { ACP_GROUP } from '../../services/acp/bus';
import { vaultKeys } from '../../services/acp/keys';
import { loadEnv, type EnvSchema } from '../../services/config/env';
import { ORB_ENV } from '../../services/config/orb';
import { VAULT_ENV } from '../../services/config/vault';
import { WORKER_ENV } from '../../services/config/worker';
import { ASR_ENV } from '../../services/config/asr';
import { TTS_ENV } from '../../services/config/tts';
import { CORE_ENV } from '../../services/config/core';
import { CALI_ENV } from '../../services/config/cali';
import { SEED_ENV } from '../../services/config/seed';
import { WEB_CLIENT_FILES } from '../../services/contract';
import { buildWeb } from '../../web/build';
import { find, podSpecs, synthEnvironment, type K8sObject } from './manifests';

const ENVS: Array<[string, EnvironmentConfig]> = [['dev', dev], ['prod', prod]];

describe.each(ENVS)('%s', (_name, cfg) => {
  const { objects, testPods } = synthEnvironment(cfg);

  test('each KEDA trigger watches the job stream and consumer group the workers read', () => {
    const scaled = objects.filter((o) => o.kind === 'ScaledObject');
    for (const so of scaled) {
      for (const t of so.spec.triggers) {
        expect({ so: so.metadata.name, group: t.metadata.consumerGroup }).toEqual({ so: so.metadata.name, group: ACP_GROUP });
        expect(t.metadata.stream).toBe(vaultKeys(cfg.keyPrefix).jobs(so.spec.scaleTargetRef.name));
      }
    }
  });

  test('the public Ingress routes the client API and the web client, never metrics or probes', () => {
    for (const ing of objects.filter((o) => o.kind === 'Ingress')) {
      const paths = ing.spec.rules.flatMap((r: K8sObject) => r.http.paths) as Array<{ path: string; pathType: string }>;
      const routed = (p: string) => paths.some((x) => (x.pathType === 'Exact' ? p === x.path
        : x.path === '/' || p === x.path || p.startsWith(`${x.path.replace(/\/$/, '')}/`)));
      for (const p of ['/metrics', '/livez', '/readyz', '/metrics/', '/debug']) expect({ p, routed: routed(p) }).toEqual({ p, routed: false });
      for (const p of ['/v1/session', '/v1/sessions/abc', '/v1/audio/speech', '/', '/app.js']) expect({ p, routed: routed(p) }).toEqual({ p, routed: true });
    }
  });

  test('every variable a service requires is set by its manifest, and its value parses', () => {
    const configMaps = new Map(objects.filter((o) => o.kind === 'ConfigMap').map((c) => [c.metadata.name, c.data ?? {}]));
    let checked = 0;
    for (const { owner, template } of podSpecs([...objects, ...testPods])) {
      for (const c of template.spec?.containers ?? template.containers ?? []) {
        const schemas = schemasFor(c.command ?? []);
        if (!schemas.length) continue;
        const env: Record<string, string> = {};
        for (const from of c.envFrom ?? []) Object.assign(env, configMaps.get(from.configMapRef?.name) ?? {});
        for (const e of c.env ?? []) env[e.name] = e.value ?? fieldValue(owner, e.valueFrom?.fieldRef?.fieldPath) ?? secretValue(e.name);
        // A name no schema reads is a typo or a rename the service never sees (it would run on the default).
        // POD_NAME is set on every container by the hardened pod spec (log context), read or not.
        const known = new Set(['POD_NAME', ...schemas.flatMap((sc) => Object.values(sc).map((v) => v.name))]);
        const unknown = (c.env ?? []).map((e: K8sObject) => e.name).filter((n: string) => !known.has(n));
        expect({ object: `${owner.kind}/${owner.metadata.name}`, container: c.name, unknown }).toEqual({ object: `${owner.kind}/${owner.metadata.name}`, container: c.name, unknown: [] });
        for (const schema of schemas) {
          let error = '';
          try { loadEnv(schema, env); } catch (err) { error = (err as Error).message; }
          expect({ object: `${owner.kind}/${owner.metadata.name}`, container: c.name, error }).toEqual({ object: `${owner.kind}/${owner.metadata.name}`, container: c.name, error: '' });
        }
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(6);
  });
});

/** What the downward API gives the first pod of a workload. */
function fieldValue(owner: K8sObject, path: string | undefined): string | undefined {
  if (!path) return undefined;
  if (path === 'metadata.name') return `${owner.metadata.name}-0`;
  if (path === "metadata.labels['apps.kubernetes.io/pod-index']") return '0';
  return 'x';
}

/** A stand-in of the right shape for a Secret-held value. */
function secretValue(name: string): string {
  return name === 'ORB_API_KEYS' ? `dev:sha256:${'a'.repeat(64)}` : 'from-a-secret';
}

/** The env schemas a container's command loads (the service entry points and worker roles). */
function schemasFor(command: string[]): EnvSchema[] {
  const cmd = command.join(' ');
  if (cmd.includes('services/orb/main')) return [ORB_ENV, VAULT_ENV];
  if (cmd.includes('services/seed/main')) return [SEED_ENV, VAULT_ENV];
  const role = /services\/workers\/main\.js (\w+)/.exec(cmd)?.[1];
  const roleEnv: Record<string, EnvSchema> = { whisperx: ASR_ENV, xtts: TTS_ENV, core: CORE_ENV, cali: CALI_ENV };
  if (role) return [WORKER_ENV, VAULT_ENV, roleEnv[role]];
  return [];
}

test('the env check fails, naming the variable, when a manifest misses a required one', () => {
  const { objects } = synthEnvironment(dev);
  const orb = find(objects, 'Deployment', 'orb-core').spec.template.spec.containers[0];
  const env: Record<string, string> = {};
  for (const e of orb.env.filter((x: K8sObject) => x.name !== 'ORB_API_KEYS')) env[e.name] = e.value ?? 'x';
  expect(() => loadEnv(ORB_ENV, env)).toThrow('ORB_API_KEYS');
});

test("the web client's files are exactly the ones the Ingress routes (services/contract WEB_CLIENT_FILES)", async () => {
  const out = mkdtempSync(join(tmpdir(), 'web-'));
  try {
    await buildWeb(out);
    const built = readdirSync(out).filter((f) => !f.endsWith('.map')).sort();
    expect(built).toEqual([...WEB_CLIENT_FILES].sort());
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

describe("CALI's chat endpoint", () => {
  const chatCfg: EnvironmentConfig = {
    ...prod,
    cali: { ...prod.cali, chat: { url: 'https://llm.internal.example/v1', cidr: '10.60.0.0/24', apiKey: { secret: 'cali-chat', key: 'token' } } },
  };

  test('sets CALI_CHAT_URL and opens CALI egress to exactly that block and port', () => {
    const { objects } = synthEnvironment(chatCfg);
    const env = find(objects, 'Deployment', 'cali').spec.template.spec.containers[0].env;
    expect(env).toEqual(expect.arrayContaining([
      { name: 'CALI_CHAT_URL', value: 'https://llm.internal.example/v1' },
      { name: 'CALI_CHAT_API_KEY', valueFrom: { secretKeyRef: { name: 'cali-chat', key: 'token' } } },
    ]));
    const np = find(objects, 'NetworkPolicy', 'cali');
    expect(np.spec.egress).toEqual(expect.arrayContaining([{ to: [{ ipBlock: { cidr: '10.60.0.0/24' } }], ports: [{ port: 443, protocol: 'TCP' }] }]));
    const plain = find(synthEnvironment(prod).objects, 'NetworkPolicy', 'cali');
    expect(JSON.stringify(plain.spec.egress)).not.toContain('ipBlock');
  });

  test('a bad endpoint fails at synth time naming the field', () => {
    expect(() => synthEnvironment({ ...chatCfg, cali: { ...chatCfg.cali, chat: { url: 'ftp://x', cidr: '10.0.0.0/8' } } })).toThrow('prod.cali.chat.url');
    expect(() => synthEnvironment({ ...chatCfg, cali: { ...chatCfg.cali, chat: { url: 'https://x/v1', cidr: 'llm.example' } } })).toThrow('prod.cali.chat.cidr');
  });
});
