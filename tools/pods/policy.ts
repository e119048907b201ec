/**
 * NetworkPolicy → nftables, evaluated the way the API defines it: a pod is isolated for a
 * direction when any policy selecting it lists that policyType; its allowed traffic is then the
 * union of those policies' rules. Rules are written into the pod's own namespace (table
 * `inet orbpod`), replies of allowed connections pass (conntrack), and every dropped packet is
 * counted per direction and recorded as (peer address, protocol, port) so a refusal can be
 * reported with its source and destination pod.
 */
import { K8sObject, selects } from './manifests';

export interface PodPort {
  name?: string;
  containerPort: number;
  protocol: string;
}
export interface NetPod {
  key: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  ip: string;
  ports: PodPort[];
}
export interface Namespace {
  name: string;
  labels: Record<string, string>;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Peer = any;
type Port = any;

function peerPods(
  peer: Peer,
  policyNs: string,
  pods: NetPod[],
  namespaces: Namespace[],
): NetPod[] | 'all' | { cidr: string; except: string[] } {
  if (peer.ipBlock) return { cidr: peer.ipBlock.cidr, except: peer.ipBlock.except ?? [] };
  const nsOk = (ns: string): boolean => {
    if (!peer.namespaceSelector) return ns === policyNs;
    const labels = namespaces.find((n) => n.name === ns)?.labels ?? {};
    return selects(peer.namespaceSelector, labels);
  };
  return pods.filter((p) => nsOk(p.namespace) && (!peer.podSelector || selects(peer.podSelector, p.labels)));
}

/** Port numbers a port entry means for a given destination pod (named ports resolve per pod). */
function portSpec(port: Port, dest: NetPod | undefined): { proto: string; ports: string } | undefined {
  const proto = String(port.protocol ?? 'TCP').toLowerCase();
  if (port.port === undefined) return { proto, ports: '' };
  let n: number | undefined = typeof port.port === 'number' ? port.port : /^\d+$/.test(port.port) ? Number(port.port) : undefined;
  if (n === undefined) n = dest?.ports.find((p) => p.name === port.port && p.protocol.toLowerCase() === proto)?.containerPort;
  if (n === undefined) return undefined; // a named port this pod does not have matches nothing
  return { proto, ports: port.endPort ? `${n}-${port.endPort}` : String(n) };
}

const set = (xs: string[]): string => (xs.length === 1 ? xs[0] : `{ ${xs.join(', ')} }`);

/** The nft match lines one rule (peers × ports) allows, for traffic `dir` of `self`. */
function ruleLines(
  rule: any,
  dir: 'ingress' | 'egress',
  self: NetPod,
  policyNs: string,
  pods: NetPod[],
  namespaces: Namespace[],
): string[] {
  const peers: Peer[] = (dir === 'ingress' ? rule.from : rule.to) ?? [];
  const addrField = dir === 'ingress' ? 'ip saddr' : 'ip daddr';
  const ports: Port[] = rule.ports?.length ? rule.ports : [{}];
  // [address match, destination pod for named ports]
  const targets: Array<{ match: string; dest?: NetPod }> = [];
  if (peers.length === 0) targets.push({ match: '', dest: dir === 'ingress' ? self : undefined });
  for (const peer of peers) {
    const r = peerPods(peer, policyNs, pods, namespaces);
    if (r === 'all') targets.push({ match: '' });
    else if (Array.isArray(r)) {
      if (dir === 'ingress') {
        if (r.length) targets.push({ match: `${addrField} ${set(r.map((p) => p.ip))}`, dest: self });
      } else for (const p of r) targets.push({ match: `${addrField} ${p.ip}`, dest: p });
    } else {
      const except = r.except.length ? ` ${addrField} != ${set(r.except)}` : '';
      targets.push({ match: `${addrField} ${r.cidr}${except}`, dest: dir === 'ingress' ? self : undefined });
    }
  }
  const lines: string[] = [];
  for (const t of targets) {
    for (const port of ports) {
      const ps = portSpec(port, t.dest);
      if (!ps) continue;
      const portMatch = ps.ports ? ` ${ps.proto} dport ${ps.ports}` : port.protocol ? ` meta l4proto ${ps.proto}` : '';
      lines.push(`${t.match}${portMatch} accept`.trim());
    }
  }
  return lines;
}

export interface PodPolicy {
  ingressIsolated: boolean;
  egressIsolated: boolean;
  ingress: string[];
  egress: string[];
  policies: string[];
}

export function podPolicy(self: NetPod, policies: K8sObject[], pods: NetPod[], namespaces: Namespace[]): PodPolicy {
  const out: PodPolicy = { ingressIsolated: false, egressIsolated: false, ingress: [], egress: [], policies: [] };
  for (const np of policies) {
    const ns = np.metadata.namespace ?? 'default';
    if (ns !== self.namespace || !selects(np.spec.podSelector ?? {}, self.labels)) continue;
    out.policies.push(np.metadata.name);
    const types: string[] = np.spec.policyTypes ?? (np.spec.egress ? ['Ingress', 'Egress'] : ['Ingress']);
    if (types.includes('Ingress')) {
      out.ingressIsolated = true;
      for (const r of np.spec.ingress ?? []) out.ingress.push(...ruleLines(r, 'ingress', self, ns, pods, namespaces));
    }
    if (types.includes('Egress')) {
      out.egressIsolated = true;
      for (const r of np.spec.egress ?? []) out.egress.push(...ruleLines(r, 'egress', self, ns, pods, namespaces));
    }
  }
  return out;
}

/** The nft script that (re)writes a pod's policy chains; sets and counters keep their values. */
export function nftScript(p: PodPolicy, nodeIp: string, first: boolean): string {
  const head = first
    ? `table inet orbpod {
  counter dropped_in { }
  counter dropped_out { }
  set drops_in { type ipv4_addr . inet_proto . inet_service; flags dynamic; counter; size 8192; }
  set drops_out { type ipv4_addr . inet_proto . inet_service; flags dynamic; counter; size 8192; }
  chain input { type filter hook input priority 0; policy accept; }
  chain output { type filter hook output priority 0; policy accept; }
}
`
    : '';
  const chain = (name: string, isolated: boolean, allow: string[], dir: 'in' | 'out'): string => {
    const peer = dir === 'in' ? 'ip saddr' : 'ip daddr';
    const lines = [
      `flush chain inet orbpod ${name}`,
      `add rule inet orbpod ${name} ${dir === 'in' ? 'iif' : 'oif'} lo accept`,
      `add rule inet orbpod ${name} ct state established,related accept`,
    ];
    if (dir === 'in') lines.push(`add rule inet orbpod input ip saddr ${nodeIp} accept`); // kubelet probes come from the node
    if (isolated) {
      for (const a of allow) lines.push(`add rule inet orbpod ${name} ${a}`);
      lines.push(`add rule inet orbpod ${name} meta l4proto { tcp, udp } add @drops_${dir} { ${peer} . meta l4proto . th dport }`);
      lines.push(`add rule inet orbpod ${name} counter name dropped_${dir} drop`);
    }
    return lines.join('\n');
  };
  return `${head}${chain('input', p.ingressIsolated, p.ingress, 'in')}\n${chain('output', p.egressIsolated, p.egress, 'out')}\n`;
}

export interface DropRecord {
  dir: 'ingress' | 'egress';
  peer: string;
  proto: string;
  port: number;
  packets: number;
}

/** Reads `nft -j list table inet orbpod` output into counters and per-peer drop records. */
export function parseDrops(json: string): { dropped: { ingress: number; egress: number }; records: DropRecord[] } {
  const doc = JSON.parse(json) as { nftables: any[] };
  const dropped = { ingress: 0, egress: 0 };
  const records: DropRecord[] = [];
  for (const item of doc.nftables) {
    if (item.counter) {
      if (item.counter.name === 'dropped_in') dropped.ingress = item.counter.packets;
      if (item.counter.name === 'dropped_out') dropped.egress = item.counter.packets;
    }
    if (item.set && (item.set.name === 'drops_in' || item.set.name === 'drops_out')) {
      for (const el of item.set.elem ?? []) {
        const e = el.elem ?? el;
        const [peer, proto, port] = e.val?.concat ?? [];
        records.push({
          dir: item.set.name === 'drops_in' ? 'ingress' : 'egress',
          peer,
          proto: String(proto),
          port: Number(port),
          packets: e.counter?.packets ?? 0,
        });
      }
    }
  }
  return { dropped, records };
}

/**
 * Whether the API's semantics allow a TCP/UDP connection src → dst:port (dst's ingress and src's
 * egress both admit it). The e2e check compares this with what nftables really does.
 */
export function allows(
  src: NetPod,
  dst: NetPod,
  port: number,
  proto: string,
  policies: K8sObject[],
  pods: NetPod[],
  namespaces: Namespace[],
): boolean {
  const matchAddr = (line: string, addr: string): boolean => {
    const m = /ip [sd]addr (\{ ([^}]+) \}|\S+)/.exec(line);
    if (!m) return true;
    const list = m[2] ? m[2].split(',').map((x) => x.trim()) : [m[1]];
    return list.some((a) => (a.includes('/') ? inCidr(addr, a) : a === addr)) && !exceptHit(line, addr);
  };
  const matchPort = (line: string): boolean => {
    const m = /(tcp|udp|sctp) dport (\d+)(?:-(\d+))?/.exec(line);
    if (m) return m[1] === proto && port >= Number(m[2]) && port <= Number(m[3] ?? m[2]);
    const l4 = /meta l4proto (\w+)/.exec(line);
    return !l4 || l4[1] === proto;
  };
  const ing = podPolicy(dst, policies, pods, namespaces);
  const egr = podPolicy(src, policies, pods, namespaces);
  const inOk = !ing.ingressIsolated || ing.ingress.some((l) => matchAddr(l, src.ip) && matchPort(l));
  const outOk = !egr.egressIsolated || egr.egress.some((l) => matchAddr(l, dst.ip) && matchPort(l));
  return inOk && outOk;
}

function inCidr(addr: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const n = (a: string) => a.split('.').reduce((x, o) => (x << 8) + Number(o), 0) >>> 0;
  const mask = Number(bits) === 0 ? 0 : (~0 << (32 - Number(bits))) >>> 0;
  return (n(addr) & mask) === (n(base) & mask);
}

function exceptHit(line: string, addr: string): boolean {
  const m = /!= (\{ ([^}]+) \}|\S+)/.exec(line);
  if (!m) return false;
  const list = m[2] ? m[2].split(',').map((x) => x.trim()) : [m[1]];
  return list.some((c) => inCidr(addr, c));
}
