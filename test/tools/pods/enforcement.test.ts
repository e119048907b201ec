/**
 * NetworkPolicies enforced for real: pods in network namespaces on the runner's bridge, the
 * runner's nft rules in each, a listener in one and connections from the others. Needs root,
 * iproute2 and nftables (SKIPPED otherwise; CI installs them).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PodNetwork, NODE_IP } from '../../../tools/pods/network';
import { NetPod, nftScript, parseDrops, podPolicy, type Namespace } from '../../../tools/pods/policy';
import { run } from '../../../tools/pods/sh';
import { hasTool, isRoot } from '../../support/system-tools';
import type { K8sObject } from '../../../tools/pods/manifests';

const ready =
  isRoot('NetworkPolicy enforcement in network namespaces') &&
  hasTool('nft', 'nftables', 'NetworkPolicy enforcement') &&
  hasTool('ip', 'iproute2', 'pod network namespaces');
const net = new PodNetwork(`orbtest-${randomBytes(3).toString('hex')}`);
const ns: Namespace[] = [{ name: 'app', labels: { 'kubernetes.io/metadata.name': 'app' } }];
const mk = (name: string, ip: string, port?: number): NetPod => ({
  key: name,
  name,
  namespace: 'app',
  labels: { app: name },
  ip,
  ports: port ? [{ name: 'http', containerPort: port, protocol: 'TCP' }] : [],
});
const server = mk('server', '198.18.1.2', 8080);
const friend = mk('friend', '198.18.1.3');
const stranger = mk('stranger', '198.18.1.4');
const pods = [server, friend, stranger];
const policies: K8sObject[] = [
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'server', namespace: 'app' },
    spec: {
      podSelector: { matchLabels: { app: 'server' } },
      policyTypes: ['Ingress'],
      ingress: [{ from: [{ podSelector: { matchLabels: { app: 'friend' } } }], ports: [{ port: 'http' }] }],
    },
  },
];
let listener: ChildProcess | undefined;
const nsOf = (p: NetPod) => net.podNs(p.key);

async function connect(from: NetPod): Promise<string> {
  const js = `const s=require('net').connect({host:'${server.ip}',port:8080});s.setTimeout(1000);s.on('connect',()=>{console.log('connected');s.destroy()});s.on('timeout',()=>{console.log('timeout');s.destroy()});s.on('error',e=>console.log(e.code))`;
  return (await run('ip', ['netns', 'exec', nsOf(from), process.execPath, '-e', js], { allowFail: true })).stdout.trim();
}

(ready ? describe : describe.skip)('nftables enforcement', () => {
  beforeAll(async () => {
    await net.create();
    for (const p of pods) {
      await net.wirePod(p.key, p.ip);
      await run('ip', ['netns', 'exec', nsOf(p), 'nft', '-f', '-'], { input: nftScript(podPolicy(p, policies, pods, ns), NODE_IP, true) });
    }
    listener = spawn('ip', [
      'netns',
      'exec',
      nsOf(server),
      process.execPath,
      '-e',
      `require('net').createServer(s=>s.end()).listen(8080,'${server.ip}',()=>console.log('up'))`,
    ]);
    await new Promise<void>((ok) => listener!.stdout!.once('data', () => ok()));
  }, 30_000);
  afterAll(async () => {
    listener?.kill();
    await net.destroyAll();
  });

  test('the allowed peer connects; the other is dropped, counted and recorded with its address', async () => {
    expect(await connect(friend)).toBe('connected');
    expect(await connect(stranger)).toBe('timeout');
    const { stdout } = await run('ip', ['netns', 'exec', nsOf(server), 'nft', '-j', 'list', 'table', 'inet', 'orbpod']);
    const d = parseDrops(stdout);
    expect(d.dropped.ingress).toBeGreaterThan(0);
    expect(d.records).toEqual(
      expect.arrayContaining([expect.objectContaining({ dir: 'ingress', peer: stranger.ip, proto: 'tcp', port: 8080 })]),
    );
    expect(d.records.some((r) => r.peer === friend.ip)).toBe(false);
  });

  test('a rule update keeps the drop counters (chains are flushed, not the table)', async () => {
    const before = parseDrops((await run('ip', ['netns', 'exec', nsOf(server), 'nft', '-j', 'list', 'table', 'inet', 'orbpod'])).stdout)
      .dropped.ingress;
    await run('ip', ['netns', 'exec', nsOf(server), 'nft', '-f', '-'], {
      input: nftScript(podPolicy(server, policies, pods, ns), NODE_IP, false),
    });
    const after = parseDrops((await run('ip', ['netns', 'exec', nsOf(server), 'nft', '-j', 'list', 'table', 'inet', 'orbpod'])).stdout)
      .dropped.ingress;
    expect(after).toBe(before);
    expect(await connect(friend)).toBe('connected');
  });
});
