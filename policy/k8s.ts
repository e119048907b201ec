/** Read helpers over plain synthesized objects: pod templates, containers, selectors, effective values. */
import type { K8sObject, RuleContext } from './types';

export type Json = any;

/** Kinds whose objects carry a pod template (or are a pod). */
export const POD_KINDS = new Set(['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob']);
/** Kinds that run forever and so need probes, PDBs, spreading. */
export const LONG_RUNNING_KINDS = new Set(['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet']);
/** Kinds a PDB, anti-affinity and spread constraints are demanded of. */
export const REPLICATED_KINDS = new Set(['Deployment', 'StatefulSet']);

export function hasPods(obj: K8sObject): boolean {
  return POD_KINDS.has(obj.kind);
}

export function nsOf(obj: K8sObject): string {
  return obj.metadata?.namespace ?? 'default';
}

export function sameNamespace(a: K8sObject, b: K8sObject): boolean {
  return nsOf(a) === nsOf(b);
}

/** The pod template `{metadata, spec}` of a workload; a Pod is its own template. */
export function podTemplate(obj: K8sObject): { metadata: Json; spec: Json } | undefined {
  switch (obj.kind) {
    case 'Pod':
      return { metadata: obj.metadata ?? {}, spec: obj.spec ?? {} };
    case 'CronJob': {
      const t = obj.spec?.jobTemplate?.spec?.template;
      return t ? { metadata: t.metadata ?? {}, spec: t.spec ?? {} } : undefined;
    }
    default: {
      if (!hasPods(obj)) return undefined;
      const t = obj.spec?.template;
      return t ? { metadata: t.metadata ?? {}, spec: t.spec ?? {} } : undefined;
    }
  }
}

export function podSpec(obj: K8sObject): Json | undefined {
  return podTemplate(obj)?.spec;
}

export function podLabels(obj: K8sObject): Record<string, string> {
  return podTemplate(obj)?.metadata?.labels ?? {};
}

export interface ContainerRef {
  readonly container: Json;
  /** `containers` or `initContainers`: messages say which. */
  readonly list: 'containers' | 'initContainers';
}

/** Every container of the pod, initContainers included (container rules cover both). */
export function containersOf(obj: K8sObject): ContainerRef[] {
  const spec = podSpec(obj);
  if (!spec) return [];
  return [
    ...((spec.initContainers ?? []) as Json[]).map((container) => ({ container, list: 'initContainers' as const })),
    ...((spec.containers ?? []) as Json[]).map((container) => ({ container, list: 'containers' as const })),
  ];
}

export function containerLabel(ref: ContainerRef): string {
  return ref.list === 'initContainers' ? `initContainer ${ref.container.name}` : `container ${ref.container.name}`;
}

/** Fields of the pod securityContext that a container inherits when it does not set them. */
const INHERITED = ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'seccompProfile', 'seLinuxOptions', 'appArmorProfile'];

/** Container securityContext after pod-level inheritance ("effective" in POLICY.md). */
export function effectiveSecurity(obj: K8sObject, container: Json): Json {
  const pod = podSpec(obj)?.securityContext ?? {};
  const own = container.securityContext ?? {};
  const out: Json = {};
  for (const f of INHERITED) if (pod[f] !== undefined) out[f] = pod[f];
  return { ...out, ...own };
}

export interface LabelSelector {
  readonly matchLabels?: Record<string, string>;
  readonly matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Kubernetes label-selector semantics; an empty selector matches everything. */
export function selectorMatches(selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const vals = e.values ?? [];
    switch (e.operator) {
      case 'In':
        if (!has || !vals.includes(labels[e.key])) return false;
        break;
      case 'NotIn':
        if (has && vals.includes(labels[e.key])) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** Plain `key: value` selectors (Service.spec.selector) match when every pair is present. */
export function mapSelectorMatches(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/** Workloads with pods in the same namespace as `obj`. */
export function podWorkloads(ctx: RuleContext, ns: string): K8sObject[] {
  return ctx.objects.filter((o) => hasPods(o) && nsOf(o) === ns);
}

/** HPA (autoscaling/*) or KEDA ScaledObject that scales this workload. */
export interface Scaler {
  readonly obj: K8sObject;
  readonly min: number | undefined;
  readonly max: number | undefined;
}

export function scalerFor(ctx: RuleContext, workload: K8sObject): Scaler | undefined {
  for (const o of ctx.objects) {
    if (!sameNamespace(o, workload)) continue;
    const ref = o.spec?.scaleTargetRef;
    if (!ref || ref.name !== workload.metadata.name) continue;
    if (o.kind === 'HorizontalPodAutoscaler' && ref.kind === workload.kind) {
      return { obj: o, min: o.spec.minReplicas ?? 1, max: o.spec.maxReplicas };
    }
    // KEDA's scaleTargetRef.kind defaults to Deployment.
    if (o.kind === 'ScaledObject' && (ref.kind ?? 'Deployment') === workload.kind) {
      return { obj: o, min: o.spec.minReplicaCount ?? 0, max: o.spec.maxReplicaCount ?? 100 };
    }
  }
  return undefined;
}

/** Replicas the workload runs with at the least: an autoscaler's floor, else spec.replicas (default 1). */
export function minReplicas(ctx: RuleContext, workload: K8sObject): number {
  const s = scalerFor(ctx, workload);
  if (s) return s.min ?? 1;
  return typeof workload.spec?.replicas === 'number' ? workload.spec.replicas : 1;
}

/** `kind/name` or `kind/namespace/name` for messages. */
export function ref(obj: K8sObject): string {
  return obj.metadata?.namespace ? `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}` : `${obj.kind}/${obj.metadata?.name}`;
}

/** Structural equality of JSON values (key order does not matter). */
export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
}

/** Absolute value of an int-or-percent against a total (PDB semantics: percentages round up). */
export function scaledValue(v: number | string, total: number): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (m) return Math.ceil((Number(m[1]) * total) / 100);
  return Number(v);
}
