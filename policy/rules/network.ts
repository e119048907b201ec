/** Network: NetworkPolicies, Services, Ingresses (N1 N2 N3 N4). */
import type { K8sObject, Rule, RuleContext } from '../types';
import { containersOf, hasPods, mapSelectorMatches, nsOf, podLabels, podWorkloads, selectorMatches, type Json } from '../k8s';

const policiesIn = (ctx: RuleContext, ns: string) => ctx.objects.filter((o) => o.kind === 'NetworkPolicy' && nsOf(o) === ns);

const bothTypes = (np: K8sObject) => {
  const t: string[] = np.spec?.policyTypes ?? [];
  return t.includes('Ingress') && t.includes('Egress');
};

const isEmptySelector = (s: Json) =>
  s !== undefined && Object.keys(s.matchLabels ?? {}).length === 0 && (s.matchExpressions ?? []).length === 0;

/** A policy over every pod of the namespace, both directions, allowing nothing. */
export function isDefaultDeny(np: K8sObject): boolean {
  return (
    isEmptySelector(np.spec?.podSelector) && bothTypes(np) && (np.spec?.ingress ?? []).length === 0 && (np.spec?.egress ?? []).length === 0
  );
}

export const N1: Rule = {
  id: 'N1',
  title: 'every pod selected by a NetworkPolicy naming it by one label, both policyTypes, non-empty rules; namespace default-deny',
  applies: (obj) => hasPods(obj),
  check: (obj, ctx) => {
    const out: string[] = [];
    const nps = policiesIn(ctx, nsOf(obj));
    if (!nps.some(isDefaultDeny))
      out.push(`namespace ${nsOf(obj)} has no default-deny NetworkPolicy (podSelector {}, Ingress+Egress, no rules)`);
    const labels = podLabels(obj);
    const own = nps.filter((np) => {
      const sel = np.spec?.podSelector ?? {};
      return Object.keys(sel.matchLabels ?? {}).length === 1 && (sel.matchExpressions ?? []).length === 0 && selectorMatches(sel, labels);
    });
    if (own.length === 0) out.push('no NetworkPolicy selects its pods by one label');
    else if (!own.some((np) => bothTypes(np) && (np.spec.ingress ?? []).length + (np.spec.egress ?? []).length > 0)) {
      out.push(`its NetworkPolicy (${own.map((n) => n.metadata.name).join(', ')}) lacks policyTypes [Ingress, Egress] or has no rules`);
    }
    return out;
  },
};

export const N2: Rule = {
  id: 'N2',
  title: 'every NetworkPolicy selects at least one pod',
  applies: (obj) => obj.kind === 'NetworkPolicy',
  check: (obj, ctx) =>
    podWorkloads(ctx, nsOf(obj)).some((w) => selectorMatches(obj.spec?.podSelector ?? {}, podLabels(w)))
      ? []
      : ['selects no pod of its namespace'],
};

/** DNS-1123 label: what a Service port name must be. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const N3: Rule = {
  id: 'N3',
  title: 'Service selectors match a pod template; no NodePort; port names valid',
  applies: (obj) => obj.kind === 'Service',
  check: (obj, ctx) => {
    const spec = obj.spec ?? {};
    const out: string[] = [];
    if (spec.type === 'NodePort') out.push('type NodePort opens a port on every node');
    if (spec.type === 'ExternalName') return out;
    const targets = podWorkloads(ctx, nsOf(obj)).filter((w) => mapSelectorMatches(spec.selector, podLabels(w)));
    if (!spec.selector || Object.keys(spec.selector).length === 0) out.push('has no selector');
    else if (targets.length === 0) out.push(`selector ${JSON.stringify(spec.selector)} matches no pod template`);
    const ports: Json[] = spec.ports ?? [];
    if (ports.length > 1 && ports.some((p) => !p.name)) out.push('has several ports, not all named');
    for (const p of ports) {
      if (p.name !== undefined && (!DNS_LABEL.test(p.name) || p.name.length > 63))
        out.push(`port name '${p.name}' is not a DNS-1123 label`);
      const target = p.targetPort ?? p.port;
      if (targets.length > 0) {
        const declared = targets.flatMap((w) => containersOf(w).flatMap((r) => (r.container.ports ?? []) as Json[]));
        const found =
          typeof target === 'string' ? declared.some((d) => d.name === target) : declared.some((d) => d.containerPort === target);
        if (!found) out.push(`port ${p.name ?? p.port}: targetPort ${JSON.stringify(target)} is not a containerPort of the selected pods`);
      }
    }
    return out;
  },
};

function backendsOf(ing: K8sObject): Json[] {
  const out: Json[] = [];
  if (ing.spec?.defaultBackend) out.push(ing.spec.defaultBackend);
  for (const r of ing.spec?.rules ?? []) for (const p of r.http?.paths ?? []) out.push(p.backend ?? {});
  return out;
}

export const N4: Rule = {
  id: 'N4',
  title: 'Ingress backends exist; spec.tls set',
  applies: (obj) => obj.kind === 'Ingress',
  check: (obj, ctx) => {
    const out: string[] = [];
    for (const b of backendsOf(obj)) {
      const svc = b.service;
      if (!svc?.name) {
        out.push(`backend ${JSON.stringify(b)} is not a Service`);
        continue;
      }
      const target = ctx.objects.find((o) => o.kind === 'Service' && o.metadata.name === svc.name && nsOf(o) === nsOf(obj));
      if (!target) out.push(`backend Service ${svc.name} does not exist`);
      else if (
        svc.port &&
        !((target.spec?.ports ?? []) as Json[]).some((p) =>
          svc.port.name !== undefined ? p.name === svc.port.name : p.port === svc.port.number,
        )
      ) {
        out.push(`backend Service ${svc.name} has no port ${JSON.stringify(svc.port)}`);
      }
    }
    const tls: Json[] = obj.spec?.tls ?? [];
    if (tls.length === 0) out.push('spec.tls is not set: traffic is served in clear text');
    else {
      const covered = new Set(tls.flatMap((t) => t.hosts ?? []));
      for (const r of obj.spec?.rules ?? []) if (r.host && !covered.has(r.host)) out.push(`host ${r.host} is not covered by spec.tls`);
      for (const t of tls) if (!t.secretName) out.push(`tls entry for ${JSON.stringify(t.hosts ?? [])} names no secretName`);
    }
    return out;
  },
};
