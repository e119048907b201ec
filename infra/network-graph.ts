/**
 * The architecture as ONE declarative graph of allowed connections. NetworkPolicies are generated
 * from it (network-policies.ts) and tests query it, so the picture, the policies and the tests
 * cannot drift apart. Anything not an edge here is denied. Names and ports come from the contract
 * (services/contract), under the stack's name prefix.
 */
import { COMPONENTS, PORTS, stackNames, type StackNames } from '../services/contract';

/** A peer outside the stack's namespace: pods by namespace + labels, or an address block. */
export type ExternalPeer = { readonly namespace: string; readonly podLabels: Readonly<Record<string, string>> } | { readonly cidr: string };

export interface Edge {
  readonly from: string;
  readonly to: string;
  readonly port: number;
  readonly protocol: 'TCP' | 'UDP';
  /** Why this connection exists (rendered nowhere; read by reviewers and tests). */
  readonly why: string;
}

export interface NetworkGraph {
  /** Pods of the stack, by `app` label. */
  readonly components: readonly string[];
  /** Peers outside the namespace, by name. */
  readonly externals: Readonly<Record<string, ExternalPeer>>;
  readonly edges: readonly Edge[];
}

export interface OrbNetworkOptions {
  /**
   * The vault: in-cluster `vault` pods (with `sentinel`: replicated, clients go through the
   * Sentinels' port), or an external address block with its ports.
   */
  readonly vault:
    | { readonly mode: 'in-cluster'; readonly sentinel?: boolean }
    | { readonly mode: 'external'; readonly cidr: string; readonly ports: readonly number[] };
  /** The ingress controller's pods. @default ingress-nginx in namespace ingress-nginx */
  readonly ingressController?: ExternalPeer;
  /** Prometheus' pods. @default prometheus in namespace monitoring */
  readonly prometheus?: ExternalPeer;
  /** Cluster DNS. @default kube-dns in kube-system */
  readonly dns?: ExternalPeer;
  /** KEDA's operator reads stream lag from the vault. @default - not deployed */
  readonly keda?: ExternalPeer;
  /** CALI's chat endpoint (address block and port), when one is configured. @default - none */
  readonly caliChat?: { readonly cidr: string; readonly port: number };
  /**
   * Where the speech workers' model-fetch init containers download from: the source's address
   * block or an egress proxy's pods. @default - no egress beyond the stack
   */
  readonly modelSource?: { readonly peer: ExternalPeer; readonly port: number };
  /** The S3-compatible store vault-backup copies snapshots to. @default - none (PVC only) */
  readonly backupStore?: { readonly peer: ExternalPeer; readonly port: number };
  /** Include the in-cluster smoke test Job. @default true */
  readonly smokeTest?: boolean;
  /** The stack's names (its name prefix). @default - the unprefixed names */
  readonly names?: StackNames;
}

/** Components exposing /metrics on the HTTP port (by role, see COMPONENTS). */
export const SCRAPED_ROLES = ['orbCore', 'whisperx', 'xtts', 'coreQuorum', 'cali'] as const;
/** Components that connect to the vault, each as its own ACL user (by role). */
export const VAULT_CLIENT_ROLES = [...SCRAPED_ROLES, 'seedVault', 'vaultBackup'] as const;
/** Services exposing /metrics, by their unprefixed names. */
export const SCRAPED: readonly string[] = SCRAPED_ROLES.map((r) => COMPONENTS[r]);
/** Everything that connects to the vault, by unprefixed name. */
export const VAULT_CLIENTS: readonly string[] = VAULT_CLIENT_ROLES.map((r) => COMPONENTS[r]);

export function orbNetworkGraph(o: OrbNetworkOptions): NetworkGraph {
  const n = (o.names ?? stackNames()).component;
  const { http, vault: vaultPort, sentinel: sentinelPort, dns: dnsPort } = PORTS;
  const externals: Record<string, ExternalPeer> = {
    'ingress-controller': o.ingressController ?? { namespace: 'ingress-nginx', podLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } },
    prometheus: o.prometheus ?? { namespace: 'monitoring', podLabels: { 'app.kubernetes.io/name': 'prometheus' } },
    dns: o.dns ?? { namespace: 'kube-system', podLabels: { 'k8s-app': 'kube-dns' } },
  };
  const components: string[] = VAULT_CLIENT_ROLES.map((r) => n[r]);
  if (o.vault.mode === 'in-cluster') components.push(n.vault);
  if (o.smokeTest ?? true) components.push(n.orbSmoke);
  const edges: Edge[] = [];
  const tcp = (from: string, to: string, port: number, why: string) => edges.push({ from, to, port, protocol: 'TCP', why });

  tcp('ingress-controller', n.orbCore, http, 'clients reach the gateway (REST + WebSocket) through the ingress');
  if (o.smokeTest ?? true) tcp(n.orbSmoke, n.orbCore, http, 'the smoke test exercises the gateway Service');
  const sentinel = o.vault.mode === 'in-cluster' && o.vault.sentinel === true;
  for (const client of VAULT_CLIENT_ROLES.map((r) => n[r])) {
    if (o.vault.mode === 'in-cluster') tcp(client, n.vault, vaultPort, 'shared state and the bus live in the vault');
    else for (const port of o.vault.ports) tcp(client, 'vault-external', port, 'shared state and the bus live in the external vault');
    if (sentinel) tcp(client, n.vault, sentinelPort, 'clients ask the Sentinels for the primary and follow failovers');
  }
  if (sentinel) {
    tcp(n.vault, n.vault, vaultPort, 'replicas sync from the primary; Sentinels monitor and reconfigure every node');
    tcp(n.vault, n.vault, sentinelPort, 'Sentinels talk to each other; a starting node asks them for the primary');
  }
  if (o.keda) {
    externals.keda = o.keda;
    // An external vault is outside the namespace on both ends: KEDA's egress is not ours to police.
    if (o.vault.mode === 'in-cluster') tcp('keda', n.vault, vaultPort, "KEDA reads the speech streams' consumer-group lag");
    if (sentinel) tcp('keda', n.vault, sentinelPort, 'KEDA finds the primary through the Sentinels');
  }
  if (o.vault.mode === 'external') externals['vault-external'] = { cidr: o.vault.cidr };
  if (o.caliChat) {
    externals['cali-chat'] = { cidr: o.caliChat.cidr };
    tcp(n.cali, 'cali-chat', o.caliChat.port, 'CALI asks the configured chat endpoint for free-form replies');
  }
  if (o.modelSource) {
    externals['model-source'] = o.modelSource.peer;
    for (const role of [n.whisperx, n.xtts])
      tcp(role, 'model-source', o.modelSource.port, 'model-fetch downloads the speech models (directly or through the egress proxy)');
  }
  if (o.backupStore) {
    externals['backup-store'] = o.backupStore.peer;
    tcp(n.vaultBackup, 'backup-store', o.backupStore.port, 'vault-backup copies each snapshot off the cluster');
  }
  for (const target of SCRAPED_ROLES.map((r) => n[r])) tcp('prometheus', target, http, 'Prometheus scrapes /metrics');
  for (const c of components) {
    edges.push({ from: c, to: 'dns', port: dnsPort, protocol: 'UDP', why: 'name resolution' });
    edges.push({ from: c, to: 'dns', port: dnsPort, protocol: 'TCP', why: 'name resolution (large answers)' });
  }
  checkGraph({ components, externals, edges });
  return { components, externals, edges };
}

/** Every edge joins known nodes, and at least one end is ours (else no policy of ours can express it). */
export function checkGraph(g: NetworkGraph): void {
  const known = new Set([...g.components, ...Object.keys(g.externals)]);
  for (const e of g.edges) {
    for (const end of [e.from, e.to]) if (!known.has(end)) throw new Error(`edge ${e.from} -> ${e.to}: unknown node '${end}'`);
    if (!g.components.includes(e.from) && !g.components.includes(e.to))
      throw new Error(`edge ${e.from} -> ${e.to}: neither end is a component of the stack`);
    if (!Number.isInteger(e.port) || e.port < 1 || e.port > 65535)
      throw new Error(`edge ${e.from} -> ${e.to}: port ${e.port} is not a TCP/UDP port`);
  }
}

/** Whether the graph lets `from` open a connection to `to` on `port`. */
export function graphAllows(g: NetworkGraph, from: string, to: string, port: number, protocol: 'TCP' | 'UDP' = 'TCP'): boolean {
  return g.edges.some((e) => e.from === from && e.to === to && e.port === port && e.protocol === protocol);
}
