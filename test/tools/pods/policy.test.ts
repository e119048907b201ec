/** NetworkPolicy semantics of the pod runner (tools/pods/policy.ts), checked on hand-made pods. */
import { allows, NetPod, nftScript, parseDrops, podPolicy, Namespace } from '../../../tools/pods/policy';
import type { K8sObject } from '../../../tools/pods/manifests';

const ns: Namespace[] = [
  { name: 'app', labels: { 'kubernetes.io/metadata.name': 'app' } },
  { name: 'monitoring', labels: { 'kubernetes.io/metadata.name': 'monitoring' } },
];
const pod = (name: string, namespace: string, labels: Record<string, string>, ip: string, port?: number): NetPod => ({
  key: name,
  name,
  namespace,
  labels,
  ip,
  ports: port ? [{ name: 'http', containerPort: port, protocol: 'TCP' }] : [],
});
const api = pod('api', 'app', { app: 'api' }, '198.18.1.2', 8080);
const db = pod('db', 'app', { app: 'db' }, '198.18.1.3', 6379);
const web = pod('web', 'app', { app: 'web' }, '198.18.1.4', 8080);
const prom = pod('prom', 'monitoring', { app: 'prometheus' }, '198.18.1.5');
const pods = [api, db, web, prom];
const np = (name: string, spec: Record<string, unknown>): K8sObject => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, namespace: 'app' },
  spec,
});

const policies = [
  np('default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
  np('db', {
    podSelector: { matchLabels: { app: 'db' } },
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ podSelector: { matchLabels: { app: 'api' } } }], ports: [{ port: 6379 }] }],
  }),
  np('api', {
    podSelector: { matchLabels: { app: 'api' } },
    policyTypes: ['Ingress', 'Egress'],
    ingress: [
      {
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
            podSelector: { matchLabels: { app: 'prometheus' } },
          },
        ],
        ports: [{ port: 'http' }],
      },
    ],
    egress: [
      { to: [{ podSelector: { matchLabels: { app: 'db' } } }], ports: [{ port: 6379, protocol: 'TCP' }] },
      { to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.1.0.0/16'] } }], ports: [{ port: 443 }] },
    ],
  }),
];

test('allowed connections follow the API semantics (union of policies, both ends)', () => {
  const a = (s: NetPod, d: NetPod, port: number) => allows(s, d, port, 'tcp', policies, pods, ns);
  expect(a(api, db, 6379)).toBe(true); // api egress → db, db ingress ← api
  expect(a(web, db, 6379)).toBe(false); // db admits only api; web's egress is denied anyway
  expect(a(api, db, 6380)).toBe(false); // wrong port
  expect(a(prom, api, 8080)).toBe(true); // named port 'http' resolves on the destination
  expect(a(prom, web, 8080)).toBe(false); // web is default-deny for ingress
  expect(a(db, api, 8080)).toBe(false); // db egress is default-deny
  const outside = pod('x', 'monitoring', {}, '10.2.3.4', 443);
  const excepted = pod('y', 'monitoring', {}, '10.1.3.4', 443);
  expect(allows(api, outside, 443, 'tcp', policies, [...pods, outside], ns)).toBe(true);
  expect(allows(api, excepted, 443, 'tcp', policies, [...pods, excepted], ns)).toBe(false);
});

test('the nft script isolates only selected directions and records drops with the peer', () => {
  const first = nftScript(podPolicy(db, policies, pods, ns), '198.18.0.1', true);
  expect(first).toContain('table inet orbpod');
  expect(first).toContain('add rule inet orbpod input ip saddr 198.18.1.2 tcp dport 6379 accept');
  expect(first).toContain('add rule inet orbpod input ip saddr 198.18.0.1 accept'); // kubelet probes
  expect(first).toContain('add @drops_in { ip saddr . meta l4proto . th dport }');
  expect(first).toContain('counter name dropped_out drop'); // default-deny egress
  const open = nftScript(podPolicy(prom, policies, pods, ns), '198.18.0.1', false);
  expect(open).not.toContain('drop');
  expect(open).not.toContain('table inet orbpod {'); // an update keeps counters and sets
});

test('parseDrops reads counters and per-peer records from nft -j', () => {
  const json = JSON.stringify({
    nftables: [
      { counter: { family: 'inet', name: 'dropped_in', table: 'orbpod', packets: 3, bytes: 180 } },
      { counter: { family: 'inet', name: 'dropped_out', table: 'orbpod', packets: 0, bytes: 0 } },
      {
        set: { name: 'drops_in', elem: [{ elem: { val: { concat: ['198.18.1.9', 'tcp', 6379] }, counter: { packets: 3, bytes: 180 } } }] },
      },
    ],
  });
  expect(parseDrops(json)).toEqual({
    dropped: { ingress: 3, egress: 0 },
    records: [{ dir: 'ingress', peer: '198.18.1.9', proto: 'tcp', port: 6379, packets: 3 }],
  });
});
