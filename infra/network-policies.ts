/** NetworkPolicies generated from the NetworkGraph: a namespace default-deny plus one policy per component. */
import { Construct } from 'constructs';
import { componentLabels } from './labels';
import { k8s } from './k8s';
import type { Edge, ExternalPeer, NetworkGraph } from './network-graph';

export interface NetworkPoliciesProps {
  readonly graph: NetworkGraph;
  /**
   * Components whose policies are rendered here (the smoke test's goes with the test pods).
   * @default - every component of the graph
   */
  readonly components?: readonly string[];
  /** Render the namespace-wide default-deny. @default true */
  readonly defaultDeny?: boolean;
  /** @default - no version label */
  readonly version?: string;
  /** Name prefix of the stack (the default-deny policy's name). @default '' */
  readonly namePrefix?: string;
}

function peerOf(graph: NetworkGraph, node: string): k8s.NetworkPolicyPeer {
  if (graph.components.includes(node)) return { podSelector: { matchLabels: { app: node } } };
  const ext: ExternalPeer | undefined = graph.externals[node];
  if (!ext) throw new Error(`network graph: unknown node '${node}'`);
  if ('cidr' in ext) return { ipBlock: { cidr: ext.cidr } };
  return {
    namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ext.namespace } },
    podSelector: { matchLabels: { ...ext.podLabels } },
  };
}

/** One rule per peer, its ports sorted: stable output and one place to read who talks to whom. */
function rules(
  graph: NetworkGraph,
  edges: readonly Edge[],
  peerEnd: 'from' | 'to',
): { peer: k8s.NetworkPolicyPeer; ports: k8s.NetworkPolicyPort[] }[] {
  const byPeer = new Map<string, Edge[]>();
  for (const e of edges) byPeer.set(e[peerEnd], [...(byPeer.get(e[peerEnd]) ?? []), e]);
  return [...byPeer.keys()].sort().map((node) => ({
    peer: peerOf(graph, node),
    ports: (byPeer.get(node) ?? [])
      .slice()
      .sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol))
      .map((e) => ({ port: k8s.IntOrString.fromNumber(e.port), protocol: e.protocol })),
  }));
}

export class NetworkPolicies extends Construct {
  constructor(scope: Construct, id: string, props: NetworkPoliciesProps) {
    super(scope, id);
    const g = props.graph;
    const selected = props.components ?? g.components;
    if (props.defaultDeny ?? true) {
      new k8s.KubeNetworkPolicy(this, 'default-deny', {
        metadata: {
          name: `${props.namePrefix ?? ''}default-deny`,
          labels: componentLabels({ name: `${props.namePrefix ?? ''}default-deny`, component: 'network', version: props.version }),
        },
        spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
      });
    }
    for (const c of selected) {
      if (!g.components.includes(c)) throw new Error(`'components' names '${c}', which is not in the network graph`);
      const ingress = rules(
        g,
        g.edges.filter((e) => e.to === c),
        'from',
      ).map((r) => ({ from: [r.peer], ports: r.ports }));
      const egress = rules(
        g,
        g.edges.filter((e) => e.from === c),
        'to',
      ).map((r) => ({ to: [r.peer], ports: r.ports }));
      new k8s.KubeNetworkPolicy(this, c, {
        metadata: { name: c, labels: componentLabels({ name: c, component: 'network', version: props.version }) },
        spec: {
          podSelector: { matchLabels: { app: c } },
          policyTypes: ['Ingress', 'Egress'],
          ingress,
          egress,
        },
      });
    }
  }
}
