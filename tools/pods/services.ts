/**
 * Services as kube-proxy and CoreDNS present them: a ClusterIP Service gets a virtual address
 * that every pod's namespace DNATs to a ready endpoint (service port → targetPort, by name or
 * number); a headless Service resolves to its ready pods' addresses, and a StatefulSet's pods
 * also get `<pod>.<service>` names. Not-ready pods are never endpoints.
 */
import { K8sObject, serviceSelects } from './manifests';
import { NetPod } from './policy';

export interface SvcPod extends NetPod {
  ready: boolean;
  hostname?: string;
  subdomain?: string;
}
export interface SvcEntry {
  svc: K8sObject;
  ip?: string;
}

export const CLUSTER_DOMAIN = 'cluster.local';

function targetPort(port: any, pod: SvcPod): number | undefined {
  // eslint-disable-line @typescript-eslint/no-explicit-any
  const t = port.targetPort ?? port.port;
  if (typeof t === 'number' || /^\d+$/.test(String(t))) return Number(t);
  return pod.ports.find((p) => p.name === t)?.containerPort;
}

export function endpoints(svc: K8sObject, pods: SvcPod[]): SvcPod[] {
  const ns = svc.metadata.namespace ?? 'default';
  return pods.filter((p) => p.ready && p.namespace === ns && serviceSelects(svc, p.labels));
}

/** A → addresses for every Service and StatefulSet pod name, fully qualified, lower case. */
export function dnsRecords(entries: SvcEntry[], pods: SvcPod[]): Record<string, string[]> {
  const rec: Record<string, string[]> = {};
  for (const { svc, ip } of entries) {
    const ns = svc.metadata.namespace ?? 'default';
    const fq = `${svc.metadata.name}.${ns}.svc.${CLUSTER_DOMAIN}`;
    const eps = endpoints(svc, pods);
    rec[fq] = ip ? [ip] : eps.map((p) => p.ip);
    for (const p of eps) if (p.subdomain === svc.metadata.name && p.hostname) rec[`${p.hostname}.${fq}`] = [p.ip];
  }
  return rec;
}

/** nft script for the `ip orbsvc` table (the same in every pod's namespace). */
export function serviceNat(entries: SvcEntry[], pods: SvcPod[], first: boolean): string {
  const lines: string[] = [];
  if (first) {
    lines.push(
      'table ip orbsvc {',
      '  chain out { type nat hook output priority -100; policy accept; }',
      '  chain noep { type filter hook output priority -1; policy accept; }',
      '}',
    );
  }
  lines.push('flush chain ip orbsvc out', 'flush chain ip orbsvc noep');
  for (const { svc, ip } of entries) {
    if (!ip) continue;
    const eps = endpoints(svc, pods);
    for (const port of svc.spec.ports ?? []) {
      const proto = String(port.protocol ?? 'TCP').toLowerCase();
      const targets = eps.map((p) => ({ ip: p.ip, port: targetPort(port, p) })).filter((t) => t.port !== undefined);
      const match = `ip daddr ${ip} ${proto} dport ${port.port}`;
      if (targets.length === 0) lines.push(`add rule ip orbsvc noep ${match} reject${proto === 'tcp' ? ' with tcp reset' : ''}`);
      else if (targets.length === 1) lines.push(`add rule ip orbsvc out ${match} dnat to ${targets[0].ip}:${targets[0].port}`);
      else
        lines.push(
          `add rule ip orbsvc out ${match} dnat to numgen random mod ${targets.length} map { ${targets.map((t, i) => `${i} : ${t.ip} . ${t.port}`).join(', ')} }`,
        );
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The `<NAME>_SERVICE_HOST` / `<NAME>_PORT…` variables the kubelet injects (enableServiceLinks). */
export function serviceLinkEnv(entries: SvcEntry[], namespace: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { svc, ip } of entries) {
    if (!ip || (svc.metadata.namespace ?? 'default') !== namespace) continue;
    const n = svc.metadata.name.toUpperCase().replace(/-/g, '_');
    const ports = svc.spec.ports ?? [];
    if (!ports.length) continue;
    env[`${n}_SERVICE_HOST`] = ip;
    env[`${n}_SERVICE_PORT`] = String(ports[0].port);
    env[`${n}_PORT`] = `${String(ports[0].protocol ?? 'TCP').toLowerCase()}://${ip}:${ports[0].port}`;
    for (const p of ports) {
      const proto = String(p.protocol ?? 'TCP');
      const key = `${n}_PORT_${p.port}_${proto}`;
      env[key] = `${proto.toLowerCase()}://${ip}:${p.port}`;
      env[`${key}_PROTO`] = proto.toLowerCase();
      env[`${key}_PORT`] = String(p.port);
      env[`${key}_ADDR`] = ip;
      if (p.name) env[`${n}_SERVICE_PORT_${p.name.toUpperCase().replace(/-/g, '_')}`] = String(p.port);
    }
  }
  return env;
}
