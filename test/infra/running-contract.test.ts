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
import { loadEnv } from '../../services/config/env';
import { ORB_ENV } from '../../services/config/orb';
import { WEB_CLIENT_FILES } from '../../services/contract';
import { buildWeb } from '../../web/build';
import { envProblems } from '../../tools/pods/env-contract';
import { BREAKAGES } from '../../tools/pods/breakage';
import { find, synthEnvironment, type K8sObject } from './manifests';

const ENVS: Array<[string, EnvironmentConfig]> = [
  ['dev', dev],
  ['prod', prod],
];

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
      const routed = (p: string) =>
        paths.some((x) =>
          x.pathType === 'Exact' ? p === x.path : x.path === '/' || p === x.path || p.startsWith(`${x.path.replace(/\/$/, '')}/`),
        );
      for (const p of ['/metrics', '/livez', '/readyz', '/metrics/', '/debug'])
        expect({ p, routed: routed(p) }).toEqual({ p, routed: false });
      for (const p of ['/v1/session', '/v1/sessions/abc', '/v1/audio/speech', '/', '/app.js'])
        expect({ p, routed: routed(p) }).toEqual({ p, routed: true });
    }
  });

  test('every variable a service requires is set by its manifest, and its value parses', () => {
    // The same check e2e:pods runs on the rendered tree before any pod starts (tools/pods/env-contract.ts).
    const { checked, problems } = envProblems([...objects, ...testPods]);
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(6);
  });
});

test('the env check fails, naming the variable, when a manifest misses a required one', () => {
  const { objects } = synthEnvironment(dev);
  const orb = find(objects, 'Deployment', 'orb-core').spec.template.spec.containers[0];
  const env: Record<string, string> = {};
  for (const e of orb.env.filter((x: K8sObject) => x.name !== 'ORB_API_KEYS')) env[e.name] = e.value ?? 'x';
  expect(() => loadEnv(ORB_ENV, env)).toThrow('ORB_API_KEYS');
});

test('a one-sided rename (e2e:pods --break env-name) is reported with the object, the container and both names', () => {
  const { objects } = synthEnvironment(dev);
  expect(BREAKAGES['env-name'].apply(objects)).toBe('Deployment/orb-core spec.template.spec.containers[0].env[ORB_API_KEYS].name');
  const { problems } = envProblems(objects);
  const c = find(objects, 'Deployment', 'orb-core').spec.template.spec.containers[0].name;
  expect(problems.map((p) => `${p.object} container ${p.container} env: ${p.problem.split(' (')[0]}`)).toEqual([
    `Deployment/orb-core container ${c} env: ORB_API_KEY is set but no config schema of this service reads it`,
    `Deployment/orb-core container ${c} env: ORB_API_KEYS is required`,
  ]);
  expect(`Deployment/orb-core container ${c} env: ${problems[1].problem}`).toMatch(BREAKAGES['env-name'].expect);
});

test("the web client's files are exactly the ones the Ingress routes (services/contract WEB_CLIENT_FILES)", async () => {
  const out = mkdtempSync(join(tmpdir(), 'web-'));
  try {
    await buildWeb(out);
    const built = readdirSync(out)
      .filter((f) => !f.endsWith('.map'))
      .sort();
    expect(built).toEqual([...WEB_CLIENT_FILES].sort());
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

describe("CALI's chat endpoint", () => {
  const chatCfg: EnvironmentConfig = {
    ...prod,
    cali: {
      ...prod.cali,
      chat: { url: 'https://llm.internal.example/v1', cidr: '10.60.0.0/24', apiKey: { secret: 'cali-chat', key: 'token' } },
    },
  };

  test('sets CALI_CHAT_URL and opens CALI egress to exactly that block and port', () => {
    const { objects } = synthEnvironment(chatCfg);
    const env = find(objects, 'Deployment', 'cali').spec.template.spec.containers[0].env;
    expect(env).toEqual(
      expect.arrayContaining([
        { name: 'CALI_CHAT_URL', value: 'https://llm.internal.example/v1' },
        { name: 'CALI_CHAT_API_KEY', valueFrom: { secretKeyRef: { name: 'cali-chat', key: 'token' } } },
      ]),
    );
    const np = find(objects, 'NetworkPolicy', 'cali');
    expect(np.spec.egress).toEqual(
      expect.arrayContaining([{ to: [{ ipBlock: { cidr: '10.60.0.0/24' } }], ports: [{ port: 443, protocol: 'TCP' }] }]),
    );
    const plain = find(synthEnvironment(prod).objects, 'NetworkPolicy', 'cali');
    expect(JSON.stringify(plain.spec.egress)).not.toContain('ipBlock');
  });

  test('a bad endpoint fails at synth time naming the field', () => {
    expect(() => synthEnvironment({ ...chatCfg, cali: { ...chatCfg.cali, chat: { url: 'ftp://x', cidr: '10.0.0.0/8' } } })).toThrow(
      'prod.cali.chat.url',
    );
    expect(() => synthEnvironment({ ...chatCfg, cali: { ...chatCfg.cali, chat: { url: 'https://x/v1', cidr: 'llm.example' } } })).toThrow(
      'prod.cali.chat.cidr',
    );
  });
});
