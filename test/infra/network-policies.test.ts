import { Testing } from 'cdk8s';
import { NetworkPolicies, orbNetworkGraph, graphAllows, checkGraph, type NetworkGraph } from '../../infra';
import { dev, prod } from '../../charts/environments';
import { networkGraph } from '../../charts/orb-stack';
import { synthEnvironment, type K8sObject } from './manifests';

/**
 * Evaluates rendered NetworkPolicies the way a CNI does for pods of one namespace: a connection
 * is allowed when the source's egress AND the destination's ingress both allow it (pods that no
 * policy selects would be open, but the default-deny selects every pod).
 */
function allowedByPolicies(policies: K8sObject[], graph: NetworkGraph, from: string, to: string, port: number, protocol = 'TCP'): boolean {
  const labelsOf = (node: string): { ns: string; labels: Record<string, string> } | { cidr: string } => {
    if (graph.components.includes(node)) return { ns: 'self', labels: { app: node } };
    const ext = graph.externals[node];
    if ('cidr' in ext) return { cidr: ext.cidr };
    return { ns: ext.namespace, labels: ext.podLabels };
  };
  const matches = (sel: Record<string, string> | undefined, labels: Record<string, string>) =>
    Object.entries(sel ?? {}).every(([k, v]) => labels[k] === v);
  const peerMatches = (peer: K8sObject, node: string): boolean => {
    const who = labelsOf(node);
    if ('cidr' in who) return peer.ipBlock?.cidr === who.cidr;
    if (peer.ipBlock) return false;
    const nsOk = peer.namespaceSelector
      ? who.ns !== 'self' && matches(peer.namespaceSelector.matchLabels, { 'kubernetes.io/metadata.name': who.ns })
      : who.ns === 'self';
    return nsOk && matches(peer.podSelector?.matchLabels, who.labels);
  };
  const portOk = (ports: K8sObject[] | undefined) => !ports || ports.some((p) => p.port === port && (p.protocol ?? 'TCP') === protocol);
  const side = (node: string, dir: 'ingress' | 'egress', other: string): boolean => {
    if (!graph.components.includes(node)) return true; // outside our namespace: not ours to police
    const selecting = policies.filter((p) => matches(p.spec.podSelector.matchLabels, { app: node }));
    if (!selecting.some((p) => p.spec.policyTypes.includes(dir === 'ingress' ? 'Ingress' : 'Egress'))) return true;
    return selecting.some((p) =>
      (p.spec[dir] ?? []).some(
        (rule: K8sObject) =>
          portOk(rule.ports) && (rule[dir === 'ingress' ? 'from' : 'to'] ?? []).some((peer: K8sObject) => peerMatches(peer, other)),
      ),
    );
  };
  return side(from, 'egress', to) && side(to, 'ingress', from);
}

describe.each([
  ['dev', dev],
  ['prod', prod],
] as const)('%s network policies', (_name, cfg) => {
  const { objects, testPods } = synthEnvironment(cfg);
  const policies = [...objects, ...testPods].filter((o) => o.kind === 'NetworkPolicy');
  const graph = networkGraph(cfg);
  const nodes = [...graph.components, ...Object.keys(graph.externals)];

  test('a namespace-wide default-deny for both directions', () => {
    const deny = policies.find((p) => p.metadata.name === 'default-deny');
    expect(deny?.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
  });

  test('every component has its own policy selecting it by the app label, both policy types', () => {
    for (const c of graph.components) {
      const p = policies.find((x) => x.metadata.name === c);
      expect([c, p?.spec.podSelector]).toEqual([c, { matchLabels: { app: c } }]);
      expect(p?.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    }
  });

  test('every edge of the graph is allowed by the rendered policies', () => {
    for (const e of graph.edges) {
      expect([e.from, e.to, e.port, e.protocol, allowedByPolicies(policies, graph, e.from, e.to, e.port, e.protocol)]).toEqual([
        e.from,
        e.to,
        e.port,
        e.protocol,
        true,
      ]);
    }
  });

  test('nothing else: no pair of nodes off the graph can connect on any port the stack uses', () => {
    const ports = [...new Set(graph.edges.map((e) => e.port)), 22, 80, 443];
    for (const from of nodes)
      for (const to of nodes)
        for (const port of ports)
          for (const proto of ['TCP', 'UDP'] as const) {
            if (from === to || (!graph.components.includes(from) && !graph.components.includes(to))) continue;
            const allowed = allowedByPolicies(policies, graph, from, to, port, proto);
            if (allowed) expect([from, to, port, proto, graphAllows(graph, from, to, port, proto)]).toEqual([from, to, port, proto, true]);
          }
  });

  test('the speech workers and cores are isolated from each other: xtts cannot reach cali, whisperx, core4 or orb-core', () => {
    for (const to of ['cali', 'whisperx', 'core4', 'orb-core']) {
      expect(allowedByPolicies(policies, graph, 'xtts', to, 8080)).toBe(false);
      expect(graphAllows(graph, 'xtts', to, 8080)).toBe(false);
    }
    expect(allowedByPolicies(policies, graph, 'xtts', 'vault', 6379)).toBe(true);
    expect(allowedByPolicies(policies, graph, 'orb-smoke', 'vault', 6379)).toBe(false);
    expect(allowedByPolicies(policies, graph, 'ingress-controller', 'vault', 6379)).toBe(false);
    expect(allowedByPolicies(policies, graph, 'prometheus', 'orb-core', 8080)).toBe(true);
  });
});

describe('network graph', () => {
  test('KEDA reaches the vault only when enabled', () => {
    expect(graphAllows(networkGraph(prod), 'keda', 'vault', 6379)).toBe(true);
    expect(Object.keys(networkGraph(dev).externals)).not.toContain('keda');
  });

  test('an external vault becomes an ipBlock egress on its ports and no vault pods', () => {
    const g = orbNetworkGraph({ vault: { mode: 'external', cidr: '10.20.0.0/24', ports: [6380, 26379] } });
    expect(g.components).not.toContain('vault');
    expect(graphAllows(g, 'cali', 'vault-external', 26379)).toBe(true);
    const chart = Testing.chart();
    new NetworkPolicies(chart, 'np', { graph: g });
    const cali = Testing.synth(chart).find((o) => o.metadata.name === 'cali');
    expect(cali.spec.egress).toContainEqual({
      to: [{ ipBlock: { cidr: '10.20.0.0/24' } }],
      ports: [
        { port: 6380, protocol: 'TCP' },
        { port: 26379, protocol: 'TCP' },
      ],
    });
  });

  test('a graph edge to an unknown node is refused', () => {
    expect(() =>
      checkGraph({ components: ['a'], externals: {}, edges: [{ from: 'a', to: 'b', port: 1, protocol: 'TCP', why: 'x' }] }),
    ).toThrow("unknown node 'b'");
    const chart = Testing.chart();
    expect(
      () => new NetworkPolicies(chart, 'np', { graph: orbNetworkGraph({ vault: { mode: 'in-cluster' } }), components: ['nope'] }),
    ).toThrow("'components' names 'nope'");
  });
});
