/** Services, DNS records, Service links and the image table of the pod runner. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dnsRecords, serviceLinkEnv, serviceNat, type SvcPod } from '../../../tools/pods/services';
import { ImageTable, readDockerStage } from '../../../tools/pods/images';
import { expand } from '../../../tools/pods/pod';
import type { K8sObject } from '../../../tools/pods/manifests';

const svc = (name: string, spec: Record<string, unknown>): K8sObject => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: 'app' },
  spec,
});
const p = (name: string, ip: string, labels: Record<string, string>, ready = true, extra: Partial<SvcPod> = {}): SvcPod => ({
  key: name,
  name,
  namespace: 'app',
  labels,
  ip,
  ready,
  ports: [
    { name: 'http', containerPort: 8080, protocol: 'TCP' },
    { name: 'redis', containerPort: 6379, protocol: 'TCP' },
  ],
  ...extra,
});

const web = svc('web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] });
const vault = svc('vault', { clusterIP: 'None', selector: { app: 'vault' }, ports: [{ port: 6379, targetPort: 'redis' }] });
const pods = [
  p('web-a', '198.18.1.2', { app: 'web' }),
  p('web-b', '198.18.1.3', { app: 'web' }),
  p('web-c', '198.18.1.4', { app: 'web' }, false),
  p('vault-0', '198.18.1.5', { app: 'vault' }, true, { hostname: 'vault-0', subdomain: 'vault' }),
];

test('ClusterIP DNATs service port to the named targetPort of ready endpoints only', () => {
  const nat = serviceNat([{ svc: web, ip: '198.18.200.11' }], pods, false);
  expect(nat).toContain(
    'ip daddr 198.18.200.11 tcp dport 80 dnat to numgen random mod 2 map { 0 : 198.18.1.2 . 8080, 1 : 198.18.1.3 . 8080 }',
  );
  const none = serviceNat(
    [{ svc: web, ip: '198.18.200.11' }],
    pods.map((x) => ({ ...x, ready: false })),
    false,
  );
  expect(none).toContain('ip daddr 198.18.200.11 tcp dport 80 reject with tcp reset');
});

test('DNS: ClusterIP names its address, headless names ready pods and StatefulSet pod names', () => {
  const rec = dnsRecords([{ svc: web, ip: '198.18.200.11' }, { svc: vault }], pods);
  expect(rec['web.app.svc.cluster.local']).toEqual(['198.18.200.11']);
  expect(rec['vault.app.svc.cluster.local']).toEqual(['198.18.1.5']);
  expect(rec['vault-0.vault.app.svc.cluster.local']).toEqual(['198.18.1.5']);
});

test('Service link variables as the kubelet injects them', () => {
  const env = serviceLinkEnv([{ svc: web, ip: '198.18.200.11' }, { svc: vault }], 'app');
  expect(env).toMatchObject({
    WEB_SERVICE_HOST: '198.18.200.11',
    WEB_SERVICE_PORT: '80',
    WEB_PORT: 'tcp://198.18.200.11:80',
    WEB_SERVICE_PORT_HTTP: '80',
  });
  expect(env.VAULT_SERVICE_HOST).toBeUndefined(); // headless Services get no link variables
});

test('$(VAR) expansion: defined names expand, $$ escapes, unknown stay', () => {
  expect(expand('$(A)-$(B)-$$(A)', { A: '1' })).toBe('1-$(B)-$(A)');
});

test('the app image is laid out from the Dockerfile cpu stage; an unknown image or COPY is an error', () => {
  const table = new ImageTable(join(__dirname, '../../..'), '/tmp/state');
  const app = table.resolve('ucm4/orb:0.1.0');
  expect(app.workdir).toBe('/app');
  expect(app.user).toEqual({ uid: 10001, gid: 10001 });
  expect(app.env).toMatchObject({ NODE_ENV: 'production', ORB_WEB_ROOT: '/app/web/dist' });
  expect(app.layout.map((l) => l.target)).toEqual(
    expect.arrayContaining(['/app/build', '/app/web/dist', '/app/models/core', '/app/models/tiny']),
  );
  expect(table.resolve(`ucm4/orb@sha256:${'a'.repeat(64)}`).name).toBe(app.name);
  expect(table.resolve('redis:7.4.1').cmd).toEqual(['redis-server']);
  expect(() => table.resolve('nginx:1.27')).toThrow('image nginx:1.27 has no local stand-in');
  const dir = mkdtempSync(join(tmpdir(), 'df-'));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM node:20 AS cpu\nWORKDIR /app\nCOPY extra ./extra\n');
  expect(readDockerStage(join(dir, 'Dockerfile'), 'cpu').copies).toEqual(['/app/extra']);
  expect(() => new ImageTable(dir, '/tmp/state').resolve('ucm4/orb:1')).toThrow("copies to /app/extra, which the pod runner's image table");
});
